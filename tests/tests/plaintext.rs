//! Plain HTTP (no TLS) seen through the syscall tracepoints: the same
//! exchanges as over TLS with `http://` URLs and the peer's address; files
//! and pipes never captured; IPv6; TLS and plaintext in one process without
//! duplicates; sockets opened before attach; the server side of a connection.

#![expect(clippy::unwrap_used, reason = "a test fails loudly on an unexpected value")]

use std::process::{Command, Stdio};
use std::time::Duration;

use integration_tests::{Client, Done, ProcessGuard, Server, Trace, Tracer, python_dir, venv_python};
use serde_json::Value;

const PLAN: &str = "GET /json,POST /echo,GET /chunked,GET /encoded?encoding=gzip,GET /status/404,GET /status/204,\
                    HEAD /json,GET /ndjson?lines=5,GET /stream?events=3,GET /json";
const ASYNC_PLAN: &str = "GET /json,POST /echo,GET /chunked,GET /status/404,GET /ndjson?lines=5";

fn trace(server: &Server, args: &[&str]) -> (Vec<Done>, Trace, u32) {
    let mut client = Client::start(&venv_python(), server, args);
    let pid = client.pid;
    let tracer = Tracer::attach(&[pid], &[]);
    client.go();
    let mut done = client.finish();
    done.sort();
    (done, tracer.wait(), pid)
}

fn check_plain_span(span: &Value, server: &Server) {
    let a = &span["attributes"];
    let url = a["url.full"].as_str().unwrap();
    assert!(url.starts_with(&format!("http://{}:{}/", server.host, server.port)), "{url}");
    assert_eq!(a["server.port"].as_u64(), Some(u64::from(server.port)));
    assert_eq!(a["network.peer.port"].as_u64(), Some(u64::from(server.port)));
    assert_eq!(a["network.transport"], "tcp");
    assert_eq!(span["kind"], "client");
    assert!(a.get("pytrace.incomplete").is_none(), "{span}");
}

fn check_library(lib: &str, plan: &str) {
    let server = Server::plain();
    let (done, trace, _) = trace(&server, &["--lib", lib, "--paths", plan]);
    assert!(trace.success, "{}", trace.stderr);
    assert_eq!(trace.done(), done, "{lib}: {}", trace.stderr);
    for span in &trace.spans {
        check_plain_span(span, &server);
        assert_eq!(span["attributes"]["network.peer.address"], "127.0.0.1");
        assert_eq!(span["attributes"]["network.type"], "ipv4");
    }
    let ndjson =
        trace.spans.iter().find(|s| s["attributes"]["url.full"].as_str().unwrap().contains("/ndjson")).unwrap();
    assert!(
        ndjson["attributes"]["http.response.body.size"].as_i64().unwrap() > 5 * 20,
        "the NDJSON stream is read whole"
    );
}

#[test]
fn requests_plain() {
    check_library("requests", PLAN);
}

#[test]
fn urllib_plain() {
    check_library("urllib", PLAN);
}

#[test]
fn http_client_plain() {
    check_library("http.client", PLAN);
}

#[test]
fn httpx_sync_plain() {
    check_library("httpx", PLAN);
}

#[test]
fn httpx_async_plain() {
    check_library("httpx-async", ASYNC_PLAN);
}

#[test]
fn aiohttp_plain() {
    check_library("aiohttp", ASYNC_PLAN);
}

#[test]
fn a_long_lived_keep_alive_connection_opened_before_attach() {
    let server = Server::plain();
    // --prime makes a request before READY, so the connection the plan then
    // reuses was opened before pytrace attached: it is found through /proc.
    let (done, trace, _) = trace(
        &server,
        &[
            "--lib",
            "http.client",
            "--prime",
            "--paths",
            "GET /json,GET /slow?ms=50",
            "--repeat",
            "10",
            "--rounds",
            "3",
            "--interval",
            "0.3",
        ],
    );
    assert_eq!(done.len(), 60);
    assert_eq!(trace.done(), done, "{}", trace.stderr);
    for span in &trace.spans {
        check_plain_span(span, &server);
    }
}

#[test]
fn ipv6_loopback() {
    let server = Server::plain_ipv6();
    let (done, trace, _) = trace(&server, &["--lib", "requests", "--paths", "GET /json,POST /echo"]);
    assert_eq!(trace.done(), done);
    for span in &trace.spans {
        check_plain_span(span, &server);
        assert_eq!(span["attributes"]["network.peer.address"], "::1");
        assert_eq!(span["attributes"]["network.type"], "ipv6");
        assert_eq!(span["attributes"]["server.address"], "::1");
    }
}

#[test]
fn tls_and_plaintext_in_one_process_give_one_span_per_request() {
    let tls = Server::https();
    let plain = Server::plain();
    for lib in ["requests", "httpx-async"] {
        let (done, trace, _) =
            trace(&tls, &["--lib", lib, "--paths", "GET /json,POST /echo", "--also-base", &plain.base()]);
        assert_eq!(done.len(), 4);
        assert_eq!(trace.spans.len(), 4, "{lib}: no duplicates: {}", trace.json_text);
        let schemes: Vec<&str> = trace
            .spans
            .iter()
            .map(|s| s["attributes"]["url.full"].as_str().unwrap().split(':').next().unwrap())
            .collect();
        assert_eq!(schemes.iter().filter(|s| **s == "https").count(), 2, "{lib}: {schemes:?}");
        assert_eq!(schemes.iter().filter(|s| **s == "http").count(), 2, "{lib}: {schemes:?}");
        for span in trace.spans.iter().filter(|s| s["attributes"]["url.full"].as_str().unwrap().starts_with("https")) {
            assert_eq!(span["attributes"]["pytrace.tls.server_name"], "localhost", "SNI");
            if lib == "requests" {
                // Sync clients write to the socket inside SSL_write: the peer is known.
                assert_eq!(span["attributes"]["network.peer.port"].as_u64(), Some(u64::from(tls.port)));
            } else {
                // asyncio feeds TLS through a MemoryBIO: no socket to tie it to, no guess.
                assert!(span["attributes"].get("network.peer.port").is_none(), "{span}");
            }
        }
    }
}

#[test]
fn file_and_pipe_io_is_never_captured() {
    // HTTP-looking bytes through a file and a pipe: if either were captured,
    // spans would appear.
    let script = r#"
import os, sys, tempfile, time
sys.stdin.readline()
request = b"GET /not-a-socket HTTP/1.1\r\nHost: file\r\n\r\n"
response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
for _ in range(20):
    with tempfile.TemporaryFile() as f:
        f.write(request); f.write(response); f.seek(0); f.read()
    r, w = os.pipe()
    os.write(w, request); os.read(r, 4096); os.write(w, response); os.read(r, 4096)
    os.close(r); os.close(w)
    time.sleep(0.01)
"#;
    let mut child = Command::new(venv_python()).args(["-c", script]).stdin(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let pid = child.id();
    let process = ProcessGuard(child);
    std::thread::sleep(Duration::from_millis(300));
    let tracer = Tracer::attach(&[pid], &[]);
    std::io::Write::write_all(&mut stdin, b"go\n").unwrap();
    let trace = tracer.wait();
    drop(process);
    assert!(trace.success, "{}", trace.stderr);
    assert!(trace.spans.is_empty(), "{}", trace.json_text);
    assert_eq!(trace.summary["events_received"].as_u64(), Some(0), "no bytes of files or pipes reach user space");
    assert!(trace.summary["tracepoint_hits"].as_u64().unwrap() > 100, "the syscalls were seen and skipped");
}

#[test]
fn the_server_side_of_a_connection_gives_server_spans() {
    // Trace the plain-HTTP server itself while a client calls it.
    let dir = integration_tests::scratch_dir("served");
    let mut server = Command::new(venv_python())
        .arg(python_dir().join("server.py"))
        .args(["--plain", "--cert-dir"])
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(server.stdout.take().unwrap()), &mut ready).unwrap();
    let port: u16 = ready.split_whitespace().nth(1).unwrap().parse().unwrap();
    let server_pid = server.id();
    let server = ProcessGuard(server);
    let tracer = Tracer::attach(&[server_pid], &[]);
    let client = Command::new(venv_python())
        .arg(python_dir().join("client.py"))
        .args([
            "--lib",
            "requests",
            "--base",
            &format!("http://127.0.0.1:{port}"),
            "--paths",
            "GET /json,POST /echo,GET /status/500",
        ])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(client.success());
    std::thread::sleep(Duration::from_millis(300));
    let trace = tracer.interrupt();
    drop(server);
    let mut seen: Vec<(String, i64)> = trace
        .spans
        .iter()
        .map(|s| {
            assert_eq!(s["kind"], "server", "{s}");
            assert_eq!(s["attributes"]["url.scheme"], "http");
            assert_eq!(s["attributes"]["client.address"], "127.0.0.1");
            assert_eq!(s["attributes"]["server.port"].as_u64(), Some(u64::from(port)));
            (
                s["attributes"]["url.path"].as_str().unwrap().to_owned(),
                s["attributes"]["http.response.status_code"].as_i64().unwrap(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(seen, [("/echo".to_owned(), 200), ("/json".to_owned(), 200), ("/status/500".to_owned(), 500)]);
    let failed = trace.spans.iter().find(|s| s["attributes"]["url.path"] == "/status/500").unwrap();
    assert_eq!(failed["status"]["code"], "error", "5xx is a server error");
}
