//! pytrace must never disturb the process it traces. A Python program
//! doing HTTPS about 50 times a second, checking every answer, is attached
//! to and detached from over and over (`PYTRACE_ATTACH_CYCLES`, 20 by
//! default; 1,000 for the full measure), then pytrace is killed with
//! SIGKILL mid-run. After every detach — and after the kill — the program's
//! machine code is byte for byte what it was before the first attach (a
//! uprobe is a breakpoint written into it, so a probe left behind shows),
//! and every answer it got was right.

#![expect(clippy::unwrap_used, reason = "a test fails loudly on an unexpected value")]

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash as _, Hasher as _};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use integration_tests::{ProcessGuard, Server, Tracer, line_reader, venv_python};

/// A fingerprint of every executable file mapping of `pid`, as its memory
/// holds it now (where uprobes write their breakpoints).
fn code_fingerprint(pid: u32) -> u64 {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mut memory = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    let mut hasher = DefaultHasher::new();
    for line in maps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 6 || !fields[1].contains('x') || !fields[5].starts_with('/') {
            continue;
        }
        let (start, end) = fields[0].split_once('-').unwrap();
        let (start, end) = (u64::from_str_radix(start, 16).unwrap(), u64::from_str_radix(end, 16).unwrap());
        let mut bytes = vec![0; (end - start) as usize];
        memory.seek(SeekFrom::Start(start)).unwrap();
        if memory.read_exact(&mut bytes).is_ok() {
            (fields[5], start).hash(&mut hasher);
            bytes.hash(&mut hasher);
        }
    }
    hasher.finish()
}

/// Waits up to 5 s for the fingerprint to come back to `original`.
fn code_restored(pid: u32, original: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if code_fingerprint(pid) == original {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn attach_detach_cycles_and_a_sigkill_leave_the_program_untouched_and_its_answers_right() {
    let cycles: usize = std::env::var("PYTRACE_ATTACH_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let server = Server::https();
    let python = venv_python();
    let mut child = Command::new(&python)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/python/steady_client.py"))
        .args(["--base", &server.base(), "--ca", server.ca.as_ref().unwrap().to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let lines = line_reader(child.stdout.take().unwrap());
    let client = ProcessGuard(child);
    let pid = client.0.id();
    assert!(lines.recv_timeout(Duration::from_secs(30)).unwrap().starts_with("READY"));
    std::thread::sleep(Duration::from_millis(500));
    let original = code_fingerprint(pid);

    let mut spans = 0;
    for cycle in 0..cycles {
        let tracer = Tracer::attach(&[pid], &[]);
        if cycle == 0 {
            assert_ne!(code_fingerprint(pid), original, "attached probes show in the code (the check can fail)");
        }
        std::thread::sleep(Duration::from_millis(100));
        let trace = tracer.interrupt();
        assert!(trace.success, "cycle {cycle}: {}", trace.stderr);
        spans += trace.spans.len();
        assert!(code_restored(pid, original), "cycle {cycle}: a probe was left in the program");
    }
    assert!(spans > 0, "the cycles traced the program's calls");

    let tracer = Tracer::attach(&[pid], &[]);
    std::thread::sleep(Duration::from_millis(500));
    let status = tracer.kill();
    assert!(!status.success());
    assert!(code_restored(pid, original), "pytrace killed with SIGKILL left a probe in the program");

    std::thread::sleep(Duration::from_millis(300));
    writeln!(stdin, "stop").unwrap();
    let counts = lines.recv_timeout(Duration::from_secs(30)).unwrap();
    let counts: serde_json::Value = serde_json::from_str(&counts).unwrap();
    assert_eq!(counts["wrong"], 0, "{counts}");
    assert_eq!(counts["errors"], 0, "{counts}");
    assert!(counts["requests"].as_u64().unwrap() > 40 * cycles as u64 / 10, "{counts}");
}
