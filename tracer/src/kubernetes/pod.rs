//! What pytrace takes from a pod, and what it makes of it: the containers
//! by runtime id, the owning workload, the `k8s.*` resource attributes and
//! the service name by the usual order. Pure: Kubernetes objects in,
//! plain data out.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use pytrace_core::model::semconv as sc;

/// The annotation that names a pod's service (OpenTelemetry's convention).
pub const SERVICE_NAME_ANNOTATION: &str = "resource.opentelemetry.io/service.name";
/// The recommended label naming an application.
pub const APP_NAME_LABEL: &str = "app.kubernetes.io/name";
/// A pod annotated `pytrace.io/exclude: "true"` is never traced.
pub const OPT_OUT_ANNOTATION: &str = "pytrace.io/exclude";

/// One pod, as pytrace keeps it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodInfo {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub node: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// (runtime container id, container name) of every container that runs.
    pub containers: Vec<(String, String)>,
    /// The controller that owns the pod directly.
    pub owner: Option<Owner>,
}

/// An owner reference: `kind` and `name` in the pod's namespace.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Owner {
    pub kind: String,
    pub name: String,
}

/// The workload a pod belongs to, after following its owners.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    pub kind: String,
    pub name: String,
}

impl PodInfo {
    /// From a pod object; `None` without namespace, name or uid.
    pub fn from_pod(pod: &Pod) -> Option<Self> {
        let meta = &pod.metadata;
        let statuses = pod.status.iter().flat_map(|status| {
            [&status.container_statuses, &status.init_container_statuses, &status.ephemeral_container_statuses]
                .into_iter()
                .flatten()
                .flatten()
        });
        let containers = statuses
            .filter_map(|status| Some((runtime_id(status.container_id.as_deref()?)?.to_owned(), status.name.clone())))
            .collect();
        let owner = meta
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true))
            .map(|o| Owner { kind: o.kind.clone(), name: o.name.clone() });
        Some(Self {
            namespace: meta.namespace.clone()?,
            name: meta.name.clone()?,
            uid: meta.uid.clone()?,
            node: pod.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default(),
            labels: meta.labels.clone().unwrap_or_default(),
            annotations: meta.annotations.clone().unwrap_or_default(),
            containers,
            owner,
        })
    }

    /// The name of the container with runtime id `id`.
    pub fn container_name(&self, id: &str) -> Option<&str> {
        self.containers.iter().find(|(known, _)| known == id).map(|(_, name)| name.as_str())
    }

    /// Whether the pod asks not to be traced.
    pub fn opted_out(&self) -> bool {
        self.annotations.get(OPT_OUT_ANNOTATION).is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    }

    /// The service name the pod gives: its `resource.opentelemetry.io/service.name`
    /// annotation, else its `app.kubernetes.io/name` label, else its workload's name.
    pub fn service_name(&self, workload: Option<&Workload>) -> Option<String> {
        let non_empty = |value: Option<&String>| value.filter(|v| !v.trim().is_empty()).cloned();
        non_empty(self.annotations.get(SERVICE_NAME_ANNOTATION))
            .or_else(|| non_empty(self.labels.get(APP_NAME_LABEL)))
            .or_else(|| workload.map(|w| w.name.clone()))
    }

    /// The `k8s.*` resource attributes of a process in container `container`
    /// of this pod.
    pub fn attributes(
        &self,
        container: Option<&str>,
        workload: Option<&Workload>,
        cluster: Option<&str>,
    ) -> Vec<(&'static str, String)> {
        let mut attributes = vec![
            (sc::K8S_NAMESPACE_NAME, self.namespace.clone()),
            (sc::K8S_POD_NAME, self.name.clone()),
            (sc::K8S_POD_UID, self.uid.clone()),
        ];
        if let Some(container) = container {
            attributes.push((sc::K8S_CONTAINER_NAME, container.to_owned()));
        }
        if !self.node.is_empty() {
            attributes.push((sc::K8S_NODE_NAME, self.node.clone()));
        }
        if let Some(workload) = workload
            && let Some(key) = workload_attribute(&workload.kind)
        {
            attributes.push((key, workload.name.clone()));
        }
        if let Some(cluster) = cluster {
            attributes.push((sc::K8S_CLUSTER_NAME, cluster.to_owned()));
        }
        attributes
    }
}

/// The resource attribute naming a workload of `kind`.
fn workload_attribute(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "Deployment" => sc::K8S_DEPLOYMENT_NAME,
        "StatefulSet" => sc::K8S_STATEFULSET_NAME,
        "DaemonSet" => sc::K8S_DAEMONSET_NAME,
        "ReplicaSet" => sc::K8S_REPLICASET_NAME,
        "Job" => sc::K8S_JOB_NAME,
        "CronJob" => sc::K8S_CRONJOB_NAME,
        _ => return None,
    })
}

/// The runtime's id in a container status's `containerID`
/// (`containerd://<id>`, `cri-o://<id>`, `docker://<id>`).
pub fn runtime_id(container_id: &str) -> Option<&str> {
    let id = container_id.rsplit_once("://").map_or(container_id, |(_, id)| id);
    (!id.is_empty()).then_some(id)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{ContainerStatus, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

    use super::*;

    const ID: &str = "401a01887736a92e7caf60e31f62325544e21441b60cf4b76803158a29d7cb00";

    fn pod(labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> Pod {
        let map = |pairs: &[(&str, &str)]| Some(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        Pod {
            metadata: ObjectMeta {
                namespace: Some("shop".into()),
                name: Some("checkout-7d9f-x2x".into()),
                uid: Some("0f2c3a1e-5b7d-4c1a-9e8f-1234567890ab".into()),
                labels: map(labels),
                annotations: map(annotations),
                owner_references: Some(vec![OwnerReference {
                    kind: "ReplicaSet".into(),
                    name: "checkout-7d9f".into(),
                    controller: Some(true),
                    ..OwnerReference::default()
                }]),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec { node_name: Some("node-a".into()), ..PodSpec::default() }),
            status: Some(PodStatus {
                container_statuses: Some(vec![ContainerStatus {
                    name: "app".into(),
                    container_id: Some(format!("containerd://{ID}")),
                    ..ContainerStatus::default()
                }]),
                ..PodStatus::default()
            }),
        }
    }

    #[test]
    fn reads_containers_owner_and_attributes() {
        let info = PodInfo::from_pod(&pod(&[], &[])).unwrap();
        assert_eq!(info.container_name(ID), Some("app"));
        assert_eq!(info.owner, Some(Owner { kind: "ReplicaSet".into(), name: "checkout-7d9f".into() }));
        let deployment = Workload { kind: "Deployment".into(), name: "checkout".into() };
        let attributes = info.attributes(Some("app"), Some(&deployment), Some("prod-eu"));
        let get = |key| attributes.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str());
        assert_eq!(get(sc::K8S_NAMESPACE_NAME), Some("shop"));
        assert_eq!(get(sc::K8S_POD_NAME), Some("checkout-7d9f-x2x"));
        assert_eq!(get(sc::K8S_CONTAINER_NAME), Some("app"));
        assert_eq!(get(sc::K8S_NODE_NAME), Some("node-a"));
        assert_eq!(get(sc::K8S_DEPLOYMENT_NAME), Some("checkout"));
        assert_eq!(get(sc::K8S_CLUSTER_NAME), Some("prod-eu"));
    }

    #[test]
    fn service_name_by_annotation_then_label_then_workload() {
        let workload = Workload { kind: "Deployment".into(), name: "checkout".into() };
        let both = PodInfo::from_pod(&pod(&[(APP_NAME_LABEL, "web")], &[(SERVICE_NAME_ANNOTATION, "shop-api")]));
        assert_eq!(both.unwrap().service_name(Some(&workload)).as_deref(), Some("shop-api"));
        let label = PodInfo::from_pod(&pod(&[(APP_NAME_LABEL, "web")], &[])).unwrap();
        assert_eq!(label.service_name(Some(&workload)).as_deref(), Some("web"));
        let bare = PodInfo::from_pod(&pod(&[], &[(SERVICE_NAME_ANNOTATION, " ")])).unwrap();
        assert_eq!(bare.service_name(Some(&workload)).as_deref(), Some("checkout"));
        assert_eq!(bare.service_name(None), None);
    }

    #[test]
    fn opt_out_and_runtime_ids() {
        assert!(PodInfo::from_pod(&pod(&[], &[(OPT_OUT_ANNOTATION, "true")])).unwrap().opted_out());
        assert!(!PodInfo::from_pod(&pod(&[], &[(OPT_OUT_ANNOTATION, "no")])).unwrap().opted_out());
        assert_eq!(runtime_id("cri-o://abc"), Some("abc"));
        assert_eq!(runtime_id("docker://"), None);
    }
}
