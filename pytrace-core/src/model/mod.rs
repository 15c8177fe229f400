//! The bottom layer: what every other layer produces or reads — spans and
//! their identifiers, attributes and resources, the table of attribute names
//! (`semconv`), and W3C `traceparent` headers.

mod attributes;
mod ids;
pub mod semconv;
mod span;
pub mod traceparent;

pub use attributes::{AttrValue, Attributes};
pub use ids::{IdSource, SpanContext, SpanId, TraceId};
pub use span::{Resource, Span, SpanKind, Status};
