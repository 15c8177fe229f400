//! Every repository path `README.md` and `docs/` name exists: a path in
//! backticks that starts at the repository's root (`tracer/src/redact.rs`,
//! `tests/tests/*.rs`), a module path inside a crate's sources
//! (`probes/budget.rs`, `session/`), and every relative Markdown link.
//! Paths git ignores (build output, fuzzing corpora) are not checked.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::shell::workspace_root;

/// Where a path may start: the repository's top-level entries…
const ROOTS: &[&str] = &[
    "pytrace-core",
    "tracer",
    "tracer-ebpf",
    "tracer-common",
    "xtask",
    "tests",
    "docs",
    "deploy",
    "fuzz",
    ".github",
    ".ci",
];
/// …or, for a module path (`probes/budget.rs`, `session/`), a crate's sources.
const SOURCE_ROOTS: &[&str] =
    &["pytrace-core/src", "tracer/src", "tracer-ebpf/src", "tracer-common/src", "xtask/src", "tests"];

/// The documents: README.md and every Markdown file under docs/.
fn documents(root: &Path) -> Vec<PathBuf> {
    let mut documents = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    documents.extend(docs);
    documents
}

/// The text between backticks, and the targets of Markdown links.
fn named_paths(text: &str) -> (Vec<&str>, Vec<&str>) {
    let code = text.split('`').skip(1).step_by(2).collect();
    let links = text.split("](").skip(1).filter_map(|rest| rest.split(')').next()).collect();
    (code, links)
}

/// Whether a code span reads as a path in this repository (not a URL,
/// an absolute path on the host, a placeholder or an attribute name).
fn repository_path(span: &str) -> Option<&str> {
    let plausible = span.contains('/')
        && !span.starts_with('/')
        && !span.contains("://")
        && span.chars().all(|c| c.is_ascii_alphanumeric() || "_-./*".contains(c));
    plausible.then_some(span)
}

/// Where `path` resolves, if anywhere it may start: the paths to look for.
fn candidates(root: &Path, path: &str) -> Vec<PathBuf> {
    let first = path.split('/').next().unwrap_or_default();
    if ROOTS.contains(&first) {
        return vec![root.join(path)];
    }
    if path.ends_with(".rs") || path.ends_with('/') {
        return SOURCE_ROOTS.iter().map(|source| root.join(source).join(path)).collect();
    }
    Vec::new()
}

fn exists(candidate: &Path) -> bool {
    let text = candidate.to_string_lossy();
    match text.split_once('*') {
        // One `*` in the file name: some file in the folder matches.
        Some((before, after)) if !after.contains('/') => {
            let (folder, prefix) = before.rsplit_once('/').unwrap_or((".", before));
            std::fs::read_dir(folder).into_iter().flatten().flatten().any(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.starts_with(prefix) && name.ends_with(after)
            })
        }
        _ => candidate.exists(),
    }
}

/// Whether git ignores `path` (what a build or a fuzz run makes).
fn ignored(root: &Path, path: &str) -> bool {
    Command::new("git")
        .args(["check-ignore", "-q", "--no-index", path])
        .current_dir(root)
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn every_path_the_documentation_names_exists() {
    let root = workspace_root();
    let mut missing = Vec::new();
    for document in documents(&root) {
        let text = std::fs::read_to_string(&document).expect("a document");
        let name = document.strip_prefix(&root).unwrap_or(&document).display().to_string();
        let (code, links) = named_paths(&text);
        for path in code.into_iter().filter_map(repository_path) {
            let candidates = candidates(&root, path);
            if !candidates.is_empty() && !candidates.iter().any(|c| exists(c)) && !ignored(&root, path) {
                missing.push(format!("{name}: `{path}`"));
            }
        }
        let folder = document.parent().unwrap_or(&root);
        for link in links {
            let target = link.split('#').next().unwrap_or_default();
            if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            if !folder.join(target).exists() {
                missing.push(format!("{name}: link ({link})"));
            }
        }
    }
    assert!(missing.is_empty(), "paths the documentation names that do not exist:\n{}", missing.join("\n"));
}

#[test]
fn a_path_that_is_gone_is_found() {
    let root = workspace_root();
    assert_eq!(repository_path("target/sockets.rs"), Some("target/sockets.rs"));
    assert!(!candidates(&root, "target/sockets.rs").iter().any(|c| exists(c)), "a module path that is gone");
    assert!(candidates(&root, "probes/budget.rs").iter().any(|c| exists(c)));
    assert!(candidates(&root, "tests/tests/*.rs").iter().any(|c| exists(c)));
    assert!(candidates(&root, "app.kubernetes.io/name").is_empty(), "not a path here");
    assert_eq!(repository_path("http://host:4317"), None);
    assert_eq!(repository_path("/proc/PID/maps"), None);
}
