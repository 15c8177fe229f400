//! pytrace's spans and resources as OTLP protobuf messages (the
//! `opentelemetry-proto` types; prost does the encoding). Pure.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource as ProtoResource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span as ProtoSpan, Status as ProtoStatus, span, status,
};
use pytrace_core::model::{AttrValue, Attributes, Resource, Span, SpanKind, Status};

/// The instrumentation scope of everything pytrace exports.
pub fn scope() -> InstrumentationScope {
    InstrumentationScope { name: "pytrace".into(), version: env!("CARGO_PKG_VERSION").into(), ..Default::default() }
}

pub fn value(value: &AttrValue) -> AnyValue {
    let value = match value {
        AttrValue::Str(s) => any_value::Value::StringValue(s.clone()),
        AttrValue::Int(i) => any_value::Value::IntValue(*i),
        AttrValue::F64(f) => any_value::Value::DoubleValue(*f),
        AttrValue::Bool(b) => any_value::Value::BoolValue(*b),
        AttrValue::StrArray(items) => any_value::Value::ArrayValue(ArrayValue {
            values: items.iter().map(|s| AnyValue { value: Some(any_value::Value::StringValue(s.clone())) }).collect(),
        }),
        AttrValue::IntArray(items) => any_value::Value::ArrayValue(ArrayValue {
            values: items.iter().map(|i| AnyValue { value: Some(any_value::Value::IntValue(*i)) }).collect(),
        }),
    };
    AnyValue { value: Some(value) }
}

pub fn key_value(key: &str, v: &AttrValue) -> KeyValue {
    KeyValue { key: key.to_owned(), value: Some(value(v)), ..Default::default() }
}

pub fn attributes(attributes: &Attributes) -> Vec<KeyValue> {
    attributes.iter().map(|(key, v)| key_value(key, v)).collect()
}

pub fn resource(resource: &Resource) -> ProtoResource {
    ProtoResource { attributes: attributes(&resource.attributes), ..Default::default() }
}

pub fn span(span: &Span) -> ProtoSpan {
    let kind = match span.kind {
        SpanKind::Internal => span::SpanKind::Internal,
        SpanKind::Server => span::SpanKind::Server,
        SpanKind::Client => span::SpanKind::Client,
    };
    let (code, message) = match &span.status {
        Status::Unset => (status::StatusCode::Unset, String::new()),
        Status::Ok => (status::StatusCode::Ok, String::new()),
        Status::Error { message } => (status::StatusCode::Error, message.clone().unwrap_or_default()),
    };
    ProtoSpan {
        trace_id: span.trace_id.0.to_vec(),
        span_id: span.span_id.0.to_vec(),
        parent_span_id: span.parent_span_id.map(|id| id.0.to_vec()).unwrap_or_default(),
        name: span.name.clone(),
        kind: kind as i32,
        start_time_unix_nano: span.start_unix_nano,
        end_time_unix_nano: span.end_unix_nano,
        attributes: attributes(&span.attributes),
        status: Some(ProtoStatus { message, code: code as i32 }),
        ..Default::default()
    }
}

/// One export request for `spans`, grouped by the resource (process) each
/// came from, in first-seen order.
pub fn traces_request(spans: &[(Arc<Resource>, ProtoSpan)]) -> ExportTraceServiceRequest {
    let mut groups: Vec<(&Arc<Resource>, Vec<ProtoSpan>)> = Vec::new();
    for (resource, proto) in spans {
        match groups.iter_mut().find(|(r, _)| Arc::ptr_eq(r, resource) || **r == *resource) {
            Some((_, list)) => list.push(proto.clone()),
            None => groups.push((resource, vec![proto.clone()])),
        }
    }
    ExportTraceServiceRequest {
        resource_spans: groups
            .into_iter()
            .map(|(resource_of_group, spans)| ResourceSpans {
                resource: Some(resource(resource_of_group)),
                scope_spans: vec![ScopeSpans { scope: Some(scope()), spans, ..Default::default() }],
                ..Default::default()
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use pytrace_core::model::semconv as sc;
    use pytrace_core::model::{SpanId, TraceId};

    use super::*;

    fn span_of(pid: i64, resource: &Arc<Resource>) -> Span {
        let mut attributes = Attributes::default();
        attributes.set(sc::HTTP_RESPONSE_STATUS_CODE, 503_i64);
        attributes.set(sc::GEN_AI_RESPONSE_FINISH_REASONS, AttrValue::StrArray(vec!["stop".into()]));
        attributes.set(sc::THREAD_ID, pid);
        Span {
            trace_id: TraceId([1; 16]),
            span_id: SpanId([2; 8]),
            parent_span_id: Some(SpanId([3; 8])),
            name: "POST".into(),
            kind: SpanKind::Client,
            start_unix_nano: 10,
            end_unix_nano: 20,
            status: Status::Error { message: Some("503".into()) },
            attributes,
            resource: resource.clone(),
        }
    }

    fn resource_of(pid: i64) -> Arc<Resource> {
        let mut resource = Resource::default();
        resource.attributes.set(sc::PROCESS_PID, pid);
        Arc::new(resource)
    }

    #[test]
    fn spans_keep_ids_times_kind_status_and_typed_attributes() {
        let proto = span(&span_of(1, &resource_of(1)));
        assert_eq!((proto.trace_id, proto.span_id, proto.parent_span_id), (vec![1; 16], vec![2; 8], vec![3; 8]));
        assert_eq!((proto.start_time_unix_nano, proto.end_time_unix_nano), (10, 20));
        assert_eq!(proto.kind, span::SpanKind::Client as i32);
        assert_eq!(proto.status.unwrap().code, status::StatusCode::Error as i32);
        assert_eq!(proto.attributes[0].key, "http.response.status_code");
        assert_eq!(proto.attributes[0].value.as_ref().unwrap().value, Some(any_value::Value::IntValue(503)));
        assert!(matches!(proto.attributes[1].value.as_ref().unwrap().value, Some(any_value::Value::ArrayValue(_))));
    }

    #[test]
    fn one_resource_per_process_with_the_pytrace_scope() {
        let (first, second) = (resource_of(1), resource_of(2));
        let spans: Vec<_> = [&first, &second, &first]
            .iter()
            .map(|r| ((*r).clone(), span(&span_of(r.attributes.int(sc::PROCESS_PID).unwrap(), r))))
            .collect();
        let request = traces_request(&spans);
        assert_eq!(request.resource_spans.len(), 2);
        assert_eq!(request.resource_spans[0].scope_spans[0].spans.len(), 2);
        assert_eq!(request.resource_spans[0].scope_spans[0].scope.as_ref().unwrap().name, "pytrace");
    }
}
