//! The client side of every HTTP hop: CLIENT spans, `traceparent` injection, bounded waits.
//!
//! [`Upstream`] is a pooled reqwest client bound to one base URL. Each [`Upstream::get`] runs in a
//! CLIENT span named after the method, as the HTTP semantic conventions name client spans,
//! injects the span's W3C context into the request headers, and turns every way the call can go
//! wrong into an [`UpstreamError`] that maps onto the contract's status codes: unreachable → 503,
//! too slow → 504, anything else → 502. Connections and whole requests have time-outs, so no
//! caller waits forever. [`Upstream::with_metrics`] counts every call and its duration under the
//! upstream's name (`die_service_requests_total{status}`, `die_service_request_duration_seconds`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::StatusCode;
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;
use prometheus::{Histogram, IntCounterVec, Registry};
use telemetry::metrics;
use telemetry::span::{self, Span};
use tokio::sync::Semaphore;

use crate::reply::ErrorStatus;

/// Connecting must be quick on a lab machine; a refused connection fails at once anyway.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// A traced HTTP client for one upstream service.
#[derive(Clone, Debug)]
pub struct Upstream {
    name: &'static str,
    base: reqwest::Url,
    client: reqwest::Client,
    timeout: Duration,
    metrics: Option<UpstreamMetrics>,
    /// Turns for calls under way at once (each holds a connection), and their number, when
    /// limited.
    calls: Option<(Arc<Semaphore>, usize)>,
    /// Whether calls get a CLIENT span and pass the trace on ([`Upstream::untraced`]).
    traced: bool,
    /// `server.address` of its calls: the base URL's host, written once.
    address: Option<opentelemetry::StringValue>,
}

/// `<upstream>_requests_total{status}` and `<upstream>_request_duration_seconds`.
#[derive(Clone, Debug)]
struct UpstreamMetrics {
    requests: IntCounterVec,
    duration: Histogram,
}

/// The upstream's URL cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{name} URL '{url}' is not a URL: {error}")]
    NotAUrl {
        name: &'static str,
        url: String,
        error: url::ParseError,
    },
    #[error("{name} URL '{url}' must start with http://")]
    NotHttp { name: &'static str, url: String },
    #[error("cannot build the HTTP client for {name}: {error}")]
    Build {
        name: &'static str,
        error: reqwest::Error,
    },
}

/// An upstream answer with any status; the caller decides what a 404 means.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
}

/// A call that produced no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("{name} is unreachable at {url}")]
    Unreachable { name: &'static str, url: String },
    #[error("{name} did not answer within {} ms", timeout.as_millis())]
    Timeout {
        name: &'static str,
        timeout: Duration,
    },
    #[error("{name} answered {status}")]
    Status {
        name: &'static str,
        status: StatusCode,
    },
    #[error("{name} sent an answer that cannot be read: {detail}")]
    Invalid { name: &'static str, detail: String },
    #[error(
        "too many calls to {name} at once ({limit}, the most this service makes); try again in a second"
    )]
    Busy { name: &'static str, limit: usize },
}

impl ErrorStatus for UpstreamError {
    /// The status this service answers with when the upstream failed this way.
    fn status(&self) -> StatusCode {
        match self {
            Self::Unreachable { .. } | Self::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Self::Status { .. } | Self::Invalid { .. } => StatusCode::BAD_GATEWAY,
        }
    }

    fn retry_after(&self) -> Option<u32> {
        matches!(self, Self::Busy { .. }).then_some(1)
    }
}

impl UpstreamError {
    /// A low-cardinality name for this failure: the span's `error.type` and a metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unreachable { .. } => "unreachable",
            Self::Timeout { .. } => "timeout",
            Self::Status { .. } => "bad_status",
            Self::Invalid { .. } => "invalid_response",
            Self::Busy { .. } => "busy",
        }
    }
}

impl Upstream {
    /// A client for `base_url` that gives up on a call after `timeout`.
    pub fn new(name: &'static str, base_url: &str, timeout: Duration) -> Result<Self, ClientError> {
        let url = || base_url.to_owned();
        let base = reqwest::Url::parse(base_url).map_err(|error| ClientError::NotAUrl {
            name,
            url: url(),
            error,
        })?;
        if base.scheme() != "http" {
            return Err(ClientError::NotHttp { name, url: url() });
        }
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|error| ClientError::Build { name, error })?;
        Ok(Self {
            name,
            address: base.host_str().map(|host| host.to_owned().into()),
            base,
            client,
            timeout,
            metrics: None,
            calls: None,
            traced: true,
        })
    }

    /// Calls with no CLIENT span and no `traceparent`: for reading telemetry back (the page's
    /// trace view asks Tempo and Loki every few hundred milliseconds), which must not make traces.
    pub fn untraced(mut self) -> Self {
        self.traced = false;
        self
    }

    /// At most `limit` calls under way at once; a call waits for its turn within its time-out,
    /// and is refused as [`UpstreamError::Busy`] when none comes.
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.calls = Some((Arc::new(Semaphore::new(limit)), limit));
        self
    }

    /// Counts every call in `registry`: by status code, or by how it failed (`unreachable`,
    /// `timeout`, `invalid_response`), and its duration, under the upstream's name.
    pub fn with_metrics(mut self, registry: &Registry) -> Self {
        let prefix = self.name.replace('-', "_");
        self.metrics = Some(UpstreamMetrics {
            requests: metrics::counter_vec(
                registry,
                &format!("{prefix}_requests_total"),
                &format!(
                    "Calls to the {}, by status code or failure (unreachable, timeout, invalid_response).",
                    self.name
                ),
                &["status"],
            ),
            duration: metrics::histogram(
                registry,
                &format!("{prefix}_request_duration_seconds"),
                &format!(
                    "Time of calls to the {}, as this service sees it.",
                    self.name
                ),
                metrics::LATENCY_BUCKETS,
            ),
        });
        self
    }

    /// The upstream's name, as errors say it.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// `GET` the path made of `segments` below the base URL, with `query` (already a query
    /// string) when given. Each segment is percent-encoded on its own, so no segment can climb
    /// out of its place (`.`, `..` and `/` are sent encoded).
    pub async fn get(
        &self,
        segments: &[&str],
        query: Option<&str>,
    ) -> Result<Answer, UpstreamError> {
        let mut url = self.base.clone();
        let mut path = url.path().trim_end_matches('/').to_owned();
        for segment in segments {
            path.push('/');
            path.push_str(&encode_segment(segment));
        }
        url.set_path(&path);
        url.set_query(query.filter(|q| !q.is_empty()));
        let span = if !self.traced {
            Span::none()
        } else {
            Span::start("GET", SpanKind::Client, &span::parent(), || {
                let mut attributes = Vec::with_capacity(6);
                attributes.push(KeyValue::new("http.request.method", "GET"));
                attributes.push(KeyValue::new(
                    "url.full",
                    telemetry::truncate(url.as_str()).into_owned(),
                ));
                if let Some(host) = &self.address {
                    attributes.push(KeyValue::new("server.address", host.clone()));
                }
                if let Some(port) = url.port_or_known_default() {
                    attributes.push(KeyValue::new("server.port", i64::from(port)));
                }
                attributes
            })
        };
        let mut headers = http::HeaderMap::new();
        span.inject(&mut crate::propagation::Outgoing(&mut headers));
        let started = Instant::now();
        // One time-out for the whole call: waiting for a turn counts against it.
        let deadline = started + self.timeout;
        let call = async {
            let _turn = match &self.calls {
                Some((calls, limit)) => Some(
                    tokio::time::timeout_at(deadline.into(), calls.acquire())
                        .await
                        .map_err(|_| UpstreamError::Busy {
                            name: self.name,
                            limit: *limit,
                        })?
                        .expect("the semaphore is never closed"),
                ),
                None => None,
            };
            self.send(url, headers, deadline).await
        };
        let result = span.instrument(call).await;
        if let Some(metrics) = &self.metrics {
            metrics.duration.observe(started.elapsed().as_secs_f64());
            let label = match &result {
                Ok(answer) => answer.status.as_str().to_owned(),
                Err(error) => error.kind().to_owned(),
            };
            metrics.requests.with_label_values(&[&label]).inc();
        }
        match &result {
            Ok(answer) => {
                span.set_attribute(KeyValue::new(
                    "http.response.status_code",
                    i64::from(answer.status.as_u16()),
                ));
                if answer.status.is_client_error() || answer.status.is_server_error() {
                    span.set_error(answer.status.as_str().to_owned(), answer.status.to_string());
                }
            }
            Err(error) => {
                span.set_error(error.kind(), error.to_string());
            }
        }
        result
    }

    async fn send(
        &self,
        url: reqwest::Url,
        headers: http::HeaderMap,
        deadline: Instant,
    ) -> Result<Answer, UpstreamError> {
        let fail = |error: reqwest::Error| self.classify(&url, error);
        let response = self
            .client
            .get(url.clone())
            .headers(headers)
            .timeout(deadline.saturating_duration_since(Instant::now()))
            .send()
            .await
            .map_err(fail)?;
        let status = response.status();
        let body = response.bytes().await.map_err(fail)?;
        Ok(Answer { status, body })
    }

    fn classify(&self, url: &reqwest::Url, error: reqwest::Error) -> UpstreamError {
        // A connection that cannot be made in time is as unreachable as a refused one.
        if error.is_connect() {
            UpstreamError::Unreachable {
                name: self.name,
                url: url.to_string(),
            }
        } else if error.is_timeout() {
            UpstreamError::Timeout {
                name: self.name,
                timeout: self.timeout,
            }
        } else {
            UpstreamError::Invalid {
                name: self.name,
                detail: error.to_string(),
            }
        }
    }
}

/// Characters a path segment keeps as they are: RFC 3986's unreserved ones.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One path segment, percent-encoded; `.` and `..` are encoded too, so that they name themselves
/// instead of moving up the path.
fn encode_segment(segment: &str) -> String {
    match segment {
        "." => "%2E".to_owned(),
        ".." => "%2E%2E".to_owned(),
        _ => percent_encoding::utf8_percent_encode(segment, SEGMENT).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_stay_in_their_place() {
        assert_eq!(encode_segment("fair"), "fair");
        assert_eq!(encode_segment("d-20_x~"), "d-20_x~");
        assert_eq!(encode_segment("."), "%2E");
        assert_eq!(encode_segment(".."), "%2E%2E");
        assert_eq!(encode_segment("../etc/passwd"), "..%2Fetc%2Fpasswd");
        assert_eq!(encode_segment("a b%2e?#"), "a%20b%252e%3F%23");
    }
}
