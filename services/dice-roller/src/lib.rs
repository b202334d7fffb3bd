//! The dice-roller: rolls dice whose specifications it fetches from the die-service.
//!
//! `GET /roll` fetches one spec and rolls once. `GET /roll-async` fetches the spec once (or, with
//! `fetch=each`, once per roll) and then runs `times` rolls at once, polled together in the
//! request's task, each in its own `roll` span under the request's server span, so a trace shows
//! them side by side
//! (`rolling`). Each roll waits its simulated delay on a timer, never blocking a thread. Every
//! way a roll request can fail is a `rolling::RollError`, mapped to its status in one place. The
//! roller owns the `sequential` fault switch (the lab guide's bug hunt), which rolls a batch one
//! roll at a time. [`build`] returns the server bound to the configured address; `main.rs` only
//! parses [`Settings`] and calls [`run`].

pub mod params;
mod rolling;

use std::net::SocketAddr;
use std::time::Duration;

use lab_http::app::App;
use lab_http::client::Upstream;
use lab_http::faults::{FaultSettings, Switch};
use lab_http::reply::raw_query;
use lab_http::runner::StartError;
use lab_http::server::{ConnectionSettings, Routes, Server};
use parts::Part;
use serde::Serialize;
use warp::Filter as _;

pub use rolling::DelayRange;

/// Start-up settings: flags, each with an environment variable.
#[derive(Clone, Debug, Serialize, clap::Parser)]
#[command(
    version,
    about = "Rolls dice-lab's dice, one at a time or many at once."
)]
pub struct Settings {
    /// Address to listen on; use 0.0.0.0:8401 in a container.
    #[arg(long, env = "DICE_ROLLER_LISTEN", default_value_t = Part::DiceRoller.default_listen())]
    pub listen: SocketAddr,
    /// Base URL of the die-service.
    #[arg(long, env = "DIE_SERVICE_URL", default_value_t = Part::DieService.local_url())]
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
    /// Most rolls running at once, over all requests; a request that would pass it gets a 503
    /// with Retry-After.
    #[arg(long, env = "MAX_ROLLS_IN_FLIGHT", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_rolls_in_flight: u32,
    /// Most calls to the die-service under way at once (each holds a connection); more wait for
    /// their turn within the time-out.
    #[arg(long, env = "MAX_DIE_SERVICE_CALLS", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_die_service_calls: u32,
    /// Fault: roll a batch one roll at a time, awaiting each before the next starts (the bug of
    /// the lab guide's bug hunt; also a run-time switch).
    #[arg(long, env = "ROLL_SEQUENTIAL")]
    pub sequential: bool,
    #[command(flatten)]
    pub connections: ConnectionSettings,
    #[command(flatten)]
    pub faults: FaultSettings,
}

/// The service's name in telemetry.
pub const SERVICE: telemetry::ServiceInfo = telemetry::ServiceInfo {
    name: Part::DiceRoller.name(),
    version: env!("CARGO_PKG_VERSION"),
    exports_traces: true,
};

/// Runs the service as its binary does.
pub async fn run(settings: Settings) -> std::process::ExitCode {
    lab_http::runner::run_service(SERVICE, settings, build).await
}

/// Binds the server.
pub async fn build(settings: &Settings) -> Result<Server, StartError> {
    Ok(Server::bind(settings.listen, routes(settings)?, &settings.connections).await?)
}

/// Every route of the service, with its own metrics registry.
pub fn routes(settings: &Settings) -> Result<Routes, StartError> {
    if settings.max_times > settings.max_rolls_in_flight {
        return Err(StartError::Settings(format!(
            "--max-times ({}) must be at most --max-rolls-in-flight ({}): a batch that large could never run",
            settings.max_times, settings.max_rolls_in_flight
        )));
    }
    let sequential = Switch::new("sequential", settings.sequential);
    let app = App::new(SERVICE.name, &settings.faults, vec![sequential.clone()]);
    let die_service = Upstream::new(
        Part::DieService.name(),
        &settings.die_service_url,
        Duration::from_millis(settings.die_service_timeout_ms),
    )?
    .with_metrics(app.registry())
    .with_limit(settings.max_die_service_calls as usize);
    let roller = rolling::Roller::new(
        die_service,
        settings.max_times,
        settings.roll_delay_ms,
        sequential,
        settings.max_rolls_in_flight,
        app.registry(),
    );

    let roll = {
        let roller = roller.clone();
        warp::path!("roll")
            .and(raw_query())
            .map(move |query: String| {
                let roller = roller.clone();
                async move { roller.roll(&query).await }
            })
    };
    let roll_async = warp::path!("roll-async")
        .and(raw_query())
        .map(move |query: String| {
            let roller = roller.clone();
            async move { roller.roll_async(&query).await }
        });
    Ok(app
        .api_route_with_query("/roll", roll)
        .api_route_with_query("/roll-async", roll_async)
        .into_routes())
}
