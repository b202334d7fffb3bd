//! Span export: the OTLP/HTTP exporter behind the SDK's batch processor, with every lost span
//! counted and explained.
//!
//! The endpoint is read from the `OTEL_EXPORTER_OTLP_*` variables and checked at start-up: an
//! endpoint that can never work (not `http://`, no host, a bad port) stops the service with a
//! clear message instead of looking like a collector that is down. Spans can then be lost two
//! ways, each counted in `telemetry_spans_dropped_total{reason}` and said once per spell with its
//! real cause: the queue in front of the exporter is full (`queue_full`: more spans end than the
//! exporter sends; [`Counting`] drops them before the SDK's queue would, so none is lost
//! uncounted), or an export fails (`export_failed`: the collector is away or refuses, with its
//! error). The lab is often started before (or without) Alloy, so that second case is quiet after
//! its first warning, and says once when exports succeed again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use opentelemetry::Context;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
    OTEL_BSP_MAX_QUEUE_SIZE, OTEL_BSP_SCHEDULE_DELAY, Span, SpanData, SpanExporter, SpanProcessor,
};

use crate::{DEFAULT_OTLP_ENDPOINT, Error, encode, metrics};

/// The span processor for a service: the SDK's batch processor (configured by `OTEL_BSP_*`, with
/// [`SCHEDULE_DELAY`] unless `OTEL_BSP_SCHEDULE_DELAY` says otherwise) behind the drop counting; returns it with the endpoint spans go to.
pub(crate) fn processor() -> Result<(Counting, String), Error> {
    let configured = env_nonempty("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .or_else(|| env_nonempty("OTEL_EXPORTER_OTLP_ENDPOINT").map(|base| traces_url(&base)));
    let endpoint = configured.unwrap_or_else(|| traces_url(DEFAULT_OTLP_ENDPOINT));
    check_endpoint(&endpoint)?;
    let inner = Otlp::new(&endpoint)?;
    let in_flight = Arc::new(AtomicUsize::new(0));
    let exporter = Reporting {
        inner,
        endpoint: endpoint.clone(),
        failing: AtomicBool::new(false),
        in_flight: in_flight.clone(),
    };
    let capacity = queue_size();
    let mut config = BatchConfigBuilder::default().with_max_queue_size(capacity);
    if env_nonempty(OTEL_BSP_SCHEDULE_DELAY).is_none() {
        config = config.with_scheduled_delay(SCHEDULE_DELAY);
    }
    if env_nonempty(OTEL_BSP_MAX_EXPORT_BATCH_SIZE).is_none() {
        config = config.with_max_export_batch_size(EXPORT_BATCH_SIZE.min(capacity));
    }
    let processor = Counting {
        inner: BatchSpanProcessor::builder(exporter)
            .with_batch_config(config.build())
            .build(),
        in_flight,
        capacity,
        epoch: Instant::now(),
        last_drop: AtomicU64::new(0),
    };
    Ok((processor, endpoint))
}

/// How long a span may wait for the next export when `OTEL_BSP_SCHEDULE_DELAY` is unset: short,
/// so that a click's trace can be read within about a second (the specification's default is
/// 5 s). Under load, batches fill (512 spans) long before it passes, so it costs nothing there.
pub(crate) const SCHEDULE_DELAY: Duration = Duration::from_millis(200);

/// An endpoint this build can send to: `http://host[:port]/...`.
fn check_endpoint(endpoint: &str) -> Result<(), Error> {
    let bad = |why: String| Error::Endpoint {
        endpoint: endpoint.to_owned(),
        why,
    };
    let url = url::Url::parse(endpoint).map_err(|e| bad(e.to_string()))?;
    if url.scheme() != "http" {
        return Err(bad(format!(
            "the scheme must be http (OTLP over HTTP without TLS), not {}",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("it names no host".into()));
    }
    Ok(())
}

/// Spans per export when `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` is unset (the specification's default
/// is 512): a batch of rolls makes hundreds of spans at once, and fewer, larger exports keep up
/// with a service at full speed on two cores.
pub(crate) const EXPORT_BATCH_SIZE: usize = 2048;

/// Spans that may wait for export when `OTEL_BSP_MAX_QUEUE_SIZE` is unset (the specification's
/// default is 2048): four batches, room for a burst while one is being sent.
pub(crate) const QUEUE_SIZE: usize = 8192;

/// `OTEL_BSP_MAX_QUEUE_SIZE`, or [`QUEUE_SIZE`].
fn queue_size() -> usize {
    env_nonempty(OTEL_BSP_MAX_QUEUE_SIZE)
        .and_then(|v| v.trim().parse().ok())
        .filter(|size| *size > 0)
        .unwrap_or(QUEUE_SIZE)
}

/// The batch processor, with the spans it holds counted: a span that would not fit in its queue
/// is dropped here and counted, never silently by the SDK.
#[derive(Debug)]
pub(crate) struct Counting {
    inner: BatchSpanProcessor,
    /// Spans handed to the batch processor and not yet through an export.
    in_flight: Arc<AtomicUsize>,
    capacity: usize,
    epoch: Instant,
    /// When a span was last dropped, in milliseconds since `epoch` (0: never): a drop after
    /// [`QUIET`] without one starts a new spell, which is said once.
    last_drop: AtomicU64,
}

/// How long without a dropped span ends a spell of them.
const QUIET: Duration = Duration::from_secs(10);

impl SpanProcessor for Counting {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            metrics::spans_dropped("queue_full").inc();
            let now = self.epoch.elapsed().as_millis() as u64 + 1;
            let last = self.last_drop.swap(now, Ordering::Relaxed);
            if last == 0 || now - last > QUIET.as_millis() as u64 {
                tracing::warn!(
                    queue = self.capacity,
                    "spans end faster than they can be exported: the queue of {} spans \
                     (OTEL_BSP_MAX_QUEUE_SIZE) is full, so spans are dropped and counted in \
                     telemetry_spans_dropped_total{{reason=\"queue_full\"}} (said once, until \
                     none is dropped for {} s)",
                    self.capacity,
                    QUIET.as_secs()
                );
            }
            return;
        }
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: std::time::Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The OTLP exporter, saying once per spell that exports fail, and why, and counting the spans
/// of failed exports.
#[derive(Debug)]
struct Reporting<E> {
    inner: E,
    endpoint: String,
    failing: AtomicBool,
    in_flight: Arc<AtomicUsize>,
}

impl<E: SpanExporter> SpanExporter for Reporting<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len();
        let result = self.inner.export(batch).await;
        self.in_flight.fetch_sub(spans, Ordering::AcqRel);
        match &result {
            Err(error) => {
                metrics::spans_dropped("export_failed").inc_by(spans as u64);
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        endpoint = %self.endpoint,
                        error = %error,
                        dropped_spans = spans,
                        "cannot export spans: {error}; this batch of {spans} spans is dropped, as \
                         are the next ones until an export succeeds, all counted in \
                         telemetry_spans_dropped_total{{reason=\"export_failed\"}} (said once)"
                    );
                }
            }
            Ok(()) if self.failing.swap(false, Ordering::Relaxed) => {
                tracing::info!(endpoint = %self.endpoint, "exporting spans again")
            }
            Ok(()) => {}
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: std::time::Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// OTLP/HTTP with protobuf, as the exporter specification describes it: each batch is written
/// straight into an `ExportTraceServiceRequest` ([`crate::encode`]) and POSTed to the endpoint, with
/// `OTEL_EXPORTER_OTLP_TRACES_HEADERS` / `OTEL_EXPORTER_OTLP_HEADERS` and within
/// `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT` / `OTEL_EXPORTER_OTLP_TIMEOUT` (10 s by default).
#[derive(Debug)]
struct Otlp {
    client: reqwest::blocking::Client,
    endpoint: String,
    headers: reqwest::header::HeaderMap,
    resource: encode::EncodedResource,
}

/// How long an export may take when no `OTEL_EXPORTER_OTLP_*TIMEOUT` says.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

impl Otlp {
    fn new(endpoint: &str) -> Result<Self, Error> {
        let timeout = [
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
            "OTEL_EXPORTER_OTLP_TIMEOUT",
        ]
        .iter()
        .find_map(|name| env_nonempty(name)?.trim().parse().ok())
        .map_or(EXPORT_TIMEOUT, Duration::from_millis);
        let mut headers = reqwest::header::HeaderMap::new();
        let listed = [
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
            "OTEL_EXPORTER_OTLP_HEADERS",
        ]
        .iter()
        .find_map(|name| env_nonempty(name))
        .unwrap_or_default();
        for pair in listed.split(',').filter(|p| !p.trim().is_empty()) {
            let bad = || {
                Error::Exporter(format!(
                    "OTEL_EXPORTER_OTLP_HEADERS: '{pair}' is not key=value"
                ))
            };
            let (key, value) = pair.split_once('=').ok_or_else(bad)?;
            let value = percent_decode(value.trim());
            headers.insert(
                reqwest::header::HeaderName::from_bytes(key.trim().as_bytes())
                    .map_err(|_| bad())?,
                reqwest::header::HeaderValue::from_str(&value).map_err(|_| bad())?,
            );
        }
        // reqwest's blocking client runs a runtime of its own, which may not be made inside
        // another; the services set telemetry up inside theirs, so it is made on a thread apart.
        let client = std::thread::spawn(move || {
            reqwest::blocking::Client::builder()
                .timeout(timeout)
                .build()
        })
        .join()
        .map_err(|_| Error::Exporter("building the HTTP client panicked".into()))?
        .map_err(|e| Error::Exporter(e.to_string()))?;
        Ok(Self {
            client,
            endpoint: endpoint.to_owned(),
            headers,
            resource: encode::EncodedResource::default(),
        })
    }
}

impl SpanExporter for Otlp {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let body = encode::request(&self.resource, &batch);
        drop(batch);
        let response = self
            .client
            .post(&self.endpoint)
            .headers(self.headers.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
            .body(body)
            .send()
            .map_err(|e| OTelSdkError::InternalFailure(without_url(&e)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().unwrap_or_default();
        Err(OTelSdkError::InternalFailure(format!(
            "the collector answered {status}: {}",
            text.chars().take(200).collect::<String>()
        )))
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = encode::EncodedResource::new(resource);
    }
}

/// reqwest's error without the URL it names (the warning names the endpoint already).
fn without_url(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text
            .replace(&format!(" ({url})"), "")
            .replace(url.as_str(), "the endpoint");
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// `%XX` escapes decoded, as the exporter specification writes header values.
fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("v={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The signal-specific URL for a base endpoint, as the OTLP exporter specification builds it.
fn traces_url(base: &str) -> String {
    format!("{}/v1/traces", base.trim_end_matches('/'))
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_that_cannot_work_are_refused_with_the_reason() {
        assert!(check_endpoint("http://127.0.0.1:4318/v1/traces").is_ok());
        assert!(check_endpoint("http://alloy/v1/traces").is_ok());
        for (endpoint, why) in [
            ("ftp://127.0.0.1:4318/v1/traces", "the scheme must be http"),
            (
                "https://collector:4318/v1/traces",
                "the scheme must be http",
            ),
            ("http://127.0.0.1:99999/v1/traces", "invalid port number"),
            ("127.0.0.1:4318", "relative URL without a base"),
            ("http://:4318/v1/traces", "empty host"),
        ] {
            let error = check_endpoint(endpoint).unwrap_err().to_string();
            assert!(error.contains(why), "{endpoint}: {error}");
            assert!(error.contains(endpoint), "{endpoint}: {error}");
        }
    }
}
