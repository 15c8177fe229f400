//! Opt-in capture of prompts and completions (`--capture-content`), in the
//! OpenTelemetry GenAI JSON forms: `gen_ai.input.messages`,
//! `gen_ai.output.messages`, `gen_ai.system_instructions`,
//! `gen_ai.tool.definitions`. Every text passes a redaction pass first
//! (e-mail addresses, phone and card numbers, API-key-like strings, plus the
//! user's own patterns), and each attribute is held to a byte budget: texts
//! past it are cut and marked, so the JSON always stays valid.

use regex::Regex;
use serde_json::{Value, json};

use super::model::LlmCall;

/// Default bytes of text per content attribute.
pub const DEFAULT_MAX_BYTES: usize = 16 * 1024;

const TRUNCATED: &str = "…[truncated by pytrace]";

/// Patterns redacted by default, with what replaces them.
const DEFAULT_PATTERNS: &[(&str, &str)] = &[
    (r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}", "[REDACTED_EMAIL]"),
    (
        r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{16,}|\bAIza[0-9A-Za-z_-]{30,}|\b(?:ghp|gho|github_pat|xox[abp]|hf|gsk)_[A-Za-z0-9_]{16,}|\bAKIA[0-9A-Z]{16}\b",
        "[REDACTED_KEY]",
    ),
    (r"\b(?:\d[ -]?){13,19}\b", "[REDACTED_NUMBER]"),
    (r"\+?\(?\b\d{1,4}\)?[ .-]\(?\d{2,4}\)?[ .-]\d{3,4}[ .-]?\d{0,4}\b", "[REDACTED_PHONE]"),
];

#[derive(Debug, thiserror::Error)]
#[error("invalid --redact pattern {pattern:?}: {source}")]
pub struct PatternError {
    pattern: String,
    source: regex::Error,
}

/// How content is recorded.
#[derive(Clone, Debug)]
pub struct ContentPolicy {
    max_bytes: usize,
    redactions: Vec<(Regex, String)>,
}

impl ContentPolicy {
    /// The default patterns plus `extra` ones (replaced by `[REDACTED]`).
    pub fn new(max_bytes: usize, extra: &[String]) -> Result<Self, PatternError> {
        let mut redactions = Vec::new();
        for (pattern, replacement) in DEFAULT_PATTERNS {
            redactions.push((Regex::new(pattern).expect("built-in pattern"), (*replacement).to_owned()));
        }
        for pattern in extra {
            let regex = Regex::new(pattern).map_err(|source| PatternError { pattern: pattern.clone(), source })?;
            redactions.push((regex, "[REDACTED]".to_owned()));
        }
        Ok(Self { max_bytes, redactions })
    }

    pub fn redact(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for (regex, replacement) in &self.redactions {
            if regex.is_match(&text) {
                text = regex.replace_all(&text, replacement.as_str()).into_owned();
            }
        }
        text
    }

    /// The content attributes of `call`, as (key, JSON string) pairs.
    pub fn attributes(&self, call: &LlmCall) -> Vec<(&'static str, String)> {
        use crate::model::semconv as sc;
        let mut out = Vec::new();
        let mut budget = Budget(self.max_bytes);
        let input: Vec<Value> = call
            .input_messages
            .iter()
            .map(
                |m| json!({"role": m.role, "parts": [{"type": "text", "content": budget.take(&self.redact(&m.text))}]}),
            )
            .collect();
        if !input.is_empty() {
            out.push((sc::GEN_AI_INPUT_MESSAGES, Value::Array(input).to_string()));
        }
        let mut budget = Budget(self.max_bytes);
        if !call.system.is_empty() {
            let parts: Vec<Value> =
                call.system.iter().map(|s| json!({"type": "text", "content": budget.take(&self.redact(s))})).collect();
            out.push((sc::GEN_AI_SYSTEM_INSTRUCTIONS, Value::Array(parts).to_string()));
        }
        let mut budget = Budget(self.max_bytes);
        let mut parts = Vec::new();
        if !call.output_text.is_empty() && call.tool_calls.is_empty() {
            parts.push(json!({"type": "text", "content": budget.take(&self.redact(&call.output_text))}));
        }
        parts.extend(call.tool_calls.iter().map(|name| json!({"type": "tool_call", "name": name})));
        if !parts.is_empty() {
            let finish = call.finish_reasons.first().cloned().unwrap_or_default();
            out.push((
                sc::GEN_AI_OUTPUT_MESSAGES,
                json!([{"role": "assistant", "parts": parts, "finish_reason": finish}]).to_string(),
            ));
        }
        if let Some(tools) = &call.tool_definitions {
            let text = self.redact(&tool_definitions(tools).to_string());
            if text.len() <= self.max_bytes {
                out.push((sc::GEN_AI_TOOL_DEFINITIONS, text));
            }
        }
        out
    }
}

/// Tool definitions in the spec's flat form (`{type, name, description,
/// parameters}`), unwrapping OpenAI's `{"type": "function", "function": …}`.
fn tool_definitions(tools: &Value) -> Value {
    let Some(list) = tools.as_array() else { return tools.clone() };
    Value::Array(
        list.iter()
            .map(|tool| match tool.get("function") {
                Some(function) => {
                    let mut flat = function.clone();
                    flat["type"] = json!("function");
                    flat
                }
                None => tool.clone(),
            })
            .collect(),
    )
}

/// Bytes left for one attribute's texts.
struct Budget(usize);

impl Budget {
    fn take(&mut self, text: &str) -> String {
        if text.len() <= self.0 {
            self.0 -= text.len();
            return text.to_owned();
        }
        let mut cut = self.0;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        self.0 = 0;
        format!("{}{TRUNCATED}", &text[..cut])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::model::Message;

    fn policy(max: usize) -> ContentPolicy {
        ContentPolicy::new(max, &["secret-project-\\w+".to_owned()]).unwrap()
    }

    #[test]
    fn redacts_personal_data_and_keys() {
        let p = policy(1000);
        assert_eq!(p.redact("mail jane.doe@example.com now"), "mail [REDACTED_EMAIL] now");
        assert_eq!(p.redact("card 4111 1111 1111 1111."), "card [REDACTED_NUMBER].");
        assert_eq!(p.redact("call +1 415-555-0100"), "call [REDACTED_PHONE]");
        assert_eq!(p.redact("key sk-proj-abcdefghijklmnop1234"), "key [REDACTED_KEY]");
        assert_eq!(p.redact("about secret-project-x1"), "about [REDACTED]");
        assert_eq!(p.redact("The year 2024 had 365 days."), "The year 2024 had 365 days.");
        assert!(ContentPolicy::new(10, &["(".to_owned()]).is_err());
    }

    #[test]
    fn builds_the_spec_forms_within_the_budget() {
        let mut call = LlmCall::new("openai", "chat");
        call.system.push("Be brief.".into());
        call.input_messages.push(Message {
            role: "user".into(),
            text: "Write to bob@example.com about ".to_owned() + &"x".repeat(100),
        });
        call.output_text = "Done.".into();
        call.finish_reasons.push("stop".into());
        call.tool_definitions = Some(json!([{"type": "function", "function": {"name": "send", "parameters": {}}}]));
        let attributes = policy(40).attributes(&call);
        let get = |key: &str| -> Value {
            serde_json::from_str(&attributes.iter().find(|(k, _)| *k == key).unwrap().1).unwrap()
        };
        let input = get("gen_ai.input.messages");
        let text = input[0]["parts"][0]["content"].as_str().unwrap();
        assert!(text.starts_with("Write to [REDACTED_EMAIL] about xx"), "{text}");
        assert!(text.ends_with(TRUNCATED));
        assert_eq!(get("gen_ai.system_instructions")[0]["content"], "Be brief.");
        assert_eq!(
            get("gen_ai.output.messages"),
            json!([{"role": "assistant", "parts": [{"type": "text", "content": "Done."}], "finish_reason": "stop"}])
        );
        assert!(attributes.iter().all(|(k, _)| *k != "gen_ai.tool.definitions"), "over budget: left out whole");
        let roomy = policy(1000).attributes(&call);
        let tools = &roomy.iter().find(|(k, _)| *k == "gen_ai.tool.definitions").unwrap().1;
        assert_eq!(
            serde_json::from_str::<Value>(tools).unwrap(),
            json!([{"type": "function", "name": "send", "parameters": {}}])
        );
    }
}
