//! `pytrace run -- CMD`: run a command traced from its first instruction,
//! with its children, then report what it did and gate on LLM spend and
//! the hosts it called. The exit code is the command's, or — when the
//! command passed — 70 for an exceeded budget and 71 for a host not allowed.

use std::io::Write as _;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;

use crate::agent::{self, Launch, SessionError, TargetSource};
use crate::cli::RunConfig;
use crate::notices::notice;
use crate::privileges;
use crate::sinks::report::{RunReport, html, markdown};
use crate::targets::identity::RunAs;
use crate::targets::launch;

/// Creates or truncates `path` without following a symbolic link at it,
/// writes `text`, and gives the file to `owner`.
fn write_report(path: &Path, text: &str, owner: Option<&RunAs>) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(crate::sys::O_NOFOLLOW)
        .mode(0o644)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    if let Some(user) = owner {
        std::os::unix::fs::fchown(&file, Some(user.uid), Some(user.gid))?;
    }
    Ok(())
}

pub async fn run(config: RunConfig) -> Result<u8, SessionError> {
    // Before anything starts: a command must never run untraced by mistake.
    privileges::check_privileges()?;
    let run_as = if config.run_as_root { None } else { RunAs::sudo_invoker(|key| std::env::var(key).ok()) };
    if let Some(user) = &run_as {
        notice!("the command runs as {} (uid {}), who invoked sudo; --run-as-root keeps it root", user.name, user.uid);
    }
    let held = launch::spawn_held(&config.command, run_as.as_ref())?;
    let source = TargetSource::Command(Launch { held, command: config.command.clone() });
    let end = agent::trace(config.trace.clone(), source).await?;
    let exit_code =
        end.command_status.map_or(1, |status| status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)));
    let report = RunReport::build(&config.command, exit_code, &end.spans, &end.summary, &end.stats, &config.budget);
    write_reports(&config, &report, &end.spans, run_as.as_ref())?;
    for problem in report.problems() {
        notice!("{problem}");
    }
    let code = report.exit_code();
    if exit_code == 0 && code != 0 {
        notice!("the command passed, but the run fails with exit code {code}");
    }
    Ok(code)
}

/// Writes the reports: new files, never through a symbolic link, owned by
/// the user the command ran as.
fn write_reports(
    config: &RunConfig,
    report: &RunReport,
    spans: &[pytrace_core::model::Span],
    run_as: Option<&RunAs>,
) -> Result<(), SessionError> {
    let write = |path: &Path, text: &str| {
        write_report(path, text, run_as)
            .map_err(|source| SessionError::Output { path: path.display().to_string(), source })
    };
    if let Some(path) = &config.summary_json {
        write(path, &serde_json::to_string_pretty(report).unwrap_or_default())?;
    }
    let markdown = markdown::render(report);
    if let Some(path) = &config.summary_md {
        write(path, &markdown)?;
    }
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(markdown.as_bytes()));
        if let Err(source) = appended {
            return Err(SessionError::Output { path: Path::new(&path).display().to_string(), source });
        }
    }
    if let Some(path) = &config.report_html {
        write(path, &html::render(report, spans))?;
    }
    Ok(())
}
