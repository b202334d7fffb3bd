//! The life of a service binary: telemetry, its settings, start-up, serving, and the final flush.
//!
//! [`run_service`] installs telemetry, logs one JSON line with the effective settings, builds the
//! server, serves it until SIGINT or SIGTERM, and flushes the spans still queued. A start-up error
//! is logged, also printed plainly on stderr, and ends the process with a failure status.

use std::process::ExitCode;

use crate::client::ClientError;
use crate::server::{self, BindError, Server};

/// Why a service that calls other services cannot start: settings that cannot work together, an
/// upstream's URL it cannot use, or an address it cannot listen on.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Settings(String),
    #[error(transparent)]
    Upstream(#[from] ClientError),
    #[error(transparent)]
    Listen(#[from] BindError),
}

/// Runs a service: `build` turns its settings into a bound server.
pub async fn run_service<S, E>(
    info: telemetry::ServiceInfo,
    settings: S,
    build: impl AsyncFnOnce(&S) -> Result<Server, E>,
) -> ExitCode
where
    S: serde::Serialize,
    E: std::fmt::Display,
{
    let telemetry = match telemetry::init(info) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("{}: {error}", info.name);
            return ExitCode::FAILURE;
        }
    };
    let settings_json = serde_json::to_string(&settings).unwrap_or_default();
    tracing::info!(
        settings = %settings_json,
        traces_endpoint = telemetry.traces_endpoint().unwrap_or("disabled"),
        version = info.version,
        "{} starting",
        info.name
    );
    let server = match build(&settings).await {
        Ok(server) => server,
        Err(error) => {
            tracing::error!(%error, "{} cannot start", info.name);
            eprintln!("{}: {error}", info.name);
            telemetry.shutdown().await;
            return ExitCode::FAILURE;
        }
    };
    let addresses: Vec<String> = server.local_addrs().iter().map(|a| a.to_string()).collect();
    tracing::info!(
        address = %server.local_addr(),
        addresses = %addresses.join(","),
        "{} listening",
        info.name
    );
    let trimming = tokio::spawn(return_free_memory());
    server.run(server::shutdown_signal()).await;
    trimming.abort();
    telemetry.shutdown().await;
    ExitCode::SUCCESS
}

/// How often the allocator is asked to give freed memory back to the system.
const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Gives memory freed after a burst of load back to the system, every [`TRIM_EVERY`]. glibc's
/// allocator keeps freed memory in its arenas (one per thread that allocated, up to eight per
/// core) and returns only what lies at the top of the heap; `malloc_trim` returns the free pages
/// of every arena, so a service's memory comes back down after a flood of requests instead of
/// staying at its peak.
async fn return_free_memory() {
    let mut every = tokio::time::interval(TRIM_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim only returns free memory to the system.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}
