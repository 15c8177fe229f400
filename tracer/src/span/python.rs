//! Python context on spans: the application function that made the call
//! (`code.function.name`, `code.file.path`, `code.line.number`) and the full
//! stack in traceback order (`code.stacktrace`).
//!
//! "Application" is the innermost frame outside the standard library and
//! installed packages: files under `…/lib/python3.X/`, `site-packages`,
//! `dist-packages`, and frozen modules (`<frozen …>`) are library code.

use super::model::Span;
use super::semconv as sc;
use crate::python::symbolize::Frame;

/// Whether `file` belongs to the standard library or an installed package.
pub fn is_library(file: &str) -> bool {
    file.starts_with('<')
        || file.contains("/site-packages/")
        || file.contains("/dist-packages/")
        || file.split('/').any(|part| {
            part.strip_prefix("python3.").is_some_and(|minor| {
                !minor.is_empty() && minor.trim_end_matches('t').bytes().all(|b| b.is_ascii_digit())
            })
        })
}

/// Adds the code attributes for `frames` (innermost first).
pub fn add_code_attributes(span: &mut Span, frames: &[Frame], thread_id: u32) {
    if frames.is_empty() {
        return;
    }
    let a = &mut span.attributes;
    a.set(sc::THREAD_ID, i64::from(thread_id));
    let caller = frames.iter().find(|f| !is_library(&f.file)).unwrap_or(&frames[0]);
    a.set(sc::CODE_FUNCTION_NAME, caller.qualname.clone());
    a.set(sc::CODE_FILE_PATH, caller.file.clone());
    if let Some(line) = caller.line {
        a.set(sc::CODE_LINE_NUMBER, i64::from(line));
    }
    let mut trace = String::from("Traceback (most recent call last):\n");
    for frame in frames.iter().rev() {
        let line = frame.line.map_or_else(|| "?".to_owned(), |l| l.to_string());
        trace.push_str(&format!("  File \"{}\", line {line}, in {}\n", frame.file, frame.qualname));
    }
    a.set(sc::CODE_STACKTRACE, trace);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_library_code_from_application_code() {
        assert!(is_library("/usr/lib/python3.11/http/client.py"));
        assert!(is_library("/root/.pyenv/versions/3.12.1/lib/python3.12/ssl.py"));
        assert!(is_library("/srv/venv/lib/python3.12/site-packages/openai/_client.py"));
        assert!(is_library("<frozen importlib._bootstrap>"));
        assert!(!is_library("/srv/app/agent.py"));
        assert!(!is_library("/home/me/python3.12-project/main.py"), "a project folder named like a version");
    }
}
