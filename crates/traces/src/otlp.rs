//! OTLP/HTTP trace export requests, decoded into spans.
//!
//! The OTLP specification sends `ExportTraceServiceRequest` either as binary protobuf
//! (`application/x-protobuf`) or as JSON (`application/json`: lowerCamelCase keys, trace and span
//! ids in hex, enums as numbers, 64-bit integers as strings); [`decode`] reads both. Every span
//! carries its resource's attributes, shared by the spans of one resource.

use std::collections::BTreeMap;
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message as _;
use serde_json::Value;

use crate::span::{Kind, Span, Status};

/// How an export request's body is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    /// The encoding a `Content-Type` names, if it is one OTLP/HTTP uses.
    pub fn of_content_type(content_type: &str) -> Option<Self> {
        let media = content_type.split(';').next().unwrap_or_default().trim();
        if media.eq_ignore_ascii_case("application/x-protobuf") {
            Some(Self::Protobuf)
        } else if media.eq_ignore_ascii_case("application/json") {
            Some(Self::Json)
        } else {
            None
        }
    }
}

/// A body that is not an export request in its encoding.
#[derive(Debug, thiserror::Error)]
#[error("not an OTLP ExportTraceServiceRequest in {encoding:?}: {detail}")]
pub struct DecodeError {
    pub encoding: Encoding,
    pub detail: String,
}

/// `google.rpc.Status`, which OTLP/HTTP answers a refused request with (in protobuf, or in JSON
/// with the same fields).
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

/// The spans of an export request.
pub fn decode(body: &[u8], encoding: Encoding) -> Result<Vec<Span>, DecodeError> {
    spans(request(body, encoding)?).map_err(|detail| DecodeError { encoding, detail })
}

/// An export request, as OTLP's protobuf types.
pub fn request(body: &[u8], encoding: Encoding) -> Result<ExportTraceServiceRequest, DecodeError> {
    let fail = |detail: String| DecodeError { encoding, detail };
    match encoding {
        Encoding::Protobuf => {
            ExportTraceServiceRequest::decode(body).map_err(|e| fail(e.to_string()))
        }
        Encoding::Json => serde_json::from_slice(body).map_err(|e| fail(e.to_string())),
    }
}

/// Flattens a request into spans, checking the ids.
fn spans(request: ExportTraceServiceRequest) -> Result<Vec<Span>, String> {
    let mut out = Vec::new();
    for resource_spans in request.resource_spans {
        let resource = Arc::new(
            resource_spans
                .resource
                .map(|r| attributes(r.attributes))
                .unwrap_or_default(),
        );
        for scope_spans in resource_spans.scope_spans {
            let scope = scope_spans.scope.map(|s| s.name).unwrap_or_default();
            for span in scope_spans.spans {
                if span.trace_id.len() != 16 || span.span_id.len() != 8 {
                    return Err(format!(
                        "span '{}' has a trace id of {} bytes and a span id of {} (16 and 8 expected)",
                        span.name,
                        span.trace_id.len(),
                        span.span_id.len()
                    ));
                }
                let status = span.status.unwrap_or_default();
                out.push(Span {
                    trace_id: crate::hex(&span.trace_id),
                    span_id: crate::hex(&span.span_id),
                    parent_span_id: crate::hex(&span.parent_span_id),
                    name: span.name,
                    kind: Kind::from_otlp(span.kind),
                    attributes: attributes(span.attributes),
                    resource: resource.clone(),
                    scope: scope.clone(),
                    status: Status::from_otlp(status.code),
                    status_message: status.message,
                    start_ns: span.start_time_unix_nano,
                    end_ns: span.end_time_unix_nano,
                });
            }
        }
    }
    Ok(out)
}

fn attributes(list: Vec<KeyValue>) -> BTreeMap<String, Value> {
    list.into_iter()
        .map(|kv| (kv.key, kv.value.map_or(Value::Null, value)))
        .collect()
}

fn value(any: AnyValue) -> Value {
    match any.value {
        Some(any_value::Value::StringValue(s)) => Value::String(s),
        Some(any_value::Value::BoolValue(b)) => Value::Bool(b),
        Some(any_value::Value::IntValue(i)) => Value::from(i),
        Some(any_value::Value::DoubleValue(d)) => Value::from(d),
        Some(any_value::Value::ArrayValue(a)) => {
            Value::Array(a.values.into_iter().map(value).collect())
        }
        Some(other) => Value::String(format!("{other:?}")),
        None => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request shaped as the OTLP specification's JSON example (open-telemetry/opentelemetry-proto
    /// `examples/trace.json`): one resource, one scope, one span.
    const SPEC_EXAMPLE: &str = r#"{
      "resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]},
        "scopeSpans": [{
          "scope": {"name": "my.library", "version": "1.0.0"},
          "spans": [{
            "traceId": "5b8efff798038103d269b633813fc60c",
            "spanId": "eee19b7ec3c1b174",
            "parentSpanId": "eee19b7ec3c1b173",
            "name": "I'm a server span",
            "startTimeUnixNano": "1544712660000000000",
            "endTimeUnixNano": "1544712661000000000",
            "kind": 2,
            "attributes": [
              {"key": "my.span.attr", "value": {"stringValue": "some value"}},
              {"key": "count", "value": {"intValue": "42"}}
            ],
            "status": {"code": 2, "message": "broken"}
          }]
        }]
      }]
    }"#;

    #[test]
    fn the_specifications_json_example_decodes() {
        let spans = decode(SPEC_EXAMPLE.as_bytes(), Encoding::Json).unwrap();
        assert_eq!(spans.len(), 1);
        let span = &spans[0];
        assert_eq!(span.trace_id, "5b8efff798038103d269b633813fc60c");
        assert_eq!(span.span_id, "eee19b7ec3c1b174");
        assert_eq!(span.parent_span_id, "eee19b7ec3c1b173");
        assert_eq!(span.kind, Kind::Server);
        assert_eq!(span.service(), "my.service");
        assert_eq!(span.scope, "my.library");
        assert_eq!(span.attr("count"), &Value::from(42));
        assert_eq!(span.status, Status::Error);
        assert_eq!(span.status_message, "broken");
        assert_eq!(span.duration_ns(), 1_000_000_000);
    }

    #[test]
    fn the_same_request_in_protobuf_decodes_alike() {
        let request: ExportTraceServiceRequest = serde_json::from_str(SPEC_EXAMPLE).unwrap();
        let from_json = decode(SPEC_EXAMPLE.as_bytes(), Encoding::Json).unwrap();
        let from_protobuf = decode(&request.encode_to_vec(), Encoding::Protobuf).unwrap();
        assert_eq!(from_json, from_protobuf);
    }

    #[test]
    fn bad_bodies_say_why() {
        for (body, encoding) in [
            (&b"{not json"[..], Encoding::Json),
            (b"\xff\xff\xff", Encoding::Protobuf),
            (
                br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"abcd","spanId":"eee19b7ec3c1b174"}]}]}]}"#,
                Encoding::Json,
            ),
        ] {
            let error = decode(body, encoding).unwrap_err().to_string();
            assert!(error.starts_with("not an OTLP ExportTraceServiceRequest"), "{error}");
        }
        assert_eq!(
            Encoding::of_content_type("application/x-protobuf"),
            Some(Encoding::Protobuf)
        );
        assert_eq!(
            Encoding::of_content_type("application/json; charset=utf-8"),
            Some(Encoding::Json)
        );
        assert_eq!(Encoding::of_content_type("text/plain"), None);
    }
}
