//! The agent's system calls stay in one place: outside `tracer/src/sys/`,
//! no source file of `tracer` names `libc::` or holds an `unsafe` block.
//! (The kernel programs, `tracer-ebpf`, are unsafe by nature and not held
//! to this.)

use std::path::{Path, PathBuf};

use crate::shell::workspace_root;

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("a source directory").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(sources(&path));
        } else if path.extension().is_some_and(|x| x == "rs") {
            files.push(path);
        }
    }
    files
}

/// `file:line: text` for each line of `text` that calls into the system
/// or opens an `unsafe` block (comments aside).
fn system_lines(name: &str, text: &str) -> Vec<String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let code = line.split("//").next().unwrap_or("");
            code.contains("libc::") || code.contains("unsafe {") || code.contains("unsafe fn")
        })
        .map(|(number, line)| format!("{name}:{}: {}", number + 1, line.trim()))
        .collect()
}

#[test]
fn only_the_sys_module_calls_into_the_system() {
    let root = workspace_root();
    let agent = root.join("tracer/src");
    let mut found = Vec::new();
    for file in sources(&agent) {
        if file.starts_with(agent.join("sys")) {
            continue;
        }
        let name = file.strip_prefix(&root).unwrap_or(&file).display().to_string();
        found.extend(system_lines(&name, &std::fs::read_to_string(&file).expect("readable")));
    }
    assert!(found.is_empty(), "system calls outside tracer/src/sys/:\n{}", found.join("\n"));
}

#[test]
fn a_call_outside_is_found() {
    let text = "fn f() {\n    // libc::kill in a comment is fine\n    unsafe { libc::kill(1, 0) };\n}\n";
    assert_eq!(system_lines("x.rs", text), ["x.rs:3: unsafe { libc::kill(1, 0) };"]);
}
