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
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, OTEL_BSP_SCHEDULE_DELAY, Span, SpanData, SpanExporter,
    SpanProcessor,
};

use crate::{DEFAULT_OTLP_ENDPOINT, Error, metrics};

/// The span processor for a service: the SDK's batch processor (configured by `OTEL_BSP_*`, with
/// [`SCHEDULE_DELAY`] unless `OTEL_BSP_SCHEDULE_DELAY` says otherwise) behind the drop counting; returns it with the endpoint spans go to.
pub(crate) fn processor() -> Result<(Counting, String), Error> {
    let configured = env_nonempty("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .or_else(|| env_nonempty("OTEL_EXPORTER_OTLP_ENDPOINT").map(|base| traces_url(&base)));
    let endpoint = configured.unwrap_or_else(|| traces_url(DEFAULT_OTLP_ENDPOINT));
    check_endpoint(&endpoint)?;
    let inner = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(endpoint.clone())
        .build()
        .map_err(|e| Error::Exporter(e.to_string()))?;
    let in_flight = Arc::new(AtomicUsize::new(0));
    let exporter = Reporting {
        inner,
        endpoint: endpoint.clone(),
        failing: AtomicBool::new(false),
        in_flight: in_flight.clone(),
    };
    let capacity = queue_size();
    let mut config = BatchConfigBuilder::default();
    if env_nonempty(OTEL_BSP_SCHEDULE_DELAY).is_none() {
        config = config.with_scheduled_delay(SCHEDULE_DELAY);
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

/// `OTEL_BSP_MAX_QUEUE_SIZE`, as the SDK reads it (default 2048).
fn queue_size() -> usize {
    env_nonempty("OTEL_BSP_MAX_QUEUE_SIZE")
        .and_then(|v| v.trim().parse().ok())
        .filter(|size| *size > 0)
        .unwrap_or(opentelemetry_sdk::trace::OTEL_BSP_MAX_QUEUE_SIZE_DEFAULT)
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
