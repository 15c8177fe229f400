//! Real Python HTTP clients, already running, traced by `pytrace attach`
//! against a local HTTPS server: every request the program reports making
//! appears as one span with the right method, URL, status and timing, and no
//! secret it sent appears in any output.

#![expect(clippy::unwrap_used, reason = "a test fails loudly on an unexpected value")]

use integration_tests::{Client, Done, Server, Tracer, venv_python};
use serde_json::Value;

const SECRET: &str = "sk-proj-TOPSECRET0123456789";

/// Requests with every framing case the server offers.
const SYNC_PLAN: &str = "GET /json,POST /echo,GET /chunked,GET /encoded?encoding=gzip,GET /encoded?encoding=br,\
                         GET /encoded?encoding=zstd,GET /status/404,GET /status/204,HEAD /json,GET /stream?events=3,GET /close,GET /json";
const ASYNC_PLAN: &str =
    "GET /json,POST /echo,GET /chunked,GET /encoded?encoding=gzip,GET /status/404,GET /stream?events=3";

fn trace_client(lib: &str, plan: &str) -> (Vec<Done>, integration_tests::Trace, u32, Server) {
    let server = Server::https();
    let mut client = Client::start(&venv_python(), &server, &["--lib", lib, "--paths", plan, "--secret", SECRET]);
    let pid = client.pid;
    let tracer = Tracer::attach(&[pid], &[]);
    client.go();
    let mut done = client.finish();
    done.sort();
    let trace = tracer.wait();
    (done, trace, pid, server)
}

fn check_library(lib: &str, plan: &str) {
    let (done, trace, pid, server) = trace_client(lib, plan);
    assert!(trace.success, "pytrace failed: {}", trace.stderr);
    assert!(!done.is_empty());
    assert_eq!(trace.done(), done, "spans differ from what {lib} did; stderr: {}", trace.stderr);
    for span in &trace.spans {
        check_span(span, pid, &server);
    }
    assert_eq!(trace.summary["spans_emitted"].as_u64(), Some(done.len() as u64));
    assert_eq!(trace.summary["events_lost"].as_u64(), Some(0));
    let output = trace.all_output();
    assert!(!output.contains(SECRET), "a secret leaked into pytrace's output");
    assert!(output.contains("key=REDACTED"), "the key query parameter should be shown redacted");
    assert!(trace.stdout.contains(&format!("pid {pid}")), "the pretty view lists spans: {}", trace.stdout);
}

fn check_span(span: &Value, pid: u32, server: &Server) {
    let a = &span["attributes"];
    let url = a["url.full"].as_str().expect("url.full");
    assert!(url.starts_with(&format!("https://localhost:{}/", server.port)), "{url}");
    assert_eq!(a["server.address"], "localhost");
    assert_eq!(a["server.port"].as_u64(), Some(u64::from(server.port)));
    assert_eq!(a["network.protocol.version"], "1.1");
    assert_eq!(span["kind"], "client");
    assert_eq!(span["trace_id"].as_str().map(str::len), Some(32));
    assert_eq!(span["span_id"].as_str().map(str::len), Some(16));
    let (start, end) = (span["start_time_unix_nano"].as_u64().unwrap(), span["end_time_unix_nano"].as_u64().unwrap());
    assert!(start > 1_700_000_000_000_000_000 && end >= start, "{start}..{end}");
    let ttfb = a["pytrace.http.time_to_first_byte"].as_f64().expect("ttfb");
    assert!(ttfb > 0.0 && ttfb * 1e9 <= (end - start) as f64 + 1.0, "ttfb {ttfb} within the span");
    let status = a["http.response.status_code"].as_i64().unwrap();
    let method = a["http.request.method"].as_str().unwrap();
    let response_size = a["http.response.body.size"].as_i64().unwrap();
    if method == "HEAD" || status == 204 {
        assert_eq!(response_size, 0, "{url}");
    } else {
        assert!(response_size > 0, "{url}");
    }
    if method == "POST" {
        assert!(a["http.request.body.size"].as_i64().unwrap() > 100);
    }
    if status >= 400 {
        assert_eq!(a["error.type"], status.to_string());
        assert_eq!(span["status"]["code"], "error");
    } else {
        assert_eq!(span["status"]["code"], "unset");
    }
    assert!(a.get("pytrace.incomplete").is_none(), "complete exchange marked incomplete: {span}");
    let resource = &span["resource"];
    assert_eq!(resource["process.pid"].as_u64(), Some(u64::from(pid)));
    assert_eq!(resource["process.runtime.name"], "cpython");
    assert_eq!(resource["service.name"], "client");
    assert!(resource["process.executable.path"].as_str().unwrap().contains("python"));
}

#[test]
fn urllib() {
    check_library("urllib", SYNC_PLAN);
}

#[test]
fn http_client_keep_alive() {
    check_library("http.client", SYNC_PLAN);
}

#[test]
fn requests() {
    check_library("requests", SYNC_PLAN);
}

#[test]
fn httpx_sync() {
    check_library("httpx", SYNC_PLAN);
}

#[test]
fn httpx_async_concurrent() {
    check_library("httpx-async", ASYNC_PLAN);
}

#[test]
fn aiohttp_concurrent() {
    check_library("aiohttp", ASYNC_PLAN);
}

#[test]
fn openai_sdk() {
    let (done, trace, _, _) = trace_client("openai", "GET /x,GET /x,GET /x");
    assert_eq!(trace.done(), done);
    for span in &trace.spans {
        assert_eq!(span["attributes"]["http.request.method"], "POST");
        assert!(span["attributes"]["url.full"].as_str().unwrap().ends_with("/v1/chat/completions"));
    }
    assert!(!trace.all_output().contains(SECRET));
}

#[test]
fn concurrent_async_requests_overlap_and_each_gets_its_span() {
    let server = Server::https();
    let mut client = Client::start(
        &venv_python(),
        &server,
        &["--lib", "httpx-async", "--paths", "GET /slow?ms=300", "--repeat", "12", "--concurrency", "6"],
    );
    let tracer = Tracer::attach(&[client.pid], &[]);
    client.go();
    let done = client.finish();
    let trace = tracer.wait();
    assert_eq!(done.len(), 12);
    assert_eq!(trace.done(), done);
    let mut intervals: Vec<(u64, u64)> = trace
        .spans
        .iter()
        .map(|s| (s["start_time_unix_nano"].as_u64().unwrap(), s["end_time_unix_nano"].as_u64().unwrap()))
        .collect();
    intervals.sort();
    let overlapping = intervals.windows(2).filter(|w| w[1].0 < w[0].1).count();
    assert!(overlapping >= 5, "6 concurrent connections should overlap: {intervals:?}");
    for (start, end) in intervals {
        assert!(end - start >= 300_000_000, "each span covers the server's 300 ms delay");
    }
}

#[test]
fn ssl_imported_after_attach_is_traced() {
    let server = Server::https();
    let mut client = Client::start(
        &venv_python(),
        &server,
        &["--lib", "urllib", "--paths", "GET /json,POST /echo", "--late-import"],
    );
    let tracer = Tracer::attach(&[client.pid], &[]);
    client.go();
    let done = client.finish();
    let trace = tracer.wait();
    assert!(trace.stderr.contains("has not loaded ssl yet"), "{}", trace.stderr);
    assert_eq!(trace.done(), done);
}

#[test]
fn a_target_killed_mid_stream_yields_an_incomplete_span_and_a_clean_exit() {
    let server = Server::https();
    let mut client = Client::start(
        &venv_python(),
        &server,
        &["--lib", "requests", "--paths", "GET /json,GET /stream?events=100&delay_ms=50"],
    );
    let tracer = Tracer::attach(&[client.pid], &[]);
    client.go();
    client.wait_reports(1);
    std::thread::sleep(std::time::Duration::from_millis(700));
    client.kill();
    let trace = tracer.wait();
    assert!(trace.success, "{}", trace.stderr);
    assert!(trace.stderr.contains("exited"), "{}", trace.stderr);
    assert_eq!(trace.spans.len(), 2, "{:#?}", trace.spans);
    let stream =
        trace.spans.iter().find(|s| s["attributes"]["url.full"].as_str().unwrap().contains("/stream")).unwrap();
    assert_eq!(stream["attributes"]["pytrace.incomplete"], true);
    assert_eq!(stream["attributes"]["http.response.status_code"], 200);
    assert!(stream["attributes"]["http.response.body.size"].as_i64().unwrap() > 0, "events read so far are counted");
    assert_eq!(trace.summary["spans_incomplete"].as_u64(), Some(1));
}

#[test]
fn ctrl_c_flushes_in_flight_exchanges_and_exits_zero() {
    let server = Server::https();
    // A 20-second stream; Ctrl-C comes well inside it, however slow the machine.
    let mut client =
        Client::start(&venv_python(), &server, &["--lib", "httpx", "--paths", "GET /stream?events=400&delay_ms=50"]);
    let tracer = Tracer::attach(&[client.pid], &[]);
    client.go();
    std::thread::sleep(std::time::Duration::from_millis(4000));
    let trace = tracer.interrupt();
    assert!(trace.success, "{}", trace.stderr);
    assert_eq!(trace.spans.len(), 1);
    assert_eq!(
        trace.spans[0]["attributes"]["pytrace.incomplete.reason"],
        "tracing ended before the response completed"
    );
    assert!(trace.stdout.contains("incomplete"), "pretty view marks it: {}", trace.stdout);
    client.kill();
}

#[test]
fn several_processes_in_one_session_get_their_own_resources() {
    let server = Server::https();
    let mut first = Client::start(&venv_python(), &server, &["--lib", "requests", "--paths", "GET /json"]);
    let mut second = Client::start(&venv_python(), &server, &["--lib", "urllib", "--paths", "GET /chunked"]);
    let tracer = Tracer::attach(&[first.pid, second.pid], &[]);
    first.go();
    second.go();
    let (first_pid, second_pid) = (first.pid, second.pid);
    first.finish();
    second.finish();
    let trace = tracer.wait();
    let by_pid =
        |pid: u32| trace.spans.iter().filter(|s| s["resource"]["process.pid"].as_u64() == Some(u64::from(pid))).count();
    assert_eq!((by_pid(first_pid), by_pid(second_pid)), (1, 1), "{}", trace.json_text);
}

#[test]
fn a_request_carrying_traceparent_joins_that_trace() {
    let server = Server::https();
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut client = Client::start(
        &venv_python(),
        &server,
        &["--lib", "httpx", "--paths", "GET /json", "--traceparent", traceparent],
    );
    let tracer = Tracer::attach(&[client.pid], &[]);
    client.go();
    client.finish();
    let trace = tracer.wait();
    assert_eq!(trace.spans.len(), 1);
    assert_eq!(trace.spans[0]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(trace.spans[0]["parent_span_id"], "00f067aa0ba902b7");
}
