//! `cargo xtask update-prices`: regenerates `pytrace-core/data/prices.json` from
//! LiteLLM's `model_prices_and_context_window_backup.json` (MIT), taken from
//! the `litellm` wheel on PyPI, keeping the providers pytrace names and
//! converting prices to USD per million tokens.

use std::process::Command;

use anyhow::{Context as _, bail};
use serde_json::{Map, Value, json};

use crate::setup;
use crate::shell::{self, step, workspace_root};

/// LiteLLM provider names kept, and the prefixes their keys may carry.
const PROVIDERS: &[&str] = &[
    "openai",
    "text-completion-openai",
    "anthropic",
    "gemini",
    "vertex_ai-language-models",
    "mistral",
    "deepseek",
    "groq",
    "xai",
];
const MODES: &[&str] = &["chat", "completion", "embedding", "responses"];

pub fn run() -> anyhow::Result<()> {
    let env = setup::run()?;
    let work = workspace_root().join("target/prices");
    std::fs::create_dir_all(&work)?;
    step("downloading the litellm wheel from PyPI (for its price table)");
    shell::run(
        Command::new(&env.python).args(["-m", "pip", "download", "--no-deps", "-q", "-d"]).arg(&work).arg("litellm"),
    )?;
    let extract = r#"
import glob, json, sys, zipfile
wheel = sorted(glob.glob(sys.argv[1] + "/litellm-*.whl"))[-1]
with zipfile.ZipFile(wheel) as z:
    data = z.read("litellm/model_prices_and_context_window_backup.json")
print(wheel.split("/")[-1].split("-")[1])
sys.stdout.flush()
open(sys.argv[1] + "/prices.json", "wb").write(data)
"#;
    let version = shell::output(Command::new(&env.python).args(["-c", extract]).arg(&work))
        .context("extracting the price table from the wheel")?;
    let source: Value = serde_json::from_slice(&std::fs::read(work.join("prices.json"))?)?;
    let Value::Object(entries) = source else { bail!("unexpected price table shape") };
    let mut models = Map::new();
    for (key, entry) in &entries {
        let provider = entry.get("litellm_provider").and_then(Value::as_str).unwrap_or_default();
        let mode = entry.get("mode").and_then(Value::as_str).unwrap_or_default();
        if !PROVIDERS.contains(&provider) || !MODES.contains(&mode) {
            continue;
        }
        let name = key.rsplit('/').next().unwrap_or(key).to_ascii_lowercase();
        let per_million = |field: &str| entry.get(field).and_then(Value::as_f64).map(|p| (p * 1e6 * 1e6).round() / 1e6);
        let Some(input) = per_million("input_cost_per_token") else { continue };
        let mut price = Map::new();
        price.insert("input".into(), json!(input));
        price.insert("output".into(), json!(per_million("output_cost_per_token").unwrap_or(0.0)));
        for (ours, theirs) in [
            ("cache_read", "cache_read_input_token_cost"),
            ("cache_creation", "cache_creation_input_token_cost"),
            ("reasoning", "output_cost_per_reasoning_token"),
        ] {
            if let Some(value) = per_million(theirs) {
                price.insert(ours.into(), json!(value));
            }
        }
        models.entry(name).or_insert(Value::Object(price));
    }
    let date = shell::output(Command::new("date").arg("+%Y-%m-%d")).unwrap_or_default();
    let table = json!({
        "source": "LiteLLM model_prices_and_context_window_backup.json, from the litellm wheel on PyPI",
        "source_version": format!("litellm {}", version.trim()),
        "license": "MIT (LiteLLM, Copyright (c) 2023 Berri AI)",
        "generated": date.trim(),
        "unit": "USD per 1,000,000 tokens",
        "regenerate": "cargo xtask update-prices",
        "models": models,
    });
    let out = workspace_root().join("pytrace-core/data/prices.json");
    std::fs::create_dir_all(out.parent().context("data dir")?)?;
    std::fs::write(&out, serde_json::to_string_pretty(&table)? + "\n")?;
    step(&format!("wrote {} ({} models)", out.display(), table["models"].as_object().map_or(0, Map::len)));
    Ok(())
}
