//! The node's pods as the watch last saw them, indexed for the question a
//! process asks — "which pod and container am I?" — by its container id,
//! else by the pod uid in its cgroup path (a container that has just
//! started is in the pod before the pod's status names it).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::pod::{PodInfo, Workload};

/// A pod with the workload its owners lead to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodEntry {
    pub info: PodInfo,
    pub workload: Option<Workload>,
}

/// What a process finds: its pod, and its container's name when known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodView {
    pub pod: Arc<PodEntry>,
    pub container: Option<String>,
}

#[derive(Debug, Default)]
pub struct Directory {
    by_uid: HashMap<String, Arc<PodEntry>>,
    by_container: HashMap<String, String>,
    /// Bumped on every change, so readers know when to look again.
    generation: u64,
}

pub type SharedDirectory = Arc<RwLock<Directory>>;

impl Directory {
    /// A pod added or changed.
    pub fn apply(&mut self, entry: PodEntry) {
        self.remove(&entry.info.uid.clone());
        for (id, _) in &entry.info.containers {
            self.by_container.insert(id.clone(), entry.info.uid.clone());
        }
        self.by_uid.insert(entry.info.uid.clone(), Arc::new(entry));
        self.generation += 1;
    }

    /// A pod deleted.
    pub fn delete(&mut self, uid: &str) {
        self.remove(uid);
        self.generation += 1;
    }

    /// The watch restarted and listed every pod again: these are all there are.
    pub fn replace_all(&mut self, entries: Vec<PodEntry>) {
        self.by_uid.clear();
        self.by_container.clear();
        for entry in entries {
            self.apply(entry);
        }
        self.generation += 1;
    }

    fn remove(&mut self, uid: &str) {
        if let Some(old) = self.by_uid.remove(uid) {
            for (id, _) in &old.info.containers {
                self.by_container.remove(id);
            }
        }
    }

    /// The pod of a process in container `container_id`, whose cgroup path
    /// names pod `pod_uid`.
    pub fn lookup(&self, container_id: Option<&str>, pod_uid: Option<&str>) -> Option<PodView> {
        let uid = container_id.and_then(|id| self.by_container.get(id)).map(String::as_str).or(pod_uid)?;
        let pod = self.by_uid.get(uid)?.clone();
        let container = container_id.and_then(|id| pod.info.container_name(id)).map(str::to_owned);
        Some(PodView { pod, container })
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn len(&self) -> usize {
        self.by_uid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_uid.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(uid: &str, containers: &[(&str, &str)]) -> PodEntry {
        PodEntry {
            info: PodInfo {
                namespace: "shop".into(),
                name: format!("pod-{uid}"),
                uid: uid.into(),
                containers: containers.iter().map(|(id, name)| (id.to_string(), name.to_string())).collect(),
                ..PodInfo::default()
            },
            workload: None,
        }
    }

    #[test]
    fn finds_a_process_by_container_then_by_pod_uid() {
        let mut directory = Directory::default();
        directory.apply(entry("u1", &[("c1", "app")]));
        let by_container = directory.lookup(Some("c1"), None).unwrap();
        assert_eq!((by_container.pod.info.uid.as_str(), by_container.container.as_deref()), ("u1", Some("app")));
        // Started, not yet in the pod's status: found by the cgroup's pod uid.
        let starting = directory.lookup(Some("c2"), Some("u1")).unwrap();
        assert_eq!((starting.pod.info.uid.as_str(), starting.container), ("u1", None));
        assert!(directory.lookup(Some("c3"), Some("u9")).is_none());
    }

    #[test]
    fn follows_changes_deletions_and_relists() {
        let mut directory = Directory::default();
        directory.apply(entry("u1", &[("c1", "app")]));
        let before = directory.generation();
        directory.apply(entry("u1", &[("c2", "app")]));
        assert!(directory.generation() > before);
        assert!(directory.lookup(Some("c1"), None).is_none(), "the old container is gone");
        assert!(directory.lookup(Some("c2"), None).is_some());
        directory.delete("u1");
        assert!(directory.lookup(Some("c2"), Some("u1")).is_none());
        directory.apply(entry("u2", &[]));
        directory.replace_all(vec![entry("u3", &[("c3", "web")])]);
        assert_eq!(directory.len(), 1);
        assert!(directory.lookup(None, Some("u2")).is_none(), "not in the new list");
    }
}
