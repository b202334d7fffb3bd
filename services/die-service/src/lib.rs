//! The die-service: serves the die specifications of a `dice.json` file.
//!
//! `GET /dice` lists every die sorted by type and `GET /dice/{type}` returns one; an unknown type is
//! a JSON 404 that adds no metric series. `die_face_ratio` publishes each die's expected
//! distribution, so dashboards can set what was rolled beside what should have been. The file is read and checked once at start-up, so a bad
//! file stops the service before it listens. [`build`] returns the server bound to the configured
//! address; `main.rs` only parses [`Settings`] and runs it.

pub mod dice;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use prometheus::IntCounterVec;
use serde::Serialize;
use telemetry::faults::{FaultSettings, Faults};
use telemetry::server::{self, Server, json, json_error};
use telemetry::{HttpMetrics, metrics};
use warp::Filter as _;
use warp::http::StatusCode;
use warp::reply::Response;

use crate::dice::{Catalog, DieSpec};

/// Start-up settings: flags, each with an environment variable.
#[derive(Clone, Debug, Serialize, clap::Parser)]
#[command(version, about = "Serves dice-lab's die specifications.")]
pub struct Settings {
    /// Address to listen on; use 0.0.0.0:8402 in a container.
    #[arg(long, env = "DIE_SERVICE_LISTEN", default_value = "127.0.0.1:8402")]
    pub listen: SocketAddr,
    /// The dice file; the built-in dice.json when unset.
    #[arg(long, env = "DICE_FILE")]
    pub dice_file: Option<PathBuf>,
    #[command(flatten)]
    pub faults: FaultSettings,
}

/// The service's name in telemetry.
pub const SERVICE: telemetry::ServiceInfo = telemetry::ServiceInfo {
    name: "die-service",
    version: env!("CARGO_PKG_VERSION"),
};

/// Loads the dice and binds the server.
pub async fn build(settings: &Settings) -> Result<Server, String> {
    let catalog = dice::load(settings.dice_file.as_deref()).map_err(|e| e.to_string())?;
    tracing::info!(
        dice = catalog.len(),
        file = %settings.dice_file.as_ref().map_or(dice::BUILT_IN_NAME.into(), |p| p.display().to_string()),
        "dice loaded"
    );
    Server::bind(settings.listen, routes(catalog, &settings.faults)).await
}

struct State {
    catalog: Catalog,
    requested: IntCounterVec,
}

/// Every route of the service, with its own metrics registry.
pub fn routes(catalog: Catalog, faults: &FaultSettings) -> warp::filters::BoxedFilter<(Response,)> {
    let registry = metrics::registry();
    let http = HttpMetrics::new(&registry);
    let faults = Faults::new(SERVICE.name, faults, None, &registry);
    metrics::int_gauge(
        &registry,
        "die_specifications_loaded",
        "Dice loaded from the dice file.",
    )
    .set(i64::try_from(catalog.len()).unwrap_or(i64::MAX));
    let face_ratio = metrics::gauge_vec(
        &registry,
        "die_face_ratio",
        "Share of a die's faces that show this value: the expected distribution of its rolls.",
        &["die_type", "value"],
    );
    for (die_type, spec) in &catalog {
        for face in spec.distinct_faces() {
            let carrying = spec.faces.iter().filter(|&&f| f == face).count();
            face_ratio
                .with_label_values(&[die_type.as_str(), &face.to_string()])
                .set(carrying as f64 / spec.faces.len() as f64);
        }
    }
    let state = Arc::new(State {
        catalog,
        requested: metrics::counter_vec(
            &registry,
            "die_specifications_requested_total",
            "Die specifications served, by die type (known dice only).",
            &["die_type"],
        ),
    });

    let list = {
        let state = state.clone();
        server::api_route(
            &http,
            &faults,
            "/dice",
            warp::path!("dice").map(move || {
                let state = state.clone();
                async move { list_dice(&state) }
            }),
        )
    };
    let one = server::api_route(
        &http,
        &faults,
        "/dice/{type}",
        warp::path!("dice" / String).map(move |die: String| {
            let state = state.clone();
            async move { get_die(&state, &die) }
        }),
    );
    server::app(list.or(one).unify().boxed(), &http, registry, &faults)
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

fn get_die(state: &State, die: &str) -> Response {
    let die = percent_encoding::percent_decode_str(die).decode_utf8_lossy();
    match state.catalog.get_key_value(die.as_ref()) {
        Some((die_type, spec)) => {
            state.requested.with_label_values(&[die_type]).inc();
            tracing::info!(die_type = %die_type, "die specification served");
            json(StatusCode::OK, &TypedDie { die_type, spec })
        }
        None => json_error(StatusCode::NOT_FOUND, unknown_die(&die, &state.catalog)),
    }
}

/// "unknown die 'x'; known dice: ...", with an over-long name cut short.
fn unknown_die(die: &str, catalog: &Catalog) -> String {
    let shown: String = die.chars().take(dice::MAX_TYPE_LEN).collect();
    let ellipsis = if shown.len() < die.len() { "…" } else { "" };
    let known: Vec<&str> = catalog.keys().map(String::as_str).collect();
    format!(
        "unknown die '{shown}{ellipsis}'; known dice: {}",
        known.join(", ")
    )
}
