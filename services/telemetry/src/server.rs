//! The server side of every HTTP hop: SERVER spans, access logs, request metrics, JSON errors.
//!
//! A service describes each route as a warp filter that matches the path and yields the future
//! that answers it; [`route`] wraps it so that the future runs inside a SERVER span named
//! `GET /route/{template}`, continued from the caller's W3C `traceparent`. When the future
//! resolves, the span gets the status code (and Error for a 5xx, as the HTTP semantic conventions
//! say for servers), one access line is logged inside the span, and `http_requests_total` and
//! `http_request_duration_seconds` are updated with the route template, never the raw path. Methods
//! other than GET and HEAD get a JSON 405, and paths no route knows get a JSON 404 from
//! [`not_found`], so a client never sees warp's plain-text rejections. [`serve`] runs the routes on
//! a listener until a shutdown signal, then drains open requests for a bounded time.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http::{HeaderMap, Method, StatusCode};
use opentelemetry::trace::Status;
use opentelemetry_http::HeaderExtractor;
use serde::Serialize;
use tracing::Instrument as _;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply as _};

use crate::faults::Faults;
use crate::metrics::{self, HttpMetrics};

/// How long open requests may take to finish once shutdown starts.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The `handler` label of requests that matched no route.
pub const UNMATCHED: &str = "unmatched";

/// Wraps one route. `filter` must match the path only and yield the future that answers it.
pub fn route<F, Fut>(
    http: &HttpMetrics,
    template: &'static str,
    filter: F,
) -> BoxedFilter<(Response,)>
where
    F: Filter<Extract = (Fut,), Error = Rejection> + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    let http = http.clone();
    filter
        .and(request())
        .then(move |answer: Fut, request: Request| {
            let http = http.clone();
            async move {
                if request.method == Method::GET || request.method == Method::HEAD {
                    observe(&http, Some(template), request, answer).await
                } else {
                    let method = request.method.clone();
                    let refuse = async move {
                        method_not_allowed(
                            format!("{template} answers GET, not {method}"),
                            "GET, HEAD",
                        )
                    };
                    observe(&http, Some(template), request, refuse).await
                }
            }
        })
        .boxed()
}

/// Wraps one route of the service's API, as [`route`] does, with the fault switches in front of
/// it: inside the request's span, the switched-on latency comes first, then maybe an injected 500
/// instead of the answer.
pub fn api_route<F, Fut>(
    http: &HttpMetrics,
    faults: &Faults,
    template: &'static str,
    filter: F,
) -> BoxedFilter<(Response,)>
where
    F: Filter<Extract = (Fut,), Error = Rejection> + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    let faults = faults.clone();
    route(
        http,
        template,
        filter.map(move |answer: Fut| {
            let faults = faults.clone();
            async move {
                match faults.inject().await {
                    Some(injected) => injected,
                    None => answer.await,
                }
            }
        }),
    )
}

/// A service's own routes, then `/healthz`, `/metrics`, `/admin/faults` and, for any other path,
/// a JSON 404.
pub fn app(
    routes: BoxedFilter<(Response,)>,
    http: &HttpMetrics,
    registry: prometheus::Registry,
    faults: &Faults,
) -> BoxedFilter<(Response,)> {
    routes
        .or(healthz(http))
        .unify()
        .or(metrics(http, registry))
        .unify()
        .or(faults.admin(http))
        .unify()
        .or(not_found(http))
        .unify()
        .boxed()
}

/// The last route: a JSON 404 for any path no other route matched.
fn not_found(http: &HttpMetrics) -> BoxedFilter<(Response,)> {
    let http = http.clone();
    request()
        .then(move |request: Request| {
            let http = http.clone();
            let path = request.path.clone();
            async move {
                let answer = async move {
                    json_error(StatusCode::NOT_FOUND, format!("no route for {path}"))
                };
                observe(&http, None, request, answer).await
            }
        })
        .boxed()
}

/// `/healthz`: 200 once the service is serving.
fn healthz(http: &HttpMetrics) -> BoxedFilter<(Response,)> {
    route(
        http,
        "/healthz",
        warp::path!("healthz")
            .map(|| async { json(StatusCode::OK, &serde_json::json!({"status": "ok"})) }),
    )
}

/// `/metrics`: the registry in the Prometheus text format.
fn metrics(http: &HttpMetrics, registry: prometheus::Registry) -> BoxedFilter<(Response,)> {
    route(
        http,
        "/metrics",
        warp::path!("metrics").map(move || {
            let registry = registry.clone();
            async move {
                let mut response = metrics::encode(&registry).into_response();
                response.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                response
            }
        }),
    )
}

/// The JSON 405 for a method a route does not take, with the `Allow` header listing those it does.
pub(crate) fn method_not_allowed(message: String, allow: &'static str) -> Response {
    let mut response = json_error(StatusCode::METHOD_NOT_ALLOWED, message);
    response
        .headers_mut()
        .insert(http::header::ALLOW, http::HeaderValue::from_static(allow));
    response
}

/// A JSON body with a status.
pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    warp::reply::with_status(warp::reply::json(body), status).into_response()
}

/// The contract's error body: `{"error": "<human sentence>"}`.
pub fn json_error(status: StatusCode, message: impl Into<String>) -> Response {
    json(status, &serde_json::json!({ "error": message.into() }))
}

/// A service ready to serve: its routes bound to a listener. Tests build one on port 0.
pub struct Server {
    listener: tokio::net::TcpListener,
    routes: BoxedFilter<(Response,)>,
}

impl Server {
    /// Binds `address`, naming it in the error when that fails (a port in use, say).
    pub async fn bind(
        address: SocketAddr,
        routes: BoxedFilter<(Response,)>,
    ) -> Result<Self, String> {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|e| format!("cannot listen on {address}: {e}"))?;
        Ok(Self { listener, routes })
    }

    /// The address actually bound (the port chosen when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has a local address")
    }

    /// Serves until `shutdown` resolves, then lets open requests finish for at most
    /// [`DRAIN_TIMEOUT`].
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let (started, draining) = tokio::sync::oneshot::channel::<()>();
        let signal = async move {
            shutdown.await;
            let _ = started.send(());
        };
        let server = warp::serve(self.routes)
            .incoming(self.listener)
            .graceful(signal)
            .run();
        let deadline = async move {
            if draining.await.is_ok() {
                tokio::time::sleep(DRAIN_TIMEOUT).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = server => tracing::info!("server stopped"),
            () = deadline => tracing::warn!(
                seconds = DRAIN_TIMEOUT.as_secs(),
                "open requests did not finish in time; stopping anyway"
            ),
        }
    }
}

/// Resolves on SIGINT or SIGTERM, and logs which one came.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => tracing::info!(signal = "SIGINT", "shutting down"),
        () = terminate => tracing::info!(signal = "SIGTERM", "shutting down"),
    }
}

/// The raw query string, empty when there is none.
pub fn raw_query() -> impl Filter<Extract = (String,), Error = std::convert::Infallible> + Clone {
    warp::query::raw().or(warp::any().map(String::new)).unify()
}

/// What the span and the access line need to know of a request.
pub(crate) struct Request {
    pub(crate) method: Method,
    path: String,
    query: String,
    pub(crate) headers: HeaderMap,
    pub(crate) peer: Option<SocketAddr>,
}

pub(crate) fn request()
-> impl Filter<Extract = (Request,), Error = std::convert::Infallible> + Clone {
    warp::method()
        .and(warp::path::full())
        .and(raw_query())
        .and(warp::header::headers_cloned())
        .and(warp::addr::remote())
        .map(
            |method, path: warp::path::FullPath, query, headers, peer| Request {
                method,
                path: path.as_str().to_owned(),
                query,
                headers,
                peer,
            },
        )
}

/// Runs `answer` inside the request's SERVER span, then records the outcome everywhere. A request
/// whose client hangs up first (its caller timed out, say) is recorded too, when warp drops it.
pub(crate) async fn observe(
    http: &HttpMetrics,
    template: Option<&'static str>,
    request: Request,
    answer: impl Future<Output = Response>,
) -> Response {
    let method = method_label(&request.method);
    let span = server_span(method, template, &request);
    let mut outcome = Outcome {
        http,
        handler: template.unwrap_or(UNMATCHED),
        method,
        path: request.path,
        span: span.clone(),
        started: Instant::now(),
        recorded: false,
    };
    let response = answer.instrument(span).await;
    outcome.record(response.status());
    response
}

/// The status a request is counted under when its client hung up before the answer: nginx's
/// "client closed request", for want of an HTTP one.
pub const CLIENT_CLOSED: u16 = 499;

/// What is recorded of a request once it ends, answered or dropped.
struct Outcome<'a> {
    http: &'a HttpMetrics,
    handler: &'static str,
    method: &'static str,
    path: String,
    span: tracing::Span,
    started: Instant,
    recorded: bool,
}

impl Outcome<'_> {
    fn record(&mut self, status: StatusCode) {
        self.recorded = true;
        let elapsed = self.started.elapsed();
        let span = &self.span;
        span.record("http.response.status_code", i64::from(status.as_u16()));
        if status.is_server_error() {
            span.record("error.type", status.as_str());
            span.set_status(Status::error(
                status.canonical_reason().unwrap_or("server error"),
            ));
        }
        self.count(status.as_str(), elapsed);
        let (method, path) = (self.method, &self.path);
        span.in_scope(|| {
            tracing::info!(
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
        self.span.record("error.type", "client_closed");
        self.count(&CLIENT_CLOSED.to_string(), elapsed);
        let (method, path) = (self.method, &self.path);
        self.span.in_scope(|| {
            tracing::info!(
                method,
                route = self.handler,
                path = %path,
                status = CLIENT_CLOSED,
                duration_ms = elapsed.as_secs_f64() * 1000.0,
                "{method} {path}: the client hung up after {:.1} ms, before the answer",
                elapsed.as_secs_f64() * 1000.0,
            )
        });
    }
}

fn server_span(
    method: &'static str,
    template: Option<&'static str>,
    request: &Request,
) -> tracing::Span {
    let name = match template {
        Some(template) => format!("{method} {template}"),
        None => method.to_owned(),
    };
    let (host, port) = host_and_port(&request.headers);
    let span = tracing::info_span!(
        "http.server",
        otel.name = %name,
        otel.kind = "server",
        http.request.method = method,
        http.route = template,
        url.scheme = "http",
        url.path = %request.path,
        url.query = Empty,
        server.address = host,
        server.port = port,
        client.address = request.peer.map(|p| p.ip().to_string()),
        user_agent.original = request
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok()),
        http.response.status_code = Empty,
        error.type = Empty,
    );
    if !request.query.is_empty() {
        span.record("url.query", request.query.as_str());
    }
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(&request.headers))
    });
    // Fails only when the span is disabled (telemetry off); there is nothing to continue then.
    let _ = span.set_parent(parent);
    span
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
            Some(name.to_owned()),
            port.parse::<u16>().ok().map(i64::from),
        ),
        _ => (Some(host.to_owned()), Some(80)),
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
