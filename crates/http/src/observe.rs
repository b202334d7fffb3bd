//! What is recorded of every request: its SERVER span, its access line, its metrics.
//!
//! [`observe`] runs the future that answers a request inside a SERVER span named
//! `GET /route/{template}`, continued from the caller's W3C `traceparent`. When the future
//! resolves, the span gets the status code (and Error for a 5xx, as the HTTP semantic conventions
//! say for servers), one access line is logged inside the span, and `http_requests_total` and
//! `http_request_duration_seconds` ([`HttpMetrics`]) are updated with the route template, never
//! the raw path. A request whose client hangs up first is recorded too, when warp drops it.
//! A [`Record::Quiet`] route (one that tools poll, such as the page's trace view or the store's
//! APIs) gets no span and logs its access line at debug: polling must not fill the traces and
//! logs it reads.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use http::{HeaderMap, Method, StatusCode};
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;
use prometheus::{HistogramVec, IntCounterVec, Registry};
use telemetry::metrics;
use telemetry::span::Span;
use warp::Filter;
use warp::reply::Response;

use crate::reply::raw_query;
use crate::server::ConnInfo;

/// The `handler` label of requests that matched no route.
const UNMATCHED: &str = "unmatched";

/// `http_requests_total{handler,method,status}` and
/// `http_request_duration_seconds{handler,method}`.
#[derive(Clone)]
pub(crate) struct HttpMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
}

impl HttpMetrics {
    pub(crate) fn new(registry: &Registry) -> Self {
        Self {
            requests: metrics::counter_vec(
                registry,
                "http_requests_total",
                "HTTP requests served, by route template, method and status code.",
                &["handler", "method", "status"],
            ),
            duration: metrics::histogram_vec(
                registry,
                "http_request_duration_seconds",
                "Time to serve an HTTP request, by route template and method.",
                &["handler", "method"],
                metrics::LATENCY_BUCKETS,
            ),
        }
    }
}

/// How much is recorded of a route's requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Record {
    /// A SERVER span, an access line at info, the metrics.
    Traced,
    /// No span, an access line at debug, the metrics.
    Quiet,
}

/// Logs an access line at info, or at debug for a quiet route.
macro_rules! access {
    ($record:expr, $($arg:tt)*) => {
        match $record {
            Record::Traced => tracing::info!($($arg)*),
            Record::Quiet => tracing::debug!($($arg)*),
        }
    };
}

/// What the span and the access line need to know of a request.
pub(crate) struct Request {
    pub(crate) method: Method,
    /// Cut to the attribute length limit, and shared by the span and the access line.
    pub(crate) path: Arc<str>,
    pub(crate) query: String,
    pub(crate) headers: HeaderMap,
    pub(crate) peer: Option<SocketAddr>,
    /// `client.address`, as the connection wrote it.
    peer_address: Option<opentelemetry::StringValue>,
    /// Set when the server cuts its open requests short at the end of its drain.
    cut: Option<Arc<AtomicBool>>,
}

/// The request as the span and the access line see it.
pub(crate) fn request()
-> impl Filter<Extract = (Request,), Error = std::convert::Infallible> + Clone {
    warp::method()
        .and(warp::path::full())
        .and(raw_query())
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<ConnInfo>())
        .map(
            |method, path: warp::path::FullPath, query, headers, conn: Option<ConnInfo>| {
                let (peer, peer_address, cut) = match conn {
                    Some(conn) => (Some(conn.peer), Some(conn.peer_address), Some(conn.cut)),
                    None => (None, None, None),
                };
                Request {
                    method,
                    path: telemetry::truncate(path.as_str()).into(),
                    query,
                    headers,
                    peer,
                    peer_address,
                    cut,
                }
            },
        )
}

/// Runs `answer` inside the request's SERVER span, then records the outcome everywhere. A request
/// whose client hangs up first (its caller timed out, say) is recorded too, when warp drops it.
pub(crate) async fn observe(
    http: &HttpMetrics,
    template: Option<&'static str>,
    record: Record,
    request: Request,
    answer: impl Future<Output = Response>,
) -> Response {
    let method = method_label(&request.method);
    let span = match record {
        Record::Traced => server_span(method, template, &request),
        Record::Quiet => Span::none(),
    };
    let mut outcome = Outcome {
        http,
        record,
        handler: template.unwrap_or(UNMATCHED),
        method,
        path: request.path.clone(),
        span,
        started: Instant::now(),
        recorded: false,
        cut: request.cut,
    };
    let response = outcome.span.instrument(answer).await;
    outcome.record(response.status());
    response
}

/// The status a request is counted under when its client hung up before the answer: nginx's
/// "client closed request", for want of an HTTP one.
const CLIENT_CLOSED: u16 = 499;

/// What is recorded of a request once it ends, answered or dropped.
struct Outcome<'a> {
    http: &'a HttpMetrics,
    record: Record,
    handler: &'static str,
    method: &'static str,
    /// The path, cut to the attribute length limit.
    path: Arc<str>,
    span: Span,
    started: Instant,
    recorded: bool,
    cut: Option<Arc<AtomicBool>>,
}

impl Outcome<'_> {
    fn record(&mut self, status: StatusCode) {
        self.recorded = true;
        let elapsed = self.started.elapsed();
        let span = &self.span;
        span.set_attribute(KeyValue::new(
            "http.response.status_code",
            i64::from(status.as_u16()),
        ));
        if status.is_server_error() {
            span.set_error(
                status.as_str().to_owned(),
                status.canonical_reason().unwrap_or("server error"),
            );
        }
        self.count(status.as_str(), elapsed);
        let (method, path) = (self.method, &self.path);
        span.in_scope(|| {
            access!(
                self.record,
                method,
                route = self.handler,
                path = %path,
                status = status.as_u16(),
                duration_ms = elapsed.as_secs_f64() * 1000.0,
                "{method} {path} {} in {:.1} ms",
                status.as_u16(),
                elapsed.as_secs_f64() * 1000.0,
            )
        });
    }

    fn count(&self, status: &str, elapsed: Duration) {
        self.http
            .requests
            .with_label_values(&[self.handler, self.method, status])
            .inc();
        self.http
            .duration
            .with_label_values(&[self.handler, self.method])
            .observe(elapsed.as_secs_f64());
    }
}

impl Drop for Outcome<'_> {
    fn drop(&mut self) {
        if self.recorded {
            return;
        }
        let elapsed = self.started.elapsed();
        let ms = elapsed.as_secs_f64() * 1000.0;
        let (method, path) = (self.method, &self.path);
        if self
            .cut
            .as_ref()
            .is_some_and(|cut| cut.load(Ordering::SeqCst))
        {
            // The server stopped waiting for it: the service, not the client, ended it.
            self.span
                .set_error("server_shutdown", "cut short by the server's shutdown");
            self.count(StatusCode::SERVICE_UNAVAILABLE.as_str(), elapsed);
            self.span.in_scope(|| {
                tracing::warn!(
                    method,
                    route = self.handler,
                    path = %path,
                    status = StatusCode::SERVICE_UNAVAILABLE.as_u16(),
                    duration_ms = ms,
                    "{method} {path}: cut short by the server's shutdown after {ms:.1} ms"
                )
            });
            return;
        }
        self.span
            .set_attribute(KeyValue::new("error.type", "client_closed"));
        self.count(&CLIENT_CLOSED.to_string(), elapsed);
        self.span.in_scope(|| {
            access!(
                self.record,
                method,
                route = self.handler,
                path = %path,
                status = CLIENT_CLOSED,
                duration_ms = ms,
                "{method} {path}: the client hung up after {ms:.1} ms, before the answer"
            )
        });
    }
}

fn server_span(method: &'static str, template: Option<&'static str>, request: &Request) -> Span {
    let name = match template {
        Some(template) => format!("{method} {template}"),
        None => method.to_owned(),
    };
    let parent = telemetry::span::extract(&crate::propagation::Incoming(&request.headers));
    Span::start(name, SpanKind::Server, &parent, || {
        let mut attributes = Vec::with_capacity(12);
        attributes.push(KeyValue::new("http.request.method", method));
        if let Some(template) = template {
            attributes.push(KeyValue::new("http.route", template));
        }
        attributes.push(KeyValue::new("url.scheme", "http"));
        attributes.push(KeyValue::new(
            "url.path",
            opentelemetry::StringValue::from(request.path.clone()),
        ));
        if !request.query.is_empty() {
            attributes.push(KeyValue::new(
                "url.query",
                telemetry::truncate(&request.query).into_owned(),
            ));
        }
        let (host, port) = host_and_port(&request.headers);
        if let Some(host) = host {
            attributes.push(KeyValue::new("server.address", host));
        }
        if let Some(port) = port {
            attributes.push(KeyValue::new("server.port", port));
        }
        if let Some(peer) = &request.peer_address {
            attributes.push(KeyValue::new("client.address", peer.clone()));
        }
        if let Some(agent) = request
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
        {
            attributes.push(KeyValue::new(
                "user_agent.original",
                telemetry::truncate(agent).into_owned(),
            ));
        }
        attributes
    })
}

/// `server.address` and `server.port` from the `Host` header (port 80 when it names none).
fn host_and_port(headers: &HeaderMap) -> (Option<String>, Option<i64>) {
    let Some(host) = headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
    else {
        return (None, None);
    };
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') || name.ends_with(']') => (
            Some(telemetry::truncate(name).into_owned()),
            port.parse::<u16>().ok().map(i64::from),
        ),
        _ => (Some(telemetry::truncate(host).into_owned()), Some(80)),
    }
}

/// The method as the HTTP semantic conventions name it: one of the known methods, or `_OTHER`, so
/// a made-up method adds no time series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "_OTHER",
    }
}
