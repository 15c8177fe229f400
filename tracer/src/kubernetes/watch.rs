//! The watch on the node's pods: kube-rs's watcher (an initial list, then
//! a watch from its resource version, re-listing after `410 Gone`,
//! bookmarks kept, backing off while the API server cannot be reached),
//! each pod's owners followed to its workload, the result in the
//! [`Directory`](super::directory::Directory). Outages are said once, and
//! the return once.

use std::collections::HashMap;

use futures::StreamExt as _;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};

use super::directory::{PodEntry, SharedDirectory};
use super::pod::{Owner, PodInfo, Workload};
use crate::notices::{notice, warning};

/// Owners looked up, by (namespace, kind, name); bounded.
const MAX_CACHED_OWNERS: usize = 10_000;

pub async fn run(client: Client, node: String, directory: SharedDirectory) {
    let pods: Api<Pod> = Api::all(client.clone());
    let config = watcher::Config::default().fields(&format!("spec.nodeName={node}"));
    let mut events = watcher::watcher(pods, config).default_backoff().boxed();
    let mut owners = Owners { client, cache: HashMap::new() };
    let mut listing = Vec::new();
    let mut reachable = None;
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Init) => listing.clear(),
            Ok(Event::InitApply(pod)) => listing.extend(owners.entry(&pod).await),
            Ok(Event::InitDone) => {
                let count = listing.len();
                if let Ok(mut directory) = directory.write() {
                    directory.replace_all(std::mem::take(&mut listing));
                }
                if reachable != Some(true) {
                    notice!("Kubernetes: watching the {count} pods of node {node}");
                    reachable = Some(true);
                }
            }
            Ok(Event::Apply(pod)) => {
                if let Some(entry) = owners.entry(&pod).await
                    && let Ok(mut directory) = directory.write()
                {
                    directory.apply(entry);
                }
            }
            Ok(Event::Delete(pod)) => {
                if let (Some(uid), Ok(mut directory)) = (pod.metadata.uid.as_deref(), directory.write()) {
                    directory.delete(uid);
                }
            }
            Err(error) => {
                if reachable != Some(false) {
                    warning!(
                        "Kubernetes API: {error}; spans keep container.id, and pod metadata \
                         fills in when the API server answers again"
                    );
                    reachable = Some(false);
                }
            }
        }
    }
}

/// Follows owner references up to the workload, caching what it read.
struct Owners {
    client: Client,
    cache: HashMap<(String, Owner), Option<Owner>>,
}

impl Owners {
    async fn entry(&mut self, pod: &Pod) -> Option<PodEntry> {
        let info = PodInfo::from_pod(pod)?;
        let workload = match &info.owner {
            Some(owner) => Some(self.workload(&info.namespace, owner).await),
            None => None,
        };
        Some(PodEntry { info, workload })
    }

    /// ReplicaSet → its Deployment, Job → its CronJob; any other owner is the workload.
    async fn workload(&mut self, namespace: &str, owner: &Owner) -> Workload {
        let parent = match owner.kind.as_str() {
            "ReplicaSet" | "Job" => self.parent(namespace, owner).await,
            _ => None,
        };
        let top = parent.unwrap_or_else(|| owner.clone());
        Workload { kind: top.kind, name: top.name }
    }

    async fn parent(&mut self, namespace: &str, owner: &Owner) -> Option<Owner> {
        let key = (namespace.to_owned(), owner.clone());
        if let Some(known) = self.cache.get(&key) {
            return known.clone();
        }
        let references = match owner.kind.as_str() {
            "ReplicaSet" => {
                let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), namespace);
                api.get(&owner.name).await.ok()?.metadata.owner_references
            }
            _ => {
                let api: Api<Job> = Api::namespaced(self.client.clone(), namespace);
                api.get(&owner.name).await.ok()?.metadata.owner_references
            }
        };
        let parent = references
            .into_iter()
            .flatten()
            .find(|r| r.controller == Some(true))
            .map(|r| Owner { kind: r.kind, name: r.name });
        if self.cache.len() >= MAX_CACHED_OWNERS {
            self.cache.clear();
        }
        self.cache.insert(key, parent.clone());
        parent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Request, Response};
    use kube::client::Body;

    /// An API server that answers each expected path with `(status, body)`, in order.
    fn api_server(answers: Vec<(&'static str, u16, serde_json::Value)>) -> (Client, tokio::task::JoinHandle<()>) {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let server = tokio::spawn(async move {
            for (path, status, body) in answers {
                let (request, respond) = handle.next_request().await.expect("a request");
                assert_eq!(request.uri().path(), path);
                let response = Response::builder().status(status).body(Body::from(body.to_string().into_bytes()));
                respond.send_response(response.unwrap());
            }
        });
        (Client::new(service, "default"), server)
    }

    fn owner(kind: &str, name: &str) -> Owner {
        Owner { kind: kind.into(), name: name.into() }
    }

    fn owned_by(kind: &str, name: &str, api_version: &str, owner_kind: &str, owner_name: &str) -> serde_json::Value {
        serde_json::json!({
            "apiVersion": api_version, "kind": kind,
            "metadata": {"name": name, "namespace": "shop", "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": owner_kind, "name": owner_name, "uid": "u", "controller": true}]},
        })
    }

    #[tokio::test]
    async fn follows_replica_sets_and_jobs_to_their_workloads_once() {
        let (client, server) = api_server(vec![
            (
                "/apis/apps/v1/namespaces/shop/replicasets/checkout-7d9f",
                200,
                owned_by("ReplicaSet", "checkout-7d9f", "apps/v1", "Deployment", "checkout"),
            ),
            (
                "/apis/batch/v1/namespaces/shop/jobs/report-28",
                200,
                owned_by("Job", "report-28", "batch/v1", "CronJob", "report"),
            ),
        ]);
        let mut owners = Owners { client, cache: HashMap::new() };
        let deployment = owners.workload("shop", &owner("ReplicaSet", "checkout-7d9f")).await;
        assert_eq!((deployment.kind.as_str(), deployment.name.as_str()), ("Deployment", "checkout"));
        // Asked again: from the cache (the server expects no third request).
        assert_eq!(owners.workload("shop", &owner("ReplicaSet", "checkout-7d9f")).await, deployment);
        let cron = owners.workload("shop", &owner("Job", "report-28")).await;
        assert_eq!((cron.kind.as_str(), cron.name.as_str()), ("CronJob", "report"));
        let stateful = owners.workload("shop", &owner("StatefulSet", "db")).await;
        assert_eq!((stateful.kind.as_str(), stateful.name.as_str()), ("StatefulSet", "db"), "no lookup needed");
        server.await.unwrap();
    }

    #[tokio::test]
    async fn an_owner_that_cannot_be_read_is_the_workload_itself() {
        let not_found = serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                           "message": "not found", "reason": "NotFound", "code": 404});
        let (client, server) = api_server(vec![("/apis/apps/v1/namespaces/shop/replicasets/orphan-1", 404, not_found)]);
        let mut owners = Owners { client, cache: HashMap::new() };
        let workload = owners.workload("shop", &owner("ReplicaSet", "orphan-1")).await;
        assert_eq!((workload.kind.as_str(), workload.name.as_str()), ("ReplicaSet", "orphan-1"));
        server.await.unwrap();
    }
}
