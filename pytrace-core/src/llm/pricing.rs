//! LLM prices and the cost of a call, in USD.
//!
//! The table ships in `pytrace-core/data/prices.json` (generated from LiteLLM's
//! MIT-licensed table by `cargo xtask update-prices`; source, version and
//! date inside). A user file (`--prices FILE` or `PYTRACE_PRICES`, read by
//! the agent) with the same `{"models": {name: {input, output, cache_read?, cache_creation?,
//! reasoning?}}}` shape adds or replaces models. Prices are per million
//! tokens. Dated snapshots (`gpt-4o-mini-2024-07-18`,
//! `claude-3-5-haiku-20241022`) and provider prefixes (`openai/…`,
//! `models/…`) fall back to their base model. An unknown model gets no cost,
//! never a guessed one.

use std::collections::HashMap;

use serde::Deserialize;

use super::model::Usage;

const BUILT_IN: &str = include_str!("../../data/prices.json");

/// USD per million tokens.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    pub cache_read: Option<f64>,
    pub cache_creation: Option<f64>,
    pub reasoning: Option<f64>,
}

#[derive(Deserialize)]
struct TableFile {
    models: HashMap<String, Price>,
}

/// A user's price file that is not a price table.
#[derive(Debug, thiserror::Error)]
#[error("the price file {path} is not a {{\"models\": {{name: {{\"input\": …, \"output\": …}}}}}} table: {source}")]
pub struct PriceError {
    pub path: String,
    source: serde_json::Error,
}

#[derive(Clone, Debug)]
pub struct PriceTable {
    models: HashMap<String, Price>,
}

impl PriceTable {
    /// The built-in table.
    pub fn built_in() -> Self {
        let table: TableFile = serde_json::from_str(BUILT_IN).expect("pytrace-core/data/prices.json is valid");
        Self { models: table.models }
    }

    /// The built-in table with a user's file on top: its `text`, read from `path`.
    pub fn with_overrides(path: &str, text: &str) -> Result<Self, PriceError> {
        let file: TableFile =
            serde_json::from_str(text).map_err(|source| PriceError { path: path.to_owned(), source })?;
        let mut table = Self::built_in();
        table.models.extend(file.models.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)));
        Ok(table)
    }

    /// The price of `model`, trying the name as given, without a provider
    /// prefix, and without a date or version suffix.
    pub fn price(&self, model: &str) -> Option<Price> {
        let lower = model.to_ascii_lowercase();
        let unprefixed = lower.rsplit('/').next().unwrap_or(&lower).to_owned();
        let undated = strip_snapshot(&unprefixed);
        [lower, unprefixed, undated].iter().find_map(|name| self.models.get(name).copied())
    }

    pub fn len(&self) -> usize {
        self.models.len()
    }

    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }
}

/// `gpt-4o-mini-2024-07-18` → `gpt-4o-mini`; `claude-3-5-haiku-20241022` →
/// `claude-3-5-haiku`; `claude-haiku-4-5@20251001` → `claude-haiku-4-5`;
/// `…-v1:0` and `…-latest` dropped.
fn strip_snapshot(model: &str) -> String {
    let mut name = model.split('@').next().unwrap_or(model).to_owned();
    for suffix in ["-latest", "-preview"] {
        if let Some(stripped) = name.strip_suffix(suffix) {
            name = stripped.to_owned();
        }
    }
    if let Some((base, version)) = name.rsplit_once("-v")
        && version.chars().all(|c| c.is_ascii_digit() || c == ':')
    {
        name = base.to_owned();
    }
    let parts: Vec<&str> = name.split('-').collect();
    let is_digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let keep = match parts.as_slice() {
        [.., y, m, d] if is_digits(y, 4) && is_digits(m, 2) && is_digits(d, 2) => parts.len() - 3,
        [.., date] if is_digits(date, 8) => parts.len() - 1,
        _ => parts.len(),
    };
    parts[..keep].join("-")
}

/// Cost in USD. Input tokens include cached ones (OpenTelemetry's rule), so
/// uncached input = input − cache read − cache creation; reasoning tokens are
/// part of the output.
pub fn cost(price: &Price, usage: &Usage) -> Option<f64> {
    let input = usage.input? as f64;
    let output = usage.output.unwrap_or(0) as f64;
    let cache_read = usage.cache_read.unwrap_or(0) as f64;
    let cache_creation = usage.cache_creation.unwrap_or(0) as f64;
    let reasoning = usage.reasoning.unwrap_or(0).min(usage.output.unwrap_or(0)) as f64;
    let uncached = (input - cache_read - cache_creation).max(0.0);
    let dollars = uncached * price.input
        + cache_read * price.cache_read.unwrap_or(price.input)
        + cache_creation * price.cache_creation.unwrap_or(price.input)
        + (output - reasoning) * price.output
        + reasoning * price.reasoning.unwrap_or(price.output);
    Some(dollars / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_snapshots_and_prefixes_to_base_models() {
        let table = PriceTable::built_in();
        assert!(table.len() > 100);
        let mini = table.price("gpt-4o-mini").expect("gpt-4o-mini is priced");
        assert_eq!((mini.input, mini.output), (0.15, 0.6));
        assert_eq!(table.price("gpt-4o-mini-2024-07-18").map(|p| p.input), Some(0.15));
        assert_eq!(table.price("openai/gpt-4o-mini").map(|p| p.input), Some(0.15));
        assert_eq!(table.price("models/gemini-2.5-flash").map(|p| p.input), Some(0.3));
        assert!(table.price("claude-sonnet-4-5-20250929").is_some());
        assert_eq!(table.price("my-fine-tuned-llama"), None);
        assert_eq!(strip_snapshot("claude-haiku-4-5@20251001"), "claude-haiku-4-5");
        assert_eq!(strip_snapshot("anthropic.claude-3-haiku-20240307-v1:0"), "anthropic.claude-3-haiku");
        assert_eq!(strip_snapshot("gpt-4o"), "gpt-4o");
    }

    #[test]
    fn prices_cached_and_reasoning_tokens_separately() {
        let price =
            Price { input: 2.0, output: 8.0, cache_read: Some(0.5), cache_creation: Some(2.5), reasoning: Some(10.0) };
        let usage = Usage {
            input: Some(1000),
            output: Some(500),
            cache_read: Some(400),
            cache_creation: Some(100),
            reasoning: Some(200),
        };
        // 500 uncached × 2 + 400 × 0.5 + 100 × 2.5 + 300 × 8 + 200 × 10, per million.
        let expected = (1000.0 + 200.0 + 250.0 + 2400.0 + 2000.0) / 1e6;
        assert!((cost(&price, &usage).unwrap() - expected).abs() < 1e-12);
        assert_eq!(cost(&price, &Usage::default()), None, "no input count, no cost");
    }

    #[test]
    fn a_user_file_adds_and_replaces_models() {
        let text = r#"{"models": {"My-Model": {"input": 1, "output": 2}, "gpt-4o-mini": {"input": 9, "output": 9}}}"#;
        let table = PriceTable::with_overrides("prices.json", text).unwrap();
        assert_eq!(table.price("my-model").map(|p| p.output), Some(2.0));
        assert_eq!(table.price("gpt-4o-mini").map(|p| p.input), Some(9.0));
        let error = PriceTable::with_overrides("prices.json", "not json").unwrap_err();
        assert!(error.to_string().starts_with("the price file prices.json is not a"), "{error}");
    }
}
