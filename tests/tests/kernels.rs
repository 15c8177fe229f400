//! The kernel matrix: Debian's current kernels (bookworm's 6.1, trixie's
//! 6.12, trixie-backports', sid's; `cargo xtask fixtures` fetches them)
//! booted in QEMU, each running `pytrace doctor --programs` and a real trace
//! of Debian's CPython making HTTPS and plain-HTTP requests and OpenAI-style
//! chat calls to local servers — checked as a user would: every program
//! loads within its budgets, every call is a span with its status, model,
//! tokens and the Python function that made it. Bullseye's 5.10, below the
//! minimum, must be refused in one line. The host's own kernel is checked
//! by `doctor_programs_keep_within_their_budgets_here` below.
//!
//! The guest (tests/fixtures/kernel_matrix) is one uncompressed initramfs:
//! no disk, no modules; TCG, since this host's KVM cannot run guests.

#![expect(clippy::unwrap_used, reason = "a test fails loudly on an unexpected value")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use integration_tests::{python_dir, pytrace_bin, scratch_dir, venv_python};
use serde_json::Value;

/// Longest a guest may take, boot to power-off (about 15 s here).
const GUEST_TIMEOUT_SECONDS: &str = "300";

/// A kernel of the matrix, from the manifest `cargo xtask fixtures` writes.
struct Kernel {
    release: String,
    vmlinuz: PathBuf,
}

fn kernel(suite: &str) -> Kernel {
    let manifest = std::env::var("PYTRACE_KERNEL_MATRIX")
        .expect("PYTRACE_KERNEL_MATRIX is unset: run these tests with `cargo xtask test`");
    let text = std::fs::read_to_string(&manifest).unwrap();
    text.lines()
        .find_map(|line| {
            let mut fields = line.split(' ');
            if fields.next()? != suite {
                return None;
            }
            Some(Kernel { release: fields.next()?.into(), vmlinuz: fields.next()?.into() })
        })
        .unwrap_or_else(|| panic!("no {suite} kernel in {manifest}: the mirror has none, or it could not be fetched"))
}

/// The guest's initramfs, built once for all tests of this file.
fn initramfs() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = scratch_dir("kernel-matrix");
        let certs = dir.join("certs");
        let made = Command::new(venv_python())
            .arg("-c")
            .arg("import sys; sys.path.insert(0, sys.argv[1]); import server; server.make_certificates(sys.argv[2])")
            .arg(python_dir())
            .arg(&certs)
            .status()
            .unwrap();
        assert!(made.success(), "certificates");
        let output = dir.join("initramfs.cpio");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/kernel_matrix/make_initramfs.sh");
        let built =
            Command::new(script).arg(pytrace_bin()).arg(&certs).arg(dir.join("stage")).arg(&output).status().unwrap();
        assert!(built.success(), "the guest's initramfs");
        output
    })
}

/// What a guest printed, by section (`@@ NAME rest`).
struct Guest {
    console: String,
}

impl Guest {
    fn boot(kernel: &Kernel) -> Self {
        let output = Command::new("timeout")
            .args([
                GUEST_TIMEOUT_SECONDS,
                "qemu-system-x86_64",
                "-accel",
                "tcg",
                "-cpu",
                "max",
                "-smp",
                "1",
                "-m",
                "1G",
            ])
            .args(["-nographic", "-no-reboot", "-kernel"])
            .arg(&kernel.vmlinuz)
            .arg("-initrd")
            .arg(initramfs())
            .args(["-append", "console=ttyS0 panic=-1 quiet"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let console = String::from_utf8_lossy(&output.stdout).replace('\r', "");
        assert!(console.contains("@@ end"), "the guest did not run to its end ({:?}):\n{console}", output.status);
        Self { console }
    }

    /// The value on the `@@ name` line.
    fn value(&self, name: &str) -> &str {
        let marker = format!("@@ {name} ");
        self.console.lines().find_map(|line| line.split_once(&marker).map(|(_, v)| v.trim())).unwrap_or_default()
    }

    /// The lines between `@@ name` and the next `@@` line.
    fn section(&self, name: &str) -> Vec<&str> {
        let marker = format!("@@ {name}");
        self.console
            .lines()
            .skip_while(|line| !line.ends_with(&marker))
            .skip(1)
            .take_while(|line| !line.starts_with("@@ "))
            .collect()
    }

    fn spans(&self) -> Vec<Value> {
        self.section("spans")
            .into_iter()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|record| record.get("attributes").is_some())
            .collect()
    }
}

/// The rows of doctor's budget table: (program, verdict, whole row).
fn budget_rows<'a>(doctor: &[&'a str]) -> Vec<(&'a str, &'a str, &'a str)> {
    doctor
        .iter()
        .skip_while(|line| !line.starts_with("program "))
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .map(|row| {
            let fields: Vec<&str> = row.split_whitespace().collect();
            (fields[0], fields.get(3).copied().unwrap_or_default(), *row)
        })
        .collect()
}

fn assert_programs_load_within_budgets(doctor: &[&str], context: &str) {
    let text = doctor.join("\n");
    assert!(doctor.iter().any(|l| l.starts_with("ok") && l.contains("kernel programs")), "{context}:\n{text}");
    let rows = budget_rows(doctor);
    assert!(rows.len() >= 35, "every program has a row ({context}):\n{text}");
    for (program, verdict, row) in &rows {
        assert_eq!(*verdict, "ok", "{program} over its budget ({context}): {row}");
    }
    for program in ["ssl_write_ex", "ssl_call_return", "sys_enter_write", "sys_exit_iovec_data", "py_resume"] {
        assert!(rows.iter().any(|(name, ..)| name == &program), "{program} ({context}):\n{text}");
    }
}

fn attribute<'a>(span: &'a Value, name: &str) -> &'a Value {
    &span["attributes"][name]
}

/// Boots `suite`'s kernel: every program loads within its budgets, and a
/// real trace yields a span per call the client made.
fn traces_on(suite: &str) {
    let kernel = kernel(suite);
    let guest = Guest::boot(&kernel);
    let context = format!("{suite} {}", kernel.release);
    assert_eq!(guest.value("kernel"), kernel.release);
    let doctor = guest.section("doctor");
    assert_eq!(guest.value("doctor-exit"), "0", "{context}:\n{}", doctor.join("\n"));
    assert_programs_load_within_budgets(&doctor, &context);
    println!("{context}:\n{}", doctor.join("\n"));

    assert_eq!(guest.value("run-exit"), "0", "{context}:\n{}", guest.console);
    let spans = guest.spans();
    let find = |what: &str, matches: &dyn Fn(&Value) -> bool| {
        spans.iter().find(|span| matches(span)).unwrap_or_else(|| panic!("{context}: no span for {what} in {spans:#?}"))
    };
    let url = |span: &Value| attribute(span, "url.full").as_str().unwrap_or_default().to_owned();
    let get = find("GET https …/json", &|s| url(s) == "https://localhost:8443/json?n=5");
    let post = find("POST https …/echo", &|s| url(s) == "https://localhost:8443/echo");
    let plain = find("GET http …/json", &|s| url(s) == "http://127.0.0.1:8080/json?n=5");
    for span in [get, post, plain] {
        assert_eq!(attribute(span, "http.response.status_code"), 200, "{context}: {span}");
        assert_eq!(attribute(span, "code.function.name"), "call", "the Python caller ({context}): {span}");
        assert_eq!(attribute(span, "code.file.path"), "/t/kernel_matrix_client.py", "{context}: {span}");
    }
    let chat = |stream: bool| {
        find(&format!("chat, stream={stream}"), &|s| {
            attribute(s, "gen_ai.request.model") == "gpt-4o-mini" && attribute(s, "gen_ai.request.stream") == stream
        })
    };
    for span in [chat(false), chat(true)] {
        assert_eq!(attribute(span, "gen_ai.provider.name"), "openai", "{context}: {span}");
        assert_eq!(attribute(span, "gen_ai.usage.input_tokens"), 21, "{context}: {span}");
        assert_eq!(attribute(span, "gen_ai.usage.output_tokens"), 7, "{context}: {span}");
        assert!(attribute(span, "gen_ai.usage.cost").as_f64().is_some_and(|c| c > 0.0), "{context}: {span}");
        let stack = attribute(span, "code.stacktrace").as_str().unwrap_or_default();
        assert!(stack.contains("in ask_model"), "the caller's caller ({context}): {stack}");
    }
    assert!(attribute(chat(true), "gen_ai.response.time_to_first_chunk").as_f64().is_some(), "{context}");
    assert_eq!(spans.len(), 5, "one span per call ({context}): {spans:#?}");
}

#[test]
fn kernel_matrix_bookworm_6_1() {
    traces_on("bookworm");
}

#[test]
fn kernel_matrix_trixie() {
    traces_on("trixie");
}

#[test]
fn kernel_matrix_trixie_backports() {
    traces_on("trixie-backports");
}

#[test]
fn kernel_matrix_sid() {
    traces_on("sid");
}

/// Bullseye's 5.10 has no `bpf_loop`: refused in one line, nothing loaded.
#[test]
fn kernel_matrix_bullseye_is_refused_in_one_line() {
    let kernel = kernel("bullseye");
    let guest = Guest::boot(&kernel);
    let doctor = guest.section("doctor");
    let text = doctor.join("\n");
    assert_eq!(guest.value("doctor-exit"), "1", "{text}");
    let refusals: Vec<&&str> = doctor.iter().filter(|l| l.starts_with("FAIL")).collect();
    assert_eq!(refusals.len(), 1, "one line: {text}");
    let refusal = refusals[0];
    assert!(refusal.contains(&format!("Linux {} is older than 6.1", kernel.release)), "{refusal}");
    assert!(refusal.contains("no bpf_loop (5.17)"), "names what it lacks: {refusal}");
    // Item names start at the 7th column (`ok    kernel programs …`).
    assert!(
        !doctor.iter().any(|l| l.get(6..).is_some_and(|i| i.starts_with("kernel programs"))),
        "nothing is loaded: {text}"
    );
    assert_ne!(guest.value("run-exit"), "0");
    let run = guest.section("run").join("\n");
    assert!(run.contains("is older than 6.1"), "pytrace run refuses the same way: {run}");
    assert!(!run.contains("Verifier output"), "{run}");
}

/// The host's own kernel: every program loads within its budgets.
#[test]
fn doctor_programs_keep_within_their_budgets_here() {
    let output = Command::new(pytrace_bin()).args(["doctor", "--programs"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_programs_load_within_budgets(&lines, "this host");
    println!("{stdout}");
}
