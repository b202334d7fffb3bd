//! The OTLP/HTTP span exporter, wrapped so that a missing collector costs one warning.
//!
//! The lab is often started before (or without) Alloy. The batch processor then fails every export;
//! the wrapper logs the first failure as a warning, stays quiet while the collector stays away, and
//! says once when exports succeed again. Spans of failed batches are dropped, as the SDK does.

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use crate::{DEFAULT_OTLP_ENDPOINT, Error};

/// Builds the exporter from the `OTEL_EXPORTER_OTLP_*` variables; returns it with the endpoint it
/// sends to.
pub(crate) fn exporter() -> Result<(WarnOnce<opentelemetry_otlp::SpanExporter>, String), Error> {
    let configured = env_nonempty("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .or_else(|| env_nonempty("OTEL_EXPORTER_OTLP_ENDPOINT").map(|base| traces_url(&base)));
    let mut builder = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary);
    let endpoint = match configured {
        Some(endpoint) => endpoint,
        None => {
            let endpoint = traces_url(DEFAULT_OTLP_ENDPOINT);
            builder = builder.with_endpoint(endpoint.clone());
            endpoint
        }
    };
    let inner = builder
        .build()
        .map_err(|e| Error::Exporter(e.to_string()))?;
    let exporter = WarnOnce {
        inner,
        endpoint: endpoint.clone(),
        failing: AtomicBool::new(false),
    };
    Ok((exporter, endpoint))
}

/// A span exporter that reports a run of failures once.
#[derive(Debug)]
pub(crate) struct WarnOnce<E> {
    inner: E,
    endpoint: String,
    failing: AtomicBool,
}

impl<E: SpanExporter> SpanExporter for WarnOnce<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len();
        let result = self.inner.export(batch).await;
        match &result {
            Err(error) if !self.failing.swap(true, Ordering::Relaxed) => tracing::warn!(
                endpoint = %self.endpoint,
                error = %error,
                dropped_spans = spans,
                "cannot export spans; dropping them until the collector answers (this is said once)"
            ),
            Ok(()) if self.failing.swap(false, Ordering::Relaxed) => {
                tracing::info!(endpoint = %self.endpoint, "exporting spans again")
            }
            _ => {}
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
