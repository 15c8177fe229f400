//! Token estimates for calls whose provider reported no usage (a stream
//! without `include_usage`, a stream cut short). OpenAI-family models are
//! counted exactly with their BPE (`super::bpe`: embedded, offline):
//! `o200k_base` for gpt-4o, gpt-4.1, gpt-5 and the o-series, `cl100k_base`
//! for gpt-4 and gpt-3.5, plus OpenAI's chat framing (3 tokens per message,
//! 3 to prime the reply). Other families (Claude, Gemini, Llama, …) have no
//! offline tokenizer; they are estimated as characters / 4, the rule of
//! thumb providers document. Estimates are always marked as such, and none
//! is made from a body with bytes missing: a count of what was captured
//! would pass for the whole.

use crate::model::semconv as sc;

use super::bpe::Encoding;
use super::model::{LlmCall, Usage};

/// Tokens framing each chat message, and priming the reply (OpenAI's rule).
const TOKENS_PER_MESSAGE: u64 = 3;
const TOKENS_REPLY_PRIMING: u64 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Counter {
    O200k,
    Cl100k,
    CharsOverFour,
}

fn counter_for(model: &str) -> Counter {
    let model = model.rsplit('/').next().unwrap_or(model).to_ascii_lowercase();
    let starts = |prefixes: &[&str]| prefixes.iter().any(|p| model.starts_with(p));
    if starts(&["gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "chatgpt-4o", "gpt-oss"]) {
        Counter::O200k
    } else if starts(&["gpt-4", "gpt-3.5", "text-embedding-3", "text-embedding-ada"]) {
        Counter::Cl100k
    } else {
        Counter::CharsOverFour
    }
}

fn count(counter: Counter, text: &str) -> u64 {
    let encoding = match counter {
        Counter::O200k => Encoding::o200k(),
        Counter::Cl100k => Encoding::cl100k(),
        Counter::CharsOverFour => return (text.chars().count() as u64).div_ceil(4),
    };
    encoding.count(text) as u64
}

/// Fills the usage the provider did not report; true when anything was estimated.
pub fn estimate_missing(call: &LlmCall) -> (Usage, bool) {
    let mut usage = call.usage;
    let counter = counter_for(call.model().unwrap_or_default());
    let mut estimated = false;
    let input_known = !call.input_messages.is_empty() || !call.system.is_empty();
    if usage.input.is_none() && input_known && !call.request_incomplete {
        let framed = call.operation == sc::OPERATION_CHAT;
        let texts = call.system.iter().chain(call.input_messages.iter().map(|m| &m.text));
        let mut tokens: u64 = texts.map(|t| count(counter, t) + if framed { TOKENS_PER_MESSAGE } else { 0 }).sum();
        if framed {
            tokens += TOKENS_REPLY_PRIMING;
        }
        usage.input = Some(tokens);
        estimated = true;
    }
    if usage.output.is_none()
        && !call.response_incomplete
        && call.operation != sc::OPERATION_EMBEDDINGS
        && (call.error.is_none() || !call.output_text.is_empty())
    {
        usage.output = Some(count(counter, &call.output_text));
        estimated = true;
    }
    (usage, estimated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::model::Message;

    #[test]
    fn picks_the_tokenizer_by_model_family() {
        assert_eq!(counter_for("gpt-4o-mini-2024-07-18"), Counter::O200k);
        assert_eq!(counter_for("openai/o3-mini"), Counter::O200k);
        assert_eq!(counter_for("gpt-4-turbo"), Counter::Cl100k);
        assert_eq!(counter_for("claude-sonnet-4-5"), Counter::CharsOverFour);
        assert_eq!(counter_for("llama3.2"), Counter::CharsOverFour);
    }

    #[test]
    fn counts_known_strings_exactly() {
        // Reference counts from OpenAI's tokenizers.
        assert_eq!(count(Counter::Cl100k, "tiktoken is great!"), 6);
        assert_eq!(count(Counter::O200k, "Hello, world!"), 4);
        assert_eq!(count(Counter::CharsOverFour, "abcdefghi"), 3);
    }

    #[test]
    fn estimates_only_what_is_missing() {
        let mut call = LlmCall::new("openai", sc::OPERATION_CHAT);
        call.request_model = Some("gpt-4o".into());
        call.system.push("You are terse.".into());
        call.input_messages.push(Message { role: "user".into(), text: "Hello, world!".into() });
        call.output_text = "Hello, world!".into();
        call.usage.input = Some(99);
        let (usage, estimated) = estimate_missing(&call);
        assert!(estimated);
        assert_eq!(usage.input, Some(99), "reported usage always wins");
        assert_eq!(usage.output, Some(4));

        call.usage.input = None;
        let (usage, _) = estimate_missing(&call);
        // "You are terse." is 4 tokens, "Hello, world!" 4; 3 per message + 3 priming.
        assert_eq!(usage.input, Some(4 + 3 + 4 + 3 + 3));

        call.usage = Usage { input: Some(1), output: Some(2), ..Usage::default() };
        assert!(!estimate_missing(&call).1);

        call.usage = Usage::default();
        call.request_incomplete = true;
        call.response_incomplete = true;
        assert_eq!(estimate_missing(&call), (Usage::default(), false), "nothing estimated from a body with a hole");
    }
}
