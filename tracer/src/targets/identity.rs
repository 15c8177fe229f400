//! Who `pytrace run`'s command runs as. Under `sudo`, pytrace needs root but
//! the command (a test suite, a build) should not have it, nor leave
//! root-owned files in the user's workspace: it runs as the invoking user
//! — `SUDO_UID`, `SUDO_GID`, that user's groups, `HOME`, `USER`,
//! `LOGNAME` — while pytrace keeps its privileges. `--run-as-root` keeps
//! the command root.

use std::ffi::CString;

use crate::sys::{self, users};

/// The user a command runs as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub name: String,
    pub home: String,
}

impl RunAs {
    /// The user who invoked `sudo`, when pytrace runs as root under it.
    pub fn sudo_invoker(env: impl Fn(&str) -> Option<String>) -> Option<Self> {
        if !sys::is_root() {
            return None;
        }
        let uid: u32 = env("SUDO_UID")?.parse().ok()?;
        let gid: u32 = env("SUDO_GID")?.parse().ok()?;
        if uid == 0 {
            return None;
        }
        let (name, home) =
            users::account(uid).unwrap_or_else(|| (env("SUDO_USER").unwrap_or_default(), "/".to_owned()));
        let groups = users::groups_of(&name, gid);
        Some(Self { uid, gid, groups, name, home })
    }

    /// The environment for the command: pytrace's, with the user's `HOME`,
    /// `USER` and `LOGNAME`.
    pub fn environment(&self) -> Vec<CString> {
        let replaced = [("HOME", &self.home), ("USER", &self.name), ("LOGNAME", &self.name)];
        let mut environment: Vec<CString> = std::env::vars_os()
            .filter(|(key, _)| !replaced.iter().any(|(name, _)| key == name))
            .filter_map(|(key, value)| {
                let mut pair = key.into_encoded_bytes();
                pair.push(b'=');
                pair.extend(value.into_encoded_bytes());
                CString::new(pair).ok()
            })
            .collect();
        environment.extend(replaced.iter().filter_map(|(key, value)| CString::new(format!("{key}={value}")).ok()));
        environment
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_invoker_comes_from_sudo_s_variables() {
        let env = |uid: &'static str| {
            move |key: &str| match key {
                "SUDO_UID" => Some(uid.to_owned()),
                "SUDO_GID" => Some("65534".to_owned()),
                "SUDO_USER" => Some("nobody".to_owned()),
                _ => None,
            }
        };
        if sys::is_root() {
            let nobody = RunAs::sudo_invoker(env("65534")).unwrap();
            assert_eq!((nobody.uid, nobody.gid), (65534, 65534));
            assert!(nobody.groups.contains(&65534));
            let environment: Vec<String> =
                nobody.environment().iter().map(|c| c.to_string_lossy().into_owned()).collect();
            assert!(environment.contains(&format!("HOME={}", nobody.home)));
            assert_eq!(environment.iter().filter(|e| e.starts_with("HOME=")).count(), 1);
        }
        assert_eq!(RunAs::sudo_invoker(env("0")), None, "root invoking sudo stays root");
        assert_eq!(RunAs::sudo_invoker(|_| None), None, "not under sudo");
    }
}
