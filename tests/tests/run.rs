//! `pytrace run -- CMD`: a pytest suite with xdist workers calling an LLM
//! through the real openai SDK is traced in every worker and reported
//! (Markdown, JSON, HTML opened in headless Chromium); the command's exit
//! code passes through; budgets and unexpected hosts fail the run with
//! their own exit codes; a request made at import time is seen; SIGTERM
//! reaches the command; the command never runs untraced.

#![expect(clippy::unwrap_used, reason = "a test fails loudly on an unexpected value")]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use integration_tests::{
    REPORTS, Server, python_dir, pytrace_bin, pytrace_run, report_args, scratch_dir, venv_python, wait_within,
};

fn suite_command(python: &str) -> Vec<String> {
    let suite = python_dir().join("llm_suite");
    ["-m", "pytest", "-q", "-n", "2", "-p", "no:cacheprovider", suite.to_str().unwrap()].iter().fold(
        vec![python.to_owned()],
        |mut all, a| {
            all.push((*a).to_owned());
            all
        },
    )
}

fn llm_env(server: &Server) -> Vec<(String, String)> {
    vec![
        ("LLM_BASE".into(), server.base()),
        ("LLM_CA".into(), server.ca.as_ref().unwrap().to_string_lossy().into_owned()),
    ]
}

fn pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[test]
fn a_pytest_suite_with_xdist_workers_is_traced_and_reported() {
    let server = Server::https();
    let dir = scratch_dir("run-reports");
    let [md, json, html] = REPORTS.map(|name| dir.join(name));
    let step = dir.join("step-summary.md");
    std::fs::write(&step, "# earlier step\n").unwrap();
    let python = venv_python();
    let command = suite_command(python.to_str().unwrap());
    let command: Vec<&str> = command.iter().map(String::as_str).collect();
    let mut env = llm_env(&server);
    env.push(("GITHUB_STEP_SUMMARY".into(), step.to_string_lossy().into_owned()));
    let mut args = report_args(&dir);
    args.extend(["--max-cost".to_owned(), "1".to_owned()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = pytrace_run(&args, &command, &pairs(&env));
    assert_eq!(run.code, Some(0), "{}", run.stderr);

    let llm: Vec<&Value> = run.spans.iter().filter(|s| s["attributes"]["gen_ai.operation.name"] == "chat").collect();
    assert_eq!(llm.len(), 4, "every test's call, in whichever worker ran it: {}", run.json_text);
    let pids: BTreeSet<i64> = llm.iter().map(|s| s["resource"]["process.pid"].as_i64().unwrap()).collect();
    assert_eq!(pids.len(), 2, "two xdist workers made the calls: {pids:?}");
    assert!(llm.iter().all(|s| s["attributes"]["code.function.name"] == "test_summary_mentions_something"));
    assert!(!run.json_text.contains("sk-test-suite-key"), "the API key leaked");

    let summary: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(summary["totals"]["llm_calls"], 4);
    assert_eq!(summary["exit_code"], 0);
    assert_eq!(summary["models"][0]["model"], "gpt-4o-mini");
    assert_eq!(summary["models"][0]["calls"], 4);
    assert_eq!(summary["budget"][0]["exceeded"], false);
    let tokens =
        summary["totals"]["input_tokens"].as_u64().unwrap() + summary["totals"]["output_tokens"].as_u64().unwrap();
    assert!(tokens > 0);

    let markdown = std::fs::read_to_string(&md).unwrap();
    assert!(markdown.contains("passed"), "{markdown}");
    assert!(markdown.contains("**4 LLM calls**"), "{markdown}");
    assert!(markdown.contains("### LLM calls per model"), "{markdown}");
    assert!(markdown.contains("| gpt-4o-mini | openai | 4 | 0 |"), "{markdown}");
    assert!(markdown.contains("| max_cost_usd | 1 |"), "{markdown}");
    assert!(markdown.contains("### Slowest calls"), "{markdown}");
    let step_summary = std::fs::read_to_string(&step).unwrap();
    assert!(step_summary.starts_with("# earlier step\n") && step_summary.ends_with(&markdown), "appended");

    check_html_in_chromium(&html, run.spans.len());
}

/// Opens the report in headless Chromium: the script must draw one bar per
/// span; a screenshot shows the waterfall.
fn check_html_in_chromium(html: &Path, spans: usize) {
    let chromium = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|name| Command::new(name).arg("--version").output().is_ok_and(|o| o.status.success()))
        .expect("headless Chromium (Debian's chromium package; `cargo xtask setup` installs it)");
    let url = format!("file://{}", html.display());
    let common = ["--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files"];
    let dom =
        Command::new(chromium).args(common).args(["--virtual-time-budget=5000", "--dump-dom", &url]).output().unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    // Drawn bars carry a numeric index (the script's own text has a template there).
    let bars = dom
        .match_indices("data-index=\"")
        .filter(|(at, m)| dom[at + m.len()..].starts_with(|c: char| c.is_ascii_digit()));
    assert_eq!(bars.count(), spans, "one bar per span in the waterfall");
    assert!(dom.contains("gpt-4o-mini"), "the per-model table is drawn");
    let shot = html.with_file_name("waterfall.png");
    let _ = std::fs::remove_file(&shot);
    let status = Command::new(chromium)
        .args(common)
        .args(["--window-size=1280,900", &format!("--screenshot={}", shot.display()), &url])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a screenshot of the report");
}

#[test]
fn the_command_exit_code_passes_through() {
    let python = venv_python();
    for code in [0, 1, 3] {
        let script = format!("import sys; sys.exit({code})");
        let run = pytrace_run(&[], &[python.to_str().unwrap(), "-c", &script], &[]);
        assert_eq!(run.code, Some(code), "{}", run.stderr);
    }
}

#[test]
fn each_budget_fails_a_passing_run_with_exit_code_70() {
    let server = Server::https();
    let python = venv_python();
    let command = suite_command(python.to_str().unwrap());
    let command: Vec<&str> = command.iter().map(String::as_str).collect();
    let env = llm_env(&server);
    for (flag, value, limit) in [
        ("--max-cost", "0.0000001", "max_cost_usd"),
        ("--max-tokens", "10", "max_tokens"),
        ("--max-llm-calls", "3", "max_llm_calls"),
    ] {
        let run = pytrace_run(&[flag, value], &command, &pairs(&env));
        assert_eq!(run.code, Some(70), "{flag}: {}", run.stderr);
        assert!(run.stderr.contains(&format!("budget exceeded: {limit}")), "{flag}: {}", run.stderr);
    }
}

#[test]
fn a_call_to_a_host_not_allowed_fails_the_run_with_exit_code_71() {
    let server = Server::https();
    let python = venv_python();
    let ca = server.ca.as_ref().unwrap().to_string_lossy().into_owned();
    let elsewhere = format!("https://127.0.0.1:{}/json", server.port);
    let script = python_dir().join("import_time_request.py");
    let command = [python.to_str().unwrap(), script.to_str().unwrap(), &elsewhere, &ca];
    let run = pytrace_run(&["--allow-host", "localhost", "--allow-host", "*.openai.com"], &command, &[]);
    assert_eq!(run.code, Some(71), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("host not allowed: GET {elsewhere}")), "{}", run.stderr);
    let allowed = pytrace_run(&["--allow-host", "127.0.0.1"], &command, &[]);
    assert_eq!(allowed.code, Some(0), "{}", allowed.stderr);
}

#[test]
fn a_request_made_at_import_time_is_seen() {
    let server = Server::https();
    let python = venv_python();
    let ca = server.ca.as_ref().unwrap().to_string_lossy().into_owned();
    let url = format!("{}/json?at=import", server.base());
    let script = python_dir().join("import_time_request.py");
    let run = pytrace_run(&[], &[python.to_str().unwrap(), script.to_str().unwrap(), &url, &ca], &[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.spans.len(), 1, "{}\n{}", run.json_text, run.stderr);
    assert_eq!(run.spans[0]["attributes"]["url.full"], url);
    // Python context is set up once the interpreter runs (within ~100 ms): a request this early
    // may come before it, and then has no code attributes (docs/run.md); when present, they are right.
    let function = &run.spans[0]["attributes"]["code.function.name"];
    assert!(function.is_null() || function == "<module>", "{function}");
}

#[test]
fn sigterm_reaches_the_command_and_its_exit_code_comes_back() {
    let python = venv_python();
    let script = "import signal, sys, time\nsignal.signal(signal.SIGTERM, lambda *a: sys.exit(42))\nprint('ready', flush=True)\ntime.sleep(60)";
    let (mut child, line) = run_in_background(&python, script);
    assert_eq!(line, "ready");
    // SAFETY: kill(2) on our own child.
    unsafe { libc_kill(child.id() as i32, 15) };
    let status = wait_within(&mut child, Duration::from_secs(30)).expect("pytrace run did not end after SIGTERM");
    assert_eq!(status.code(), Some(42), "the command's own exit code after it handled SIGTERM");
}

/// `pytrace run -- PYTHON -c SCRIPT` started, and the first line the script printed.
fn run_in_background(python: &Path, script: &str) -> (std::process::Child, String) {
    let mut child = Command::new(pytrace_bin())
        .args(["run", "--", python.to_str().unwrap(), "-c", script])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    (child, line.trim().to_owned())
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, signal: i32) -> i32;
}

/// Whether process `pid` still runs (a zombie does not).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().next()) != Some("Z"))
}

#[test]
fn the_command_never_runs_untraced() {
    let python = venv_python();
    let dir = scratch_dir("run-untraced");
    // A set-up failure (a recording file that exists): the command never starts.
    let marker = dir.join("ran");
    let existing = dir.join("existing.rec");
    std::fs::write(&existing, "keep me").unwrap();
    let touch = format!("open({:?}, 'w')", marker.to_str().unwrap());
    let run = pytrace_run(&["--record", existing.to_str().unwrap()], &[python.to_str().unwrap(), "-c", &touch], &[]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("existing.rec"), "the error names the file: {}", run.stderr);
    assert!(!marker.exists(), "the command ran although tracing never started");
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "keep me");

    // pytrace killed while the command runs: the command goes with it.
    let script = "import os, time\nprint(os.getpid(), flush=True)\ntime.sleep(60)";
    let (mut child, line) = run_in_background(&python, script);
    let command_pid: u32 = line.parse().unwrap();
    assert!(running(command_pid));
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while running(command_pid) {
        assert!(Instant::now() < deadline, "the command outlived pytrace, untraced");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn forked_workers_are_traced_from_their_first_request() {
    let server = Server::https();
    let python = venv_python();
    let ca = server.ca.as_ref().unwrap().to_string_lossy().into_owned();
    let url = format!("{}/json", server.base());
    let script = python_dir().join("fork_workers.py");
    let run = pytrace_run(&[], &[python.to_str().unwrap(), script.to_str().unwrap(), &url, &ca], &[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.spans.len(), 4, "{}\n{}", run.json_text, run.stderr);
    let pids: BTreeSet<i64> = run.spans.iter().map(|s| s["resource"]["process.pid"].as_i64().unwrap()).collect();
    assert!(!pids.is_empty() && pids.len() <= 2, "the pool's workers made the requests: {pids:?}");
    assert!(run.spans.iter().all(|s| s["attributes"]["code.function.name"] == "fetch"), "{}", run.json_text);
}

#[test]
fn a_missing_command_or_missing_privileges_are_explained() {
    let run = pytrace_run(&[], &["/nonexistent/tool", "--flag"], &[]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("cannot find the command \"/nonexistent/tool\""), "{}", run.stderr);
    let output = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"])
        .arg(pytrace_bin())
        .args(["run", "--", "true"])
        .output()
        .expect("setpriv (util-linux)");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("pytrace needs root") && stderr.contains("sudo"), "{stderr}");
}

/// Captured strings that would break a report — an HTML comment opener and
/// a script end tag, the template's own placeholder, pipes and backticks —
/// leave the HTML report whole in headless Chromium and the Markdown table
/// intact.
#[test]
fn hostile_strings_in_captured_urls_leave_the_reports_whole() {
    let server = Server::https();
    let dir = scratch_dir("run-hostile");
    let (md, html) = (dir.join("summary.md"), dir.join("report.html"));
    let python = venv_python();
    let hostile = "<!--<script>{{TITLE}}</script>|`x`";
    let code = format!(
        "import http.client, ssl, sys\n\
         conn = http.client.HTTPSConnection('localhost', {}, context=ssl.create_default_context(cafile=sys.argv[1]))\n\
         conn.request('GET', '/status/500?q={hostile}')\n\
         conn.getresponse().read()",
        server.port
    );
    let ca = server.ca.as_ref().unwrap().to_str().unwrap().to_owned();
    let run = pytrace_run(
        &["--summary-md", md.to_str().unwrap(), "--report-html", html.to_str().unwrap()],
        &[python.to_str().unwrap(), "-c", &code, &ca],
        &[],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.spans.len(), 1, "{}", run.json_text);

    let markdown = std::fs::read_to_string(&md).unwrap();
    let row =
        markdown.lines().find(|l| l.starts_with("| ") && l.contains("/status/500")).expect("the failed call is listed");
    assert_eq!(row.matches(" | ").count() + 1, 6, "six cells, no pipe breaks the row: {row}");
    // Inside a code span Markdown shows HTML as text; outside, none may remain.
    let outside_code: String = row.split('`').step_by(2).collect();
    assert!(!outside_code.contains('<'), "HTML only as code: {row}");

    let chromium = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|name| Command::new(name).arg("--version").output().is_ok_and(|o| o.status.success()))
        .expect("headless Chromium (`cargo xtask setup` installs it)");
    let url = format!("file://{}", html.display());
    let dom = Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000", "--dump-dom", &url])
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    let bars = dom
        .match_indices("data-index=\"")
        .filter(|(at, m)| dom[at + m.len()..].starts_with(|c: char| c.is_ascii_digit()))
        .count();
    assert_eq!(bars, 1, "the report is drawn: {dom}");
    assert!(dom.contains("&lt;!--&lt;script&gt;{{TITLE}}&lt;/script&gt;"), "shown as text, not parsed: {dom}");
}

/// Under sudo, the command runs as the user who invoked it — its ids, its
/// groups, its home — while pytrace keeps root; the reports are that
/// user's, and `--run-as-root` keeps the command root.
#[test]
fn under_sudo_the_command_runs_as_the_invoking_user() {
    let dir = scratch_dir("run-as");
    let report = dir.join("summary.json");
    let sudo = [("SUDO_UID", "65534"), ("SUDO_GID", "65534"), ("SUDO_USER", "nobody")];
    let command = ["sh", "-c", "id -u; id -g; echo \"$HOME\""];
    let run = pytrace_run(&["--summary-json", report.to_str().unwrap()], &command, &sudo);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(&lines[..2], ["65534", "65534"], "{}", run.stdout);
    assert_ne!(lines[2], "/root", "the user's home, not root's");
    assert!(run.stderr.contains("the command runs as nobody (uid 65534)"), "{}", run.stderr);
    use std::os::unix::fs::MetadataExt as _;
    assert_eq!(std::fs::metadata(&report).unwrap().uid(), 65534, "the report is the user's");

    let as_root = pytrace_run(&["--run-as-root"], &command, &sudo);
    assert_eq!(as_root.stdout.lines().next(), Some("0"), "{}", as_root.stderr);

    // A report path that is a symbolic link is refused, not followed.
    let target = dir.join("elsewhere");
    std::fs::write(&target, "untouched").unwrap();
    let link = dir.join("link.json");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let refused = pytrace_run(&["--summary-json", link.to_str().unwrap()], &["true"], &[]);
    assert_ne!(refused.code, Some(0), "{}", refused.stderr);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched");
}
