//! pytrace's container image (deploy/Dockerfile, built by `cargo xtask
//! image` from a debootstrapped base, no registry), run with podman the way
//! the DaemonSet runs it: the host's PID namespace, every capability dropped
//! but the chart's, tracefs and the cgroup file system mounted read-only.
//! `pytrace doctor` passes inside it, and `pytrace node` inside it traces a
//! Python process on the host.

use std::process::{Command, Stdio};

use serde_json::Value;

use integration_tests::{Client, ProcessGuard, Server, line_reader, venv_python};

/// `podman run` of the image as the DaemonSet runs it, with `args`.
fn podman_run(args: &[&str]) -> Command {
    let image = std::env::var("PYTRACE_IMAGE").expect("PYTRACE_IMAGE is unset: run with `cargo xtask test`");
    let mut command = Command::new("podman");
    command
        .args(["--runtime", "runc", "run", "--rm", "--pid=host", "--cap-drop=ALL"])
        .arg("--cap-add=BPF,PERFMON,SYS_PTRACE,DAC_READ_SEARCH,SYS_ADMIN")
        .args(["-v", "/sys/kernel/tracing:/sys/kernel/tracing:ro", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:ro"])
        .args(["--read-only", &image])
        .args(args);
    command
}

#[test]
fn doctor_passes_inside_the_image() {
    let output = podman_run(&["doctor"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("pytrace can trace here"), "{stdout}");
}

#[test]
fn node_inside_the_image_traces_a_python_process_on_the_host() {
    let server = Server::https();
    let mut client = Client::start(&venv_python(), &server, &["--lib", "urllib", "--paths", "GET /json?case=image"]);
    let mut node = podman_run(&["node", "--format=json", "--duration=10", "--include", "cmdline=*client.py*"]);
    let mut child = node.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let guard = ProcessGuard(child);
    let lines = line_reader(stderr);
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.starts_with("pytrace: tracing")) {
        seen.push(
            lines
                .recv_timeout(std::time::Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("pytrace did not start in the image: {seen:?}")),
        );
    }
    let client_pid = client.pid;
    client.go();
    client.finish();
    let mut guard = guard;
    let status = guard.0.wait().unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut { stdout }, &mut text).unwrap();
    assert!(status.success(), "{seen:?}");
    let spans: Vec<Value> = text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).collect();
    let calls: Vec<&Value> = spans
        .iter()
        .filter(|s| s["attributes"]["url.full"].as_str().is_some_and(|u| u.ends_with("case=image")))
        .collect();
    assert_eq!(calls.len(), 1, "{text}");
    assert_eq!(calls[0]["resource"]["process.pid"], u64::from(client_pid), "the client's host PID");
}
