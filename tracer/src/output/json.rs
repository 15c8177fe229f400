//! The JSON-lines format: one object per span, then one `{"summary": …}`
//! line. The schema is documented in `docs/output.md` and kept stable.

use serde_json::{Map, Value, json};

use super::summary::Summary;
use crate::span::{AttrValue, Attributes, Span, Status};

pub fn span_to_json(span: &Span) -> Value {
    let status = match &span.status {
        Status::Unset => json!({"code": "unset"}),
        Status::Ok => json!({"code": "ok"}),
        Status::Error { message: Some(m) } => json!({"code": "error", "message": m}),
        Status::Error { message: None } => json!({"code": "error"}),
    };
    json!({
        "trace_id": span.trace_id.to_string(),
        "span_id": span.span_id.to_string(),
        "parent_span_id": span.parent_span_id.map(|id| id.to_string()),
        "name": span.name,
        "kind": span.kind.as_str(),
        "start_time_unix_nano": span.start_unix_nano,
        "end_time_unix_nano": span.end_unix_nano,
        "status": status,
        "attributes": attributes_to_json(&span.attributes),
        "resource": attributes_to_json(&span.resource.attributes),
    })
}

pub fn attributes_to_json(attributes: &Attributes) -> Value {
    let mut map = Map::new();
    for (key, value) in attributes.iter() {
        let value = match value {
            AttrValue::Str(s) => json!(s),
            AttrValue::Int(i) => json!(i),
            AttrValue::F64(f) => json!(f),
            AttrValue::Bool(b) => json!(b),
            AttrValue::StrArray(a) => json!(a),
            AttrValue::IntArray(a) => json!(a),
        };
        map.insert(key.to_owned(), value);
    }
    Value::Object(map)
}

pub fn summary_to_json(summary: &Summary) -> Value {
    let mut body = serde_json::to_value(&summary.counters).unwrap_or_default();
    body["models"] = serde_json::to_value(summary.model_stats()).unwrap_or_default();
    json!({ "summary": body })
}
