//! The telemetry every dice-lab service emits: traces, logs and metrics, set up in one place.
//!
//! A service calls [`init`] once at start-up and keeps the returned [`Telemetry`]: it holds the
//! tracer provider (its batch processor in `batch`, which writes each span's protobuf as it ends
//! (`encode`); the OTLP/HTTP endpoint from the standard `OTEL_*` variables, in `export`), and the
//! JSON log subscriber (`logging`) whose lines carry the exported span's ids.
//! Spans are made through OpenTelemetry's API ([`span`]); log lines through `tracing`.
//! [`metrics`] makes the per-service Prometheus registry and its text page.
//! [`Telemetry::shutdown`] flushes the spans that are still queued once the server has drained.
//! Nothing here knows HTTP: the routes and clients that create spans live in the HTTP crate.

mod batch;
mod encode;
mod export;
mod logging;
pub mod metrics;
pub mod span;
pub mod wire;

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::resource::{EnvResourceDetector, TelemetryResourceDetector};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The OTLP/HTTP endpoint used when neither `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` nor
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
pub const DEFAULT_OTLP_ENDPOINT: &str = "http://127.0.0.1:4318";

/// The longest a service waits, at shutdown, for its queued spans to be exported.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest a service waits, at shutdown, for its queued log lines to be written.
pub const LOG_CLOSE_TIMEOUT: Duration = logging::CLOSE_TIMEOUT;

/// Who is emitting: the defaults for the resource attributes.
#[derive(Clone, Copy, Debug)]
pub struct ServiceInfo {
    /// Default `service.name`; `OTEL_SERVICE_NAME` overrides it.
    pub name: &'static str,
    /// `service.version`, normally `env!("CARGO_PKG_VERSION")`.
    pub version: &'static str,
    /// Whether it exports spans of its own. The lab's store does not: it would receive them
    /// itself, and each export would make another span to export.
    pub exports_traces: bool,
}

/// The `service.namespace` of every dice-lab service.
const SERVICE_NAMESPACE: &str = "dice-lab";

/// Everything [`init`] set up. Keep it alive for the life of the process and call
/// [`Telemetry::shutdown`] after the server has stopped.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
    logs: logging::Writer,
    traces_endpoint: Option<String>,
}

/// Sets up tracing, logging and propagation for this process. Call once, inside the tokio runtime.
pub fn init(info: ServiceInfo) -> Result<Telemetry, Error> {
    let resource = resource(info);
    let service_name = resource
        .get(&opentelemetry::Key::from_static_str("service.name"))
        .map(|v| v.to_string())
        .unwrap_or_else(|| info.name.to_owned());

    let (provider, traces_endpoint) = if sdk_disabled() || !info.exports_traces {
        (None, None)
    } else {
        let (processor, endpoint) = export::processor()?;
        let provider = SdkTracerProvider::builder()
            .with_resource(resource)
            .with_span_processor(processor)
            .build();
        opentelemetry::global::set_tracer_provider(provider.clone());
        (Some(provider), Some(endpoint))
    };

    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info"))
        .add_directive(quiet("hyper"))
        .add_directive(quiet("hyper_util"))
        .add_directive(quiet("reqwest"))
        .add_directive(quiet("warp"))
        .add_directive(quiet("opentelemetry"))
        .add_directive(quiet("opentelemetry_sdk"));
    let (json, logs) = logging::JsonLines::new(service_name);
    if let Some(provider) = &provider {
        let _ = span::TRACER.set(provider.tracer(info.name));
    }
    tracing_subscriber::registry()
        .with(json)
        .with(filter)
        .try_init()
        .map_err(|e| Error::AlreadyInitialised(e.to_string()))?;

    Ok(Telemetry {
        provider,
        logs,
        traces_endpoint,
    })
}

impl Telemetry {
    /// Where spans go, or `None` when `OTEL_SDK_DISABLED=true`.
    pub fn traces_endpoint(&self) -> Option<&str> {
        self.traces_endpoint.as_deref()
    }

    /// Flushes queued spans and stops the exporter (for at most [`FLUSH_TIMEOUT`]), then writes
    /// the queued log lines (for at most [`LOG_CLOSE_TIMEOUT`]). Runs the blocking work off the
    /// async threads.
    pub async fn shutdown(self) {
        let Self { provider, logs, .. } = self;
        if let Some(provider) = provider {
            let flushed =
                tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(FLUSH_TIMEOUT))
                    .await;
            match flushed {
                Ok(Ok(())) => {
                    tracing::info!("telemetry stopped; queued spans were handed to the exporter")
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "telemetry flush failed"),
                Err(e) => tracing::warn!(error = %e, "telemetry flush panicked"),
            }
        }
        let _ = tokio::task::spawn_blocking(move || logs.close()).await;
    }
}

/// The attribute-value length limit when none is set: a client's path, query or `User-Agent` is
/// kept to this many characters in spans and log lines.
pub const DEFAULT_ATTRIBUTE_VALUE_LENGTH_LIMIT: usize = 1024;

/// The longest value, in characters, that a span attribute or a logged field taken from a client
/// may have: `OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT`, else `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`, as
/// the OpenTelemetry specification orders them, else [`DEFAULT_ATTRIBUTE_VALUE_LENGTH_LIMIT`]. (The
/// SDK applies count limits only, so the lab applies this one where it records client text.)
pub fn attribute_value_limit() -> usize {
    static LIMIT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *LIMIT.get_or_init(|| {
        [
            "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
            "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
        ]
        .iter()
        .find_map(|name| std::env::var(name).ok()?.trim().parse().ok())
        .unwrap_or(DEFAULT_ATTRIBUTE_VALUE_LENGTH_LIMIT)
    })
}

/// `text` cut to [`attribute_value_limit`] characters, as the specification truncates an
/// attribute value.
pub fn truncate(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(attribute_value_limit()) {
        Some((end, _)) => std::borrow::Cow::Owned(text[..end].to_owned()),
        None => std::borrow::Cow::Borrowed(text),
    }
}

/// The trace id of the current span, when it is being traced (32 lowercase hex digits).
pub fn current_trace_id() -> Option<String> {
    span::current_ids().map(|(trace_id, _)| trace_id.to_string())
}

/// What can go wrong while setting telemetry up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the OTLP endpoint '{endpoint}' cannot be used: {why}")]
    Endpoint { endpoint: String, why: String },
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(String),
    #[error("a tracing subscriber is already installed: {0}")]
    AlreadyInitialised(String),
}

/// `service.name` (ours unless the environment names another), `service.namespace`,
/// `service.version`, the SDK's own attributes and `OTEL_RESOURCE_ATTRIBUTES`.
fn resource(info: ServiceInfo) -> Resource {
    let builder = Resource::builder_empty()
        .with_attributes([
            KeyValue::new("service.name", info.name),
            KeyValue::new("service.namespace", SERVICE_NAMESPACE),
            KeyValue::new("service.version", info.version),
        ])
        .with_detectors(&[
            Box::new(TelemetryResourceDetector),
            Box::new(EnvResourceDetector::new()),
        ]);
    match std::env::var("OTEL_SERVICE_NAME") {
        Ok(name) if !name.trim().is_empty() => builder.with_service_name(name.trim().to_owned()),
        _ => builder,
    }
    .build()
}

/// `OTEL_SDK_DISABLED=true` (case-insensitive) turns tracing off, as the specification says.
fn sdk_disabled() -> bool {
    std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

fn quiet(target: &str) -> tracing_subscriber::filter::Directive {
    format!("{target}=warn")
        .parse()
        .expect("a target name with a level is a valid directive")
}
