//! Capture sizes: bodies spanning many ring-buffer chunks arrive whole; a
//! call larger than the capture limit still yields a correct span, marked as
//! missing bytes and counted as truncated; a process that is not Python but
//! maps libssl is traced too.

#![expect(clippy::unwrap_used, reason = "a test fails loudly on an unexpected value")]

use std::process::{Command, Stdio};
use std::time::Duration;

use integration_tests::{Client, ProcessGuard, Server, Trace, Tracer, venv_python};
use serde_json::Value;

fn span_for<'a>(trace: &'a Trace, path: &str) -> &'a Value {
    trace
        .spans
        .iter()
        .find(|s| s["attributes"]["url.full"].as_str().unwrap().contains(path))
        .unwrap_or_else(|| panic!("no span for {path}: {}", trace.json_text))
}

fn trace_requests(paths: &str, pytrace_args: &[&str]) -> Trace {
    let server = Server::https();
    let mut client = Client::start(&venv_python(), &server, &["--lib", "requests", "--paths", paths]);
    let tracer = Tracer::attach(&[client.pid], pytrace_args);
    client.go();
    client.finish();
    tracer.wait()
}

/// The JSON body client.py sends for `size=N`: `{"message": "hello", "pad": "x…"}`.
fn body_len(size: i64) -> i64 {
    size + r#"{"message": "hello", "pad": ""}"#.len() as i64
}

#[test]
fn large_bodies_span_many_chunks_and_big_requests_are_truncated_not_lost() {
    let trace = trace_requests("POST /echo?size=100000,POST /echo?size=600000,GET /json?n=40000", &[]);
    assert!(trace.success, "{}", trace.stderr);

    let within = &span_for(&trace, "size=100000")["attributes"];
    assert_eq!(within["http.request.body.size"].as_i64(), Some(body_len(100_000)));
    assert!(within.get("pytrace.capture.bytes_missing").is_none(), "100 kB fits the 256 KiB cap");

    let beyond = &span_for(&trace, "size=600000")["attributes"];
    assert_eq!(beyond["http.request.body.size"].as_i64(), Some(body_len(600_000)), "size counts uncaptured bytes");
    assert_eq!(beyond["pytrace.capture.bytes_missing"], true);
    assert_eq!(beyond["http.response.status_code"], 200, "the response still pairs with the request");

    let big_response = &span_for(&trace, "/json?n=40000")["attributes"];
    assert!(big_response["http.response.body.size"].as_i64().unwrap() > 250_000);

    assert!(trace.summary["calls_truncated"].as_u64().unwrap() >= 1);
    // The call's first 256 KiB and last 32 KiB were captured, not the rest.
    assert!(trace.summary["bytes_truncated"].as_u64().unwrap() >= 600_000 - 262_144 - 32_768);
    assert_eq!(trace.summary["events_lost"].as_u64(), Some(0));
}

#[test]
fn capture_limit_is_configurable() {
    let trace = trace_requests("POST /echo?size=5000,POST /echo?size=50000,GET /json", &["--capture-limit", "1024"]);
    // 1 KiB of head and the 32 KiB tail hold all of a 5 kB request: no hole.
    let small = &span_for(&trace, "size=5000")["attributes"];
    assert!(small.get("pytrace.capture.bytes_missing").is_none(), "{small}");
    let post = &span_for(&trace, "size=50000")["attributes"];
    assert_eq!(post["pytrace.capture.bytes_missing"], true);
    assert_eq!(post["http.request.body.size"].as_i64(), Some(body_len(50_000)));
    assert!(span_for(&trace, "/json")["attributes"].get("pytrace.capture.bytes_missing").is_none());
    assert!(trace.summary["bytes_truncated"].as_u64().unwrap() >= 50_000 - 1024 - 32_768);
}

#[test]
fn a_non_python_process_using_libssl_is_traced_with_a_warning() {
    let server = Server::https();
    let ca = server.ca.clone().unwrap();
    // curl keeps the connection alive across its URLs: attach while the first
    // (slow) one is in flight, and the second is seen whole; the first lasts
    // long enough for attaching on a loaded machine.
    let curl = ProcessGuard(
        Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-o", "/dev/null", "--cacert"])
            .arg(&ca)
            .arg(format!("{}/slow?ms=5000", server.base()))
            .arg(format!("{}/json?from=curl", server.base()))
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(800));
    let tracer = Tracer::attach(&[curl.0.id()], &[]);
    let trace = tracer.wait();
    assert!(trace.stderr.contains("does not look like CPython"), "{}", trace.stderr);
    let span = span_for(&trace, "/json?from=curl");
    assert_eq!(span["attributes"]["http.response.status_code"], 200);
    assert!(span["resource"].get("process.runtime.name").is_none());
    drop(curl);
}

#[test]
fn a_small_https_request_costs_at_most_eight_uprobe_hits() {
    // asyncio reads TLS through a MemoryBIO and calls SSL_read_ex again when no
    // data has arrived yet; each such call is a real call of the program (two
    // hits), so aiohttp's figure varies with timing: about 8 on an idle
    // machine, more when the machine is loaded and data arrives in pieces.
    for (lib, bound) in [("requests", 8.0), ("urllib", 8.0), ("httpx", 8.0), ("aiohttp", 12.0)] {
        let server = Server::https();
        let mut client = Client::start(
            &venv_python(),
            &server,
            &["--lib", lib, "--prime", "--paths", "GET /json?n=3", "--repeat", "20"],
        );
        let tracer = Tracer::attach(&[client.pid], &[]);
        client.go();
        client.finish();
        let trace = tracer.wait();
        let hits = trace.summary["uprobe_hits"].as_u64().unwrap() as f64;
        let spans = trace.summary["spans_emitted"].as_u64().unwrap();
        assert_eq!(spans, 20, "{lib}");
        let per_request = hits / spans as f64;
        eprintln!("{lib}: {per_request:.1} uprobe hits per request");
        assert!(per_request <= bound, "{lib}: {per_request} uprobe hits per request");
    }
}

#[test]
fn python_3_10_pays_one_uprobe_hit_per_gil_reacquire_for_context() {
    // Before 3.11, thread states do not record native thread ids, so Python
    // context relies on a PyEval_RestoreThread probe: one more hit each time
    // a thread takes the GIL back after blocking. Measured: about 20 per
    // urllib request (5 for TLS, ~15 GIL re-acquires: resolve, connect,
    // handshake, write, reads, close); the probed instruction is a `push`,
    // the ~1 µs uprobe path.
    let (_, python) = integration_tests::interpreters().into_iter().find(|(l, _)| l == "pyenv 3.10").unwrap();
    let server = Server::https();
    let mut client =
        Client::start(&python, &server, &["--lib", "urllib", "--prime", "--paths", "GET /json?n=3", "--repeat", "20"]);
    let tracer = Tracer::attach(&[client.pid], &[]);
    client.go();
    client.finish();
    let trace = tracer.wait();
    let per_request = trace.summary["uprobe_hits"].as_u64().unwrap() as f64 / 20.0;
    eprintln!("3.10 urllib with Python context: {per_request:.1} uprobe hits per request");
    assert_eq!(trace.summary["spans_emitted"].as_u64(), Some(20));
    assert!(trace.spans.iter().all(|s| s["attributes"].get("code.function.name").is_some()));
    assert!(per_request <= 24.0, "{per_request}");
}
