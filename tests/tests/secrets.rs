//! Secrets never leave the host: a program carrying secrets everywhere a
//! program does — an API key in its environment sent as a header, keys in a
//! prompt, in headers, query parameters and URL paths, on its command line,
//! a provider error quoting the key back — is traced by `pytrace run` with
//! content capture on, `-vv` logs and OTLP export (whose own credentials sit
//! in `OTEL_EXPORTER_OTLP_HEADERS`). Every output is then searched: the
//! terminal, stderr with its logs, the JSON lines, the Markdown, JSON and
//! HTML reports, the spans as the collector received them, and — in a second
//! run with the collector down — the spool on disk.

#![expect(clippy::unwrap_used, reason = "a test fails loudly on an unexpected value")]

use std::io::Read as _;
use std::path::Path;

use serde_json::Value;

use integration_tests::{
    REPORTS, Receiver, RunOutcome, Server, python_dir, pytrace_run, report_args, scratch_dir, venv_python,
};

/// (environment variable, secret): each secret is unique, so a hit names its way out.
const CANARIES: &[(&str, &str)] = &[
    ("OPENAI_API_KEY", "sk-proj-CANARYenv0123456789abcdefXYZ"),
    ("CANARY_PROMPT_KEY", "sk-ant-api03-CANARYprompt0123456789"),
    ("CANARY_QUERY", "CANARYquery-8f3e2d1c"),
    ("CANARY_BOT_TOKEN", "AAHCANARYbot_0123456789abcdefghijkl"),
    ("CANARY_PATH_KEY", "sk-CANARYpath0123456789abcdef"),
    ("CANARY_HEADER", "CANARYheader-5a4b3c2d"),
    ("OTEL_EXPORTER_OTLP_HEADERS", "x-collector-key=CANARYcollector-77aa"),
];
const COMMAND_LINE_KEY: &str = "sk-CANARYcmdline0123456789abcdef";

fn secrets() -> Vec<&'static str> {
    let mut all: Vec<&str> = CANARIES.iter().map(|(_, secret)| *secret).collect();
    all[6] = "CANARYcollector-77aa";
    all.push(COMMAND_LINE_KEY);
    all
}

/// Runs the canary program under `pytrace run` exporting to `endpoint`.
fn traced_canaries(endpoint: &str, spool: &Path, reports: &Path) -> RunOutcome {
    let server = Server::https();
    let python = venv_python();
    let app = python_dir().join("canary_app.py");
    let ca = server.ca.as_ref().unwrap().to_str().unwrap().to_owned();
    let key_flag = format!("--api-key={COMMAND_LINE_KEY}");
    let mut env: Vec<(&str, &str)> = CANARIES.to_vec();
    env.extend([("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"), ("OTEL_EXPORTER_OTLP_TIMEOUT", "2000")]);
    let mut args =
        vec!["-vv", "--capture-content", "--otlp-endpoint", endpoint, "--spool-dir", spool.to_str().unwrap()];
    let reports = report_args(reports);
    args.extend(reports.iter().map(String::as_str));
    let run = pytrace_run(
        &args,
        &[python.to_str().unwrap(), app.to_str().unwrap(), &server.base(), &ca, &key_flag, COMMAND_LINE_KEY],
        &env,
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("FINISHED"), "{}", run.stderr);
    run
}

/// What pytrace wrote for a user to read: (name, text).
fn outputs(run: &RunOutcome, reports: &Path) -> Vec<(String, String)> {
    let mut all = vec![
        ("stdout".to_owned(), run.stdout.clone()),
        ("stderr and -vv logs".to_owned(), run.stderr.clone()),
        ("JSON lines".to_owned(), run.json_text.clone()),
    ];
    for name in REPORTS {
        all.push((name.to_owned(), std::fs::read_to_string(reports.join(name)).unwrap()));
    }
    all
}

fn assert_no_secret_in(outputs: &[(String, String)]) {
    for (name, text) in outputs {
        for secret in secrets() {
            assert!(!text.contains(secret), "{secret} leaked into the {name}:\n{text}");
        }
    }
}

/// The evidence that the secrets were there to leak: the spans exist and
/// carry the redacted forms.
fn assert_spans_show_redactions(spans: &[Value]) {
    assert_eq!(spans.len(), 5, "{spans:#?}");
    let attribute =
        |key: &str| spans.iter().filter_map(|s| s["attributes"][key].as_str()).collect::<Vec<_>>().join(" ");
    let urls = attribute("url.full");
    assert!(urls.contains("api_key=REDACTED&client_secret=REDACTED&password=REDACTED&page=2"), "{urls}");
    assert!(urls.contains("/bot123456789:") || urls.contains("/REDACTED/sendMessage"), "{urls}");
    assert!(urls.contains("/v1/keys/REDACTED/status"), "{urls}");
    let error = attribute("pytrace.gen_ai.error.message");
    assert!(
        error.starts_with("Incorrect API key provided: REDACTED."),
        "the provider's message is kept, redacted: {error}"
    );
    let prompts = attribute("gen_ai.input.messages");
    assert!(prompts.contains("My key is [REDACTED_KEY], keep it safe."), "{prompts}");
}

#[test]
fn planted_secrets_reach_no_output() {
    // The collector up: everything it received is searched too.
    let receiver = Receiver::start("http", 0, &[]);
    let reports = scratch_dir("secrets-up");
    let run =
        traced_canaries(&format!("http://127.0.0.1:{}", receiver.port), &scratch_dir("secrets-spool-up"), &reports);
    assert_spans_show_redactions(&run.spans);
    assert!(receiver.wait_for(std::time::Duration::from_secs(10), |records| {
        records.iter().filter(|r| r["signal"] == "span").count() >= 5
    }));
    let records = receiver.records();
    let headers: Vec<&Value> = records.iter().filter(|r| r["signal"] == "headers").collect();
    assert!(
        headers.iter().any(|h| h["headers"]["x-collector-key"] == "CANARYcollector-77aa"),
        "the collector's own credential goes to the collector, and only there: {headers:?}"
    );
    let received: Vec<String> = records.iter().filter(|r| r["signal"] != "headers").map(Value::to_string).collect();
    let mut all = outputs(&run, &reports);
    let summary = &all.iter().find(|(name, _)| name == "summary.json").unwrap().1;
    assert!(summary.contains("--api-key=REDACTED"), "the command is shown, redacted: {summary}");
    all.push(("OTLP export as received".to_owned(), received.join("\n")));
    assert_no_secret_in(&all);

    // The collector down: the spans wait in the spool, on disk.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let spool = scratch_dir("secrets-spool-down");
    let reports = scratch_dir("secrets-down");
    let run = traced_canaries(&format!("http://127.0.0.1:{port}"), &spool, &reports);
    let spooled = spool_contents(&spool);
    assert!(spooled.contains("gen_ai.input.messages"), "the spans are in the spool");
    let mut all = outputs(&run, &reports);
    all.push(("spool".to_owned(), spooled));
    assert_no_secret_in(&all);
}

/// Every spool batch's payload, decompressed, as (lossy) text.
fn spool_contents(spool: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(spool).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let Some(payload) = bytes.strip_prefix(b"PYTSPOOL").map(|rest| &rest[4..]) else { continue };
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(payload).read_to_end(&mut decoded).unwrap();
        text.push_str(&String::from_utf8_lossy(&decoded));
    }
    text
}
