//! Spans written straight into OTLP's protobuf: an `ExportTraceServiceRequest`, byte by byte.
//!
//! The OTLP exporter of `opentelemetry-otlp` first converts each span into `opentelemetry-proto`'s
//! message structs (a `String` or `Vec` per id, name, key and value), then encodes those, then
//! frees them: for a batch of rolls that was most of the exporter thread's time. Here each span is
//! written once, as it ends ([`scope_span`]), and a batch's request is put together from those
//! bytes ([`request`]), with no structs in between. Protobuf needs every length before its
//! contents: a span's messages are written first and their length put in front after, in the one
//! byte kept for it (or more, moving the message, for one of 128 bytes or more: see [`nested`]);
//! a request, whose spans are already written, is measured first (the `*_len` functions). The
//! field numbers are those of `opentelemetry/proto/trace/v1/trace.proto`,
//! `common/v1/common.proto` and `resource/v1/resource.proto` (OTLP 1.x), and a test checks the
//! result against `opentelemetry-proto`'s own conversion.

use opentelemetry::trace::{SpanKind, Status};
use opentelemetry::{Array, InstrumentationScope, StringValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SpanData;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::wire::{bytes, framed, key, length_delimited, varint, varint_bytes, varint_len};

/// `SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK` and `..._IS_REMOTE_MASK`.
const HAS_IS_REMOTE: u32 = 0x100;
const IS_REMOTE: u32 = 0x200;

/// The resource, encoded once: every batch starts with it.
#[derive(Clone, Debug, Default)]
pub(crate) struct EncodedResource {
    /// A `Resource` message's contents.
    resource: Vec<u8>,
    schema_url: String,
}

impl EncodedResource {
    pub(crate) fn new(resource: &Resource) -> Self {
        let mut out = Vec::new();
        for (key, value) in resource.iter() {
            key_value(&mut out, 1, key.as_str(), value);
        }
        Self {
            resource: out,
            schema_url: resource.schema_url().unwrap_or_default().to_owned(),
        }
    }
}

/// The spans of one instrumentation scope in a batch, each already written by [`scope_span`].
pub(crate) type ScopeGroup = (InstrumentationScope, Vec<u8>);

/// `span` written as one `ScopeSpans.spans` field (key, length, message), appended to `out`: what
/// the batch processor keeps of a span once it has ended.
pub(crate) fn scope_span(out: &mut Vec<u8>, span: &SpanData) {
    nested(out, 2, 2, |out| write_span(out, span));
}

/// An export request for spans already written, one `ScopeSpans` per group in order (one
/// `ResourceSpans`, as the SDK's exporter makes it).
pub(crate) fn request(resource: &EncodedResource, groups: &[ScopeGroup]) -> Vec<u8> {
    let scope_lens: Vec<usize> = groups
        .iter()
        .map(|(scope, spans)| {
            framed(1, scope_len(scope))
                + spans.len()
                + string_len(3, scope.schema_url().unwrap_or_default())
        })
        .collect();
    let resource_spans = framed(1, resource.resource.len())
        + scope_lens.iter().map(|len| framed(2, *len)).sum::<usize>()
        + string_len(3, &resource.schema_url);
    let mut out = Vec::with_capacity(framed(1, resource_spans));
    length_delimited(&mut out, 1, resource_spans);
    bytes(&mut out, 1, &resource.resource);
    for ((scope, spans), len) in groups.iter().zip(scope_lens) {
        length_delimited(&mut out, 2, len);
        length_delimited(&mut out, 1, scope_len(scope));
        string(&mut out, 1, scope.name());
        string(&mut out, 2, scope.version().unwrap_or_default());
        for attribute in scope.attributes() {
            key_value(&mut out, 3, attribute.key.as_str(), &attribute.value);
        }
        out.extend_from_slice(spans);
        string(&mut out, 3, scope.schema_url().unwrap_or_default());
    }
    string(&mut out, 3, &resource.schema_url);
    out
}

fn scope_len(scope: &InstrumentationScope) -> usize {
    string_len(1, scope.name())
        + string_len(2, scope.version().unwrap_or_default())
        + scope
            .attributes()
            .map(|a| key_value_len(3, a.key.as_str(), &a.value))
            .sum::<usize>()
}

fn write_span(out: &mut Vec<u8>, span: &SpanData) {
    bytes(out, 1, &span.span_context.trace_id().to_bytes());
    bytes(out, 2, &span.span_context.span_id().to_bytes());
    trace_state(out, 3, span.span_context.trace_state());
    if span.parent_span_id != opentelemetry::trace::SpanId::INVALID {
        bytes(out, 4, &span.parent_span_id.to_bytes());
    }
    string(out, 5, &span.name);
    key(out, 6, 0);
    varint(
        out,
        match span.span_kind {
            SpanKind::Internal => 1,
            SpanKind::Server => 2,
            SpanKind::Client => 3,
            SpanKind::Producer => 4,
            SpanKind::Consumer => 5,
        },
    );
    fixed64(out, 7, nanos(span.start_time));
    fixed64(out, 8, nanos(span.end_time));
    for attribute in &span.attributes {
        key_value(out, 9, attribute.key.as_str(), &attribute.value);
    }
    uint(out, 10, span.dropped_attributes_count);
    for event in span.events.iter() {
        nested(out, 11, 1, |out| {
            fixed64(out, 1, nanos(event.timestamp));
            string(out, 2, &event.name);
            for attribute in &event.attributes {
                key_value(out, 3, attribute.key.as_str(), &attribute.value);
            }
            uint(out, 4, event.dropped_attributes_count);
        });
    }
    uint(out, 12, span.events.dropped_count);
    for link in span.links.iter() {
        nested(out, 13, 1, |out| {
            bytes(out, 1, &link.span_context.trace_id().to_bytes());
            bytes(out, 2, &link.span_context.span_id().to_bytes());
            trace_state(out, 3, link.span_context.trace_state());
            for attribute in &link.attributes {
                key_value(out, 4, attribute.key.as_str(), &attribute.value);
            }
            uint(out, 5, link.dropped_attributes_count);
            fixed32(
                out,
                6,
                context_flags(&link.span_context, link.span_context.is_remote()),
            );
        });
    }
    uint(out, 14, span.links.dropped_count);
    nested(out, 15, 1, |out| {
        if let Status::Error { description } = &span.status {
            string(out, 2, description);
        }
        let code = match &span.status {
            Status::Unset => 0,
            Status::Ok => 1,
            Status::Error { .. } => 2,
        };
        if code != 0 {
            key(out, 3, 0);
            varint(out, code);
        }
    });
    fixed32(
        out,
        16,
        context_flags(&span.span_context, span.parent_span_is_remote),
    );
}

/// A W3C `tracestate`, written only when it has entries.
#[inline]
fn trace_state(out: &mut Vec<u8>, number: u32, state: &opentelemetry::trace::TraceState) {
    if *state != opentelemetry::trace::TraceState::NONE {
        string(out, number, &state.header());
    }
}

/// `flags` of a span or a link: the trace flags, and whether the parent (or the linked span) is
/// remote.
#[inline]
fn context_flags(context: &opentelemetry::trace::SpanContext, remote: bool) -> u32 {
    let mut flags = u32::from(context.trace_flags().to_u8()) | HAS_IS_REMOTE;
    if remote {
        flags |= IS_REMOTE;
    }
    flags
}

fn key_value_len(number: u32, key: &str, value: &Value) -> usize {
    framed(number, string_len(1, key) + framed(2, any_value_len(value)))
}

#[inline]
fn key_value(out: &mut Vec<u8>, number: u32, name: &str, value: &Value) {
    nested(out, number, 1, |out| {
        string(out, 1, name);
        nested(out, 2, 1, |out| any_value(out, value));
    });
}

/// An `AnyValue`'s contents: `string_value` 1, `bool_value` 2, `int_value` 3, `double_value` 4,
/// `array_value` 5 (an `ArrayValue` of `AnyValue`s in its field 1).
fn any_value_len(value: &Value) -> usize {
    match value {
        Value::String(text) => framed(1, text.as_str().len()),
        Value::Bool(_) => 2,
        Value::I64(n) => 1 + varint_len(*n as u64),
        Value::F64(_) => 9,
        Value::Array(array) => framed(5, array_len(array)),
        _ => framed(1, value.as_str().len()),
    }
}

#[inline]
fn any_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::String(text) => bytes(out, 1, text.as_str().as_bytes()),
        Value::Bool(b) => {
            key(out, 2, 0);
            varint(out, u64::from(*b));
        }
        Value::I64(n) => {
            key(out, 3, 0);
            varint(out, *n as u64);
        }
        Value::F64(f) => {
            key(out, 4, 1);
            out.extend_from_slice(&f.to_le_bytes());
        }
        Value::Array(array) => nested(out, 5, 1, |out| {
            for item in array_items(array) {
                nested(out, 1, 1, |out| any_value(out, &item));
            }
        }),
        other => bytes(out, 1, other.as_str().as_bytes()),
    }
}

fn array_items(array: &Array) -> Vec<Value> {
    match array {
        Array::Bool(items) => items.iter().map(|b| Value::Bool(*b)).collect(),
        Array::I64(items) => items.iter().map(|n| Value::I64(*n)).collect(),
        Array::F64(items) => items.iter().map(|f| Value::F64(*f)).collect(),
        Array::String(items) => items
            .iter()
            .map(|s: &StringValue| Value::String(s.clone()))
            .collect(),
        other => vec![Value::String(other.to_string().into())],
    }
}

fn array_len(array: &Array) -> usize {
    array_items(array)
        .iter()
        .map(|item| framed(1, any_value_len(item)))
        .sum()
}

#[inline]
fn nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| {
        d.as_secs()
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::from(d.subsec_nanos()))
    })
}

// Fields as OTLP's messages hold them: proto3 leaves out scalars and strings that hold their
// default.

/// A length-delimited field whose contents `write` writes: `room` bytes are kept for the length
/// (one for a small message, two for a span), and the contents are moved if it needs more or less.
#[inline]
fn nested(out: &mut Vec<u8>, number: u32, room: usize, write: impl FnOnce(&mut Vec<u8>)) {
    key(out, number, 2);
    let at = out.len();
    for _ in 0..room {
        out.push(0);
    }
    write(out);
    let end = out.len();
    let len = end - at - room;
    // The lengths that fit the room kept: most of them.
    if room == 1 && len < 0x80 {
        out[at] = len as u8;
        return;
    }
    if room == 2 && (0x80..0x4000).contains(&len) {
        out[at] = (len as u8 & 0x7f) | 0x80;
        out[at + 1] = (len >> 7) as u8;
        return;
    }
    let (prefix, used) = varint_bytes(len as u64);
    if used > room {
        out.resize(end + used - room, 0);
    }
    out.copy_within(at + room..end, at + used);
    out.truncate(end + used - room);
    out[at..at + used].copy_from_slice(&prefix[..used]);
}

#[inline]
fn string(out: &mut Vec<u8>, number: u32, value: &str) {
    if !value.is_empty() {
        bytes(out, number, value.as_bytes());
    }
}

fn string_len(number: u32, value: &str) -> usize {
    if value.is_empty() {
        0
    } else {
        framed(number, value.len())
    }
}

#[inline]
fn uint(out: &mut Vec<u8>, number: u32, value: u32) {
    if value != 0 {
        key(out, number, 0);
        varint(out, u64::from(value));
    }
}

#[inline]
fn fixed64(out: &mut Vec<u8>, number: u32, value: u64) {
    if value != 0 {
        key(out, number, 1);
        out.extend_from_slice(&value.to_le_bytes());
    }
}

#[inline]
fn fixed32(out: &mut Vec<u8>, number: u32, value: u32) {
    if value != 0 {
        key(out, number, 5);
        out.extend_from_slice(&value.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::time::Duration;

    use opentelemetry::trace::{Event, Link, SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
    use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    use prost::Message as _;

    use opentelemetry::KeyValue;

    use super::*;

    fn span(id: u64, scope: &InstrumentationScope, parent: u64) -> SpanData {
        let mut events = SpanEvents::default();
        events.events.push(Event::new(
            "something",
            UNIX_EPOCH + Duration::from_nanos(1_500),
            vec![KeyValue::new("n", 3)],
            1,
        ));
        let mut links = SpanLinks::default();
        links.links.push(Link::new(
            SpanContext::new(
                TraceId::from(7),
                SpanId::from(8),
                TraceFlags::SAMPLED,
                true,
                TraceState::from_key_value([("k", "v")]).unwrap(),
            ),
            vec![KeyValue::new("l", true)],
            0,
        ));
        SpanData {
            span_context: SpanContext::new(
                TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
                SpanId::from(id),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: SpanId::from(parent),
            parent_span_is_remote: parent == 1,
            span_kind: if parent == 0 {
                SpanKind::Server
            } else {
                SpanKind::Internal
            },
            name: Cow::Owned(format!("span {id}")),
            start_time: UNIX_EPOCH + Duration::from_nanos(1_000 + id),
            end_time: UNIX_EPOCH + Duration::from_nanos(2_000_000_000_000_000_000),
            attributes: vec![
                KeyValue::new("roll.value", 4),
                KeyValue::new("die.type", "fair"),
                KeyValue::new("ratio", 0.5),
                KeyValue::new("ok", false),
                KeyValue::new("negative", -7),
                // Lengths of two and three bytes.
                KeyValue::new("long", "x".repeat(200)),
                KeyValue::new("longer", "y".repeat(20_000)),
                KeyValue::new(
                    "list",
                    Value::Array(Array::String(vec!["a".into(), "b".into()])),
                ),
            ],
            dropped_attributes_count: 2,
            events,
            links,
            status: if id.is_multiple_of(2) {
                Status::error("it failed")
            } else {
                Status::Unset
            },
            instrumentation_scope: scope.clone(),
        }
    }

    #[test]
    fn the_bytes_decode_to_what_opentelemetry_proto_makes_of_the_same_spans() {
        let resource = Resource::builder_empty()
            .with_attributes([
                KeyValue::new("service.name", "dice-roller"),
                KeyValue::new("service.version", "0.1.0"),
            ])
            .build();
        let roller = InstrumentationScope::builder("dice-roller")
            .with_version("1")
            .build();
        let other = InstrumentationScope::builder("other")
            .with_attributes([KeyValue::new("x", 1)])
            .with_schema_url("https://opentelemetry.io/schemas/1.37.0")
            .build();
        // A span under 128 bytes, whose length takes one byte of the two kept for it.
        let mut small = span(5, &roller, 4);
        small.attributes.clear();
        small.events = SpanEvents::default();
        small.links = SpanLinks::default();
        small.status = Status::Unset;
        let spans = vec![
            span(1, &roller, 0),
            span(2, &roller, 1),
            span(3, &other, 2),
            span(4, &roller, 3),
            small,
        ];
        let mut groups: Vec<ScopeGroup> = Vec::new();
        for span in &spans {
            let at = match groups
                .iter()
                .position(|(scope, _)| scope == &span.instrumentation_scope)
            {
                Some(at) => at,
                None => {
                    groups.push((span.instrumentation_scope.clone(), Vec::new()));
                    groups.len() - 1
                }
            };
            scope_span(&mut groups[at].1, span);
        }
        let ours = request(&EncodedResource::new(&resource), &groups);
        let theirs = ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(
                spans,
                &ResourceAttributesWithSchema::from(&resource),
            ),
        };
        let decoded = ExportTraceServiceRequest::decode(ours.as_slice()).expect("valid protobuf");
        assert_eq!(decoded, theirs);
        assert_eq!(
            ours.len(),
            theirs.encoded_len(),
            "every length was measured right"
        );
    }
}
