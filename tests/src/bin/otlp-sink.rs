//! A minimal OTLP/HTTP endpoint for the benchmark: it accepts `POST /v1/traces`, counts requests,
//! bytes and spans, and answers as a collector would. It decodes nothing but the spans' framing
//! (a walk over protobuf's wire format), so it takes little CPU from the services under test and
//! is never what limits their exports. `GET /counts` answers its counts as JSON, so a benchmark
//! can check that every span arrived; they are printed too when it is stopped.
//!
//! Usage: `otlp-sink [ADDRESS]` (default 127.0.0.1:4318).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use warp::Filter as _;

#[derive(Default)]
struct Counts {
    requests: AtomicU64,
    bytes: AtomicU64,
    spans: AtomicU64,
}

impl Counts {
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "requests": self.requests.load(Ordering::Relaxed),
            "bytes": self.bytes.load(Ordering::Relaxed),
            "spans": self.spans.load(Ordering::Relaxed),
        })
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:4318".to_owned());
    let counts = Arc::new(Counts::default());
    let export = {
        let counts = counts.clone();
        warp::post()
            .and(warp::path!("v1" / "traces"))
            .and(warp::body::bytes())
            .map(move |body: Bytes| {
                counts.requests.fetch_add(1, Ordering::Relaxed);
                counts.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
                counts.spans.fetch_add(spans(&body), Ordering::Relaxed);
                warp::reply::with_header(Vec::<u8>::new(), "content-type", "application/x-protobuf")
            })
    };
    let read = {
        let counts = counts.clone();
        warp::get()
            .and(warp::path!("counts"))
            .map(move || warp::reply::json(&counts.json()))
    };
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .unwrap_or_else(|e| panic!("cannot listen on {address}: {e}"));
    eprintln!("otlp-sink listening on {address}");
    warp::serve(export.or(read))
        .incoming(listener)
        .graceful(lab_http::server::shutdown_signal())
        .run()
        .await;
    println!("otlp-sink: {}", counts.json());
}

/// The spans of an `ExportTraceServiceRequest`: field 2 of every `ScopeSpans` (field 2) of every
/// `ResourceSpans` (field 1).
fn spans(request: &[u8]) -> u64 {
    let mut count = 0;
    for resource in fields(request, 1) {
        for scope in fields(resource, 2) {
            count += fields(scope, 2).count() as u64;
        }
    }
    count
}

/// The length-delimited fields numbered `wanted` of a message; stops at anything malformed.
fn fields(mut message: &[u8], wanted: u64) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        while !message.is_empty() {
            let key = varint(&mut message)?;
            let len = match key & 7 {
                0 => {
                    varint(&mut message)?;
                    0
                }
                1 => 8,
                2 => usize::try_from(varint(&mut message)?).ok()?,
                5 => 4,
                _ => return None,
            };
            if key & 7 == 0 {
                continue;
            }
            let (value, rest) = message.split_at_checked(len)?;
            message = rest;
            if key >> 3 == wanted && key & 7 == 2 {
                return Some(value);
            }
        }
        None
    })
}

fn varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}
