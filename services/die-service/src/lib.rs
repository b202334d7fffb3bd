//! The die-service: serves the die specifications of a dice file.
//!
//! `GET /dice` lists every die sorted by type and `GET /dice/{type}` returns one; an unknown type is
//! a JSON 404 that adds no metric series. `die_face_ratio` publishes each die's expected
//! distribution, so dashboards can set what was rolled beside what should have been. The file is
//! read and checked once at start-up (`dice_file`), so a bad file stops the service before it
//! listens. [`build`] returns the server bound to the configured address; `main.rs` only parses
//! [`Settings`] and calls [`run`].

mod dice_file;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use dice::{Catalog, DieSpec, LoadError};
use lab_http::app::App;
use lab_http::faults::FaultSettings;
use lab_http::reply::{ErrorStatus, json, result};
use lab_http::server::{BindError, ConnectionSettings, Routes, Server};
use parts::Part;
use prometheus::IntCounterVec;
use serde::Serialize;
use telemetry::metrics;
use warp::Filter as _;
use warp::http::StatusCode;
use warp::reply::Response;

/// Start-up settings: flags, each with an environment variable.
#[derive(Clone, Debug, Serialize, clap::Parser)]
#[command(version, about = "Serves dice-lab's die specifications.")]
pub struct Settings {
    /// Address to listen on; use 0.0.0.0:8402 in a container.
    #[arg(long, env = "DIE_SERVICE_LISTEN", default_value_t = Part::DieService.default_listen())]
    pub listen: SocketAddr,
    /// The dice file; the built-in dice.json when unset.
    #[arg(long, env = "DICE_FILE")]
    pub dice_file: Option<PathBuf>,
    #[command(flatten)]
    pub connections: ConnectionSettings,
    #[command(flatten)]
    pub faults: FaultSettings,
}

/// The service's name in telemetry.
pub const SERVICE: telemetry::ServiceInfo = telemetry::ServiceInfo {
    name: Part::DieService.name(),
    version: env!("CARGO_PKG_VERSION"),
    exports_traces: true,
};

/// Why the service cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Dice(#[from] LoadError),
    #[error(transparent)]
    Listen(#[from] BindError),
}

/// Runs the service as its binary does.
pub async fn run(settings: Settings) -> std::process::ExitCode {
    lab_http::runner::run_service(SERVICE, settings, build).await
}

/// Loads the dice and binds the server.
pub async fn build(settings: &Settings) -> Result<Server, StartError> {
    let catalog = dice_file::load(settings.dice_file.as_deref())?;
    tracing::info!(
        dice = catalog.len(),
        file = %settings.dice_file.as_ref().map_or(dice_file::BUILT_IN_NAME.into(), |p| p.display().to_string()),
        "dice loaded"
    );
    Ok(Server::bind(
        settings.listen,
        routes(catalog, &settings.faults),
        &settings.connections,
    )
    .await?)
}

struct State {
    catalog: Catalog,
    requested: IntCounterVec,
}

/// Every route of the service, with its own metrics registry.
pub fn routes(catalog: Catalog, faults: &FaultSettings) -> Routes {
    let app = App::new(SERVICE.name, faults, Vec::new());
    let registry = app.registry();
    metrics::int_gauge(
        registry,
        "die_specifications_loaded",
        "Dice loaded from the dice file.",
    )
    .set(i64::try_from(catalog.len()).unwrap_or(i64::MAX));
    let face_ratio = metrics::gauge_vec(
        registry,
        "die_face_ratio",
        "Share of a die's faces that show this value: the expected distribution of its rolls.",
        &["die_type", "value"],
    );
    for (die_type, spec) in &catalog {
        for (face, share) in spec.face_shares() {
            face_ratio
                .with_label_values(&[die_type.as_str(), &face.to_string()])
                .set(share);
        }
    }
    let state = Arc::new(State {
        requested: metrics::counter_vec(
            registry,
            "die_specifications_requested_total",
            "Die specifications served, by die type (known dice only).",
            &["die_type"],
        ),
        catalog,
    });

    let list = {
        let state = state.clone();
        warp::path!("dice").map(move || {
            let state = state.clone();
            async move { list_dice(&state) }
        })
    };
    let one = warp::path!("dice" / String).map(move |die: String| {
        let state = state.clone();
        async move { result(get_die(&state, &die)) }
    });
    app.api_route("/dice", list)
        .api_route("/dice/{type}", one)
        .into_routes()
}

/// A die with its type, as both routes return it.
#[derive(Serialize)]
struct TypedDie<'a> {
    #[serde(rename = "type")]
    die_type: &'a str,
    #[serde(flatten)]
    spec: &'a DieSpec,
}

fn list_dice(state: &State) -> Response {
    let dice: Vec<TypedDie> = state
        .catalog
        .iter()
        .map(|(die_type, spec)| TypedDie { die_type, spec })
        .collect();
    json(StatusCode::OK, &serde_json::json!({ "dice": dice }))
}

/// `GET /dice/{type}`'s one way to fail.
#[derive(Debug, thiserror::Error)]
#[error("unknown die '{shown}'; known dice: {known}")]
struct UnknownDie {
    /// The name asked for, cut short when it is long.
    shown: String,
    known: String,
}

impl ErrorStatus for UnknownDie {
    fn status(&self) -> StatusCode {
        StatusCode::NOT_FOUND
    }
}

fn get_die<'a>(state: &'a State, die: &str) -> Result<TypedDie<'a>, UnknownDie> {
    let die = percent_encoding::percent_decode_str(die).decode_utf8_lossy();
    match state.catalog.get_key_value(die.as_ref()) {
        Some((die_type, spec)) => {
            state.requested.with_label_values(&[die_type]).inc();
            tracing::info!(die_type = %die_type, "die specification served");
            Ok(TypedDie { die_type, spec })
        }
        None => {
            let mut shown: String = die.chars().take(dice::MAX_TYPE_LEN).collect();
            if shown.len() < die.len() {
                shown.push('…');
            }
            let known: Vec<&str> = state.catalog.keys().map(String::as_str).collect();
            Err(UnknownDie {
                shown,
                known: known.join(", "),
            })
        }
    }
}
