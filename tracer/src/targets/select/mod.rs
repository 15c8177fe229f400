//! Select: which processes `pytrace node` traces, and what their pods add.
//! The rules (`--include`/`--exclude`, [`rules`]) judge a process by its
//! own facts and, on Kubernetes, its pod's; the pod also adds its
//! attributes to the process's resource. `attach` and `run` trace what
//! they are given: nothing is selected there.

pub mod rules;

use rules::{PodFacts, ProcessFacts, Selection};

use super::inspect::TargetProcess;
use super::inspect::container::pod_of_process;
use super::inspect::process::runs_python_executable;
use super::watch::Traced;
use crate::kubernetes::directory::PodView;
use crate::kubernetes::{PodMetadata, PodResource};

/// The selection rules (`node` only) and the node's pods (on Kubernetes).
#[derive(Default)]
pub struct Admission {
    rules: Option<Selection>,
    kubernetes: Option<PodMetadata>,
    /// The watch's generation the traced processes were last matched against.
    pods_seen: u64,
}

/// What a process's pod, newly known or changed, means for it.
pub enum PodVerdict {
    /// Its pod is not known (yet).
    Unknown,
    /// Its pod is not selected, or opts out: `namespace/name`.
    LeftOut(String),
    /// Still traced; its resource gains the pod's attributes.
    Kept(PodResource),
}

impl Admission {
    pub fn new(rules: Option<Selection>, kubernetes: Option<PodMetadata>) -> Self {
        Self { rules, kubernetes, pods_seen: 0 }
    }

    /// `node`: processes come and go, and each is judged.
    pub fn judges(&self) -> bool {
        self.rules.is_some()
    }

    /// `node`: a new program (an exec) is traced only when it runs Python
    /// and the rules keep it, its pod's facts included.
    pub fn admits_program(&self, pid: u32) -> bool {
        let Some(rules) = &self.rules else { return true };
        runs_python_executable(pid) && rules.selects(&self.facts_with_pod(pid))
    }

    /// What `process`'s pod adds to its resource, when the pod is known.
    pub fn pod_resource(&self, process: &TargetProcess) -> Option<PodResource> {
        let metadata = self.kubernetes.as_ref()?;
        let view = metadata.lookup(process.container_id.as_deref(), process.pod_uid.as_deref())?;
        Some(metadata.resource_of(&view))
    }

    /// Whether the node's pods changed since the last call (the watch
    /// learnt something): then every traced process is judged again.
    pub fn pods_changed(&mut self) -> bool {
        let Some(metadata) = &self.kubernetes else { return false };
        let generation = metadata.generation();
        let changed = generation != self.pods_seen;
        self.pods_seen = generation;
        changed
    }

    /// Judges `traced` (PID `pid`) again now that its pod may be known.
    pub fn judge_with_pod(&self, pid: u32, traced: &mut Traced) -> PodVerdict {
        let Some(metadata) = &self.kubernetes else { return PodVerdict::Unknown };
        let process = &traced.process;
        let Some(view) = metadata.lookup(process.container_id.as_deref(), process.pod_uid.as_deref()) else {
            return PodVerdict::Unknown;
        };
        if let Some(rules) = &self.rules {
            let mut facts = traced.facts.get_or_insert_with(|| ProcessFacts::of(pid)).clone();
            facts.pod = Some(pod_facts(&view));
            if !rules.selects(&facts) {
                return PodVerdict::LeftOut(format!("{}/{}", view.pod.info.namespace, view.pod.info.name));
            }
        }
        PodVerdict::Kept(metadata.resource_of(&view))
    }

    /// The selection facts of `pid`, with its pod's when known.
    fn facts_with_pod(&self, pid: u32) -> ProcessFacts {
        let mut facts = ProcessFacts::of(pid);
        if let Some(metadata) = &self.kubernetes {
            let pod_uid = pod_of_process(pid);
            let container = (!facts.container.is_empty()).then_some(facts.container.as_str());
            facts.pod = metadata.lookup(container, pod_uid.as_deref()).map(|view| pod_facts(&view));
        }
        facts
    }
}

fn pod_facts(view: &PodView) -> PodFacts {
    let info = &view.pod.info;
    PodFacts {
        namespace: info.namespace.clone(),
        labels: info.labels.clone(),
        annotations: info.annotations.clone(),
        opted_out: info.opted_out(),
    }
}
