//! CPython 3.14 and 3.15 where people run them: Debian sid's static,
//! stripped interpreters chroot'ed in mount, PID and UTS namespaces of their
//! own, and in a real podman container (runc, overlayfs). A standard-library
//! LLM client calls the local provider server from a named function, on the
//! main thread and on a named thread: each call must be an LLM span with
//! model and tokens, the function, file (as the target sees it) and line,
//! the thread's name, a function span as its parent, and — in the container
//! — the container's id.

#![expect(clippy::unwrap_used, reason = "a test fails loudly on an unexpected value")]

use serde_json::Value;

use integration_tests::{Client, Interpreter, Server, Setting, Tracer, interpreter, python_dir, sid_in_container};

/// The line of isolated_app.py marked `# request: ask`.
fn request_line() -> i64 {
    let source = std::fs::read_to_string(python_dir().join("isolated_app.py")).unwrap();
    source.lines().position(|line| line.contains("# request: ask")).unwrap() as i64 + 1
}

fn check(python: &Interpreter) {
    let label = &python.label;
    let server = Server::https();
    let mut client = Client::start_script_in(python, "isolated_app.py", &server, &[]);
    let tracer = Tracer::attach(&[client.pid], &["--trace-function", "isolated_app:ask_model"]);
    client.go();
    let container_id = client.container_id.clone();
    client.finish();
    let trace = tracer.wait();
    let minor = python.minor();
    assert!(
        trace.stderr.contains(&format!("runs CPython 3.{minor}."))
            && trace.stderr.contains(&format!("(/usr/bin/python3.{minor})")),
        "{label}: the interpreter, as the target sees its path: {}",
        trace.stderr
    );
    assert!(
        trace.stderr.contains(&format!("Python context on (CPython 3.{minor} layout verified")),
        "{label}: {}",
        trace.stderr
    );

    let (functions, calls): (Vec<&Value>, Vec<&Value>) = trace.spans.iter().partition(|s| s["kind"] == "internal");
    assert_eq!(calls.len(), 2, "{label}: {}", trace.json_text);
    assert_eq!(functions.len(), 2, "{label}: {}", trace.json_text);
    for call in calls {
        let a = &call["attributes"];
        let case = a["url.full"].as_str().unwrap().rsplit("case=").next().unwrap();
        assert_eq!(a["gen_ai.request.model"], "gpt-4o-mini", "{label}");
        assert!(a["gen_ai.usage.input_tokens"].as_i64().unwrap() > 0, "{label}: {a}");
        assert!(a["gen_ai.usage.output_tokens"].as_i64().unwrap() > 0, "{label}: {a}");
        assert_eq!(a["code.function.name"], "ask_model", "{label}");
        let file = a["code.file.path"].as_str().unwrap();
        assert!(file.starts_with("/opt/pytrace-test/") && file.ends_with("/isolated_app.py"), "{label}: {file}");
        assert_eq!(a["code.line.number"].as_i64(), Some(request_line()), "{label}");
        let thread = if case == "main" { "MainThread" } else { "llm-worker" };
        assert_eq!(a["thread.name"], thread, "{label} {case}");
        let parent = functions.iter().find(|f| f["span_id"] == call["parent_span_id"]);
        let parent = parent.unwrap_or_else(|| panic!("{label}: {case}'s parent is not a function span"));
        assert_eq!(parent["name"], "ask_model", "{label}");
        assert_eq!(parent["attributes"]["thread.name"], thread, "{label}");

        let resource = &call["resource"];
        assert!(resource["process.runtime.version"].as_str().unwrap().starts_with(&format!("3.{minor}.")));
        assert_eq!(resource["process.executable.path"], format!("/usr/bin/python3.{minor}"), "{label}");
        match &python.setting {
            Setting::Container(_) => {
                let id = container_id.as_deref().expect("podman wrote the container's id");
                assert_eq!(resource["container.id"], id, "{label}");
            }
            _ => assert_eq!(resource.get("container.id"), None, "{label}: not a container"),
        }
    }
}

#[test]
fn sid_3_14_chroot() {
    check(&interpreter("sid 3.14"));
}

#[test]
fn sid_3_15_chroot() {
    check(&interpreter("sid 3.15"));
}

#[test]
fn sid_3_14_podman() {
    check(&sid_in_container(14));
}

#[test]
fn sid_3_15_podman() {
    check(&sid_in_container(15));
}
