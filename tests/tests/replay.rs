//! The benchmarks' tools: `pytrace attach --record FILE` keeps a session's
//! kernel events, and `pytrace replay FILE` runs them through the user-space
//! pipeline again, without the kernel — into the same spans, or as many
//! simultaneous copies of a connection.

#![expect(clippy::unwrap_used, reason = "a test fails loudly on an unexpected value")]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use integration_tests::{Client, Server, Tracer, pytrace_bin, run_pytrace, scratch_dir, venv_python};
use serde_json::Value;

fn replay(recording: &Path, args: &[&str]) -> Value {
    let output = Command::new(pytrace_bin()).arg("replay").arg(recording).args(args).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn a_recorded_session_replays_into_the_same_spans() {
    let server = Server::https();
    let recording = scratch_dir("replay").join("session.rec");
    let paths = "GET /json,POST /echo?size=2000,GET /status/404";
    let mut client = Client::start(&venv_python(), &server, &["--lib", "requests", "--paths", paths, "--repeat", "4"]);
    let tracer = Tracer::attach(&[client.pid], &["--record", recording.to_str().unwrap()]);
    client.go();
    client.finish();
    let trace = tracer.wait();
    assert!(trace.success, "{}", trace.stderr);
    let live = trace.spans.len() as u64;
    assert_eq!(live, 12, "{}", trace.json_text);
    let mode = std::fs::metadata(&recording).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "a recording holds plaintext: root only");

    let figures = replay(&recording, &["--repeat", "3"]);
    assert_eq!(figures["spans"].as_u64(), Some(3 * live), "{figures}");
    assert_eq!(figures["events"].as_u64(), Some(3 * trace.summary["events_received"].as_u64().unwrap()));
    assert!(figures["events_per_second"].as_f64().unwrap() > 0.0);

    let open = replay(&recording, &["--connections", "500"]);
    assert_eq!(open["connections_tracked"].as_u64(), Some(500), "{open}");
    assert_eq!(open["spans_answered"].as_u64(), Some(500), "each copy's first request is answered: {open}");
}

#[test]
fn replay_refuses_a_file_that_is_not_a_recording() {
    let path = scratch_dir("replay-bad").join("not-a-recording");
    std::fs::write(&path, "GET / HTTP/1.1\r\n\r\n").unwrap();
    let (code, stderr) = run_pytrace(&["replay", path.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("not a pytrace recording"), "{stderr}");
    let (code, stderr) = run_pytrace(&["replay", "/nonexistent/session.rec"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("cannot read the recording"), "{stderr}");
}
