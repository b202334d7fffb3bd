//! Traces as the lab's tools read them, written once for the store, the frontend and the tests.
//!
//! [`span::Span`] is one span with what a tool looks at: ids in hex, name, kind, attributes, its
//! resource's attributes (`service.name`), status and times. [`otlp`] decodes an OTLP/HTTP export
//! request (protobuf or JSON, as the OTLP specification encodes them) into spans; [`tempo`] writes
//! spans as Tempo's trace-by-id API answers (`/api/traces/{id}` and `/api/v2/traces/{id}`) and
//! reads either answer back; [`tree::Trace`] is the spans of one trace as a tree.

pub mod otlp;
pub mod span;
pub mod tempo;
pub mod tree;

pub use span::{Kind, Span, Status};
pub use tree::Trace;

/// Whether `id` is a trace id as the lab writes them: 32 hexadecimal digits.
pub fn is_trace_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Bytes as lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0xf)] as char);
    }
    out
}
