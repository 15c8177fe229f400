//! pytrace's engine: what turns the kernel's events into spans, as pure code
//! — no kernel, no files, no `/proc`, no runtime — so it is tested by
//! replaying byte streams. The agent (`tracer`) finds the processes, loads
//! the probes, feeds the events in and sends the spans out.
//!
//! Layers, bottom first: `model` (spans, attributes, identifiers), `redact`
//! (secrets out of every string), `otel_env` (OpenTelemetry's `key=value`
//! lists), `events` (ring-buffer records decoded),
//! `tracker` (one byte stream per connection, its limits in `limits`),
//! `http` (HTTP/1.1 exchanges parsed from them), `llm` (LLM API calls
//! recognised in exchanges: providers, streams, tokens, prices, content),
//! `python` (captured stacks resolved through memory the agent can read),
//! `build` (spans from exchanges, LLM calls and stacks) and `correlate`
//! (served requests and their calls, traced function calls), driven by the
//! `engine` (with `threads` naming the threads). Identifiers come from an
//! injected `model::IdSource`, times from the caller, what only the system
//! knows of a process from an injected `engine::ProcessFacts`.

pub mod build;
pub mod correlate;
pub mod engine;
pub mod events;
pub mod http;
pub mod limits;
pub mod llm;
pub mod model;
pub mod otel_env;
pub mod python;
pub mod redact;
pub mod threads;
pub mod tracker;
