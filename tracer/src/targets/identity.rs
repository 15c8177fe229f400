//! Who `pytrace run`'s command runs as. Under `sudo`, pytrace needs root but
//! the command (a test suite, a build) should not have it, nor leave
//! root-owned files in the user's workspace: it runs as the invoking user
//! — `SUDO_UID`, `SUDO_GID`, that user's groups, `HOME`, `USER`,
//! `LOGNAME` — while pytrace keeps its privileges. `--run-as-root` keeps
//! the command root.

use std::ffi::CString;

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
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return None;
        }
        let uid: u32 = env("SUDO_UID")?.parse().ok()?;
        let gid: u32 = env("SUDO_GID")?.parse().ok()?;
        if uid == 0 {
            return None;
        }
        let (name, home) = account(uid).unwrap_or_else(|| (env("SUDO_USER").unwrap_or_default(), "/".to_owned()));
        let groups = groups_of(&name, gid);
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

/// `uid`'s name and home directory from the user database.
fn account(uid: u32) -> Option<(String, String)> {
    let mut buffer = vec![0_u8; 16 * 1024];
    // SAFETY: an all-zero passwd is a valid out-parameter.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found = std::ptr::null_mut();
    // SAFETY: the buffers are valid for their stated lengths; `found` is set on success.
    let status = unsafe { libc::getpwuid_r(uid, &mut entry, buffer.as_mut_ptr().cast(), buffer.len(), &mut found) };
    if status != 0 || found.is_null() {
        return None;
    }
    // SAFETY: on success both fields point to NUL-terminated strings in `buffer`.
    let text = |field: *const libc::c_char| unsafe { std::ffi::CStr::from_ptr(field) }.to_string_lossy().into_owned();
    Some((text(entry.pw_name), text(entry.pw_dir)))
}

/// The groups `name` belongs to, with `gid`.
fn groups_of(name: &str, gid: u32) -> Vec<u32> {
    let Ok(user) = CString::new(name) else { return vec![gid] };
    let mut groups = vec![0 as libc::gid_t; 256];
    let mut count = groups.len() as libc::c_int;
    // SAFETY: `groups` has room for `count` entries; getgrouplist updates `count`.
    let found = unsafe { libc::getgrouplist(user.as_ptr(), gid, groups.as_mut_ptr(), &mut count) };
    if found < 0 {
        return vec![gid];
    }
    groups.truncate(count.max(0) as usize);
    groups
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
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
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
