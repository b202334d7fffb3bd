//! The frontend: the dice-lab page on :8400 and the `/api` routes the page calls.
//!
//! `GET /` renders the Sycamore app on the server with the dice listed by the die-service, so the
//! first paint is complete; the browser then loads the WebAssembly from `/assets/` and hydrates it.
//! `/api/dice`, `/api/roll` and `/api/roll-async` pass the request on to the die-service or the
//! dice-roller and return the upstream JSON (and status) with the `trace_id` of the trace they
//! started: the frontend's SERVER span is the root of every user interaction, with a CLIENT span
//! for the call behind it. `/api/traces/{trace_id}` and `/api/traces/{trace_id}/logs` read a
//! click's trace and log lines back from the trace and log backends ([`trace_view`]). [`build`]
//! returns the server bound to the configured address; `main.rs` only parses [`Settings`] and
//! calls [`run`].

mod assets;
mod page;
pub mod trace_view;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use frontend_ui::{Die, Initial};
use lab_http::app::{App, without_query};
use lab_http::client::{Upstream, UpstreamError};
use lab_http::faults::FaultSettings;
use lab_http::reply::{ErrorStatus, json, json_error, raw_query, result};
use lab_http::runner::StartError;
use lab_http::server::{ConnectionSettings, Routes, Server};
use parts::Part;
use prometheus::IntCounterVec;
use serde::Serialize;
use serde_json::Value;
use telemetry::metrics;
use trace_view::Readers;
use warp::Filter as _;
use warp::http::StatusCode;
use warp::reply::{Reply as _, Response};

/// Start-up settings: flags, each with an environment variable.
#[derive(Clone, Debug, Serialize, clap::Parser)]
#[command(version, about = "Serves the dice-lab page and the API behind it.")]
pub struct Settings {
    /// Address to listen on; use 0.0.0.0:8400 in a container.
    #[arg(long, env = "FRONTEND_LISTEN", default_value_t = Part::Frontend.default_listen())]
    pub listen: SocketAddr,
    /// Base URL of the die-service.
    #[arg(long, env = "DIE_SERVICE_URL", default_value_t = Part::DieService.local_url())]
    pub die_service_url: String,
    /// Base URL of the dice-roller.
    #[arg(long, env = "DICE_ROLLER_URL", default_value_t = Part::DiceRoller.local_url())]
    pub dice_roller_url: String,
    /// The dice-roller's largest `times`, checked in the page before a request is sent.
    #[arg(long, env = "MAX_TIMES", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_times: u32,
    /// Grafana's base URL; when set, each trace id links to Grafana Explore.
    #[arg(long, env = "GRAFANA_URL")]
    pub grafana_url: Option<String>,
    /// Where traces are read, over Tempo's HTTP API: Tempo, or the lab's store in its place.
    #[arg(long, env = "TRACE_QUERY_URL", default_value_t = Part::Tempo.local_url())]
    pub trace_query_url: String,
    /// Where log lines are read, over Loki's HTTP API: Loki, or the lab's store in its place.
    #[arg(long, env = "LOG_QUERY_URL", default_value_t = Part::Loki.local_url())]
    pub log_query_url: String,
    /// How long a call to the dice-roller or die-service may take before the frontend answers 504.
    #[arg(long, env = "UPSTREAM_TIMEOUT_MS", default_value_t = 15_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub upstream_timeout_ms: u64,
    #[command(flatten)]
    pub connections: ConnectionSettings,
    #[command(flatten)]
    pub faults: FaultSettings,
}

/// The service's name in telemetry.
pub const SERVICE: telemetry::ServiceInfo = telemetry::ServiceInfo {
    name: Part::Frontend.name(),
    version: env!("CARGO_PKG_VERSION"),
    exports_traces: true,
};

/// The `action` label values of `frontend_actions_total`.
const ACTIONS: [&str; 4] = ["page_view", "list_dice", "roll_once", "roll_multiple"];

/// Runs the service as its binary does.
pub async fn run(settings: Settings) -> std::process::ExitCode {
    lab_http::runner::run_service(SERVICE, settings, build).await
}

/// Binds the server.
pub async fn build(settings: &Settings) -> Result<Server, StartError> {
    Ok(Server::bind(settings.listen, routes(settings)?, &settings.connections).await?)
}

struct State {
    die_service: Upstream,
    dice_roller: Upstream,
    max_times: u32,
    grafana_url: Option<String>,
    actions: IntCounterVec,
    readers: Readers,
}

/// Every route of the service, with its own metrics registry.
pub fn routes(settings: &Settings) -> Result<Routes, StartError> {
    let app = App::new(SERVICE.name, &settings.faults, Vec::new());
    let timeout = Duration::from_millis(settings.upstream_timeout_ms);
    let actions = metrics::counter_vec(
        app.registry(),
        "frontend_actions_total",
        "User actions: page views, dice listings, Roll Once and Roll Multiple.",
        &["action"],
    );
    for action in ACTIONS {
        actions.with_label_values(&[action]);
    }
    let state = Arc::new(State {
        die_service: Upstream::new(Part::DieService.name(), &settings.die_service_url, timeout)?,
        dice_roller: Upstream::new(Part::DiceRoller.name(), &settings.dice_roller_url, timeout)?,
        max_times: settings.max_times,
        grafana_url: settings.grafana_url.clone(),
        actions,
        readers: Readers::new(
            &settings.trace_query_url,
            &settings.log_query_url,
            &[
                (Part::DieService.name(), settings.die_service_url.as_str()),
                (Part::DiceRoller.name(), settings.dice_roller_url.as_str()),
            ],
        )?,
    });

    let with_state = move || {
        let state = state.clone();
        warp::any().map(move || state.clone())
    };
    let index = warp::path::end()
        .and(with_state())
        .map(|state: Arc<State>| async move { index(&state).await });
    let asset = warp::path!("assets" / String).map(|name: String| async move { asset(&name) });
    let dice = warp::path!("api" / "dice")
        .and(with_state())
        .map(|state: Arc<State>| async move {
            state.actions.with_label_values(&["list_dice"]).inc();
            relay(&state.die_service, &["dice"], None).await
        });
    let roll = warp::path!("api" / "roll")
        .and(with_state())
        .and(raw_query())
        .map(|state: Arc<State>, query: String| async move {
            state.actions.with_label_values(&["roll_once"]).inc();
            relay(&state.dice_roller, &["roll"], Some(&query)).await
        });
    let roll_async = warp::path!("api" / "roll-async")
        .and(with_state())
        .and(raw_query())
        .map(|state: Arc<State>, query: String| async move {
            state.actions.with_label_values(&["roll_multiple"]).inc();
            relay(&state.dice_roller, &["roll-async"], Some(&query)).await
        });
    let trace = warp::path!("api" / "traces" / String)
        .and(with_state())
        .map(|id: String, state: Arc<State>| async move { result(state.readers.trace(&id).await) });
    let logs = warp::path!("api" / "traces" / String / "logs")
        .and(with_state())
        .map(|id: String, state: Arc<State>| async move { result(state.readers.logs(&id).await) });
    const TRACE: &str = "/api/traces/{trace_id}";
    const LOGS: &str = "/api/traces/{trace_id}/logs";
    Ok(app
        .route("/", index)
        .route("/assets/{file}", asset)
        .api_route("/api/dice", dice)
        .api_route_with_query("/api/roll", roll)
        .api_route_with_query("/api/roll-async", roll_async)
        .quiet_route(TRACE, without_query(TRACE, trace))
        .quiet_route(LOGS, without_query(LOGS, logs))
        .into_routes())
}

/// The page, rendered with the dice the die-service lists (or with why it could not).
async fn index(state: &State) -> Response {
    state.actions.with_label_values(&["page_view"]).inc();
    let (dice, error) = match list_dice(&state.die_service).await {
        Ok(dice) => (dice, None),
        Err(error) => {
            tracing::warn!(%error, "cannot list the dice for the page");
            (
                Vec::new(),
                Some(format!(
                    "The dice cannot be listed: {error}. Reload the page once the die-service is back."
                )),
            )
        }
    };
    let initial = Initial {
        dice,
        max_times: state.max_times,
        grafana_url: state.grafana_url.clone(),
        error,
    };
    warp::reply::html(page::document(&initial)).into_response()
}

async fn list_dice(die_service: &Upstream) -> Result<Vec<Die>, String> {
    let answer = die_service
        .get(&["dice"], None)
        .await
        .map_err(|e| e.to_string())?;
    if answer.status != StatusCode::OK {
        return Err(format!("the die-service answered {}", answer.status));
    }
    #[derive(serde::Deserialize)]
    struct Listing {
        dice: Vec<Die>,
    }
    serde_json::from_slice::<Listing>(&answer.body)
        .map(|listing| listing.dice)
        .map_err(|e| format!("the die-service's list cannot be read: {e}"))
}

fn asset(name: &str) -> Response {
    match assets::get(name) {
        Some((bytes, content_type)) => {
            let mut response = Response::new(bytes.into());
            let headers = response.headers_mut();
            headers.insert(
                warp::http::header::CONTENT_TYPE,
                content_type.parse().expect("a valid header"),
            );
            headers.insert(
                warp::http::header::CACHE_CONTROL,
                "no-cache".parse().expect("a valid header"),
            );
            response
        }
        None => json_error(
            StatusCode::NOT_FOUND,
            format!(
                "no asset named '{}'",
                name.chars().take(40).collect::<String>()
            ),
        ),
    }
}

/// Passes a GET on to `upstream` and answers with its status and JSON body plus `trace_id`.
async fn relay(upstream: &Upstream, path: &[&str], query: Option<&str>) -> Response {
    let trace_id = telemetry::current_trace_id();
    let mut body = match upstream.get(path, query).await {
        Ok(answer) => match serde_json::from_slice::<Value>(&answer.body) {
            Ok(Value::Object(body)) => (answer.status, body),
            _ => upstream_failed(UpstreamError::Invalid {
                name: upstream.name(),
                detail: format!("a {} without a JSON object", answer.status),
            }),
        },
        Err(error) => upstream_failed(error),
    };
    if let Some(trace_id) = trace_id {
        body.1.insert("trace_id".into(), Value::String(trace_id));
    }
    json(body.0, &body.1)
}

fn upstream_failed(error: UpstreamError) -> (StatusCode, serde_json::Map<String, Value>) {
    let mut body = serde_json::Map::new();
    body.insert("error".into(), Value::String(error.to_string()));
    (error.status(), body)
}
