//! A request's calls are its children: web services whose handlers call the
//! local LLM provider, traced with `pytrace attach` while a load of
//! concurrent requests hits them. Every request names itself (`?id=N`) and
//! its handler passes the name on to each LLM call (`?request=N`), so each
//! call's span must be the child of exactly the request that caused it, in
//! that request's trace — the caller's, when it sent a `traceparent`.
//!
//! asyncio: FastAPI on uvicorn (asyncio's loop and uvloop, streaming SSE
//! relays included), aiohttp's server, `asyncio.start_server`; threads:
//! Flask under gunicorn (sync and gthread workers, forked) and on its
//! development server, the standard library's `ThreadingHTTPServer` — the
//! standard library's servers on every interpreter here.

#![expect(clippy::unwrap_used, reason = "a test fails loudly on an unexpected value")]

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use integration_tests::{
    Client, Interpreter, ProcessGuard, Server, Setting, Trace, Tracer, interpreter, python_dir, venv_python,
};

/// A port nothing listens on yet.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// What the load driver reports of one request.
struct Sent {
    path: String,
    trace_id: Option<String>,
}

/// Sends `count` requests at once to `port`, cycling through `paths`.
fn load(port: u16, paths: &str, count: usize, traceparent: bool) -> HashMap<String, Sent> {
    let mut command = Command::new(venv_python());
    command.arg(python_dir().join("web_load.py")).args([
        "--base",
        &format!("http://127.0.0.1:{port}"),
        "--paths",
        paths,
        "--count",
        &count.to_string(),
    ]);
    if traceparent {
        command.arg("--traceparent");
    }
    let output = command.output().unwrap();
    assert!(output.status.success(), "load failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .map(|v| {
            let sent = Sent {
                path: v["path"].as_str().unwrap().to_owned(),
                trace_id: v["trace_id"].as_str().map(str::to_owned),
            };
            (v["id"].as_str().unwrap().to_owned(), sent)
        })
        .collect()
}

/// The `name=value` query parameter of a span's URL.
fn query_value(span: &Value, name: &str) -> Option<String> {
    let a = &span["attributes"];
    let query = a["url.query"].as_str().or_else(|| a["url.full"].as_str()?.split_once('?').map(|(_, q)| q))?;
    query.split('&').find_map(|pair| pair.strip_prefix(&format!("{name}="))).map(str::to_owned)
}

/// Checks that each request is one server span and each of its LLM calls
/// (`calls(path)` of them) a child of it, in its trace; returns the server
/// spans by request id.
fn check_nesting<'a>(
    label: &str,
    trace: &'a Trace,
    sent: &HashMap<String, Sent>,
    calls: impl Fn(&str) -> usize,
) -> HashMap<String, &'a Value> {
    let servers: HashMap<String, &Value> = trace
        .spans
        .iter()
        .filter(|s| s["kind"] == "server")
        .map(|s| (query_value(s, "id").unwrap_or_else(|| panic!("{label}: a server span without id: {s}")), s))
        .collect();
    assert_eq!(servers.len(), sent.len(), "{label}: one server span per request: {}", trace.json_text);
    for (id, request) in sent {
        let server = servers[id];
        if let Some(trace_id) = &request.trace_id {
            assert_eq!(server["trace_id"], trace_id.as_str(), "{label}: request {id} joins the caller's trace");
        }
        assert_eq!(server["attributes"]["http.route"], request.path.split('?').next().unwrap(), "{label}");
        let children: Vec<&Value> = trace
            .spans
            .iter()
            .filter(|s| s["kind"] == "client" && query_value(s, "request").as_deref() == Some(id.as_str()))
            .collect();
        assert_eq!(children.len(), calls(&request.path), "{label}: request {id}'s calls: {}", trace.json_text);
        for child in children {
            assert_eq!(child["parent_span_id"], server["span_id"], "{label}: request {id}'s call {child}");
            assert_eq!(child["trace_id"], server["trace_id"], "{label}: request {id}'s call");
            assert_eq!(child["attributes"]["gen_ai.request.model"], "gpt-4o-mini", "{label}");
            assert_eq!(
                child["attributes"]["pytrace.server.route"],
                format!("GET {}", request.path.split('?').next().unwrap()),
                "{label}"
            );
        }
    }
    servers
}

fn calls_per_path(path: &str) -> usize {
    if path.contains("calls=2") { 2 } else { 1 }
}

/// Runs web_app.py with `python` and `framework`, traces it under a load, returns the trace.
fn trace_service(
    python: &Interpreter,
    framework: &str,
    extra: &[&str],
    paths: &str,
    count: usize,
    traceparent: bool,
    pytrace_args: &[&str],
) -> (Trace, HashMap<String, Sent>) {
    let provider = Server::https();
    let port = free_port().to_string();
    let args = [&["--framework", framework, "--port", port.as_str()], extra].concat();
    let app = Client::start_script_in(python, "web_app.py", &provider, &args);
    let tracer = Tracer::attach(&[app.pid], pytrace_args);
    let sent = load(port.parse().unwrap(), paths, count, traceparent);
    // The last calls (a background task's, 0.3 s after its response) reach pytrace.
    std::thread::sleep(Duration::from_millis(1500));
    let trace = tracer.interrupt();
    app.kill();
    (trace, sent)
}

/// The virtualenv's interpreter (where the frameworks are installed).
fn venv() -> Interpreter {
    Interpreter { label: "venv".into(), python: venv_python(), setting: Setting::Host }
}

#[test]
fn fastapi_on_uvicorn_nests_each_call_under_its_request() {
    for event_loop in ["asyncio", "uvloop"] {
        let label = format!("FastAPI/uvicorn ({event_loop})");
        let paths = "/ask?calls=1,/ask?calls=2,/stream";
        let (trace, sent) =
            trace_service(&venv(), "fastapi", &["--loop", event_loop], paths, 20, event_loop == "uvloop", &[]);
        let servers = check_nesting(&label, &trace, &sent, calls_per_path);
        for (id, server) in &servers {
            // Written by the framework after the handler returned: named after the
            // outermost application frame its calls saw (the SSE relay's generator).
            let handler = if sent[id].path == "/stream" { "stream_async" } else { "fastapi_app.<locals>.ask" };
            assert_eq!(server["attributes"]["code.function.name"], handler, "{label}: request {id}");
        }
        assert_eq!(trace.summary["serving"]["nested"], 27, "{label}: {}", trace.summary);
        // Which endpoint spends the tokens: 14 /ask requests made 21 calls, 6 /stream requests 6.
        let routes = trace.summary["routes"].as_array().unwrap();
        let route =
            |name: &str| routes.iter().find(|r| r["route"] == name).unwrap_or_else(|| panic!("{name}: {routes:?}"));
        for (name, requests, calls) in [("GET /ask", 14, 21), ("GET /stream", 6, 6)] {
            assert_eq!(
                (route(name)["requests"].as_u64(), route(name)["llm_calls"].as_u64()),
                (Some(requests), Some(calls))
            );
            assert!(route(name)["cost"].as_f64().unwrap() > 0.0, "{label}: {name} has a cost");
        }
        assert!(trace.stdout.contains("SERVED ROUTE"), "{label}: the terminal summary's route table");
    }
}

#[test]
fn a_task_that_outlives_its_request_stays_a_root() {
    let (trace, sent) = trace_service(&venv(), "fastapi", &[], "/background", 3, false, &[]);
    assert_eq!(sent.len(), 3);
    let background: Vec<&Value> = trace.spans.iter().filter(|s| s["kind"] == "client").collect();
    assert_eq!(background.len(), 3, "{}", trace.json_text);
    for span in background {
        assert_eq!(span["parent_span_id"], Value::Null, "never a wrong parent: {span}");
        assert_eq!(span["attributes"].get("pytrace.server.route"), None);
    }
}

#[test]
fn aiohttp_server_nests_each_call_under_its_request() {
    let (trace, sent) = trace_service(&venv(), "aiohttp", &[], "/ask?calls=1,/ask?calls=2", 12, true, &[]);
    check_nesting("aiohttp", &trace, &sent, calls_per_path);
}

#[test]
fn flask_s_development_server_nests_each_call_under_its_request() {
    let (trace, sent) = trace_service(&venv(), "flask", &[], "/ask?calls=1,/ask?calls=2", 8, false, &[]);
    for server in check_nesting("Flask (werkzeug)", &trace, &sent, calls_per_path).values() {
        assert_eq!(server["attributes"]["code.function.name"], "flask_app.<locals>.ask");
    }
}

/// A traced function between the request and its calls: server → function → client.
#[test]
fn a_traced_function_sits_between_the_request_and_its_calls() {
    for (framework, traced) in [("fastapi", "ask_async"), ("threads", "ask_with_urllib")] {
        let args = ["--trace-function", &format!("web_app:{traced}")];
        let (trace, sent) = trace_service(&venv(), framework, &[], "/ask?calls=1", 4, false, &args);
        let servers: HashMap<String, &Value> =
            trace.spans.iter().filter(|s| s["kind"] == "server").map(|s| (query_value(s, "id").unwrap(), s)).collect();
        assert_eq!(servers.len(), sent.len(), "{framework}: {}", trace.json_text);
        for call in trace.spans.iter().filter(|s| s["kind"] == "client") {
            let id = query_value(call, "request").unwrap();
            let function = trace.spans.iter().find(|s| s["span_id"] == call["parent_span_id"]).unwrap();
            assert_eq!(function["kind"], "internal", "{framework}: {call}");
            assert_eq!(function["name"], traced, "{framework}");
            assert_eq!(function["parent_span_id"], servers[&id]["span_id"], "{framework}: request {id}'s function");
            assert_eq!(call["trace_id"], servers[&id]["trace_id"], "{framework}");
            assert_eq!(function["trace_id"], servers[&id]["trace_id"], "{framework}");
        }
    }
}

/// Flask under gunicorn: a master and two forked workers, all traced.
#[test]
fn flask_under_gunicorn_nests_each_call_under_its_request() {
    for worker in ["sync", "gthread"] {
        let provider = Server::https();
        let port = free_port();
        let gunicorn = venv_python().with_file_name("gunicorn");
        let master = ProcessGuard(
            Command::new(gunicorn)
                .args(["-w", "2", "-k", worker, "--threads", "4", "-b", &format!("127.0.0.1:{port}")])
                .arg("--chdir")
                .arg(python_dir())
                .arg("web_app:flask_app()")
                .env("LLM_BASE", provider.base())
                .env("LLM_CA", provider.ca.as_ref().unwrap())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let pids = gunicorn_processes(master.0.id(), port);
        let tracer = Tracer::attach(&pids, &[]);
        let sent = load(port, "/ask?calls=1,/ask?calls=2", 12, true);
        std::thread::sleep(Duration::from_millis(500));
        let trace = tracer.interrupt();
        check_nesting(&format!("gunicorn {worker}"), &trace, &sent, calls_per_path);
        for span in trace.spans.iter().filter(|s| s["kind"] == "server") {
            assert_eq!(span["attributes"]["code.function.name"], "flask_app.<locals>.ask", "gunicorn {worker}");
        }
    }
}

/// The master and its workers, once the port accepts connections.
fn gunicorn_processes(master: u32, port: u16) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let children = std::fs::read_to_string(format!("/proc/{master}/task/{master}/children")).unwrap_or_default();
        let workers: Vec<u32> = children.split_whitespace().filter_map(|p| p.parse().ok()).collect();
        if workers.len() == 2 && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            // The workers have imported the application once they serve.
            std::thread::sleep(Duration::from_millis(500));
            return [vec![master], workers].concat();
        }
        assert!(Instant::now() < deadline, "gunicorn did not start its workers");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The standard library's servers — threads and asyncio — on every interpreter.
fn check_standard_library_servers(label: &str) {
    let python = interpreter(label);
    for framework in ["threads", "asyncio"] {
        let (trace, sent) = trace_service(&python, framework, &[], "/ask?calls=1,/ask?calls=2", 6, true, &[]);
        let servers = check_nesting(&format!("{label} {framework}"), &trace, &sent, calls_per_path);
        if framework == "threads" {
            let handler = if python.minor() >= 11 { "serve_threads.<locals>.Handler.do_GET" } else { "do_GET" };
            for server in servers.values() {
                assert_eq!(
                    server["attributes"]["code.function.name"], handler,
                    "{label}: the handler wrote the response"
                );
            }
        }
    }
}

integration_tests::test_each_interpreter!(check_standard_library_servers);
