//! An OTLP/HTTP (protobuf) trace receiver that keeps what it is sent.
//!
//! It listens on a free port (on 127.0.0.1 unless asked otherwise) and answers `POST /v1/traces`
//! the way a collector does. Spans are decoded by the lab's own [`traces::otlp`] into [`Span`]s
//! that carry their resource's `service.name`, so a test can ask for "every span of trace T" and
//! build the tree with [`Trace`].

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message as _;
use traces::otlp::{Encoding, decode};
use warp::Filter as _;

pub use traces::{Kind, Span, Status as StatusCode, Trace};

use crate::wait;

/// How often the receiver is asked again for spans that have not arrived yet.
const POLL: Duration = Duration::from_millis(50);

/// A running receiver. Dropping it stops the server.
pub struct Receiver {
    addr: SocketAddr,
    spans: Arc<Mutex<Vec<Span>>>,
    requests: Arc<Mutex<u64>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Receiver {
    /// Starts a receiver on a free loopback port (needs a multi-thread tokio runtime when the
    /// exporters run in this process).
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0").await
    }

    /// Starts a receiver on `address`; `0.0.0.0:0` lets containers reach it through the host
    /// gateway.
    pub async fn start_on(address: &str) -> Self {
        let spans = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(0));
        let route = {
            let spans = spans.clone();
            let requests = requests.clone();
            warp::post()
                .and(warp::path!("v1" / "traces"))
                .and(warp::body::bytes())
                .map(move |body: Bytes| {
                    *requests.lock().unwrap() += 1;
                    match decode(&body, Encoding::Protobuf) {
                        Ok(decoded) => {
                            spans.lock().unwrap().extend(decoded);
                            warp::http::Response::builder()
                                .header("content-type", "application/x-protobuf")
                                .body(ExportTraceServiceResponse::default().encode_to_vec())
                                .expect("a valid response")
                        }
                        Err(error) => warp::http::Response::builder()
                            .status(400)
                            .body(error.to_string().into_bytes())
                            .expect("a valid response"),
                    }
                })
        };
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .unwrap_or_else(|e| panic!("cannot listen on {address}: {e}"));
        let addr = listener.local_addr().expect("bound");
        let routes = route.map(warp::Reply::into_response).boxed();
        Self {
            addr,
            spans,
            requests,
            _stop: crate::in_process::serve(listener, routes),
        }
    }

    /// The base URL, for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The spans as they keep arriving, for a fake backend that serves them.
    pub fn span_feed(&self) -> Arc<Mutex<Vec<Span>>> {
        self.spans.clone()
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<Span> {
        self.spans.lock().unwrap().clone()
    }

    /// How many export requests arrived.
    pub fn requests(&self) -> u64 {
        *self.requests.lock().unwrap()
    }

    /// Waits (at most `timeout`) until the trace `trace_id` satisfies `ready`, and returns it; on
    /// time-out, panics with what did arrive.
    pub async fn wait_for_trace(
        &self,
        trace_id: &str,
        timeout: Duration,
        ready: impl Fn(&Trace) -> bool,
    ) -> Trace {
        wait::until(timeout, POLL, || {
            std::future::ready({
                let trace = Trace::new(
                    self.spans()
                        .into_iter()
                        .filter(|s| s.trace_id == trace_id)
                        .collect(),
                );
                if ready(&trace) {
                    Ok(trace)
                } else {
                    Err(format!(
                        "trace {trace_id} is not complete; received:\n{}",
                        trace.render()
                    ))
                }
            })
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Waits for `count` spans in all that satisfy `select`, and returns all spans received.
    pub async fn wait_for_spans(
        &self,
        timeout: Duration,
        count: usize,
        select: impl Fn(&Span) -> bool,
    ) -> Vec<Span> {
        wait::until(timeout, POLL, || {
            std::future::ready({
                let spans = self.spans();
                let found = spans.iter().filter(|s| select(s)).count();
                if found >= count {
                    Ok(spans)
                } else {
                    Err(format!("only {found} of {count} expected spans arrived"))
                }
            })
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
    }
}
