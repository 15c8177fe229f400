//! No module of a crate depends, through others, on itself: a small reading
//! of `crate::…` and `super::…` paths in each source file (comments and
//! `mod tests` left out), each resolved to the deepest module it names.
//! Checked twice per crate: between files, and between top-level modules
//! (folders), the layers the tree shows. A module's own submodules and its
//! ancestors are its parts, not its dependencies, so those references are
//! not edges. Inline modules other than `tests` count as their file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::shell::workspace_root;

/// Source roots of the workspace's crates.
const CRATES: &[&str] =
    &["pytrace-core/src", "tracer/src", "tracer-common/src", "tracer-ebpf/src", "xtask/src", "tests/src"];

type Module = Vec<String>;
type Graph = BTreeMap<Module, BTreeSet<Module>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// `tracer/src/span/mod.rs` → `span`; `lib.rs` and `main.rs` → the root.
fn module_of(root: &Path, file: &Path) -> Module {
    let relative = file.strip_prefix(root).unwrap_or(file).with_extension("");
    let mut parts: Module = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if parts.last().is_some_and(|last| ["mod", "lib", "main"].contains(&last.as_str())) {
        parts.pop();
    }
    parts
}

fn exists(root: &Path, module: &[String]) -> bool {
    let path = module.iter().fold(root.to_path_buf(), |path, part| path.join(part));
    module.is_empty() || path.with_extension("rs").is_file() || path.is_dir()
}

/// The file's code without comments and without its `mod tests`.
fn code_of(text: &str) -> String {
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or_default();
    text.lines().map(|line| line.split("//").next().unwrap_or_default()).collect::<Vec<_>>().join("\n")
}

/// Every `crate::a::b` / `super::…::x` path in `code`, as module path segments.
fn paths(code: &str) -> Vec<(bool, Vec<String>)> {
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(at) = code[from..].find(start).map(|i| i + from) {
            from = at + start.len();
            if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
                continue;
            }
            let rest = &code[from..];
            let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')).unwrap_or(rest.len());
            let segments: Vec<String> = rest[..end].split("::").filter(|s| !s.is_empty()).map(str::to_owned).collect();
            found.push((start == "super::", segments));
        }
    }
    found
}

/// The dependency graph of the crate at `root`, its modules cut to `depth` segments.
fn graph(root: &Path, depth: usize) -> Graph {
    let mut files = Vec::new();
    rust_files(root, &mut files);
    let mut graph = Graph::new();
    for file in files {
        let module = module_of(root, &file);
        let code = code_of(&std::fs::read_to_string(&file).unwrap_or_default());
        for (is_super, segments) in paths(&code) {
            let mut target: Module = if is_super {
                let mut base = module[..module.len().saturating_sub(1)].to_vec();
                let mut rest = segments.as_slice();
                while rest.first().is_some_and(|s| s == "super") {
                    base.pop();
                    rest = &rest[1..];
                }
                base.extend(rest.iter().cloned());
                base
            } else {
                segments
            };
            while !exists(root, &target) {
                target.pop();
            }
            let (from, to): (Module, Module) =
                (module.iter().take(depth).cloned().collect(), target.iter().take(depth).cloned().collect());
            let related = from.starts_with(&to) || to.starts_with(&from);
            if !from.is_empty() && !to.is_empty() && !related {
                graph.entry(from).or_default().insert(to);
            }
        }
    }
    graph
}

/// The strongly connected components of more than one module (Tarjan).
fn cycles(graph: &Graph) -> Vec<Vec<Module>> {
    struct Walk<'a> {
        graph: &'a Graph,
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        found: Vec<Vec<Module>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, node: &'a Module) {
            let index = self.index.len();
            self.index.insert(node, index);
            self.low.insert(node, index);
            self.stack.push(node);
            for next in self.graph.get(node).into_iter().flatten() {
                if !self.index.contains_key(next) {
                    self.visit(next);
                    let low = self.low[node].min(self.low[next]);
                    self.low.insert(node, low);
                } else if self.stack.contains(&next) {
                    let low = self.low[node].min(self.index[next]);
                    self.low.insert(node, low);
                }
            }
            if self.low[node] == self.index[node] {
                let mut component = Vec::new();
                while let Some(member) = self.stack.pop() {
                    component.push(member.clone());
                    if member == node {
                        break;
                    }
                }
                if component.len() > 1 {
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk { graph, index: BTreeMap::new(), low: BTreeMap::new(), stack: Vec::new(), found: Vec::new() };
    for node in graph.keys() {
        if !walk.index.contains_key(node) {
            walk.visit(node);
        }
    }
    walk.found
}

fn describe(graph: &Graph, component: &[Module]) -> String {
    let name = |m: &Module| m.join("/");
    let mut edges = Vec::new();
    for from in component {
        for to in graph.get(from).into_iter().flatten().filter(|to| component.contains(to)) {
            edges.push(format!("{} → {}", name(from), name(to)));
        }
    }
    edges.sort();
    edges.join(", ")
}

#[test]
fn no_module_depends_on_itself() {
    let workspace = workspace_root();
    let mut found = Vec::new();
    for krate in CRATES {
        for (depth, what) in [(usize::MAX, "files"), (1, "top-level modules")] {
            let graph = graph(&workspace.join(krate), depth);
            for component in cycles(&graph) {
                found.push(format!("{krate}, between {what}: {}", describe(&graph, &component)));
            }
        }
    }
    assert!(found.is_empty(), "module cycles:\n{}", found.join("\n"));
}

#[test]
fn a_cycle_is_found() {
    let root = std::env::temp_dir().join(format!("pytrace-module-graph-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("layer")).unwrap();
    std::fs::write(root.join("lib.rs"), "pub mod layer;\npub mod other;\n").unwrap();
    std::fs::write(root.join("layer/mod.rs"), "pub mod low;\npub mod high;\n").unwrap();
    std::fs::write(root.join("layer/low.rs"), "use super::high::Thing; // crate::other in a comment\n").unwrap();
    std::fs::write(root.join("layer/high.rs"), "use crate::layer::low::Other;\nuse super::Shared;\n").unwrap();
    std::fs::write(root.join("other.rs"), "#[cfg(test)]\nmod tests {\n    use crate::layer::low;\n}\n").unwrap();
    let graph = graph(&root, usize::MAX);
    let found = cycles(&graph);
    std::fs::remove_dir_all(&root).unwrap();
    assert_eq!(found.len(), 1, "{graph:?}");
    assert_eq!(describe(&graph, &found[0]), "layer/high → layer/low, layer/low → layer/high");
    assert!(!graph.contains_key(&vec!["other".to_owned()]), "comments and tests are not dependencies: {graph:?}");
}
