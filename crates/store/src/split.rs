//! An OTLP export request cut into one piece per trace, without decoding it.
//!
//! The store keeps what the services sent, as they sent it: protobuf bytes, which take a fraction
//! of the memory of decoded spans and are exactly what the budget counts. An
//! `ExportTraceServiceRequest` is read at the level of protobuf's wire format: each
//! `ResourceSpans` is walked down to its spans, whose `trace_id` (field 1) and `span_id` (field 2)
//! are checked, and for every trace a `ResourceSpans` is written back holding the resource, the
//! scope and only that trace's spans, byte for byte. Reading a trace frames its pieces as a
//! request again ([`request`]); nothing is decoded until someone asks.

use telemetry::wire;

/// A trace id as bytes.
pub(crate) type TraceKey = [u8; 16];

/// One trace's part of one `ResourceSpans`: a whole `ResourceSpans` message.
pub(crate) type Piece = Vec<u8>;

/// The body's pieces, each with its trace, and how many spans they hold; or why the body is not
/// an export request.
pub(crate) fn split(body: &[u8]) -> Result<(Vec<(TraceKey, Piece)>, u64), String> {
    let mut pieces = Vec::new();
    let mut spans = 0;
    for field in Fields::new(body) {
        let (number, value) = field?;
        if let (1, Value::Bytes(resource_spans)) = (number, value) {
            spans += split_resource(resource_spans, &mut pieces)?;
        }
    }
    Ok((pieces, spans))
}

/// A request made of `pieces`: `ExportTraceServiceRequest` with each as a `resource_spans`.
pub(crate) fn request(pieces: &[Piece]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pieces.iter().map(|p| p.len() + 6).sum());
    for piece in pieces {
        wire::bytes(&mut out, 1, piece);
    }
    out
}

/// The spans of one `ResourceSpans` by trace, each trace's written back as a `ResourceSpans`;
/// returns how many spans there were.
fn split_resource(message: &[u8], pieces: &mut Vec<(TraceKey, Piece)>) -> Result<u64, String> {
    // The resource and the schema URL, kept as they are, and each scope's spans by trace.
    let mut shared: Vec<(u32, &[u8])> = Vec::new();
    let mut scopes: Vec<Scope> = Vec::new();
    for field in Fields::new(message) {
        match field? {
            (2, Value::Bytes(scope_spans)) => scopes.push(Scope::read(scope_spans)?),
            (number, Value::Bytes(bytes)) => shared.push((number, bytes)),
            (number, _) => return Err(format!("ResourceSpans field {number} is not bytes")),
        }
    }
    let mut traces: Vec<TraceKey> = Vec::new();
    for scope in &scopes {
        for (trace, _) in &scope.spans {
            if !traces.contains(trace) {
                traces.push(*trace);
            }
        }
    }
    for trace in traces {
        // Each scope's message for this trace, measured first, so that the piece is written once
        // into a buffer of its exact size.
        let inner: Vec<Option<usize>> = scopes
            .iter()
            .map(|scope| {
                let spans: usize = scope
                    .spans
                    .iter()
                    .filter(|(t, _)| *t == trace)
                    .map(|(_, span)| wire::framed(2, span.len()))
                    .sum();
                let shared: usize = scope
                    .shared
                    .iter()
                    .map(|(n, b)| wire::framed(*n, b.len()))
                    .sum();
                (spans > 0).then_some(shared + spans)
            })
            .collect();
        let size = shared
            .iter()
            .map(|(n, b)| wire::framed(*n, b.len()))
            .sum::<usize>()
            + inner
                .iter()
                .flatten()
                .map(|len| wire::framed(2, *len))
                .sum::<usize>();
        let mut piece = Vec::with_capacity(size);
        for (number, bytes) in &shared {
            wire::bytes(&mut piece, *number, bytes);
        }
        for (scope, len) in scopes.iter().zip(&inner) {
            let Some(len) = len else { continue };
            wire::length_delimited(&mut piece, 2, *len);
            for (number, bytes) in &scope.shared {
                wire::bytes(&mut piece, *number, bytes);
            }
            for (_, span) in scope.spans.iter().filter(|(t, _)| *t == trace) {
                wire::bytes(&mut piece, 2, span);
            }
        }
        debug_assert_eq!(piece.len(), size);
        pieces.push((trace, piece));
    }
    Ok(scopes.iter().map(|s| s.spans.len() as u64).sum())
}

/// A `ScopeSpans`: its scope and schema URL, and its spans with their traces.
struct Scope<'a> {
    shared: Vec<(u32, &'a [u8])>,
    spans: Vec<(TraceKey, &'a [u8])>,
}

impl<'a> Scope<'a> {
    fn read(message: &'a [u8]) -> Result<Self, String> {
        let mut scope = Scope {
            shared: Vec::new(),
            spans: Vec::new(),
        };
        for field in Fields::new(message) {
            match field? {
                (2, Value::Bytes(span)) => scope.spans.push((trace_of(span)?, span)),
                (number, Value::Bytes(bytes)) => scope.shared.push((number, bytes)),
                (number, _) => return Err(format!("ScopeSpans field {number} is not bytes")),
            }
        }
        Ok(scope)
    }
}

/// A span's trace id, after checking that it has a 16-byte trace id and an 8-byte span id.
fn trace_of(span: &[u8]) -> Result<TraceKey, String> {
    let (mut trace, mut span_id) = (None, None);
    for field in Fields::new(span) {
        match field? {
            (1, Value::Bytes(bytes)) => trace = Some(bytes),
            (2, Value::Bytes(bytes)) => span_id = Some(bytes),
            _ => {}
        }
    }
    let trace = trace.unwrap_or_default();
    let span_id = span_id.unwrap_or_default();
    match (TraceKey::try_from(trace), span_id.len()) {
        (Ok(key), 8) if key != [0; 16] => Ok(key),
        _ => Err(format!(
            "a span has a trace id of {} bytes and a span id of {} (16 and 8 expected, not all zero)",
            trace.len(),
            span_id.len()
        )),
    }
}

/// A field's value, as far as the wire format says.
enum Value<'a> {
    Number,
    Bytes(&'a [u8]),
}

/// The fields of a protobuf message, in order, each with its number.
struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    fn new(message: &'a [u8]) -> Self {
        Self { rest: message }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.rest.len() {
            return Err("a field runs past the end of its message".into());
        }
        let (taken, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(taken)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.take(1)?.first().expect("one byte taken");
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("a varint longer than ten bytes".into())
    }

    fn field(&mut self) -> Result<(u32, Value<'a>), String> {
        let key = self.varint()?;
        let number = u32::try_from(key >> 3).map_err(|_| "a field number out of range")?;
        if number == 0 {
            return Err("a field numbered 0".into());
        }
        let value = match key & 7 {
            0 => self.varint().map(|_| Value::Number)?,
            1 => self.take(8).map(|_| Value::Number)?,
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| "a length out of range")?;
                Value::Bytes(self.take(len)?)
            }
            5 => self.take(4).map(|_| Value::Number)?,
            other => {
                return Err(format!(
                    "field {number} has wire type {other}, which OTLP does not use"
                ));
            }
        };
        Ok((number, value))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Value<'a>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let field = self.field();
        if field.is_err() {
            self.rest = &[];
        }
        Some(field)
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{
        AnyValue, InstrumentationScope, KeyValue, any_value,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message as _;

    use super::*;

    fn span(trace: u8, id: u8, name: &str) -> Span {
        Span {
            trace_id: vec![trace; 16],
            span_id: vec![id; 8],
            name: name.into(),
            start_time_unix_nano: 1,
            end_time_unix_nano: 2,
            ..Span::default()
        }
    }

    fn resource(name: &str, scopes: Vec<Vec<Span>>) -> ResourceSpans {
        ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(name.into())),
                    }),
                    ..KeyValue::default()
                }],
                ..Resource::default()
            }),
            scope_spans: scopes
                .into_iter()
                .enumerate()
                .map(|(i, spans)| ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: format!("scope {i}"),
                        ..InstrumentationScope::default()
                    }),
                    spans,
                    schema_url: String::new(),
                })
                .collect(),
            schema_url: "https://opentelemetry.io/schemas/1.37.0".into(),
        }
    }

    #[test]
    fn each_trace_gets_its_spans_with_their_resource_and_scope() {
        let sent = ExportTraceServiceRequest {
            resource_spans: vec![
                resource(
                    "a",
                    vec![
                        vec![span(1, 1, "x"), span(2, 2, "y")],
                        vec![span(1, 3, "z")],
                    ],
                ),
                resource("b", vec![vec![span(2, 4, "w")]]),
            ],
        };
        let (pieces, spans) = split(&sent.encode_to_vec()).unwrap();
        assert_eq!(spans, 4);
        let keys: Vec<u8> = pieces.iter().map(|(k, _)| k[0]).collect();
        assert_eq!(keys, [1, 2, 2]);
        let ones: Vec<Piece> = pieces
            .iter()
            .filter(|(k, _)| k[0] == 1)
            .map(|(_, p)| p.clone())
            .collect();
        let back = ExportTraceServiceRequest::decode(request(&ones).as_slice()).unwrap();
        let one = &back.resource_spans[0];
        assert_eq!(one.resource, sent.resource_spans[0].resource);
        assert_eq!(one.schema_url, sent.resource_spans[0].schema_url);
        let names: Vec<(&str, &str)> = one
            .scope_spans
            .iter()
            .flat_map(|s| {
                s.spans
                    .iter()
                    .map(move |span| (s.scope.as_ref().unwrap().name.as_str(), span.name.as_str()))
            })
            .collect();
        assert_eq!(names, [("scope 0", "x"), ("scope 1", "z")]);
        let twos: Vec<Piece> = pieces
            .iter()
            .filter(|(k, _)| k[0] == 2)
            .map(|(_, p)| p.clone())
            .collect();
        let back = ExportTraceServiceRequest::decode(request(&twos).as_slice()).unwrap();
        assert_eq!(back.resource_spans.len(), 2);
        assert_eq!(
            back.resource_spans[1].scope_spans[0].spans[0],
            span(2, 4, "w")
        );
    }

    #[test]
    fn bad_ids_and_broken_bytes_are_refused() {
        let mut short = span(1, 1, "x");
        short.trace_id.pop();
        let request = ExportTraceServiceRequest {
            resource_spans: vec![resource("a", vec![vec![short]])],
        };
        assert!(
            split(&request.encode_to_vec())
                .unwrap_err()
                .contains("15 bytes")
        );
        let zero = ExportTraceServiceRequest {
            resource_spans: vec![resource("a", vec![vec![span(0, 1, "x")]])],
        };
        assert!(split(&zero.encode_to_vec()).is_err());
        let good = ExportTraceServiceRequest {
            resource_spans: vec![resource("a", vec![vec![span(1, 1, "x")]])],
        }
        .encode_to_vec();
        assert!(split(&good[..good.len() - 3]).is_err(), "cut short");
        assert!(split(b"\xff\xff\xff not protobuf").is_err());
        assert!(split(&[0x0b]).is_err(), "a group");
        assert_eq!(
            split(&[]).unwrap(),
            (Vec::new(), 0),
            "an empty request is no spans"
        );
    }
}
