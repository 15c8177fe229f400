//! `pytrace node`: every Python process on the host, without naming PIDs —
//! one running before it starts, one started after, Debian sid's 3.14 in a
//! podman container started after (with its `container.id`), the workers a
//! Python process forks — each with its own process's resource, and nothing
//! from `curl`, which makes HTTPS calls but is not Python.

#![expect(clippy::unwrap_used, reason = "a test fails loudly on an unexpected value")]

use std::process::Command;

use serde_json::Value;

use integration_tests::{Client, Server, Tracer, interpreter, python_dir, sid_in_container};

#[test]
fn node_traces_every_python_process_and_nothing_else() {
    let server = Server::https();
    let plan = |case: &str| format!("GET /json?case={case}");
    let before =
        Client::start_in(&interpreter("pyenv 3.11"), &server, &["--lib", "urllib", "--paths", &plan("before")]);
    let tracer = Tracer::node(&[]);

    let mut before = before;
    before.go();
    let mut after =
        Client::start_in(&interpreter("pyenv 3.12"), &server, &["--lib", "urllib", "--paths", &plan("after")]);
    after.go();
    let mut container = Client::start_script_in(
        &sid_in_container(14),
        "client.py",
        &server,
        &["--wait-for-go", "--lib", "urllib", "--paths", &plan("container")],
    );
    // node mode attaches to a new process while it runs (it cannot hold it as
    // `pytrace run` does): give it the moment a real service's start-up gives.
    std::thread::sleep(std::time::Duration::from_secs(1));
    container.go();
    let container_id = container.container_id.clone().unwrap();
    let workers =
        Command::new(integration_tests::interpreters().into_iter().find(|(l, _)| l == "pyenv 3.13").unwrap().1)
            .arg(python_dir().join("fork_workers.py"))
            .arg(format!("{}/json", server.base()))
            .arg(server.ca.as_ref().unwrap())
            .status()
            .unwrap();
    assert!(workers.success());
    let curl = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "--cacert"])
        .arg(server.ca.as_ref().unwrap())
        .arg(format!("{}/json?case=curl", server.base()))
        .status()
        .unwrap();
    assert!(curl.success());
    let (before_pid, after_pid) = (before.pid, after.pid);
    before.finish();
    after.finish();
    container.finish();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let trace = tracer.interrupt();

    // Only this test's calls: other tests' Python processes run on this host too.
    let clients = own_calls(&trace.spans, &server);
    let case = |s: &Value| s["attributes"]["url.full"].as_str().unwrap_or_default().to_owned();
    let of_case = |name: &str| -> Vec<&Value> {
        clients.iter().filter(|s| case(s).ends_with(&format!("case={name}"))).copied().collect()
    };
    let pid_of = |s: &Value| s["resource"]["process.pid"].as_u64().unwrap();
    let running_before = of_case("before");
    assert_eq!(running_before.len(), 1, "{}", trace.stderr);
    assert_eq!(pid_of(running_before[0]), u64::from(before_pid));
    let started_after = of_case("after");
    assert_eq!(started_after.len(), 1, "{}", trace.stderr);
    assert_eq!(pid_of(started_after[0]), u64::from(after_pid));
    assert!(started_after[0]["attributes"]["code.function.name"].as_str().is_some(), "Python context");
    let contained = of_case("container");
    assert_eq!(contained.len(), 1, "{}", trace.stderr);
    assert_eq!(contained[0]["resource"]["container.id"], container_id.as_str());
    assert!(contained[0]["resource"]["process.runtime.version"].as_str().unwrap().starts_with("3.14."));
    let forked: Vec<&Value> = clients.iter().filter(|s| case(s).contains("worker=")).copied().collect();
    assert_eq!(forked.len(), 4, "the forked workers' requests: {}", trace.stderr);
    assert!(of_case("curl").is_empty(), "curl is not Python: {}", trace.json_text);
    for span in &clients {
        assert_ne!(span["resource"]["process.executable.path"].as_str().unwrap_or_default(), "/usr/bin/curl");
    }
}

/// `--exclude` leaves a process out (an exclusion wins over `--include`),
/// and a process names its own service with `OTEL_RESOURCE_ATTRIBUTES`.
#[test]
fn node_selection_and_service_names() {
    let server = Server::https();
    let tracer = Tracer::node(&["--include", "exe=*python3*", "--exclude", "cmdline=*skipped*"]);
    let python = integration_tests::interpreters().into_iter().find(|(l, _)| l == "pyenv 3.12").unwrap().1;
    let request = |case: &str| {
        let code = format!(
            "import ssl, sys, time, urllib.request\n\
             time.sleep(1)\n\
             urllib.request.urlopen('{}/json?case={case}', context=ssl.create_default_context(cafile=sys.argv[1])).read()",
            server.base()
        );
        let status = Command::new(&python)
            .args(["-c", &code])
            .arg(server.ca.as_ref().unwrap())
            .arg(case)
            .env("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test,service.name=billing")
            .status()
            .unwrap();
        assert!(status.success());
    };
    request("kept");
    request("skipped");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let trace = tracer.interrupt();
    let clients = own_calls(&trace.spans, &server);
    assert_eq!(clients.len(), 1, "{}", trace.json_text);
    assert!(clients[0]["attributes"]["url.full"].as_str().unwrap().ends_with("case=kept"));
    assert_eq!(clients[0]["resource"]["service.name"], "billing", "from OTEL_RESOURCE_ATTRIBUTES");
}

/// The client spans of calls to `server` (other tests' processes are traced too).
fn own_calls<'a>(spans: &'a [Value], server: &Server) -> Vec<&'a Value> {
    spans
        .iter()
        .filter(|s| s["kind"] == "client" && s["attributes"]["server.port"].as_u64() == Some(u64::from(server.port)))
        .collect()
}

/// What `tests/python/scrape_metrics.py` read from one of the endpoint's paths.
fn scrape(url: &str) -> Value {
    let output = Command::new(integration_tests::venv_python())
        .arg(python_dir().join("scrape_metrics.py"))
        .arg(url)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The value of the one sample named `name` whose labels include `labels`.
fn sample(metrics: &Value, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<&Value> = metrics["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"] == name && labels.iter().all(|(k, v)| s["labels"][k] == *v))
        .collect();
    assert_eq!(found.len(), 1, "{name} {labels:?} in {metrics}");
    found[0]["value"].as_f64().unwrap()
}

/// `--metrics-address`: `/metrics` in the Prometheus text format, read by
/// the `prometheus_client` package's parser, agrees with the spans of this
/// test's service; `/healthz` and `/readyz` answer as probes expect.
#[test]
fn node_serves_prometheus_metrics_that_agree_with_the_spans() {
    let server = Server::https();
    let tracer = Tracer::node(&["--metrics-address", "127.0.0.1:0"]);
    let base = tracer.metrics_url();
    assert_eq!(scrape(&format!("{base}/readyz"))["status"], 200);
    assert_eq!(scrape(&format!("{base}/healthz"))["status"], 200);
    assert_eq!(scrape(&format!("{base}/nothing"))["status"], 404);

    let service = format!("metrics-test-{}", std::process::id());
    let mut client = Client::start_llm_as(&server, "openai-chat", 3, &service);
    client.go();
    client.finish();
    // The endpoint's health snapshot is refreshed once a second.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let metrics = scrape(&format!("{base}/metrics"));
    let trace = tracer.interrupt();

    assert!(metrics["content_type"].as_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let calls: Vec<&Value> = trace.spans.iter().filter(|s| s["resource"]["service.name"] == service.as_str()).collect();
    assert_eq!(calls.len(), 3, "{}", trace.stderr);
    let tokens = |kind: &str| -> f64 {
        let key = format!("gen_ai.usage.{kind}_tokens");
        calls.iter().map(|s| s["attributes"][key.as_str()].as_f64().unwrap()).sum()
    };
    let of_service = [("service_name", service.as_str())];
    let family = |name: &str| metrics["families"][name].as_str().unwrap_or_default().to_owned();
    assert_eq!(family("gen_ai_client_token_usage"), "histogram");
    assert_eq!(family("gen_ai_client_operation_duration_seconds"), "histogram");
    assert_eq!(family("http_client_request_duration_seconds"), "histogram");
    let input = [("service_name", service.as_str()), ("gen_ai_token_type", "input")];
    assert_eq!(sample(&metrics, "gen_ai_client_token_usage_sum", &input), tokens("input"));
    assert_eq!(sample(&metrics, "gen_ai_client_token_usage_count", &input), 3.0);
    let output = [("service_name", service.as_str()), ("gen_ai_token_type", "output")];
    assert_eq!(sample(&metrics, "gen_ai_client_token_usage_sum", &output), tokens("output"));
    assert_eq!(sample(&metrics, "gen_ai_client_operation_duration_seconds_count", &of_service), 3.0);
    let cost: f64 = calls.iter().map(|s| s["attributes"]["gen_ai.usage.cost"].as_f64().unwrap()).sum();
    assert!((sample(&metrics, "pytrace_gen_ai_client_cost_usd_total", &of_service) - cost).abs() < 1e-9);
    let http = [("service_name", service.as_str()), ("http_request_method", "POST")];
    assert_eq!(sample(&metrics, "http_client_request_duration_seconds_count", &http), 3.0);
    // pytrace's own health.
    assert!(sample(&metrics, "pytrace_processes_traced", &[]) >= 1.0);
    assert!(sample(&metrics, "pytrace_events_received_total", &[]) > 0.0);
    assert!(sample(&metrics, "pytrace_spans_total", &[("span_kind", "client")]) >= 3.0);
    assert_eq!(sample(&metrics, "pytrace_events_lost_total", &[]), 0.0);
    assert_eq!(sample(&metrics, "pytrace_kernel_map_capacity", &[("map", "sockets")]), 65536.0);
    assert_eq!(sample(&metrics, "pytrace_kernel_map_evicted_total", &[("map", "sockets")]), 0.0);
}
