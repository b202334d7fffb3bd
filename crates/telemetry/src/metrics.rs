//! Prometheus metrics that every service exposes, and the text encoding of `/metrics`.
//!
//! Each service owns one [`prometheus::Registry`] (not the process-global one), so two services
//! started in one test process keep separate numbers; services register their metrics in it with
//! [`counter_vec`], [`histogram`] and friends. Every registry also shows what the telemetry itself
//! lost: `telemetry_spans_dropped_total{reason}` and `telemetry_log_lines_dropped_total`, which
//! belong to the process.

use prometheus::{
    Encoder as _, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, Opts, Registry, TextEncoder,
};

/// Latency buckets in seconds: fine below 10 ms (a zero-delay roll), coarse up to the 1 s default
/// roll delay and the upstream time-outs beyond it.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A fresh registry holding this process's CPU, memory and file-descriptor metrics, and what its
/// telemetry dropped.
pub fn registry() -> Registry {
    let registry = Registry::new();
    #[cfg(target_os = "linux")]
    registry
        .register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))
        .expect("the process collector is registered once per registry");
    let (spans, lines) = losses();
    registered(&registry, spans.clone());
    registered(&registry, lines.clone());
    registry
}

/// The process's telemetry losses.
fn losses() -> &'static (IntCounterVec, IntCounter) {
    static LOSSES: std::sync::OnceLock<(IntCounterVec, IntCounter)> = std::sync::OnceLock::new();
    LOSSES.get_or_init(|| {
        let spans = IntCounterVec::new(
            Opts::new(
                "telemetry_spans_dropped_total",
                "Spans this process dropped instead of exporting, by why: queue_full or export_failed.",
            ),
            &["reason"],
        )
        .expect("valid counter");
        for reason in ["queue_full", "export_failed"] {
            spans.with_label_values(&[reason]);
        }
        let lines = IntCounter::new(
            "telemetry_log_lines_dropped_total",
            "Log lines dropped because standard output was not being read fast enough.",
        )
        .expect("valid counter");
        (spans, lines)
    })
}

/// Counts spans dropped for `reason`.
pub(crate) fn spans_dropped(reason: &str) -> IntCounter {
    losses().0.with_label_values(&[reason])
}

/// Counts log lines dropped.
pub(crate) fn log_lines_dropped() -> &'static IntCounter {
    &losses().1
}

/// The registry in the Prometheus text exposition format.
pub fn encode(registry: &Registry) -> String {
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut out)
        .expect("encoding gathered metrics into a Vec cannot fail");
    String::from_utf8(out).expect("the text format is UTF-8")
}

// The constructors below panic only on a programming error (an invalid name or a name registered
// twice in one registry), which every test that builds a service would catch.

/// `metric`, registered in `registry`.
fn registered<M: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: M,
) -> M {
    registry
        .register(Box::new(metric.clone()))
        .expect("a metric is registered once per registry");
    metric
}

pub fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    registered(
        registry,
        IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter"),
    )
}

pub fn histogram_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    registered(
        registry,
        HistogramVec::new(opts, labels).expect("valid histogram"),
    )
}

pub fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    registered(
        registry,
        GaugeVec::new(Opts::new(name, help), labels).expect("valid gauge"),
    )
}

pub fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    registered(
        registry,
        IntCounter::new(name, help).expect("valid counter"),
    )
}

pub fn int_gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    registered(registry, IntGauge::new(name, help).expect("valid gauge"))
}

pub fn histogram(registry: &Registry, name: &str, help: &str, buckets: &[f64]) -> Histogram {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    registered(
        registry,
        Histogram::with_opts(opts).expect("valid histogram"),
    )
}
