//! Which of a host's Python processes `pytrace node` traces:
//! `--include KEY=GLOB` and `--exclude KEY=GLOB` (repeatable), with keys
//! `exe` (the executable's path, as the process sees it), `cmdline` (its
//! arguments joined by spaces), `container` (its container id; empty on the
//! host), `user` (its real user's name, or uid when it has none), and on
//! Kubernetes `k8s-namespace`, `k8s-pod-label=NAME=GLOB` and
//! `k8s-pod-annotation=NAME=GLOB` (its pod's).
//!
//! Order of evaluation: a process must run Python; then, when any
//! `--include` is given, it must match at least one; then it must match no
//! `--exclude` (an exclusion always wins); then its pod must not opt out
//! (`pytrace.io/exclude: "true"`). pytrace never traces itself. While a
//! process's pod is not known (the API server unreachable), rules on pod
//! keys are undecided: the others decide for now, and the process is
//! judged again, whole, once its pod is known.

use std::collections::BTreeMap;

use wildmatch::WildMatch;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Key {
    Exe,
    Cmdline,
    Container,
    User,
    K8sNamespace,
    K8sPodLabel(String),
    K8sPodAnnotation(String),
}

const KEYS: &str = "exe, cmdline, container, user, k8s-namespace, k8s-pod-label=NAME, k8s-pod-annotation=NAME";

#[derive(Clone, Debug)]
struct Rule {
    key: Key,
    pattern: WildMatch,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SelectionError {
    #[error("{0:?} is not KEY=GLOB (keys: {KEYS})")]
    Malformed(String),
    #[error("unknown key {0:?} in a selection (keys: {KEYS})")]
    UnknownKey(String),
}

/// The facts a selection looks at, for one process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessFacts {
    pub exe: String,
    pub cmdline: String,
    pub container: String,
    pub user: String,
    /// Its pod's, on Kubernetes once known.
    pub pod: Option<PodFacts>,
}

/// What a selection looks at in a pod.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodFacts {
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub opted_out: bool,
}

impl ProcessFacts {
    /// The value `key` names; `None` when it is a pod's and the pod is not
    /// known (undecided); an absent label or annotation is empty.
    fn get(&self, key: &Key) -> Option<&str> {
        let pod = || self.pod.as_ref();
        Some(match key {
            Key::Exe => &self.exe,
            Key::Cmdline => &self.cmdline,
            Key::Container => &self.container,
            Key::User => &self.user,
            Key::K8sNamespace => &pod()?.namespace,
            Key::K8sPodLabel(name) => pod()?.labels.get(name).map_or("", String::as_str),
            Key::K8sPodAnnotation(name) => pod()?.annotations.get(name).map_or("", String::as_str),
        })
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
            exe: crate::targets::inspect::mapped_files::as_target_sees(&exe, root.as_deref().filter(|r| !r.is_empty())),
            cmdline: cmdline
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(String::from_utf8_lossy)
                .collect::<Vec<_>>()
                .join(" "),
            container: crate::targets::inspect::container::of_process(pid).unwrap_or_default(),
            user: user_name(&uid, &std::fs::read_to_string("/etc/passwd").unwrap_or_default()),
            pod: None,
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

    /// Whether a Python process with these facts is traced (for now, when
    /// its pod is not known yet and rules on pod keys are undecided).
    pub fn selects(&self, facts: &ProcessFacts) -> bool {
        let outcome = |rule: &Rule| facts.get(&rule.key).map(|value| rule.pattern.matches(value));
        let included = self.includes.is_empty() || self.includes.iter().any(|rule| outcome(rule) != Some(false));
        let excluded = self.excludes.iter().any(|rule| outcome(rule) == Some(true));
        included && !excluded && !facts.pod.as_ref().is_some_and(|pod| pod.opted_out)
    }

    /// Whether a rule looks at pods.
    pub fn uses_pods(&self) -> bool {
        self.includes
            .iter()
            .chain(&self.excludes)
            .any(|rule| matches!(rule.key, Key::K8sNamespace | Key::K8sPodLabel(_) | Key::K8sPodAnnotation(_)))
    }

    /// Whether no rule is given (every Python process is traced).
    pub fn is_everything(&self) -> bool {
        self.includes.is_empty() && self.excludes.is_empty()
    }
}

fn parse_rule(value: &str) -> Result<Rule, SelectionError> {
    let (key, glob) = value.split_once('=').ok_or_else(|| SelectionError::Malformed(value.to_owned()))?;
    let (key, glob) = match key {
        "exe" => (Key::Exe, glob),
        "cmdline" => (Key::Cmdline, glob),
        "container" => (Key::Container, glob),
        "user" => (Key::User, glob),
        "k8s-namespace" => (Key::K8sNamespace, glob),
        "k8s-pod-label" | "k8s-pod-annotation" => {
            let (name, glob) = glob.split_once('=').ok_or_else(|| SelectionError::Malformed(value.to_owned()))?;
            let name = name.to_owned();
            (if key == "k8s-pod-label" { Key::K8sPodLabel(name) } else { Key::K8sPodAnnotation(name) }, glob)
        }
        other => return Err(SelectionError::UnknownKey(other.to_owned())),
    };
    Ok(Rule { key, pattern: WildMatch::new(glob) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(exe: &str, cmdline: &str, container: &str, user: &str) -> ProcessFacts {
        ProcessFacts {
            exe: exe.into(),
            cmdline: cmdline.into(),
            container: container.into(),
            user: user.into(),
            pod: None,
        }
    }

    fn in_pod(namespace: &str, labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> ProcessFacts {
        let map = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let opted_out = annotations.contains(&("pytrace.io/exclude", "true"));
        ProcessFacts {
            pod: Some(PodFacts {
                namespace: namespace.into(),
                labels: map(labels),
                annotations: map(annotations),
                opted_out,
            }),
            ..facts("/usr/bin/python3", "python3 app.py", "401a0188", "root")
        }
    }

    #[test]
    fn pod_keys_select_and_a_pod_can_opt_out() {
        let shop = in_pod("shop", &[("app", "checkout")], &[("team", "payments")]);
        let kube = in_pod("kube-system", &[], &[]);
        let only_shop = select(&["k8s-namespace=shop"], &[]);
        assert!(only_shop.selects(&shop) && !only_shop.selects(&kube));
        assert!(only_shop.uses_pods());
        let labelled = select(&["k8s-pod-label=app=check*"], &["k8s-pod-annotation=team=billing"]);
        assert!(labelled.selects(&shop));
        assert!(!labelled.selects(&kube), "no such label: empty, which does not match");
        let opted_out = in_pod("shop", &[], &[("pytrace.io/exclude", "true")]);
        assert!(!select(&[], &[]).selects(&opted_out), "the pod's annotation wins");
        // The pod not known yet: pod rules are undecided, the others decide.
        let unknown = facts("/usr/bin/python3", "python3 app.py", "401a0188", "root");
        assert!(only_shop.selects(&unknown));
        assert!(!select(&["k8s-namespace=shop"], &["user=root"]).selects(&unknown));
        assert!(Selection::new(&["k8s-pod-label=app".into()], &[]).is_err(), "NAME=GLOB");
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
        assert!(SelectionError::UnknownKey("pid".into()).to_string().contains("k8s-pod-label=NAME"));
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
