//! Python context on spans: the application function that made the call
//! (`code.function.name`, `code.file.path`, `code.line.number`) and the full
//! stack in traceback order (`code.stacktrace`).
//!
//! "Application" is the innermost frame outside the standard library and
//! installed packages: files under `…/lib/python3.X/`, `site-packages`,
//! `dist-packages`, frozen modules (`<frozen …>`), and any prefix the user
//! adds with `--library-path`, are library code.

use std::fmt::Write as _;

use crate::model::Span;
use crate::model::semconv as sc;
use crate::python::symbolize::CallStack;

/// Whether `file` belongs to the standard library, an installed package, or
/// one of the `extra` library prefixes.
pub fn is_library(file: &str, extra: &[String]) -> bool {
    extra.iter().any(|prefix| file.starts_with(prefix.as_str()))
        || file.starts_with('<')
        || file.contains("/site-packages/")
        || file.contains("/dist-packages/")
        || file.split('/').any(|part| {
            part.strip_prefix("python3.").is_some_and(|minor| {
                !minor.is_empty() && minor.trim_end_matches('t').bytes().all(|b| b.is_ascii_digit())
            })
        })
}

/// Names `frame` as the code behind the span: function, file, line.
pub fn add_caller(span: &mut Span, frame: &crate::python::frame::Frame) {
    let a = &mut span.attributes;
    a.set(sc::CODE_FUNCTION_NAME, &*frame.qualname);
    a.set(sc::CODE_FILE_PATH, &*frame.file);
    if let Some(line) = frame.line {
        a.set(sc::CODE_LINE_NUMBER, i64::from(line));
    }
}

/// Adds the code and thread attributes for `stack`.
pub fn add_code_attributes(span: &mut Span, stack: &CallStack, library_paths: &[String]) {
    let frames = &stack.frames;
    if frames.is_empty() {
        return;
    }
    let a = &mut span.attributes;
    a.set(sc::THREAD_ID, i64::from(stack.tid));
    if let Some(name) = &stack.thread_name {
        a.set(sc::THREAD_NAME, name.to_string());
    }
    let caller = frames.iter().find(|f| !is_library(&f.file, library_paths)).unwrap_or(&frames[0]);
    add_caller(span, caller);
    let a = &mut span.attributes;
    let mut trace = String::with_capacity(64 + frames.len() * 128);
    trace.push_str("Traceback (most recent call last):\n");
    for frame in frames.iter().rev() {
        let _ = match frame.line {
            Some(line) => writeln!(trace, "  File \"{}\", line {line}, in {}", frame.file, frame.qualname),
            None => writeln!(trace, "  File \"{}\", line ?, in {}", frame.file, frame.qualname),
        };
    }
    a.set(sc::CODE_STACKTRACE, trace);
}

#[cfg(test)]
mod tests {
    use crate::model::{SpanId, SpanKind, Status, TestIds, TraceId};
    use crate::python::frame::Frame;

    use super::*;

    #[test]
    fn tells_library_code_from_application_code() {
        let none: &[String] = &[];
        assert!(is_library("/usr/lib/python3.11/http/client.py", none));
        assert!(is_library("/root/.pyenv/versions/3.12.1/lib/python3.12/ssl.py", none));
        assert!(is_library("/srv/venv/lib/python3.12/site-packages/openai/_client.py", none));
        assert!(is_library("<frozen importlib._bootstrap>", none));
        assert!(!is_library("/srv/app/agent.py", none));
        assert!(!is_library("/home/me/python3.12-project/main.py", none), "a project folder named like a version");
        assert!(is_library("/srv/app/vendor/http_wrapper.py", &["/srv/app/vendor/".to_owned()]));
    }

    #[test]
    fn names_the_innermost_application_frame() {
        let frame = |name: &str, file: &str, line| Frame {
            qualname: name.into(),
            file: file.into(),
            line: Some(line),
            ..Frame::default()
        };
        let frames = [
            frame("SSLSocket.send", "/usr/lib/python3.12/ssl.py", 1181),
            frame("Client.post", "/srv/app/vendor/client.py", 40),
            frame("Agent.step", "/srv/app/agent.py", 12),
            frame("main", "/srv/app/main.py", 3),
        ];
        let mut span = Span {
            trace_id: TraceId::new(&mut TestIds),
            span_id: SpanId::new(&mut TestIds),
            parent_span_id: None,
            name: "GET".into(),
            kind: SpanKind::Client,
            start_unix_nano: 0,
            end_unix_nano: 0,
            status: Status::Unset,
            attributes: Default::default(),
            resource: Default::default(),
        };
        let stack = CallStack {
            tid: 7,
            thread_name: Some("MainThread".into()),
            frames: frames.into(),
            within: None,
            concurrency: crate::python::asyncio::Concurrency::Thread,
        };
        add_code_attributes(&mut span, &stack, &[]);
        assert_eq!(span.attributes.str(sc::THREAD_NAME), Some("MainThread"));
        assert_eq!(span.attributes.str(sc::CODE_FUNCTION_NAME), Some("Client.post"));
        add_code_attributes(&mut span, &stack, &["/srv/app/vendor/".to_owned()]);
        assert_eq!(span.attributes.str(sc::CODE_FUNCTION_NAME), Some("Agent.step"));
        assert_eq!(span.attributes.int(sc::CODE_LINE_NUMBER), Some(12));
        let trace = span.attributes.str(sc::CODE_STACKTRACE).unwrap();
        assert!(
            trace.starts_with("Traceback (most recent call last):\n  File \"/srv/app/main.py\", line 3, in main\n"),
            "{trace}"
        );
    }
}
