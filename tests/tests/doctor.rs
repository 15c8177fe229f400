//! `pytrace doctor` says what will and won't work here, one line per item,
//! and exits non-zero when tracing cannot work; `pytrace attach` refuses
//! clearly when a target's TLS library maps but no probe can go on it.
//! Measured here: with exactly CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE and
//! CAP_DAC_READ_SEARCH every uprobe attach is refused; CAP_SYS_ADMIN makes
//! it work, whatever `perf_event_paranoid` says.

#![expect(clippy::unwrap_used, reason = "a test fails loudly on an unexpected value")]

use std::process::{Command, Output, Stdio};

use integration_tests::{ProcessGuard, pytrace_bin, venv_python};

/// The capabilities the README once named as enough.
const WITHOUT_SYS_ADMIN: &str = "+bpf,+perfmon,+sys_ptrace,+dac_read_search";

/// Runs pytrace with these capabilities only (still as root).
fn pytrace_with_capabilities(capabilities: &str, args: &[&str]) -> Output {
    Command::new("setpriv")
        .args(["--bounding-set", &format!("-all,{capabilities}"), "--inh-caps", &format!("-all,{capabilities}"), "--"])
        .arg(pytrace_bin())
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn doctor_passes_here_and_names_each_item() {
    let output = Command::new(pytrace_bin()).arg("doctor").output().unwrap();
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    for item in ["kernel", "capabilities", "BTF", "lockdown", "tracefs", "uprobes", "syscall tracepoints", "cgroups"] {
        assert!(stdout.lines().any(|l| l.contains(item)), "{item} missing: {stdout}");
    }
    for tried in ["kernel programs", "uprobe attach", "tracepoint attach"] {
        assert!(stdout.lines().any(|l| l.starts_with("ok") && l.contains(tried)), "{tried}: {stdout}");
    }
    assert!(stdout.ends_with("pytrace can trace here\n"), "{stdout}");
    let build = stdout.lines().find(|l| l.contains("pytrace ") && l.contains("kernel programs:")).unwrap();
    assert!(build.contains("bpf-linker 0.13.0") && build.contains("nightly"), "the toolchain, for reports: {build}");
}

#[test]
fn doctor_fails_clearly_without_the_privileges_uprobes_need() {
    let output = pytrace_with_capabilities(WITHOUT_SYS_ADMIN, &["doctor"]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("FAIL") && l.contains("missing CAP_SYS_ADMIN")), "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("FAIL") && l.contains("uprobe attach")), "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("ok") && l.contains("kernel programs")), "BPF itself works: {stdout}");
}

#[test]
fn doctor_tells_what_it_finds_in_a_process() {
    let mut python = ProcessGuard(
        Command::new(venv_python())
            .args(["-c", "import ssl, sys; sys.stdout.write('READY\\n'); sys.stdout.flush(); sys.stdin.read()"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // The interpreter has imported ssl once it says READY.
    let mut stdout = python.0.stdout.take().unwrap();
    let mut ready = [0; 6];
    std::io::Read::read_exact(&mut stdout, &mut ready).unwrap();
    let pid = python.0.id().to_string();
    let output = Command::new(pytrace_bin()).args(["doctor", "--pid", &pid]).output().unwrap();
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.lines().any(|l| l.contains("interpreter") && l.contains("CPython 3.")), "{stdout}");
    assert!(stdout.lines().any(|l| l.contains("Python context") && l.contains("layout verified")), "{stdout}");
    assert!(stdout.lines().any(|l| l.contains("TLS") && l.contains("OpenSSL in") && l.contains("libssl")), "{stdout}");

    // attach with the same capabilities doctor flagged: a clear error, not a silent empty trace.
    let output = pytrace_with_capabilities(WITHOUT_SYS_ADMIN, &["attach", "--pid", &pid, "--duration", "1"]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("but no probe could be attached to it"), "{stderr}");
    assert!(stderr.contains("pytrace doctor"), "{stderr}");
}
