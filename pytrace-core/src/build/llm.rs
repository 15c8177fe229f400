//! Turns an HTTP span into a GenAI client span when its exchange was an LLM
//! call: named `{operation} {model}`, with the OpenTelemetry GenAI attributes,
//! usage (reported, or estimated and marked), cost, and the provider's error.

use crate::llm::pricing::{self, PriceTable};
use crate::llm::{LlmCall, tokens};
use crate::model::semconv as sc;
use crate::model::{AttrValue, Span, Status};

/// What the pricing step concluded, for the caller's warnings.
#[derive(Clone, Debug, PartialEq)]
pub enum Priced {
    Cost(f64),
    /// The model is not in the price table.
    UnknownModel(String),
    /// No model or no token counts to price.
    NotPriceable,
}

/// Adds the LLM call's attributes to `span` (the exchange's HTTP span).
pub fn enrich(span: &mut Span, call: &LlmCall, exchange_start_ns: u64, prices: &PriceTable) -> Priced {
    if call.stream && call.stream_finished && span.attributes.get(sc::PYTRACE_INCOMPLETE).is_some() {
        // The stream ended at its terminal event; only the HTTP body's
        // trailing bytes were left unread when the client closed.
        for key in [sc::PYTRACE_INCOMPLETE, sc::PYTRACE_INCOMPLETE_REASON, sc::ERROR_TYPE] {
            span.attributes.remove(key);
        }
        span.status = Status::Unset;
    }
    let a = &mut span.attributes;
    a.set(sc::GEN_AI_OPERATION_NAME, call.operation);
    a.set(sc::GEN_AI_PROVIDER_NAME, call.provider);
    if let Some(api_type) = call.api_type {
        a.set(sc::OPENAI_API_TYPE, api_type);
    }
    if let Some(model) = &call.request_model {
        a.set(sc::GEN_AI_REQUEST_MODEL, model.clone());
    }
    a.set(sc::GEN_AI_REQUEST_STREAM, call.stream);
    for (key, value) in &call.params {
        a.set(key, value.clone());
    }
    if let Some(why) = &call.undecodable {
        a.set(sc::PYTRACE_BODY_UNDECODABLE, why.as_str());
    }
    if let Some(retries) = call.retry_count {
        a.set(sc::PYTRACE_RETRY_COUNT, retries);
    }
    if let Some(id) = &call.response_id {
        a.set(sc::GEN_AI_RESPONSE_ID, id.clone());
    }
    if let Some(model) = &call.response_model {
        a.set(sc::GEN_AI_RESPONSE_MODEL, model.clone());
    }
    if !call.finish_reasons.is_empty() {
        a.set(sc::GEN_AI_RESPONSE_FINISH_REASONS, AttrValue::StrArray(call.finish_reasons.clone()));
    }
    if let (true, Some(first)) = (call.stream, call.first_chunk_ns) {
        a.set(sc::GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, first.saturating_sub(exchange_start_ns) as f64 / 1e9);
    }
    if !call.tool_calls.is_empty() {
        a.set(sc::PYTRACE_TOOL_CALL_COUNT, call.tool_calls.len() as u64);
        a.set(sc::PYTRACE_TOOL_CALL_NAMES, AttrValue::StrArray(call.tool_calls.clone()));
    }
    let (usage, estimated) = tokens::estimate_missing(call);
    for (key, value) in [
        (sc::GEN_AI_USAGE_INPUT_TOKENS, usage.input),
        (sc::GEN_AI_USAGE_OUTPUT_TOKENS, usage.output),
        (sc::GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, usage.cache_read),
        (sc::GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, usage.cache_creation),
        (sc::GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, usage.reasoning),
    ] {
        if let Some(value) = value {
            a.set(key, value);
        }
    }
    if estimated {
        a.set(sc::PYTRACE_USAGE_ESTIMATED, true);
    }
    if let Some(error) = &call.error {
        a.set(sc::ERROR_TYPE, crate::redact::redact_text(&error.kind));
        // A provider's message may quote the caller's key.
        let message = error.message.as_deref().map(crate::redact::redact_text);
        if let Some(message) = &message {
            a.set(sc::PYTRACE_ERROR_MESSAGE, message.clone());
        }
        span.status = Status::Error { message };
    }
    span.name = match call.model() {
        Some(model) => format!("{} {model}", call.operation),
        None => call.operation.to_owned(),
    };
    let Some(model) = call.model() else { return Priced::NotPriceable };
    let Some(price) = prices.price(model).or_else(|| call.response_model.as_deref().and_then(|m| prices.price(m)))
    else {
        return Priced::UnknownModel(model.to_owned());
    };
    match pricing::cost(&price, &usage) {
        Some(cost) => {
            span.attributes.set(sc::GEN_AI_USAGE_COST, cost);
            Priced::Cost(cost)
        }
        None => Priced::NotPriceable,
    }
}
