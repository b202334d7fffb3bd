//! Prometheus metrics that every service exposes, and the text encoding of `/metrics`.
//!
//! Each service owns one [`prometheus::Registry`] (not the process-global one), so two services
//! started in one test process keep separate numbers; services register their metrics in it with
//! [`counter_vec`], [`histogram`] and friends.

use prometheus::{
    Encoder as _, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

/// Latency buckets in seconds: fine below 10 ms (a zero-delay roll), coarse up to the 1 s default
/// roll delay and the upstream time-outs beyond it.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A fresh registry holding this process's CPU, memory and file-descriptor metrics.
pub fn registry() -> Registry {
    let registry = Registry::new();
    #[cfg(target_os = "linux")]
    registry
        .register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))
        .expect("the process collector is registered once per registry");
    registry
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

pub fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let metric = IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter");
    registry
        .register(Box::new(metric.clone()))
        .expect("registered once");
    metric
}

pub fn histogram_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    let metric = HistogramVec::new(opts, labels).expect("valid histogram");
    registry
        .register(Box::new(metric.clone()))
        .expect("registered once");
    metric
}

pub fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    let metric = GaugeVec::new(Opts::new(name, help), labels).expect("valid gauge");
    registry
        .register(Box::new(metric.clone()))
        .expect("registered once");
    metric
}

pub fn int_gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let metric = IntGauge::new(name, help).expect("valid gauge");
    registry
        .register(Box::new(metric.clone()))
        .expect("registered once");
    metric
}

pub fn histogram(registry: &Registry, name: &str, help: &str, buckets: &[f64]) -> Histogram {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    let metric = Histogram::with_opts(opts).expect("valid histogram");
    registry
        .register(Box::new(metric.clone()))
        .expect("registered once");
    metric
}
