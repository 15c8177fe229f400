//! `--trace-function` patterns: `module:Qualname`, either part a glob (`*`,
//! `?`), or a bare `Qualname` for any module.
//!
//! A code object knows its file, not its module, so the module part is
//! matched against the dotted trailing components of the file's path:
//! `/srv/app/myapp/agent.py` is `myapp.agent`, and also `agent` or
//! `app.myapp.agent` — whatever prefix `sys.path` removed. A package's
//! `__init__.py` is the package itself.
//!
//! Before 3.11 code objects carry only a function's own name, not its
//! qualified name: there `Agent.step` matches any function named `step`.

use std::fmt;
use std::str::FromStr;

use wildmatch::WildMatch;

#[derive(Clone, Debug)]
pub struct FunctionPattern {
    text: String,
    module: Option<WildMatch>,
    qualname: WildMatch,
    /// The qualified name's last component, for code without qualified names.
    name: WildMatch,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid --trace-function pattern {0:?}: expected module:Qualname, a Qualname, or globs such as myapp.agent:*")]
pub struct PatternError(String);

impl FromStr for FunctionPattern {
    type Err = PatternError;

    fn from_str(text: &str) -> Result<Self, PatternError> {
        let (module, qualname) = match text.split_once(':') {
            Some((module, qualname)) => (Some(module), qualname),
            None => (None, text),
        };
        let valid = |part: &str| {
            !part.is_empty()
                && part.split('.').all(|piece| !piece.is_empty())
                && part.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '*' | '?' | '<' | '>'))
        };
        if !valid(qualname) || module.is_some_and(|m| !valid(m)) {
            return Err(PatternError(text.to_owned()));
        }
        let name = qualname.rsplit('.').next().unwrap_or(qualname);
        Ok(Self {
            text: text.to_owned(),
            module: module.map(WildMatch::new),
            qualname: WildMatch::new(qualname),
            name: WildMatch::new(name),
        })
    }
}

impl fmt::Display for FunctionPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FunctionPattern {
    /// Whether the function `qualname` defined in `file` matches. `qualified`
    /// says whether `qualname` is a qualified name (3.11+) or a bare name.
    pub fn matches(&self, qualname: &str, file: &str, qualified: bool) -> bool {
        let name_matches = if qualified { self.qualname.matches(qualname) } else { self.name.matches(qualname) };
        name_matches && self.module.as_ref().is_none_or(|module| module_names(file).iter().any(|m| module.matches(m)))
    }
}

/// The dotted module names `file` could have been imported as, longest first.
pub fn module_names(file: &str) -> Vec<String> {
    let Some(path) = file.strip_suffix(".py") else { return Vec::new() };
    let mut parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.last() == Some(&"__init__") {
        parts.pop();
    }
    (0..parts.len()).map(|start| parts[start..].join(".")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> FunctionPattern {
        text.parse().unwrap()
    }

    #[test]
    fn modules_are_the_trailing_path_components() {
        assert_eq!(module_names("/srv/myapp/agent.py"), ["srv.myapp.agent", "myapp.agent", "agent"]);
        assert_eq!(module_names("/srv/myapp/__init__.py"), ["srv.myapp", "myapp"]);
        assert!(module_names("<stdin>").is_empty());
    }

    #[test]
    fn matches_module_and_qualified_name() {
        let file = "/srv/myapp/agent.py";
        assert!(pattern("myapp.agent:Agent.step").matches("Agent.step", file, true));
        assert!(pattern("myapp.agent:*").matches("plan", file, true));
        assert!(pattern("myapp.*:Agent.*").matches("Agent.run", file, true));
        assert!(pattern("Agent.step").matches("Agent.step", "/anywhere/x.py", true));
        assert!(!pattern("myapp.agent:Agent.step").matches("Other.step", file, true));
        assert!(!pattern("myapp.tools:*").matches("plan", file, true));
        assert!(!pattern("agent:step").matches("step", "<string>", true), "code without a file has no module");
    }

    #[test]
    fn without_qualified_names_the_last_component_is_compared() {
        let file = "/srv/myapp/agent.py";
        assert!(pattern("myapp.agent:Agent.step").matches("step", file, false));
        assert!(!pattern("myapp.agent:Agent.step").matches("plan", file, false));
    }

    #[test]
    fn rejects_malformed_patterns() {
        for text in ["", ":", "myapp:", ":step", "my app:step", "a..b:c", "a:b:c"] {
            assert!(text.parse::<FunctionPattern>().is_err(), "{text:?}");
        }
    }
}
