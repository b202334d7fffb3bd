//! The lab's built-in store: where the services' traces and logs can be read back when Alloy,
//! Tempo and Loki are not installed.
//!
//! It listens where the lab's parts look for those three, and every port answers every route:
//! OTLP/HTTP trace exports (`POST /v1/traces`, Alloy's 4318, in `receiver`) go into a fixed
//! budget of memory (`memory`: recent traces, oldest evicted first); `query` answers Tempo's
//! trace-by-id API (`/api/traces/{id}` and `/api/v2/traces/{id}`, Tempo's 3200) from it, and the
//! subset of Loki's `query_range` that the frontend sends (Loki's 3100, `loki`) from the
//! services' JSON log files. `/ready` answers as Tempo's and Loki's do, `/metrics` counts
//! what came in and what was evicted. The store writes JSON logs like the services, but exports no
//! spans of its own, and its routes log their requests at debug: reading traces makes none.
//! [`build`] binds the server; the launcher runs it as `dice-lab serve store`.

mod loki;
mod memory;
mod query;
mod receiver;
mod split;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use lab_http::app::App;
use lab_http::server::{BindError, ConnectionSettings, Routes, Server};
use parts::Part;
use prometheus::{IntCounter, IntCounterVec, IntGauge};
use serde::Serialize;
use telemetry::metrics;

use crate::memory::Memory;
use crate::split::{Piece, TraceKey};
use traces::otlp::Encoding;

/// Start-up settings: flags, each with an environment variable.
#[derive(Clone, Debug, Serialize, clap::Parser)]
#[command(
    version,
    about = "The lab's store: OTLP/HTTP in; Tempo's trace-by-id and Loki's query_range (a subset) out."
)]
pub struct Settings {
    /// Where Tempo's API is asked for traces (Tempo's usual port).
    #[arg(long, env = "STORE_LISTEN", default_value_t = Part::Store.default_listen())]
    pub listen: SocketAddr,
    /// Where the services export their spans over OTLP/HTTP (Alloy's usual port).
    #[arg(long, env = "STORE_OTLP_LISTEN", default_value_t = local(4318))]
    pub otlp_listen: SocketAddr,
    /// Where Loki's API is asked for log lines (Loki's usual port).
    #[arg(long, env = "STORE_LOKI_LISTEN", default_value_t = local(3100))]
    pub loki_listen: SocketAddr,
    /// The memory kept for traces, in MiB; when they pass it, the oldest traces go first.
    #[arg(long, env = "STORE_MAX_MIB", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub max_mib: u64,
    /// The directory of the services' JSON log files (`*.log`), read for Loki's API.
    #[arg(long, env = "STORE_LOG_DIR", default_value = ".dice-lab/logs/services")]
    pub log_dir: PathBuf,
    #[command(flatten)]
    pub connections: ConnectionSettings,
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The `Server` header of the store's `/ready`.
pub const SERVER: &str = "dice-lab-store";

/// The store's name in its logs; it exports no spans.
pub const SERVICE: telemetry::ServiceInfo = telemetry::ServiceInfo {
    name: Part::Store.name(),
    version: env!("CARGO_PKG_VERSION"),
    exports_traces: false,
};

/// Runs the store as `dice-lab serve store` does.
pub async fn run(settings: Settings) -> std::process::ExitCode {
    lab_http::runner::run_service(SERVICE, settings, build).await
}

/// Binds the three addresses.
pub async fn build(settings: &Settings) -> Result<Server, BindError> {
    // One address given for two roles is listened on once; port 0 means a new port each time.
    let mut addresses: Vec<SocketAddr> = Vec::new();
    for address in [settings.listen, settings.otlp_listen, settings.loki_listen] {
        if address.port() == 0 || !addresses.contains(&address) {
            addresses.push(address);
        }
    }
    Server::bind_all(&addresses, routes(settings), &settings.connections).await
}

/// What the routes share: the kept traces, where the logs are, and the counts.
struct Store {
    memory: Mutex<Memory>,
    log_dir: PathBuf,
    counts: Counts,
}

/// The store's own metrics.
struct Counts {
    spans: IntCounter,
    exports: IntCounterVec,
    evicted: IntCounter,
    traces: IntGauge,
    bytes: IntGauge,
}

impl Store {
    /// Keeps the pieces of an export request and updates the gauges.
    fn keep(&self, pieces: Vec<(TraceKey, Piece)>, spans: u64) {
        let (inserted, traces, bytes) = {
            let mut memory = self
                .memory
                .lock()
                .expect("the memory lock is never poisoned");
            let inserted = memory.insert(pieces);
            (inserted, memory.traces(), memory.bytes())
        };
        self.counts.spans.inc_by(spans);
        self.counts.evicted.inc_by(inserted.evicted_traces as u64);
        self.counts.traces.set(gauge(traces));
        self.counts.bytes.set(gauge(bytes));
    }

    /// The spans of a trace (32 hex digits), if it is kept. A piece that does not decode (it was
    /// checked only as far as its ids when it came) is left out, so it spoils nothing else.
    fn trace(&self, trace_id: &str) -> Option<Vec<traces::Span>> {
        let key: TraceKey = (0..16)
            .map(|i| u8::from_str_radix(trace_id.get(2 * i..2 * i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?
            .try_into()
            .ok()?;
        let pieces = self
            .memory
            .lock()
            .expect("the memory lock is never poisoned")
            .get(&key)?;
        let mut spans = Vec::new();
        for piece in pieces {
            let request = split::request(std::slice::from_ref(&piece));
            match traces::otlp::decode(&request, Encoding::Protobuf) {
                Ok(decoded) => spans.extend(decoded),
                Err(error) => {
                    tracing::warn!(%error, trace_id, "a kept piece of a trace cannot be read")
                }
            }
        }
        Some(spans)
    }
}

fn gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Every route, on every port.
pub fn routes(settings: &Settings) -> Routes {
    let app = App::without_faults();
    let registry = app.registry();
    let budget = usize::try_from(settings.max_mib * 1024 * 1024).unwrap_or(usize::MAX);
    metrics::int_gauge(
        registry,
        "store_budget_bytes",
        "The memory the store keeps traces in (--max-mib).",
    )
    .set(gauge(budget));
    let exports = metrics::counter_vec(
        registry,
        "store_export_requests_total",
        "OTLP/HTTP export requests, by outcome: accepted, or why they were refused.",
        &["outcome"],
    );
    for outcome in receiver::OUTCOMES {
        exports.with_label_values(&[outcome]);
    }
    let store = Arc::new(Store {
        memory: Mutex::new(Memory::new(budget)),
        log_dir: settings.log_dir.clone(),
        counts: Counts {
            spans: metrics::counter(
                registry,
                "store_spans_received_total",
                "Spans received over OTLP/HTTP and kept.",
            ),
            exports,
            evicted: metrics::counter(
                registry,
                "store_traces_evicted_total",
                "Traces dropped, oldest first, to stay within the memory budget.",
            ),
            traces: metrics::int_gauge(registry, "store_traces", "Traces kept now."),
            bytes: metrics::int_gauge(
                registry,
                "store_kept_bytes",
                "Bytes the kept traces count against the budget.",
            ),
        },
    });
    let app = receiver::routes(app, &store);
    query::routes(app, &store).into_routes()
}
