//! `pytrace node` on a Kubernetes node, without a cluster: the pod metadata
//! path end to end against a stand-in API server on loopback that speaks
//! the real list/watch protocol over HTTPS with a bearer token
//! (tests/python/kube_apiserver.py), whose pods name the ids of real podman
//! containers placed in kubelet-style cgroup paths
//! (`/kubepods/burstable/pod<uid>/…`). Spans carry their pod, namespace,
//! container, deployment and service; a pod deleted and recreated is
//! followed; the watch survives `410 Gone` and bookmarks; a pod opts out;
//! a namespace is excluded; the API server down at start fills in later.

#![expect(clippy::unwrap_used, reason = "a test fails loudly on an unexpected value")]

use serde_json::{Value, json};

use integration_tests::kube::{ApiServer, NODE, free_port, kubeconfig, pod, replica_set};
use integration_tests::{Client, Server, Tracer, sid_in_pod};

/// Starts `pytrace node` with pod metadata from the stand-in at `port`.
fn node(port: u16, ca: &std::path::Path, extra: &[&str]) -> Tracer {
    let config = kubeconfig(port, ca);
    let mut args = vec![
        "--kubeconfig",
        config.to_str().unwrap(),
        "--node-name",
        NODE,
        "--cluster-name",
        "test-cluster",
        "--exclude",
        "cmdline=*kube_apiserver*",
    ];
    args.extend_from_slice(extra);
    Tracer::node(&args)
}

/// A Python 3.14 client in a podman container in pod `uid`'s cgroup,
/// waiting to make one call marked `case` (`rounds` times, `interval` apart).
fn client_in_pod(server: &Server, uid: &str, case: &str, rounds: u32, interval: f64) -> Client {
    Client::start_script_in(
        &sid_in_pod(14, uid),
        "client.py",
        server,
        &[
            "--wait-for-go",
            "--lib",
            "urllib",
            "--paths",
            &format!("GET /json?case={case}"),
            "--rounds",
            &rounds.to_string(),
            "--interval",
            &interval.to_string(),
        ],
    )
}

/// The client spans of calls marked `case`.
fn calls<'a>(spans: &'a [Value], case: &str) -> Vec<&'a Value> {
    spans
        .iter()
        .filter(|s| {
            s["kind"] == "client"
                && s["attributes"]["url.full"].as_str().unwrap_or_default().ends_with(&format!("case={case}"))
        })
        .collect()
}

/// Waits for the watch to have applied what was just put (the session
/// matches processes with pods every 100 ms).
fn settle() {
    std::thread::sleep(std::time::Duration::from_millis(800));
}

#[test]
fn spans_name_their_pod_and_follow_the_node_s_pods() {
    let server = Server::https();
    let mut api = ApiServer::start(0);
    api.put(replica_set("shop", "checkout-7d9f", "checkout"));
    let tracer = node(api.port, &api.ca, &["--exclude", "k8s-namespace=kube-system"]);

    // A pod whose container runs a Python client, named by annotation.
    let uid_a = "0f2c3a1e-5b7d-4c1a-9e8f-00000000000a";
    let mut first = client_in_pod(&server, uid_a, "first", 1, 0.0);
    let id_a = first.container_id.clone().unwrap();
    api.put(pod(
        "shop",
        "checkout-7d9f-aaaaa",
        uid_a,
        "checkout-7d9f",
        ("app", &id_a),
        json!({}),
        json!({"resource.opentelemetry.io/service.name": "checkout-api"}),
    ));
    settle();
    first.go();
    first.finish();

    // Deleted and recreated (a new uid, a new container), named by its label;
    // the watch's history compacted in between: it lists again.
    api.delete_pod("shop", "checkout-7d9f-aaaaa");
    api.expire();
    let uid_b = "0f2c3a1e-5b7d-4c1a-9e8f-00000000000b";
    let mut second = client_in_pod(&server, uid_b, "second", 1, 0.0);
    let id_b = second.container_id.clone().unwrap();
    api.bookmark();
    api.put(pod(
        "shop",
        "checkout-7d9f-bbbbb",
        uid_b,
        "checkout-7d9f",
        ("app", &id_b),
        json!({"app.kubernetes.io/name": "checkout-web"}),
        json!({}),
    ));
    // After `410 Gone` the watcher lists again, after a back-off of about a second.
    std::thread::sleep(std::time::Duration::from_secs(3));
    second.go();
    second.finish();

    // A pod that opts out, and one in an excluded namespace.
    let uid_c = "0f2c3a1e-5b7d-4c1a-9e8f-00000000000c";
    let mut opted_out = client_in_pod(&server, uid_c, "opted-out", 1, 0.0);
    let id_c = opted_out.container_id.clone().unwrap();
    api.put(pod("shop", "quiet-1", uid_c, "quiet", ("app", &id_c), json!({}), json!({"pytrace.io/exclude": "true"})));
    let uid_d = "0f2c3a1e-5b7d-4c1a-9e8f-00000000000d";
    let mut system = client_in_pod(&server, uid_d, "system", 1, 0.0);
    let id_d = system.container_id.clone().unwrap();
    api.put(pod("kube-system", "dns-1", uid_d, "dns", ("dns", &id_d), json!({}), json!({})));
    settle();
    opted_out.go();
    system.go();
    opted_out.finish();
    system.finish();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let trace = tracer.interrupt();

    let first = calls(&trace.spans, "first");
    assert_eq!(first.len(), 1, "{}", trace.stderr);
    let resource = &first[0]["resource"];
    assert_eq!(resource["k8s.namespace.name"], "shop", "{resource}");
    assert_eq!(resource["k8s.pod.name"], "checkout-7d9f-aaaaa");
    assert_eq!(resource["k8s.pod.uid"], uid_a);
    assert_eq!(resource["k8s.container.name"], "app");
    assert_eq!(resource["k8s.deployment.name"], "checkout", "ReplicaSet → Deployment");
    assert_eq!(resource["k8s.node.name"], NODE);
    assert_eq!(resource["k8s.cluster.name"], "test-cluster");
    assert_eq!(resource["container.id"], id_a.as_str());
    assert_eq!(resource["service.name"], "checkout-api", "from the annotation");

    let second = calls(&trace.spans, "second");
    assert_eq!(second.len(), 1, "{}", trace.stderr);
    assert_eq!(second[0]["resource"]["k8s.pod.name"], "checkout-7d9f-bbbbb", "the recreated pod: {}", trace.stderr);
    assert_eq!(second[0]["resource"]["k8s.pod.uid"], uid_b);
    assert_eq!(second[0]["resource"]["service.name"], "checkout-web", "from the label");

    assert!(calls(&trace.spans, "opted-out").is_empty(), "the pod opted out: {}", trace.stderr);
    assert!(calls(&trace.spans, "system").is_empty(), "kube-system is excluded: {}", trace.stderr);
    assert!(trace.stderr.contains("pytrace: Kubernetes: watching the"), "{}", trace.stderr);
}

#[test]
fn the_api_server_down_at_start_fills_in_when_it_answers() {
    let server = Server::https();
    let port = free_port();
    // The stand-in's CA, made by a first start; then it is down.
    let cert_dir = integration_tests::scratch_dir("kube-later");
    let ca = ApiServer::start_in(port, &cert_dir).ca.clone();
    let uid = "0f2c3a1e-5b7d-4c1a-9e8f-0000000000e1";
    let mut client = client_in_pod(&server, uid, "later", 2, 8.0);
    let id = client.container_id.clone().unwrap();
    let config = kubeconfig(port, &ca);
    let tracer = Tracer::node(&[
        "--kubeconfig",
        config.to_str().unwrap(),
        "--node-name",
        NODE,
        "--exclude",
        "cmdline=*kube_apiserver*",
    ]);
    client.go();
    // The first call is made while nothing answers; then the API server comes up.
    std::thread::sleep(std::time::Duration::from_secs(1));
    let mut api = ApiServer::start_in(port, &cert_dir);
    api.put(replica_set("shop", "report-5c4b", "report"));
    api.put(pod("shop", "report-5c4b-xxxxx", uid, "report-5c4b", ("worker", &id), json!({}), json!({})));
    client.finish();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let trace = tracer.interrupt();

    let spans = calls(&trace.spans, "later");
    assert_eq!(spans.len(), 2, "{}", trace.stderr);
    assert_eq!(spans[0]["resource"]["container.id"], id.as_str(), "spans flow meanwhile");
    assert!(spans[0]["resource"].get("k8s.pod.name").is_none(), "no metadata yet: {}", spans[0]["resource"]);
    assert_eq!(spans[1]["resource"]["k8s.pod.name"], "report-5c4b-xxxxx", "{}", trace.stderr);
    assert_eq!(spans[1]["resource"]["k8s.container.name"], "worker");
    assert_eq!(spans[1]["resource"]["k8s.deployment.name"], "report");
    assert!(trace.stderr.contains("warning: Kubernetes API:"), "the outage is said: {}", trace.stderr);
}
