//! Which of a host's Python processes `pytrace node` traces:
//! `--include KEY=GLOB` and `--exclude KEY=GLOB` (repeatable), with keys
//! `exe` (the executable's path, as the process sees it), `cmdline` (its
//! arguments joined by spaces), `container` (its container id; empty on the
//! host) and `user` (its real user's name, or uid when it has none).
//!
//! Order of evaluation: a process must run Python; then, when any
//! `--include` is given, it must match at least one; then it must match no
//! `--exclude` (an exclusion always wins). pytrace never traces itself.

use wildmatch::WildMatch;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    Exe,
    Cmdline,
    Container,
    User,
}

#[derive(Clone, Debug)]
struct Rule {
    key: Key,
    pattern: WildMatch,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SelectionError {
    #[error("{0:?} is not KEY=GLOB (keys: exe, cmdline, container, user)")]
    Malformed(String),
    #[error("unknown key {0:?} in a selection (keys: exe, cmdline, container, user)")]
    UnknownKey(String),
}

/// The facts a selection looks at, for one process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessFacts {
    pub exe: String,
    pub cmdline: String,
    pub container: String,
    pub user: String,
}

impl ProcessFacts {
    fn get(&self, key: Key) -> &str {
        match key {
            Key::Exe => &self.exe,
            Key::Cmdline => &self.cmdline,
            Key::Container => &self.container,
            Key::User => &self.user,
        }
    }

    /// The facts of process `pid`, read from `/proc`.
    pub fn of(pid: u32) -> Self {
        let proc = |what: &str| std::path::PathBuf::from(format!("/proc/{pid}/{what}"));
        let root = std::fs::read_link(proc("root")).ok().map(|r| r.to_string_lossy().trim_end_matches('/').to_owned());
        let exe = std::fs::read_link(proc("exe")).map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
        let cmdline = std::fs::read(proc("cmdline")).unwrap_or_default();
        let uid = std::fs::read_to_string(proc("status"))
            .ok()
            .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Uid:")?.split_whitespace().next().map(str::to_owned)))
            .unwrap_or_default();
        Self {
            exe: super::process::as_target_sees(&exe, root.as_deref().filter(|r| !r.is_empty())),
            cmdline: cmdline
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(String::from_utf8_lossy)
                .collect::<Vec<_>>()
                .join(" "),
            container: super::container::of_process(pid).unwrap_or_default(),
            user: user_name(&uid, &std::fs::read_to_string("/etc/passwd").unwrap_or_default()),
        }
    }
}

/// The name of user `uid` in a `passwd` file, else the uid itself.
fn user_name(uid: &str, passwd: &str) -> String {
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.get(2) == Some(&uid)).then(|| fields[0].to_owned())
        })
        .unwrap_or_else(|| uid.to_owned())
}

#[derive(Clone, Debug, Default)]
pub struct Selection {
    includes: Vec<Rule>,
    excludes: Vec<Rule>,
}

impl Selection {
    /// From the `--include` and `--exclude` values.
    pub fn new(includes: &[String], excludes: &[String]) -> Result<Self, SelectionError> {
        let rules = |values: &[String]| values.iter().map(|v| parse_rule(v)).collect::<Result<Vec<_>, _>>();
        Ok(Self { includes: rules(includes)?, excludes: rules(excludes)? })
    }

    /// Whether a Python process with these facts is traced.
    pub fn selects(&self, facts: &ProcessFacts) -> bool {
        let matches = |rule: &Rule| rule.pattern.matches(facts.get(rule.key));
        (self.includes.is_empty() || self.includes.iter().any(matches)) && !self.excludes.iter().any(matches)
    }

    /// Whether no rule is given (every Python process is traced).
    pub fn is_everything(&self) -> bool {
        self.includes.is_empty() && self.excludes.is_empty()
    }
}

fn parse_rule(value: &str) -> Result<Rule, SelectionError> {
    let (key, glob) = value.split_once('=').ok_or_else(|| SelectionError::Malformed(value.to_owned()))?;
    let key = match key {
        "exe" => Key::Exe,
        "cmdline" => Key::Cmdline,
        "container" => Key::Container,
        "user" => Key::User,
        other => return Err(SelectionError::UnknownKey(other.to_owned())),
    };
    Ok(Rule { key, pattern: WildMatch::new(glob) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(exe: &str, cmdline: &str, container: &str, user: &str) -> ProcessFacts {
        ProcessFacts { exe: exe.into(), cmdline: cmdline.into(), container: container.into(), user: user.into() }
    }

    fn select(includes: &[&str], excludes: &[&str]) -> Selection {
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Selection::new(&owned(includes), &owned(excludes)).unwrap()
    }

    #[test]
    fn includes_narrow_and_excludes_win() {
        let api = facts("/usr/bin/python3.12", "python3 -m uvicorn api:app", "", "www-data");
        let batch = facts("/usr/local/bin/python3.14", "python3 batch.py", "401a0188", "root");
        assert!(select(&[], &[]).selects(&api), "everything by default");
        let only_uvicorn = select(&["cmdline=*uvicorn*"], &[]);
        assert!(only_uvicorn.selects(&api));
        assert!(!only_uvicorn.selects(&batch));
        let not_containers = select(&[], &["container=?*"]);
        assert!(not_containers.selects(&api));
        assert!(!not_containers.selects(&batch));
        let both = select(&["exe=/usr/*", "user=root"], &["cmdline=*batch*"]);
        assert!(both.selects(&api), "one include is enough");
        assert!(!both.selects(&batch), "an exclusion wins over an include");
    }

    #[test]
    fn bad_rules_are_refused() {
        assert_eq!(Selection::new(&["python".into()], &[]).err(), Some(SelectionError::Malformed("python".into())));
        assert_eq!(Selection::new(&[], &["pid=1".into()]).err(), Some(SelectionError::UnknownKey("pid".into())));
    }

    #[test]
    fn reads_user_names_and_this_process() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\n";
        assert_eq!(user_name("33", passwd), "www-data");
        assert_eq!(user_name("1234", passwd), "1234");
        let me = ProcessFacts::of(std::process::id());
        assert!(!me.exe.is_empty() && !me.cmdline.is_empty() && !me.user.is_empty(), "{me:?}");
    }
}
