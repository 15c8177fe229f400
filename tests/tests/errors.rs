//! Bad input gets one clear line and a non-zero exit, never a panic.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use integration_tests::{ProcessGuard, Tracer, pytrace_bin, run_pytrace, venv_python};

#[test]
fn a_missing_pid_is_reported() {
    let (code, stderr) = run_pytrace(&["attach", "--pid", "4000000"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("no process with PID 4000000"), "{stderr}");
    assert!(!stderr.contains("panicked"));
}

#[test]
fn a_process_without_tls_or_python_is_traced_for_plaintext_with_warnings() {
    let sleeper = ProcessGuard(Command::new("sleep").arg("30").spawn().unwrap());
    let tracer = Tracer::attach(&[sleeper.0.id()], &["--duration", "0.5"]);
    let trace = tracer.wait();
    assert!(trace.success, "{}", trace.stderr);
    assert!(trace.stderr.contains("does not look like CPython"), "{}", trace.stderr);
    assert!(
        trace.stderr.contains("maps no OpenSSL pytrace can probe (/usr/bin/sleep: no OpenSSL)"),
        "which objects were examined, and why none was usable: {}",
        trace.stderr
    );
}

#[test]
fn an_unprivileged_user_is_told_to_use_sudo() {
    let output = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"])
        .arg(pytrace_bin())
        .args(["attach", "--pid", "1"])
        .output()
        .expect("setpriv (util-linux)");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("pytrace needs root") && stderr.contains("sudo"), "{stderr}");
}

#[test]
fn bad_flags_are_rejected_before_anything_runs() {
    let (code, stderr) = run_pytrace(&["attach", "--pid", "1", "--capture-limit", "99999999"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("--capture-limit must be between"), "{stderr}");
    let (code, _) = run_pytrace(&["attach"]);
    assert_eq!(code, Some(2), "clap's usage error");
}

#[test]
fn duration_ends_tracing_with_a_summary() {
    let idle = ProcessGuard(
        Command::new(venv_python())
            .args(["-c", "import ssl, time; time.sleep(60)"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let tracer = Tracer::attach(&[idle.0.id()], &["--duration", "1"]);
    let trace = tracer.wait();
    assert!(trace.success, "{}", trace.stderr);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(trace.summary["spans_emitted"].as_u64(), Some(0));
    assert!(trace.stdout.contains("0 spans"), "pretty summary: {}", trace.stdout);
}
