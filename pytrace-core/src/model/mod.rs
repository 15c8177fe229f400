//! The bottom layer: what every other layer produces or reads — spans and
//! their identifiers, attributes and resources, kernel time to Unix time, the table of attribute names
//! (`semconv`), and W3C `traceparent` headers.

mod attributes;
mod clock;
mod ids;
pub mod semconv;
mod span;
pub mod traceparent;

pub use attributes::{AttrValue, Attributes};
pub use clock::Clock;
#[cfg(any(test, feature = "testing"))]
pub use ids::TestIds;
pub use ids::{IdSource, SequentialIds, SpanContext, SpanId, TraceId};
pub use span::{Resource, Span, SpanKind, Status};
