//! Tempo's trace-by-id answers, written and read.
//!
//! Tempo answers `GET /api/traces/{id}` with `{"batches": [ResourceSpans...]}` and
//! `GET /api/v2/traces/{id}` with `{"trace": {"resourceSpans": [...]}}`, in both 2.x and 3.x (the
//! code behind both routes is the same in v2.10.8 and v3.0.2). Both are the protobuf JSON mapping
//! of OTLP's `ResourceSpans` as gogo's `jsonpb` writes it: trace and span ids in **base64**, kinds
//! and status codes as enum names (`SPAN_KIND_SERVER`, `STATUS_CODE_ERROR`), 64-bit integers as
//! strings, default values left out. [`v1`] and [`v2`] write that JSON (what the lab's store
//! answers in Tempo's place); [`read`] reads either answer, leniently: hex ids and numeric enums
//! are taken too.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};

use crate::span::{Kind, Resource, Span, Status};

/// `GET /api/traces/{id}`'s answer.
pub fn v1(spans: &[Span]) -> Value {
    json!({ "batches": resource_spans(spans) })
}

/// `GET /api/v2/traces/{id}`'s answer; a trace with no span is `{"trace": {}}`, as Tempo answers an
/// unknown trace on this route (with 200).
pub fn v2(spans: &[Span]) -> Value {
    if spans.is_empty() {
        return json!({ "trace": {}, "metrics": {} });
    }
    json!({ "trace": { "resourceSpans": resource_spans(spans) }, "metrics": {} })
}

/// A scope's name with its spans.
type Scoped<'a> = (&'a str, Vec<&'a Span>);

/// The spans grouped by resource, then by scope, in the order they came.
fn resource_spans(spans: &[Span]) -> Vec<Value> {
    let mut groups: Vec<(&Resource, Vec<Scoped>)> = Vec::new();
    for span in spans {
        let group = match groups
            .iter_mut()
            .position(|(r, _)| Arc::ptr_eq(r, &span.resource) || **r == span.resource)
        {
            Some(at) => &mut groups[at].1,
            None => {
                groups.push((&span.resource, Vec::new()));
                &mut groups.last_mut().expect("just pushed").1
            }
        };
        match group.iter_mut().find(|(scope, _)| *scope == span.scope) {
            Some((_, scoped)) => scoped.push(span),
            None => group.push((&span.scope, vec![span])),
        }
    }
    groups
        .into_iter()
        .map(|(resource, scopes)| {
            json!({
                "resource": { "attributes": key_values(resource) },
                "scopeSpans": scopes.into_iter().map(|(scope, spans)| {
                    let mut scope_spans = Map::new();
                    if !scope.is_empty() {
                        scope_spans.insert("scope".into(), json!({ "name": scope }));
                    }
                    scope_spans.insert(
                        "spans".into(),
                        Value::Array(spans.into_iter().map(span_json).collect()),
                    );
                    Value::Object(scope_spans)
                }).collect::<Vec<_>>(),
            })
        })
        .collect()
}

fn span_json(span: &Span) -> Value {
    let mut out = Map::new();
    out.insert("traceId".into(), base64_of_hex(&span.trace_id).into());
    out.insert("spanId".into(), base64_of_hex(&span.span_id).into());
    if !span.parent_span_id.is_empty() {
        out.insert(
            "parentSpanId".into(),
            base64_of_hex(&span.parent_span_id).into(),
        );
    }
    out.insert("name".into(), span.name.clone().into());
    if span.kind != Kind::Unspecified {
        out.insert("kind".into(), kind_name(span.kind).into());
    }
    out.insert("startTimeUnixNano".into(), span.start_ns.to_string().into());
    out.insert("endTimeUnixNano".into(), span.end_ns.to_string().into());
    if !span.attributes.is_empty() {
        out.insert("attributes".into(), key_values(&span.attributes));
    }
    let mut status = Map::new();
    if span.status != Status::Unset {
        status.insert("code".into(), status_name(span.status).into());
    }
    if !span.status_message.is_empty() {
        status.insert("message".into(), span.status_message.clone().into());
    }
    out.insert("status".into(), Value::Object(status));
    Value::Object(out)
}

fn key_values(attributes: &BTreeMap<String, Value>) -> Value {
    Value::Array(
        attributes
            .iter()
            .map(|(key, value)| json!({ "key": key, "value": any_value(value) }))
            .collect(),
    )
}

fn any_value(value: &Value) -> Value {
    match value {
        Value::String(s) => json!({ "stringValue": s }),
        Value::Bool(b) => json!({ "boolValue": b }),
        Value::Number(n) if n.is_i64() || n.is_u64() => json!({ "intValue": n.to_string() }),
        Value::Number(n) => json!({ "doubleValue": n }),
        Value::Array(items) => {
            json!({ "arrayValue": { "values": items.iter().map(any_value).collect::<Vec<_>>() } })
        }
        Value::Null | Value::Object(_) => json!({}),
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Unspecified => "SPAN_KIND_UNSPECIFIED",
        Kind::Internal => "SPAN_KIND_INTERNAL",
        Kind::Server => "SPAN_KIND_SERVER",
        Kind::Client => "SPAN_KIND_CLIENT",
        Kind::Producer => "SPAN_KIND_PRODUCER",
        Kind::Consumer => "SPAN_KIND_CONSUMER",
    }
}

fn status_name(status: Status) -> &'static str {
    match status {
        Status::Unset => "STATUS_CODE_UNSET",
        Status::Ok => "STATUS_CODE_OK",
        Status::Error => "STATUS_CODE_ERROR",
    }
}

fn base64_of_hex(hex: &str) -> String {
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect();
    BASE64.encode(bytes)
}

/// Reads Tempo's answer to either route (`batches`, `trace.resourceSpans`, or bare
/// `resourceSpans`) into spans. An empty trace is no spans.
pub fn read(body: &[u8]) -> Result<Vec<Span>, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let groups = value
        .get("batches")
        .or_else(|| value.get("trace").and_then(|t| t.get("resourceSpans")))
        .or_else(|| value.get("resourceSpans"));
    let groups = match groups {
        Some(Value::Array(groups)) => groups.as_slice(),
        Some(_) => return Err("its resource spans are not a list".into()),
        None if value.get("trace").is_some_and(Value::is_object) => &[],
        None => return Err("it holds neither `batches` nor `trace`".into()),
    };
    let mut spans = Vec::new();
    for group in groups {
        let resource = Arc::new(read_attributes(&group["resource"]["attributes"]));
        let scopes = group
            .get("scopeSpans")
            .or_else(|| group.get("instrumentationLibrarySpans"))
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for scoped in scopes {
            let scope = scoped
                .get("scope")
                .or_else(|| scoped.get("instrumentationLibrary"))
                .and_then(|s| s["name"].as_str())
                .unwrap_or_default()
                .to_owned();
            for span in scoped["spans"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                spans.push(read_span(span, &resource, &scope)?);
            }
        }
    }
    Ok(spans)
}

fn read_span(
    span: &Value,
    resource: &Arc<BTreeMap<String, Value>>,
    scope: &str,
) -> Result<Span, String> {
    let id = |key: &str, bytes: usize| -> Result<String, String> {
        match span.get(key).and_then(Value::as_str) {
            None | Some("") if key == "parentSpanId" => Ok(String::new()),
            None => Err(format!("a span has no {key}")),
            Some(text) => id_hex(text, bytes).ok_or_else(|| format!("{key} '{text}' is no id")),
        }
    };
    let status = &span["status"];
    Ok(Span {
        trace_id: id("traceId", 16)?,
        span_id: id("spanId", 8)?,
        parent_span_id: id("parentSpanId", 8)?,
        name: span["name"].as_str().unwrap_or_default().to_owned(),
        kind: match &span["kind"] {
            Value::String(name) => match name.as_str() {
                "SPAN_KIND_INTERNAL" => Kind::Internal,
                "SPAN_KIND_SERVER" => Kind::Server,
                "SPAN_KIND_CLIENT" => Kind::Client,
                "SPAN_KIND_PRODUCER" => Kind::Producer,
                "SPAN_KIND_CONSUMER" => Kind::Consumer,
                _ => Kind::Unspecified,
            },
            other => Kind::from_otlp(other.as_i64().unwrap_or_default() as i32),
        },
        attributes: read_attributes(&span["attributes"]),
        resource: resource.clone(),
        scope: scope.to_owned(),
        status: match &status["code"] {
            Value::String(name) => match name.as_str() {
                "STATUS_CODE_OK" => Status::Ok,
                "STATUS_CODE_ERROR" => Status::Error,
                _ => Status::Unset,
            },
            other => Status::from_otlp(other.as_i64().unwrap_or_default() as i32),
        },
        status_message: status["message"].as_str().unwrap_or_default().to_owned(),
        start_ns: number(&span["startTimeUnixNano"]),
        end_ns: number(&span["endTimeUnixNano"]),
    })
}

/// An id in base64 (as Tempo writes it) or hex, as hex.
fn id_hex(text: &str, bytes: usize) -> Option<String> {
    if text.len() == bytes * 2 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Some(text.to_ascii_lowercase());
    }
    let decoded = BASE64.decode(text).ok()?;
    (decoded.len() == bytes).then(|| crate::hex(&decoded))
}

fn number(value: &Value) -> u64 {
    match value {
        Value::String(s) => s.parse().unwrap_or_default(),
        other => other.as_u64().unwrap_or_default(),
    }
}

fn read_attributes(list: &Value) -> BTreeMap<String, Value> {
    list.as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|kv| Some((kv["key"].as_str()?.to_owned(), read_value(&kv["value"]))))
        .collect()
}

fn read_value(value: &Value) -> Value {
    if let Some(s) = value.get("stringValue") {
        return s.clone();
    }
    if let Some(b) = value.get("boolValue") {
        return b.clone();
    }
    if let Some(i) = value.get("intValue") {
        return match i {
            Value::String(s) => s.parse::<i64>().map_or(Value::Null, Value::from),
            other => other.clone(),
        };
    }
    if let Some(d) = value.get("doubleValue") {
        return d.clone();
    }
    if let Some(values) = value["arrayValue"]["values"].as_array() {
        return Value::Array(values.iter().map(read_value).collect());
    }
    Value::Null
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tempo's own example of a trace-by-id answer: `docs/sources/tempo/api_docs/
    /// pushing-spans-with-http.md` at v2.10.8 and v3.0.2 (the same text in both), the answer of
    /// `/api/v2/traces/5b8efff798038103d269b633813fc700`.
    const TEMPO_DOCS_V2: &str = r#"{"trace": {"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"my.service"}}]},"scopeSpans":[{"scope":{"name":"my.library","version":"1.0.0"},"spans":[{"traceId":"W47/95gDgQPSabYzgT/HAA==","spanId":"7uGbfsPBsQA=","name":"I am a span!","kind":"SPAN_KIND_SERVER","startTimeUnixNano":"1689969302000000000","endTimeUnixNano":"1689970000000000000","attributes":[{"key":"my.span.attr","value":{"stringValue":"some value"}}],"status":{}}]}]}]}}"#;

    #[test]
    fn tempos_documented_answer_reads() {
        let spans = read(TEMPO_DOCS_V2.as_bytes()).unwrap();
        assert_eq!(spans.len(), 1);
        let span = &spans[0];
        assert_eq!(span.trace_id, "5b8efff798038103d269b633813fc700");
        assert_eq!(span.span_id, "eee19b7ec3c1b100");
        assert_eq!(span.parent_span_id, "");
        assert_eq!(span.kind, Kind::Server);
        assert_eq!(span.status, Status::Unset);
        assert_eq!(span.service(), "my.service");
        assert_eq!(span.attr("my.span.attr"), &Value::from("some value"));
        assert_eq!(span.duration_ns(), 698_000_000_000);
    }

    #[test]
    fn what_is_written_is_tempos_shape_and_reads_back() {
        let mut spans = read(TEMPO_DOCS_V2.as_bytes()).unwrap();
        spans[0].status = Status::Error;
        spans[0].status_message = "failed".into();
        spans[0].parent_span_id = "0102030405060708".into();
        spans[0]
            .attributes
            .insert("roll.value".into(), Value::from(6));
        let written = v2(&spans);
        // Tempo's documented shape: the same keys and encodings.
        let documented: Value = serde_json::from_str(TEMPO_DOCS_V2).unwrap();
        let ours = &written["trace"]["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        let theirs = &documented["trace"]["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        for key in [
            "traceId",
            "spanId",
            "name",
            "kind",
            "startTimeUnixNano",
            "endTimeUnixNano",
        ] {
            assert_eq!(ours[key], theirs[key], "{key}");
        }
        assert_eq!(ours["parentSpanId"], "AQIDBAUGBwg=");
        assert_eq!(
            ours["status"],
            json!({"code": "STATUS_CODE_ERROR", "message": "failed"})
        );
        assert!(
            ours["attributes"]
                .as_array()
                .unwrap()
                .contains(&json!({"key": "roll.value", "value": {"intValue": "6"}}))
        );
        assert_eq!(read(written.to_string().as_bytes()).unwrap(), spans);
        // The other route's shape reads alike.
        assert_eq!(read(v1(&spans).to_string().as_bytes()).unwrap(), spans);
        assert!(v1(&spans)["batches"].is_array());
        // An unknown trace on /api/v2 is an empty trace.
        assert_eq!(read(v2(&[]).to_string().as_bytes()).unwrap(), Vec::new());
    }

    #[test]
    fn what_is_not_a_trace_is_said() {
        assert!(read(b"nope").unwrap_err().starts_with("not JSON"));
        assert!(read(b"{}").unwrap_err().contains("neither"));
        let bad_id = r#"{"batches":[{"scopeSpans":[{"spans":[{"traceId":"xyz","spanId":"7uGbfsPBsQA="}]}]}]}"#;
        assert!(
            read(bad_id.as_bytes())
                .unwrap_err()
                .contains("traceId 'xyz'")
        );
    }
}
