//! The life of a service binary: telemetry, its settings, start-up, serving, and the final flush.
//!
//! [`run_service`] installs telemetry, logs one JSON line with the effective settings, builds the
//! server, serves it until SIGINT or SIGTERM, and flushes the spans still queued. A start-up error
//! is logged, also printed plainly on stderr, and ends the process with a failure status.

use std::process::ExitCode;

use crate::client::ClientError;
use crate::server::{self, BindError, Server};

/// Why a service that calls other services cannot start: an upstream's URL it cannot use, or an
/// address it cannot listen on.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
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
    tracing::info!(address = %server.local_addr(), "{} listening", info.name);
    server.run(server::shutdown_signal()).await;
    telemetry.shutdown().await;
    ExitCode::SUCCESS
}
