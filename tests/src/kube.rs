//! The stand-in Kubernetes API server (tests/python/kube_apiserver.py) as
//! the tests drive it: started (on a port of its choosing or a given one),
//! fed pods and owners, told to compact (`410 Gone`) or send bookmarks; and
//! the kubeconfig pytrace reaches it with.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::{ProcessGuard, line_reader, python_dir, scratch_dir, venv_python, wait_for_line};

pub const TOKEN: &str = "pytrace-test-token-0123456789";
pub const NODE: &str = "node-test";

pub struct ApiServer {
    _process: ProcessGuard,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    pub port: u16,
    pub ca: PathBuf,
}

impl ApiServer {
    /// Starts the stand-in on `port` (0: any free port), with a CA of its own.
    pub fn start(port: u16) -> Self {
        Self::start_in(port, &scratch_dir("kube"))
    }

    /// Starts the stand-in on `port` with the CA kept in `cert_dir` (made
    /// there the first time).
    pub fn start_in(port: u16, cert_dir: &std::path::Path) -> Self {
        let mut child = Command::new(venv_python())
            .arg(python_dir().join("kube_apiserver.py"))
            .arg("--cert-dir")
            .arg(cert_dir)
            .args(["--token", TOKEN, "--port", &port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start kube_apiserver.py");
        let stdin = child.stdin.take().expect("stdin");
        let lines = line_reader(child.stdout.take().expect("stdout"));
        let process = ProcessGuard(child);
        let ready = wait_for_line(&lines, "READY", &mut Vec::new(), Duration::from_secs(30)).expect("stand-in READY");
        let fields: Vec<&str> = ready.split_whitespace().collect();
        Self { _process: process, stdin, lines, port: fields[1].parse().expect("port"), ca: PathBuf::from(fields[2]) }
    }

    fn send(&mut self, command: Value) {
        writeln!(self.stdin, "{command}").expect("write to the stand-in");
        let ok = wait_for_line(&self.lines, "OK", &mut Vec::new(), Duration::from_secs(10));
        assert!(ok.is_some(), "the stand-in did not take {command}");
    }

    /// Adds or changes a pod, or an owner (any object whose kind is not Pod).
    pub fn put(&mut self, object: Value) {
        self.send(json!({"op": "put", "object": object}));
    }

    pub fn delete_pod(&mut self, namespace: &str, name: &str) {
        self.send(json!({"op": "delete", "namespace": namespace, "name": name}));
    }

    /// Compacts the history: open watches get `410 Gone`.
    pub fn expire(&mut self) {
        self.send(json!({"op": "expire"}));
    }

    pub fn bookmark(&mut self) {
        self.send(json!({"op": "bookmark"}));
    }
}

/// A kubeconfig for the stand-in at `port` with CA `ca`, bearer token [`TOKEN`].
pub fn kubeconfig(port: u16, ca: &std::path::Path) -> PathBuf {
    let path = scratch_dir("kubeconfig").join("config");
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: standin\n  cluster:\n    server: https://127.0.0.1:{port}\n    \
         certificate-authority: {}\nusers:\n- name: pytrace\n  user:\n    token: {TOKEN}\ncontexts:\n- name: standin\n  \
         context: {{cluster: standin, user: pytrace}}\ncurrent-context: standin\n",
        ca.display()
    );
    std::fs::write(&path, text).expect("write the kubeconfig");
    path
}

/// A pod on [`NODE`] owned by ReplicaSet `replica_set`, whose container
/// `container` (name, runtime id) runs.
pub fn pod(
    namespace: &str,
    name: &str,
    uid: &str,
    replica_set: &str,
    container: (&str, &str),
    labels: Value,
    annotations: Value,
) -> Value {
    json!({
        "metadata": {
            "namespace": namespace, "name": name, "uid": uid, "labels": labels, "annotations": annotations,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": replica_set,
                                 "uid": format!("rs-{replica_set}"), "controller": true}],
        },
        "spec": {"nodeName": NODE, "containers": [{"name": container.0}]},
        "status": {"containerStatuses": [{
            "name": container.0, "containerID": format!("containerd://{}", container.1), "image": "sid",
            "imageID": "sid", "ready": true, "restartCount": 0,
        }]},
    })
}

/// ReplicaSet `name` owned by Deployment `deployment`.
pub fn replica_set(namespace: &str, name: &str, deployment: &str) -> Value {
    json!({
        "kind": "ReplicaSet", "apiVersion": "apps/v1",
        "metadata": {"namespace": namespace, "name": name, "uid": format!("rs-{name}"),
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment,
                                          "uid": format!("d-{deployment}"), "controller": true}]},
    })
}

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").port()
}
