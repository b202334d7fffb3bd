//! An OTLP/HTTP (protobuf) trace receiver that keeps what it is sent.
//!
//! It listens on a free port (on 127.0.0.1 unless asked otherwise) and answers `POST /v1/traces` the way a collector does.
//! Spans are flattened into [`Span`]s that carry their resource's `service.name`, so a test can ask
//! for "every span of trace T" and build the tree with [`crate::trace::Trace`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message as _;
use serde_json::Value;
use warp::Filter as _;

use crate::trace::Trace;
use crate::wait;

/// How often the receiver is asked again for spans that have not arrived yet.
const POLL: Duration = Duration::from_millis(50);

/// One received span, with what a test asserts on.
#[derive(Clone, Debug)]
pub struct Span {
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub name: String,
    pub kind: Kind,
    /// Span attributes; strings, integers, doubles and booleans as JSON values.
    pub attributes: BTreeMap<String, Value>,
    /// The resource's attributes (`service.name`, `service.namespace`, ...).
    pub resource: BTreeMap<String, Value>,
    pub status: StatusCode,
    pub status_message: String,
    pub start_ns: u64,
    pub end_ns: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusCode {
    Unset,
    Ok,
    Error,
}

impl Span {
    /// The resource's `service.name`.
    pub fn service(&self) -> &str {
        self.resource
            .get("service.name")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// An attribute, or `Value::Null` when absent.
    pub fn attr(&self, key: &str) -> &Value {
        self.attributes.get(key).unwrap_or(&Value::Null)
    }

    pub fn duration_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }
}

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
                    match ExportTraceServiceRequest::decode(body) {
                        Ok(request) => {
                            spans.lock().unwrap().extend(flatten(request));
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
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(
            warp::serve(route)
                .incoming(listener)
                .graceful(async move {
                    let _ = stopped.await;
                })
                .run(),
        );
        Self {
            addr,
            spans,
            requests,
            _stop: stop,
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

fn flatten(request: ExportTraceServiceRequest) -> Vec<Span> {
    let mut out = Vec::new();
    for resource_spans in request.resource_spans {
        let resource = resource_spans
            .resource
            .map(|r| attributes(r.attributes))
            .unwrap_or_default();
        for scope_spans in resource_spans.scope_spans {
            for span in scope_spans.spans {
                let status = span.status.unwrap_or_default();
                out.push(Span {
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    name: span.name,
                    kind: match span.kind {
                        1 => Kind::Internal,
                        2 => Kind::Server,
                        3 => Kind::Client,
                        4 => Kind::Producer,
                        5 => Kind::Consumer,
                        _ => Kind::Unspecified,
                    },
                    attributes: attributes(span.attributes),
                    resource: resource.clone(),
                    status: match status.code {
                        1 => StatusCode::Ok,
                        2 => StatusCode::Error,
                        _ => StatusCode::Unset,
                    },
                    status_message: status.message,
                    start_ns: span.start_time_unix_nano,
                    end_ns: span.end_time_unix_nano,
                });
            }
        }
    }
    out
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
