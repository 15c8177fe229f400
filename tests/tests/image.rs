//! pytrace's container images, both routes of deploy/Dockerfile, run with
//! podman the way the DaemonSet runs them: the host's PID namespace, every
//! capability dropped but the chart's, tracefs and the cgroup file system
//! mounted read-only. One image holds the binary built on the host
//! (`prebuilt`, which `cargo xtask image` makes and the chart tests use);
//! the other was compiled by the Dockerfile's own build stage (the default
//! target, what a user with a registry builds) on a stand-in for
//! `rust:1-bookworm` that has no nightly, LLVM or bpf-linker of its own.
//! In each, `pytrace doctor --programs` loads every kernel program and
//! `pytrace node` traces a Python process on the host.

use std::process::{Command, Stdio};

use serde_json::Value;

use integration_tests::{Client, ProcessGuard, Server, line_reader, venv_python, wait_within};

/// The nightly the kernel programs were verified with (xtask/src/setup.rs),
/// which the build stage must install when the builder has none.
const VERIFIED_NIGHTLY: &str = "rustc 1.97.0-nightly (e50aa6fba 2026-05-19)";

/// Each image, with what it is.
fn images() -> [(&'static str, String); 2] {
    let image = |variable: &str| {
        std::env::var(variable).unwrap_or_else(|_| panic!("{variable} is unset: run with `cargo xtask test`"))
    };
    [("prebuilt", image("PYTRACE_IMAGE")), ("built from source", image("PYTRACE_SOURCE_IMAGE"))]
}

/// `podman run` of `image` as the DaemonSet runs it, with `args`.
fn podman_run(image: &str, args: &[&str]) -> Command {
    let mut command = Command::new("podman");
    command
        .args(["--runtime", "runc", "run", "--rm", "--pid=host", "--cap-drop=ALL"])
        .arg("--cap-add=BPF,PERFMON,SYS_PTRACE,DAC_READ_SEARCH,SYS_ADMIN")
        .args(["-v", "/sys/kernel/tracing:/sys/kernel/tracing:ro", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:ro"])
        .args(["--read-only", image])
        .args(args);
    command
}

#[test]
fn every_kernel_program_loads_inside_each_image() {
    for (what, image) in images() {
        let output = podman_run(&image, &["doctor", "--programs"]).output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{what}: {stdout}{}", String::from_utf8_lossy(&output.stderr));
        assert!(stdout.ends_with("pytrace can trace here\n"), "{what}: {stdout}");
        // The budget table: its header line, then one line a program up to a blank line.
        let programs: Vec<&str> =
            stdout.lines().skip_while(|l| !l.starts_with("program ")).skip(1).take_while(|l| !l.is_empty()).collect();
        assert!(programs.len() > 30, "{what}: every program's budget line: {stdout}");
        assert!(programs.iter().all(|l| l.contains(" ok ")), "{what}: {stdout}");
    }
}

#[test]
fn the_image_built_from_source_has_the_verified_kernel_toolchain() {
    let [_, (what, image)] = images();
    let output = podman_run(&image, &["--version"]).output().unwrap();
    let version = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{what}: {}", String::from_utf8_lossy(&output.stderr));
    assert!(version.contains(VERIFIED_NIGHTLY) && version.contains("bpf-linker 0.13.0"), "{what}: {version}");
}

#[test]
fn node_inside_each_image_traces_a_python_process_on_the_host() {
    for (what, image) in images() {
        let server = Server::https();
        let case = format!("GET /json?case=image-{}", what.replace(' ', "-"));
        let mut client = Client::start(&venv_python(), &server, &["--lib", "urllib", "--paths", &case]);
        let mut node =
            podman_run(&image, &["node", "--format=json", "--duration=10", "--include", "cmdline=*client.py*"]);
        let mut child = node.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut guard = ProcessGuard(child);
        let lines = line_reader(stderr);
        let mut seen = Vec::new();
        while !seen.iter().any(|l: &String| l.starts_with("pytrace: tracing")) {
            seen.push(
                lines
                    .recv_timeout(std::time::Duration::from_secs(60))
                    .unwrap_or_else(|_| panic!("{what}: pytrace did not start in the image: {seen:?}")),
            );
        }
        // Read while it runs: podman relays the container's output and would
        // block on a full pipe, never exiting.
        let output = std::thread::spawn(move || {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut { stdout }, &mut text).map(|_| text)
        });
        let client_pid = client.pid;
        client.go();
        client.finish();
        let status = wait_within(&mut guard.0, std::time::Duration::from_secs(60))
            .unwrap_or_else(|| panic!("{what}: `node --duration=10` in the image did not end within 60 s: {seen:?}"));
        let text = output.join().unwrap().unwrap();
        assert!(status.success(), "{what}: {seen:?}");
        let spans: Vec<Value> = text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).collect();
        let url_end = case.trim_start_matches("GET /json?");
        let calls: Vec<&Value> = spans
            .iter()
            .filter(|s| s["attributes"]["url.full"].as_str().is_some_and(|u| u.ends_with(url_end)))
            .collect();
        assert_eq!(calls.len(), 1, "{what}: {text}");
        assert_eq!(calls[0]["resource"]["process.pid"], u64::from(client_pid), "{what}: the client's host PID");
        assert_eq!(calls[0]["attributes"]["http.response.status_code"], 200, "{what}: {text}");
    }
}
