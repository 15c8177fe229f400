//! Python context on every interpreter here: each span names the function,
//! file and line that made the request (plain functions, methods, nested
//! functions, a thread pool, asyncio.gather), with the whole stack; an
//! interpreter whose layout pytrace does not know still gets HTTP spans.

#![expect(clippy::unwrap_used, reason = "a test fails loudly on an unexpected value")]

use std::collections::BTreeMap;

use integration_tests::{Client, Interpreter, Server, Trace, Tracer, interpreter, interpreters, python_dir};

/// `# request: <case>` markers in context_app.py → line numbers.
fn marked_lines() -> BTreeMap<String, i64> {
    let source = std::fs::read_to_string(python_dir().join("context_app.py")).unwrap();
    source
        .lines()
        .enumerate()
        .filter_map(|(i, line)| Some((line.split("# request: ").nth(1)?.trim().to_owned(), i as i64 + 1)))
        .collect()
}

fn trace_app(python: &Interpreter) -> (Trace, u32) {
    trace_app_with(python, &[])
}

fn trace_app_with(python: &Interpreter, pytrace_args: &[&str]) -> (Trace, u32) {
    let server = Server::https();
    let mut client = Client::start_script_in(python, "context_app.py", &server, &[]);
    let pid = client.pid;
    let tracer = Tracer::attach(&[pid], pytrace_args);
    client.go();
    client.finish();
    (tracer.wait(), pid)
}

fn check(label: &str) {
    let python = interpreter(label);
    let minor = python.minor();
    let (trace, pid) = trace_app(&python);
    assert!(trace.stderr.contains("Python context on"), "{label}: {}", trace.stderr);
    assert_eq!(trace.spans.len(), 8, "{label}: {}", trace.json_text);
    let lines = marked_lines();
    let qualified = minor >= 11;
    for span in &trace.spans {
        let a = &span["attributes"];
        let case = a["url.full"].as_str().unwrap().split("case=").nth(1).unwrap();
        let (marker, function) = match case {
            "plain" => ("plain", "plain_function"),
            "method" => ("method", if qualified { "Agent.step" } else { "step" }),
            "nested" => ("nested", if qualified { "outer.<locals>.inner" } else { "inner" }),
            c if c.starts_with("thread") => ("thread", "fetch_in_thread"),
            c if c.starts_with("async") => ("async", "fetch_async"),
            other => panic!("unexpected case {other}"),
        };
        assert_eq!(a["code.function.name"], function, "{label} {case}");
        assert_eq!(a["code.line.number"].as_i64(), Some(lines[marker]), "{label} {case}");
        assert!(a["code.file.path"].as_str().unwrap().ends_with("context_app.py"), "{label} {case}");
        let stack = a["code.stacktrace"].as_str().unwrap();
        assert!(stack.starts_with("Traceback (most recent call last):"), "{stack}");
        assert!(stack.contains(&format!("line {}, in", lines[marker])), "{label} {case}: {stack}");
        let thread = a["thread.id"].as_u64().unwrap();
        if marker == "thread" {
            assert_ne!(thread, u64::from(pid), "{label}: pool requests run on worker threads");
            if minor >= 14 {
                // 3.14+ names its threads in the OS (up to 15 bytes): `ThreadPoolExecutor-0_0`.
                assert!(a["thread.name"].as_str().is_some_and(|n| n.starts_with("ThreadPool")), "{label} {case}: {a}");
            } else {
                // Earlier versions leave them unnamed in the OS: no name is better than the process's.
                assert_eq!(a["thread.name"], serde_json::Value::Null, "{label} {case}");
            }
        } else {
            assert_eq!(thread, u64::from(pid), "{label} {case}: the main thread");
            assert_eq!(a["thread.name"], "MainThread", "{label} {case}");
        }
    }
    if qualified {
        let plain =
            trace.spans.iter().find(|s| s["attributes"]["url.full"].as_str().unwrap().ends_with("case=plain")).unwrap();
        let stack = plain["attributes"]["code.stacktrace"].as_str().unwrap();
        assert!(
            stack.contains("in main\n") && stack.contains("in plain_function\n"),
            "outer frames are there: {stack}"
        );
    }
}

integration_tests::test_each_interpreter!(check);

#[test]
fn an_unknown_layout_is_explained_and_http_spans_still_come() {
    let Some(python) = std::fs::read_dir(integration_tests::pyenv_root().join("versions"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("3.7."))
        .map(|dir| dir.join("bin/python3.7"))
    else {
        panic!("pyenv 3.7 (an interpreter without Python-context support) is expected on these machines");
    };
    let server = Server::https();
    let mut client = Client::start(&python, &server, &["--lib", "urllib", "--paths", "GET /json"]);
    let tracer = Tracer::attach(&[client.pid], &["--trace-function", "*:main"]);
    client.go();
    client.finish();
    let trace = tracer.wait();
    assert!(
        trace.stderr.contains("no Python context or function spans: CPython 3.7 is not supported for Python context"),
        "{}",
        trace.stderr
    );
    assert_eq!(trace.spans.len(), 1, "{}", trace.json_text);
    assert!(trace.spans[0]["attributes"].get("code.function.name").is_none());
}

#[test]
fn library_paths_move_the_named_caller_outward() {
    let python = interpreter("pyenv 3.12");
    let app_dir = python_dir().display().to_string();
    let (trace, _) = trace_app_with(&python, &["--library-path", &app_dir]);
    // Every frame is now library code: the innermost one (inside the standard library) is named.
    for span in &trace.spans {
        let file = span["attributes"]["code.file.path"].as_str().unwrap();
        assert!(!file.ends_with("context_app.py"), "{file}");
        assert!(
            span["attributes"]["code.stacktrace"].as_str().unwrap().contains("context_app.py"),
            "the stack still has it"
        );
    }
}

/// A stack seen before reaches pytrace with the next batch rather than at
/// once (user space already knows its code objects): every request from a
/// repeated call site — the last one made just before the process exits
/// included — still names its caller, on each frame layout.
#[test]
fn repeated_call_sites_keep_their_stacks_to_the_last_request() {
    let lines = marked_lines();
    for (label, python) in interpreters().into_iter().filter(|(l, _)| l == "pyenv 3.9" || l == "debian 3.11") {
        let server = Server::https();
        let mut client = Client::start_script(&python, "context_app.py", &server, &["--repeat", "6"]);
        let tracer = Tracer::attach(&[client.pid], &[]);
        client.go();
        client.finish();
        let trace = tracer.wait();
        assert_eq!(trace.spans.len(), 6, "{label}: {}", trace.json_text);
        for span in &trace.spans {
            let a = &span["attributes"];
            assert_eq!(a["code.function.name"], "repeated", "{label}: {}", a["url.full"]);
            assert_eq!(a["code.line.number"].as_i64(), Some(lines["repeat"]), "{label}: {}", a["url.full"]);
        }
    }
}
