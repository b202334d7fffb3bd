//! The dice-roller: rolls dice whose specifications it fetches from the die-service.
//!
//! `GET /roll` fetches one spec and rolls once. `GET /roll-async` fetches the spec once (or, with
//! `fetch=each`, once per roll) and then runs `times` rolls as concurrent tokio tasks, each in its
//! own `roll` span under the request's server span, so a trace shows them side by side. Each roll
//! waits its simulated delay on a timer, never blocking a thread. Upstream failures map onto 503,
//! 504 and 502 through [`telemetry::client`]. [`build`] returns the server bound to the configured
//! address; `main.rs` only parses [`Settings`] and runs it.

pub mod params;
mod rolling;

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;
use telemetry::client::Upstream;
use telemetry::faults::{FaultSettings, Faults};
use telemetry::server::{self, Server};
use telemetry::{HttpMetrics, metrics};
use warp::Filter as _;
use warp::reply::Response;

pub use rolling::DelayRange;

/// Start-up settings: flags, each with an environment variable.
#[derive(Clone, Debug, Serialize, clap::Parser)]
#[command(
    version,
    about = "Rolls dice-lab's dice, one at a time or many at once."
)]
pub struct Settings {
    /// Address to listen on; use 0.0.0.0:8401 in a container.
    #[arg(long, env = "DICE_ROLLER_LISTEN", default_value = "127.0.0.1:8401")]
    pub listen: SocketAddr,
    /// Base URL of the die-service.
    #[arg(long, env = "DIE_SERVICE_URL", default_value = "http://127.0.0.1:8402")]
    pub die_service_url: String,
    /// Largest `times` that /roll-async accepts.
    #[arg(long, env = "MAX_TIMES", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_times: u32,
    /// Simulated work per roll, MIN..MAX milliseconds (or one number); a die's own delay_ms wins.
    #[arg(long, env = "ROLL_DELAY_MS", default_value = "0..1000")]
    pub roll_delay_ms: DelayRange,
    /// How long a die-service call may take before the roller answers 504.
    #[arg(long, env = "DIE_SERVICE_TIMEOUT_MS", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
    pub die_service_timeout_ms: u64,
    /// Fault: roll a batch one roll at a time, awaiting each before the next starts (the bug of
    /// the lab guide's bug hunt; also a run-time switch).
    #[arg(long, env = "ROLL_SEQUENTIAL")]
    pub sequential: bool,
    #[command(flatten)]
    pub faults: FaultSettings,
}

/// The service's name in telemetry.
pub const SERVICE: telemetry::ServiceInfo = telemetry::ServiceInfo {
    name: "dice-roller",
    version: env!("CARGO_PKG_VERSION"),
};

/// Binds the server.
pub async fn build(settings: &Settings) -> Result<Server, String> {
    Server::bind(settings.listen, routes(settings)?).await
}

/// Every route of the service, with its own metrics registry.
pub fn routes(settings: &Settings) -> Result<warp::filters::BoxedFilter<(Response,)>, String> {
    let registry = metrics::registry();
    let http = HttpMetrics::new(&registry);
    let faults = Faults::new(
        SERVICE.name,
        &settings.faults,
        Some(settings.sequential),
        &registry,
    );
    let die_service = Upstream::new(
        "die-service",
        &settings.die_service_url,
        Duration::from_millis(settings.die_service_timeout_ms),
    )?;
    let roller = rolling::Roller::new(
        die_service,
        settings.max_times,
        settings.roll_delay_ms,
        faults.clone(),
        &registry,
    );

    let roll = {
        let roller = roller.clone();
        server::api_route(
            &http,
            &faults,
            "/roll",
            warp::path!("roll")
                .and(server::raw_query())
                .map(move |query: String| {
                    let roller = roller.clone();
                    async move { roller.roll(&query).await }
                }),
        )
    };
    let roll_async = server::api_route(
        &http,
        &faults,
        "/roll-async",
        warp::path!("roll-async")
            .and(server::raw_query())
            .map(move |query: String| {
                let roller = roller.clone();
                async move { roller.roll_async(&query).await }
            }),
    );
    Ok(server::app(
        roll.or(roll_async).unify().boxed(),
        &http,
        registry,
        &faults,
    ))
}
