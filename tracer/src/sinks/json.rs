//! The JSON-lines format: one object per span, then one `{"summary": …}`
//! line. The schema is documented in `docs/output.md` and kept stable.

use std::collections::HashMap;
use std::fmt::Display;
use std::io::{self, Write};
use std::sync::Arc;

use pytrace_core::model::{AttrValue, Attributes, Resource, Span, Status};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::SpanSink;
use super::summary::Summary;
use super::writer::LineWriter;
use crate::stats::Stats;

/// JSON lines: one object per span, the summary object last.
pub struct JsonSink {
    out: LineWriter,
    spans: SpanWriter,
}

impl JsonSink {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self { out: LineWriter::new(out), spans: SpanWriter::default() }
    }
}

impl SpanSink for JsonSink {
    fn span(&mut self, span: &Span) {
        let spans = &mut self.spans;
        self.out.write_with(|out| {
            spans.write(out, span)?;
            out.write_all(b"\n")
        });
    }

    fn flush(&mut self) {
        self.out.flush();
    }

    fn finish(&mut self, summary: &Summary, stats: &Stats) -> io::Result<()> {
        self.out.finish_with(|out| writeln!(out, "{}", summary_to_json(summary, stats)))
    }
}

/// Writes spans as JSON objects (keys sorted), straight from the spans.
/// A process's resource is the same for all its spans: it is serialized
/// once and its text reused.
#[derive(Default)]
pub struct SpanWriter {
    resources: HashMap<*const Resource, (Arc<Resource>, Box<RawValue>)>,
}

/// Resources whose text is kept; beyond, the cache starts over.
const MAX_CACHED_RESOURCES: usize = 4096;

impl SpanWriter {
    pub fn write(&mut self, out: &mut dyn Write, span: &Span) -> io::Result<()> {
        let key = Arc::as_ptr(&span.resource);
        if !self.resources.contains_key(&key) {
            if self.resources.len() >= MAX_CACHED_RESOURCES {
                self.resources.clear();
            }
            let text = serde_json::value::to_raw_value(&AttributesJson(&span.resource.attributes))?;
            self.resources.insert(key, (span.resource.clone(), text));
        }
        let resource = &self.resources[&key].1;
        serde_json::to_writer(out, &SpanJson(span, resource)).map_err(io::Error::from)
    }
}

pub fn attributes_to_json(attributes: &Attributes) -> Value {
    serde_json::to_value(AttributesJson(attributes)).unwrap_or_default()
}

struct SpanJson<'a>(&'a Span, &'a RawValue);

impl Serialize for SpanJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let span = self.0;
        let mut map = serializer.serialize_map(Some(10))?;
        map.serialize_entry("attributes", &AttributesJson(&span.attributes))?;
        map.serialize_entry("end_time_unix_nano", &span.end_unix_nano)?;
        map.serialize_entry("kind", span.kind.as_str())?;
        map.serialize_entry("name", &span.name)?;
        map.serialize_entry("parent_span_id", &span.parent_span_id.as_ref().map(Text))?;
        map.serialize_entry("resource", self.1)?;
        map.serialize_entry("span_id", &Text(&span.span_id))?;
        map.serialize_entry("start_time_unix_nano", &span.start_unix_nano)?;
        map.serialize_entry("status", &StatusJson(&span.status))?;
        map.serialize_entry("trace_id", &Text(&span.trace_id))?;
        map.end()
    }
}

/// Attributes as an object, keys sorted.
struct AttributesJson<'a>(&'a Attributes);

impl Serialize for AttributesJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut entries: Vec<(&str, &AttrValue)> = self.0.iter().collect();
        entries.sort_unstable_by_key(|(key, _)| *key);
        let mut map = serializer.serialize_map(Some(entries.len()))?;
        for (key, value) in entries {
            match value {
                AttrValue::Str(s) => map.serialize_entry(key, s)?,
                AttrValue::Int(i) => map.serialize_entry(key, i)?,
                AttrValue::F64(f) => map.serialize_entry(key, f)?,
                AttrValue::Bool(b) => map.serialize_entry(key, b)?,
                AttrValue::StrArray(a) => map.serialize_entry(key, a)?,
                AttrValue::IntArray(a) => map.serialize_entry(key, a)?,
            }
        }
        map.end()
    }
}

struct StatusJson<'a>(&'a Status);

impl Serialize for StatusJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (code, message) = match self.0 {
            Status::Unset => ("unset", None),
            Status::Ok => ("ok", None),
            Status::Error { message } => ("error", message.as_deref()),
        };
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("code", code)?;
        if let Some(message) = message {
            map.serialize_entry("message", message)?;
        }
        map.end()
    }
}

/// A value written as its `Display` text (ids in hex), without allocating.
struct Text<'a, T>(&'a T);

impl<T: Display> Serialize for Text<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self.0)
    }
}

/// The closing summary: pytrace's figures, then what the spans add up to.
pub fn summary_to_json(summary: &Summary, stats: &Stats) -> Value {
    let mut body = serde_json::to_value(stats).unwrap_or_default();
    body["models"] = serde_json::to_value(summary.model_stats()).unwrap_or_default();
    body["routes"] = serde_json::to_value(summary.spending_routes().collect::<Vec<_>>()).unwrap_or_default();
    body["serving"] = serde_json::to_value(summary.serving).unwrap_or_default();
    json!({ "summary": body })
}
