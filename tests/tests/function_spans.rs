//! `--trace-function` on every interpreter here: each call of a chosen
//! function is an internal span, nested calls and the HTTP requests made
//! inside it are its children in the same trace, coroutines are spans from
//! first resume to return, and a request made outside stays a root.

#![expect(clippy::unwrap_used, reason = "a test fails loudly on an unexpected value")]

use serde_json::Value;

use integration_tests::{Client, Server, Tracer, interpreter};

const PATTERNS: [&str; 5] =
    ["agent_app:Agent.run", "agent_app:Agent.step", "agent_app:fetch_pages", "agent_app:fetch", "*:failing"];

fn check(label: &str) {
    let python = interpreter(label);
    let minor = python.minor();
    let server = Server::https();
    let mut client = Client::start_script_in(&python, "agent_app.py", &server, &[]);
    let args: Vec<&str> = PATTERNS.iter().flat_map(|p| ["--trace-function", p]).collect();
    let tracer = Tracer::attach(&[client.pid], &args);
    client.go();
    client.finish();
    let trace = tracer.wait();
    assert!(trace.stderr.contains("function spans on"), "{label}: {}", trace.stderr);

    let (functions, requests): (Vec<&Value>, Vec<&Value>) = trace.spans.iter().partition(|s| s["kind"] == "internal");
    let name = |qualified: &'static str| if minor >= 11 { qualified } else { qualified.rsplit('.').next().unwrap() };
    let mut names: Vec<&str> = functions.iter().map(|s| s["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    let mut expected = vec![
        name("Agent.run"),
        name("Agent.step"),
        name("Agent.step"),
        "failing",
        "fetch",
        "fetch",
        "fetch",
        "fetch_pages",
    ];
    expected.sort_unstable();
    assert_eq!(names, expected, "{label}: {}", trace.json_text);
    assert_eq!(requests.len(), 7, "{label}: {}", trace.json_text);

    let function = |n: &str| -> Vec<&Value> { functions.iter().filter(|s| s["name"] == n).copied().collect() };
    let request = |case: &str| {
        *requests
            .iter()
            .find(|s| s["attributes"]["url.full"].as_str().unwrap().ends_with(&format!("case={case}")))
            .unwrap()
    };
    let run = function(name("Agent.run"))[0];
    assert_eq!(run["parent_span_id"], Value::Null, "{label}");
    assert_eq!(run["attributes"]["thread.name"], "MainThread", "{label}");
    assert_eq!(run["attributes"]["code.file.path"].as_str().map(|p| p.ends_with("agent_app.py")), Some(true));

    // Each step is run's child, and each step's request is that step's child.
    let steps = function(name("Agent.step"));
    for (number, step) in steps.iter().enumerate() {
        assert_eq!(step["parent_span_id"], run["span_id"], "{label}");
        assert_eq!(step["trace_id"], run["trace_id"], "{label}");
        assert!(within(step, run), "{label}: step {number} is not inside run");
    }
    for case in ["step0", "step1"] {
        let child = request(case);
        let parent = steps.iter().find(|s| s["span_id"] == child["parent_span_id"]);
        let parent = parent.unwrap_or_else(|| panic!("{label}: {case} is not a step's child: {}", trace.json_text));
        assert!(within(child, parent), "{label}: {case} is not inside its step");
        assert_eq!(child["trace_id"], run["trace_id"]);
    }
    assert_ne!(request("step0")["parent_span_id"], request("step1")["parent_span_id"], "{label}: one step per request");

    // Coroutines: each fetch holds its own request; the fetch awaited
    // directly is inside fetch_pages (the gathered ones run as tasks of their own).
    let fetch_pages = function("fetch_pages")[0];
    let fetches = function("fetch");
    for case in ["page0", "page1", "page2"] {
        let child = request(case);
        let fetch = fetches.iter().find(|f| f["span_id"] == child["parent_span_id"]);
        let fetch = fetch.unwrap_or_else(|| panic!("{label}: {case} is not a fetch's child: {}", trace.json_text));
        assert!(within(child, fetch), "{label}: {case} is not inside its fetch");
        assert!(within(fetch, fetch_pages), "{label}: {case}'s fetch is not inside fetch_pages");
        if case == "page0" {
            assert_eq!(fetch["parent_span_id"], fetch_pages["span_id"], "{label}");
        }
    }

    // A function that raised still ends, with its request inside.
    let failing = function("failing")[0];
    assert_eq!(request("failing")["parent_span_id"], failing["span_id"], "{label}");
    if minor <= 10 {
        assert_eq!(failing["status"]["code"], "error", "{label}: {failing}");
    }

    let outside = request("outside");
    assert_eq!(outside["parent_span_id"], Value::Null, "{label}");
    assert_ne!(outside["trace_id"], run["trace_id"], "{label}");
}

/// Whether `inner`'s time span lies within `outer`'s.
fn within(inner: &Value, outer: &Value) -> bool {
    let time = |span: &Value, key: &str| span[key].as_u64().unwrap();
    time(outer, "start_time_unix_nano") <= time(inner, "start_time_unix_nano")
        && time(inner, "end_time_unix_nano") <= time(outer, "end_time_unix_nano")
}

integration_tests::test_each_interpreter!(check);
