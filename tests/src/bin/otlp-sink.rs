//! A minimal OTLP/HTTP endpoint for the benchmark: it accepts `POST /v1/traces`, counts requests
//! and bytes, and answers as a collector would, without decoding, so it takes as little CPU as
//! possible from the services under test. It prints its counts when stopped with SIGINT or SIGTERM.
//!
//! Usage: `otlp-sink [ADDRESS]` (default 127.0.0.1:4318).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use warp::Filter as _;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:4318".to_owned());
    let requests = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let route = {
        let (requests, bytes) = (requests.clone(), bytes.clone());
        warp::post()
            .and(warp::path!("v1" / "traces"))
            .and(warp::body::bytes())
            .map(move |body: Bytes| {
                requests.fetch_add(1, Ordering::Relaxed);
                bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
                warp::reply::with_header(Vec::<u8>::new(), "content-type", "application/x-protobuf")
            })
    };
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .unwrap_or_else(|e| panic!("cannot listen on {address}: {e}"));
    eprintln!("otlp-sink listening on {address}");
    warp::serve(route)
        .incoming(listener)
        .graceful(lab_http::server::shutdown_signal())
        .run()
        .await;
    println!(
        "otlp-sink: {} export requests, {} bytes",
        requests.load(Ordering::Relaxed),
        bytes.load(Ordering::Relaxed)
    );
}
