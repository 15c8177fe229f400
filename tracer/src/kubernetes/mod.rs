//! Pod metadata for `pytrace node` on a Kubernetes node: the pods of this
//! node only, watched from the API server (`watch`), indexed by container
//! and pod uid (`directory`), turned into `k8s.*` resource attributes, a
//! service name and selection facts (`pod`). The API server may be
//! unreachable at start or later: spans keep flowing with `container.id`,
//! and metadata fills in when it answers.

pub mod directory;
pub mod pod;
mod watch;

use std::path::PathBuf;
use std::sync::Arc;

use crate::notices::{notice, warning};
use directory::{PodView, SharedDirectory};
use kube::config::{KubeConfigOptions, Kubeconfig};

/// `--kubernetes`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum KubernetesMode {
    /// On when running in a pod (`KUBERNETES_SERVICE_HOST`) or given a kubeconfig.
    #[default]
    Auto,
    On,
    Off,
}

/// The Kubernetes settings of a session.
#[derive(Clone, Debug, Default)]
pub struct KubernetesOptions {
    pub mode: KubernetesMode,
    /// `--kubeconfig`, else `KUBECONFIG`.
    pub kubeconfig: Option<PathBuf>,
    /// `--node-name`, else `NODE_NAME`.
    pub node_name: Option<String>,
    /// `--cluster-name`: `k8s.cluster.name`.
    pub cluster_name: Option<String>,
    /// `KUBERNETES_SERVICE_HOST` is set: pytrace runs in a pod.
    pub in_cluster: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum KubernetesError {
    #[error(
        "Kubernetes metadata needs this node's name: pass --node-name, or set NODE_NAME (the DaemonSet sets it from \
         spec.nodeName)"
    )]
    NoNodeName,
    #[error("cannot read the kubeconfig {path}: {source}")]
    Kubeconfig { path: String, source: kube::config::KubeconfigError },
    #[error("no Kubernetes configuration found (in-cluster or kubeconfig): {0}")]
    Infer(#[from] kube::config::InferConfigError),
    #[error("cannot make a Kubernetes client: {0}")]
    Client(#[from] kube::Error),
}

/// The `k8s.*` attributes of a process's pod, and the service name the pod gives.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodResource {
    pub attributes: Vec<(&'static str, String)>,
    pub service_name: Option<String>,
}

/// The node's pods, as far as the watch knows them.
#[derive(Clone)]
pub struct PodMetadata {
    directory: SharedDirectory,
    cluster: Option<String>,
}

impl PodMetadata {
    /// The pod of a process in container `container_id` whose cgroup names pod `pod_uid`.
    pub fn lookup(&self, container_id: Option<&str>, pod_uid: Option<&str>) -> Option<PodView> {
        self.directory.read().ok()?.lookup(container_id, pod_uid)
    }

    /// Changes with every change the watch makes.
    pub fn generation(&self) -> u64 {
        self.directory.read().map_or(0, |d| d.generation())
    }

    pub fn cluster(&self) -> Option<&str> {
        self.cluster.as_deref()
    }

    /// What a process in `view` adds to its resource.
    pub fn resource_of(&self, view: &PodView) -> PodResource {
        let workload = view.pod.workload.as_ref();
        PodResource {
            attributes: view.pod.info.attributes(view.container.as_deref(), workload, self.cluster.as_deref()),
            service_name: view.pod.info.service_name(workload),
        }
    }

    /// A directory fed by hand, for tests.
    pub fn from_directory(directory: SharedDirectory, cluster: Option<String>) -> Self {
        Self { directory, cluster }
    }
}

/// Starts watching this node's pods when the options say so; returns at
/// once (the first list arrives in the background).
pub async fn start(options: &KubernetesOptions, host_name: &str) -> Result<Option<PodMetadata>, KubernetesError> {
    let wanted = match options.mode {
        KubernetesMode::Off => false,
        KubernetesMode::On => true,
        KubernetesMode::Auto => options.in_cluster || options.kubeconfig.is_some(),
    };
    if !wanted {
        return Ok(None);
    }
    let node = match (&options.node_name, options.mode) {
        (Some(node), _) => node.clone(),
        (None, KubernetesMode::On) => return Err(KubernetesError::NoNodeName),
        (None, _) => {
            warning!("no --node-name or NODE_NAME: taking the host name {host_name} as the node's");
            host_name.to_owned()
        }
    };
    let config = match &options.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .map_err(|source| KubernetesError::Kubeconfig { path: path.display().to_string(), source })?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|source| KubernetesError::Kubeconfig { path: path.display().to_string(), source })?
        }
        None => kube::Config::infer().await?,
    };
    notice!("Kubernetes: pod metadata for node {node} from {}", config.cluster_url);
    let client = kube::Client::try_from(config)?;
    let directory = SharedDirectory::default();
    tokio::spawn(watch::run(client, node, Arc::clone(&directory)));
    Ok(Some(PodMetadata { directory, cluster: options.cluster_name.clone() }))
}
