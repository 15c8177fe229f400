//! The span model every output renders: OpenTelemetry's data model reduced to
//! what pytrace produces. Attributes keep insertion order and use the names
//! from [`super::semconv`].

use std::fmt;
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue {
    Str(String),
    Int(i64),
    F64(f64),
    Bool(bool),
    StrArray(Vec<String>),
    IntArray(Vec<i64>),
}

impl From<&str> for AttrValue {
    fn from(v: &str) -> Self {
        Self::Str(v.to_owned())
    }
}
impl From<String> for AttrValue {
    fn from(v: String) -> Self {
        Self::Str(v)
    }
}
impl From<i64> for AttrValue {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}
impl From<u64> for AttrValue {
    fn from(v: u64) -> Self {
        Self::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<f64> for AttrValue {
    fn from(v: f64) -> Self {
        Self::F64(v)
    }
}
impl From<bool> for AttrValue {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}

/// Ordered attribute list.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Attributes(Vec<(&'static str, AttrValue)>);

impl Attributes {
    pub fn set(&mut self, key: &'static str, value: impl Into<AttrValue>) {
        let value = value.into();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }

    pub fn remove(&mut self, key: &str) {
        self.0.retain(|(k, _)| *k != key);
    }

    pub fn get(&self, key: &str) -> Option<&AttrValue> {
        self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some(AttrValue::Str(s)) => Some(s),
            _ => None,
        }
    }

    pub fn int(&self, key: &str) -> Option<i64> {
        match self.get(key) {
            Some(AttrValue::Int(i)) => Some(*i),
            _ => None,
        }
    }

    pub fn bool(&self, key: &str) -> Option<bool> {
        match self.get(key) {
            Some(AttrValue::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &AttrValue)> {
        self.0.iter().map(|(k, v)| (*k, v))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TraceId(pub [u8; 16]);
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SpanId(pub [u8; 8]);

/// A span's identity as its children refer to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SpanContext {
    pub trace_id: TraceId,
    pub span_id: SpanId,
}

impl TraceId {
    pub fn random() -> Self {
        let mut id = [0; 16];
        fill_nonzero(&mut id);
        Self(id)
    }
}
impl SpanId {
    pub fn random() -> Self {
        let mut id = [0; 8];
        fill_nonzero(&mut id);
        Self(id)
    }
}

fn fill_nonzero(bytes: &mut [u8]) {
    // All-zero ids are invalid in W3C trace context; retry on that (never in practice).
    while bytes.iter().all(|b| *b == 0) {
        if random_bytes(bytes).is_err() {
            bytes[0] = 1;
        }
    }
}

/// Random bytes from the kernel's generator, fetched 4 KiB at a time: one
/// `getrandom` call per span would cost more than building the span.
fn random_bytes(out: &mut [u8]) -> Result<(), getrandom::Error> {
    use std::cell::RefCell;
    const POOL: usize = 4096;
    thread_local! {
        /// Unused random bytes, and how many are left at the end of the pool.
        static POOL_BYTES: RefCell<([u8; POOL], usize)> = const { RefCell::new(([0; POOL], 0)) };
    }
    POOL_BYTES.with_borrow_mut(|(pool, left)| {
        if *left < out.len() {
            getrandom::fill(pool)?;
            *left = POOL;
        }
        out.copy_from_slice(&pool[*left - out.len()..*left]);
        *left -= out.len();
        Ok(())
    })
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
}
impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}
impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanKind {
    Client,
    Server,
    Internal,
}

impl SpanKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Server => "server",
            Self::Internal => "internal",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Unset,
    Ok,
    Error { message: Option<String> },
}

/// What produced the spans: one per traced process.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Resource {
    pub attributes: Attributes,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent_span_id: Option<SpanId>,
    pub name: String,
    pub kind: SpanKind,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    pub status: Status,
    pub attributes: Attributes,
    pub resource: Arc<Resource>,
}

impl Span {
    /// An empty span for tests to fill in.
    #[cfg(test)]
    pub fn placeholder() -> Self {
        Self {
            trace_id: TraceId([0; 16]),
            span_id: SpanId([0; 8]),
            parent_span_id: None,
            name: String::new(),
            kind: SpanKind::Internal,
            start_unix_nano: 0,
            end_unix_nano: 0,
            status: Status::Unset,
            attributes: Attributes::default(),
            resource: Arc::default(),
        }
    }

    /// An openai chat completion as pytrace builds it, for the metric
    /// encoders' tests: `input_tokens` reported, `cost` priced, lasting `seconds`.
    #[cfg(test)]
    pub fn sample_llm_call(resource: Arc<Resource>, input_tokens: i64, cost: f64, seconds: f64) -> Self {
        use super::semconv as sc;
        let mut span = Self::placeholder();
        span.name = "chat gpt-4o-mini".into();
        span.kind = SpanKind::Client;
        span.end_unix_nano = (seconds * 1e9) as u64;
        span.resource = resource;
        let a = &mut span.attributes;
        a.set(sc::HTTP_REQUEST_METHOD, "POST");
        a.set(sc::URL_FULL, "https://api.openai.com/v1/chat/completions");
        a.set(sc::SERVER_ADDRESS, "api.openai.com");
        a.set(sc::GEN_AI_OPERATION_NAME, "chat");
        a.set(sc::GEN_AI_PROVIDER_NAME, "openai");
        a.set(sc::GEN_AI_REQUEST_MODEL, "gpt-4o-mini");
        a.set(sc::GEN_AI_USAGE_INPUT_TOKENS, input_tokens);
        a.set(sc::GEN_AI_USAGE_COST, cost);
        span
    }

    pub fn duration_ns(&self) -> u64 {
        self.end_unix_nano.saturating_sub(self.start_unix_nano)
    }
}
