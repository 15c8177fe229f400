//! Spans: the model, the attribute-name table, and the builders that turn
//! observed exchanges into spans.

pub mod function;
pub mod http;
pub mod llm;
pub mod model;
pub mod python;
pub mod semconv;
pub mod serving;
pub mod traceparent;

pub use model::{AttrValue, Attributes, Resource, Span, SpanContext, SpanId, SpanKind, Status, TraceId};
