//! Fault switches, so that the lab guide's exercises can break the services on purpose.
//!
//! Every service can add latency to its API requests and fail a fraction of them with a 500; a
//! service may add on/off switches of its own ([`Switch`]: the dice-roller's `sequential`, the
//! bug of the guide's bug hunt). All of it is off unless asked for: at start-up with
//! `--fault-latency-ms` and `--fault-error-rate` (and the service's own flags) or their environment
//! variables, and at run time through `/admin/faults` (`GET` to read, `PUT` with a JSON object to
//! change, `DELETE` to turn everything off). The run-time switch answers only requests from
//! loopback, or requests that carry `Authorization: Bearer TOKEN` when the service was started
//! with `--fault-token`. Faults happen inside the request's SERVER span, so a trace shows them
//! where they are; each one is counted in `faults_injected_total{kind}`, and every change of a
//! switch is logged.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures::Stream;
use http::{HeaderMap, Method, StatusCode};
use prometheus::{IntCounterVec, Registry};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use telemetry::metrics;
use warp::Filter as _;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use crate::observe::{self, HttpMetrics, Record};
use crate::reply::{self, ErrorStatus as _, json, json_error, method_not_allowed};

/// The longest latency a switch may add: far beyond every time-out in the lab.
const MAX_LATENCY_MS: u64 = 60_000;

/// The largest body `PUT /admin/faults` reads.
const MAX_BODY: usize = 4096;

/// Start-up fault settings, shared by every service's flags.
#[derive(Clone, Debug, Default, Serialize, clap::Args)]
pub struct FaultSettings {
    /// Fault: milliseconds of latency added to every API request (0, the default, is off).
    #[arg(long = "fault-latency-ms", env = "FAULT_LATENCY_MS", default_value_t = 0, value_parser = parse_latency)]
    pub latency_ms: u64,
    /// Fault: the fraction of API requests answered with an injected 500, 0 to 1 (0 is off).
    #[arg(long = "fault-error-rate", env = "FAULT_ERROR_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub error_rate: f64,
    /// Lets /admin/faults be used from other hosts with `Authorization: Bearer TOKEN`; without
    /// it, only requests from loopback may read or change the switches.
    #[arg(long = "fault-token", env = "FAULT_TOKEN", hide_env_values = true)]
    #[serde(serialize_with = "redacted")]
    pub token: Option<String>,
    /// Asks for the token from every peer, loopback included: behind a reverse proxy on the same
    /// host, every request comes from loopback.
    #[arg(
        long = "fault-token-required",
        env = "FAULT_TOKEN_REQUIRED",
        requires = "token"
    )]
    pub token_required: bool,
}

fn parse_latency(text: &str) -> Result<u64, String> {
    let value = text
        .parse::<u64>()
        .map_err(|_| format!("'{text}' is not a number of milliseconds"))?;
    check_latency(value)
}

fn parse_rate(text: &str) -> Result<f64, String> {
    let value = text
        .parse::<f64>()
        .map_err(|_| format!("'{text}' is not a number from 0 to 1"))?;
    check_rate(value)
}

fn check_latency(value: u64) -> Result<u64, String> {
    if value > MAX_LATENCY_MS {
        return Err(format!(
            "latency_ms must be at most {MAX_LATENCY_MS}, not {value}"
        ));
    }
    Ok(value)
}

fn check_rate(value: f64) -> Result<f64, String> {
    if !(0.0..=1.0).contains(&value) {
        return Err(format!("error_rate must be from 0 to 1, not {value}"));
    }
    Ok(value)
}

/// Start-up settings are printed; a token never is.
fn redacted<S: Serializer>(token: &Option<String>, serializer: S) -> Result<S::Ok, S::Error> {
    match token {
        Some(_) => serializer.serialize_str("(set)"),
        None => serializer.serialize_none(),
    }
}

/// An on/off fault switch of a service's own, shown and changed by `/admin/faults` under its
/// name. The service keeps a clone and asks [`Switch::is_on`] where the fault applies.
#[derive(Clone, Debug)]
pub struct Switch {
    name: &'static str,
    on: Arc<AtomicBool>,
}

impl Switch {
    pub fn new(name: &'static str, on: bool) -> Self {
        Self {
            name,
            on: Arc::new(AtomicBool::new(on)),
        }
    }

    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    fn set(&self, on: bool) {
        self.on.store(on, Ordering::Relaxed);
    }
}

/// The switches of one service, shared by its routes.
#[derive(Clone)]
pub struct Faults(Arc<State>);

struct State {
    service: &'static str,
    latency_ms: AtomicU64,
    /// The error rate's `f64` bits.
    error_rate: AtomicU64,
    /// The service's own switches.
    switches: Vec<Switch>,
    token: Option<String>,
    token_required: bool,
    injected: IntCounterVec,
}

/// A change `PUT /admin/faults` asked for, checked whole before any of it is applied.
struct Change {
    latency_ms: Option<u64>,
    error_rate: Option<f64>,
    switches: Vec<(Switch, bool)>,
}

impl Faults {
    /// The switches as `settings` set them, with the service's own `switches`.
    pub fn new(
        service: &'static str,
        settings: &FaultSettings,
        switches: Vec<Switch>,
        registry: &Registry,
    ) -> Self {
        let faults = Self(Arc::new(State {
            service,
            latency_ms: AtomicU64::new(settings.latency_ms),
            error_rate: AtomicU64::new(settings.error_rate.to_bits()),
            switches,
            token: settings.token.clone().filter(|t| !t.is_empty()),
            token_required: settings.token_required,
            injected: metrics::counter_vec(
                registry,
                "faults_injected_total",
                "Faults injected by the fault switches, by kind (latency or error).",
                &["kind"],
            ),
        }));
        for kind in ["latency", "error"] {
            faults.0.injected.with_label_values(&[kind]);
        }
        let on = faults.latency_ms() > 0
            || faults.error_rate() > 0.0
            || faults.0.switches.iter().any(Switch::is_on);
        if on {
            tracing::warn!(
                switches = %faults.switches(),
                "fault switches on at start-up"
            );
        }
        faults
    }

    fn latency_ms(&self) -> u64 {
        self.0.latency_ms.load(Ordering::Relaxed)
    }

    fn error_rate(&self) -> f64 {
        f64::from_bits(self.0.error_rate.load(Ordering::Relaxed))
    }

    /// What `/admin/faults` shows: `latency_ms`, `error_rate`, then the service's own switches.
    fn switches(&self) -> Value {
        let mut shown = Map::new();
        shown.insert("latency_ms".into(), self.latency_ms().into());
        shown.insert("error_rate".into(), self.error_rate().into());
        for switch in &self.0.switches {
            shown.insert(switch.name.into(), switch.is_on().into());
        }
        Value::Object(shown)
    }

    /// The fields a change may hold, as a sentence names them.
    fn fields(&self) -> String {
        let mut names = vec!["latency_ms", "error_rate"];
        names.extend(self.0.switches.iter().map(|s| s.name));
        match names.split_last() {
            Some((last, [])) => (*last).to_owned(),
            Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
            None => String::new(),
        }
    }

    /// Reads a `PUT` body: a JSON object whose fields are known and of the right type, with
    /// values in range. Nothing is applied here.
    fn read_change(&self, body: &[u8]) -> Result<Change, String> {
        let shape = |detail: String| {
            format!(
                "the body must be a JSON object with any of {}: {detail}",
                self.fields()
            )
        };
        let object: Map<String, Value> =
            serde_json::from_slice(body).map_err(|e| shape(e.to_string()))?;
        let mut change = Change {
            latency_ms: None,
            error_rate: None,
            switches: Vec::new(),
        };
        for (field, value) in object {
            match field.as_str() {
                "latency_ms" => {
                    let latency = value.as_u64().ok_or_else(|| {
                        shape(format!(
                            "latency_ms must be a whole number of milliseconds, not {value}"
                        ))
                    })?;
                    change.latency_ms = Some(check_latency(latency)?);
                }
                "error_rate" => {
                    let rate = value.as_f64().ok_or_else(|| {
                        shape(format!("error_rate must be a number, not {value}"))
                    })?;
                    change.error_rate = Some(check_rate(rate)?);
                }
                name => {
                    let switch =
                        self.0
                            .switches
                            .iter()
                            .find(|s| s.name == name)
                            .ok_or_else(|| {
                                format!(
                                    "unknown field `{name}`: {} has {}",
                                    self.0.service,
                                    self.fields()
                                )
                            })?;
                    let on = value.as_bool().ok_or_else(|| {
                        shape(format!("{name} must be true or false, not {value}"))
                    })?;
                    change.switches.push((switch.clone(), on));
                }
            }
        }
        Ok(change)
    }

    fn apply(&self, change: Change) {
        if let Some(latency) = change.latency_ms {
            self.0.latency_ms.store(latency, Ordering::Relaxed);
        }
        if let Some(rate) = change.error_rate {
            self.0.error_rate.store(rate.to_bits(), Ordering::Relaxed);
        }
        for (switch, on) in change.switches {
            switch.set(on);
        }
    }

    fn all_off(&self) {
        self.0.latency_ms.store(0, Ordering::Relaxed);
        self.0.error_rate.store(0f64.to_bits(), Ordering::Relaxed);
        for switch in &self.0.switches {
            switch.set(false);
        }
    }

    /// Runs before an API request is answered, inside its span: waits the added latency, then
    /// returns the injected error to answer instead, if this request draws one.
    pub(crate) async fn inject(&self) -> Option<Response> {
        let (latency_ms, error_rate) = (self.latency_ms(), self.error_rate());
        if latency_ms > 0 {
            self.0.injected.with_label_values(&["latency"]).inc();
            tokio::time::sleep(Duration::from_millis(latency_ms)).await;
        }
        if error_rate > 0.0 && rand::random::<f64>() < error_rate {
            self.0.injected.with_label_values(&["error"]).inc();
            tracing::warn!(
                error_rate,
                "injected fault: failing this request on purpose"
            );
            return Some(json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!(
                    "injected fault: {} fails {}% of requests on purpose (see /admin/faults)",
                    self.0.service,
                    error_rate * 100.0
                ),
            ));
        }
        None
    }

    /// `/admin/faults`: GET, PUT and DELETE, from loopback or with the token.
    pub(crate) fn admin(&self, http: &HttpMetrics) -> BoxedFilter<(Response,)> {
        let faults = self.clone();
        let http = http.clone();
        warp::path!("admin" / "faults")
            .and(observe::request())
            .and(warp::body::stream())
            .then(move |request: observe::Request, body| {
                let faults = faults.clone();
                let http = http.clone();
                async move {
                    let answer = faults.answer_admin(
                        request.method.clone(),
                        request.peer,
                        request.headers.clone(),
                        request.query.clone(),
                        body,
                    );
                    observe::observe(
                        &http,
                        Some("/admin/faults"),
                        Record::Traced,
                        request,
                        answer,
                    )
                    .await
                }
            })
            .boxed()
    }

    async fn answer_admin<S, B>(
        self,
        method: Method,
        peer: Option<SocketAddr>,
        headers: HeaderMap,
        query: String,
        body: S,
    ) -> Response
    where
        S: Stream<Item = Result<B, warp::Error>> + Send,
        B: bytes::Buf,
    {
        if !self.allowed(peer, &headers) {
            return json_error(
                StatusCode::FORBIDDEN,
                if self.0.token_required {
                    "the fault switches answer only with 'Authorization: Bearer TOKEN' \
                     (--fault-token-required)"
                } else {
                    "the fault switches answer only on localhost, or with \
                     'Authorization: Bearer TOKEN' when the service was started with --fault-token"
                },
            );
        }
        if let Some(refused) = reply::no_query("/admin/faults", &query) {
            return refused;
        }
        match method {
            Method::GET | Method::HEAD => {}
            Method::PUT => {
                let body = match read_body(body).await {
                    Ok(body) => body,
                    Err(response) => return response,
                };
                match self.read_change(&body) {
                    Ok(change) => self.apply(change),
                    Err(message) => return json_error(StatusCode::BAD_REQUEST, message),
                }
                self.log_change();
            }
            Method::DELETE => {
                self.all_off();
                self.log_change();
            }
            other => {
                return method_not_allowed(
                    format!("/admin/faults answers GET, PUT and DELETE, not {other}"),
                    "GET, HEAD, PUT, DELETE",
                );
            }
        }
        json(StatusCode::OK, &self.switches())
    }

    fn allowed(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> bool {
        if !self.0.token_required && peer.is_some_and(|p| p.ip().to_canonical().is_loopback()) {
            return true;
        }
        let Some(token) = &self.0.token else {
            return false;
        };
        let offered = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        constant_time_eq(offered.as_bytes(), token.as_bytes())
    }

    fn log_change(&self) {
        tracing::warn!(switches = %self.switches(), "fault switches changed");
    }
}

/// The body, or the JSON 400 or 413 that says why it cannot be had.
async fn read_body<S, B>(body: S) -> Result<Vec<u8>, Response>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: bytes::Buf,
{
    reply::read_body(body, MAX_BODY)
        .await
        .map_err(|error| json_error(error.status(), error.to_string()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn faults(token: Option<&str>, switches: Vec<Switch>) -> Faults {
        let settings = FaultSettings {
            token: token.map(str::to_owned),
            ..FaultSettings::default()
        };
        Faults::new("test", &settings, switches, &metrics::registry())
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        headers
    }

    #[test]
    fn loopback_may_always_switch_other_hosts_only_with_the_token() {
        let local: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:5000".parse().unwrap();
        let remote: SocketAddr = "10.1.2.3:5000".parse().unwrap();
        let none = HeaderMap::new();

        let without = faults(None, Vec::new());
        assert!(without.allowed(Some(local), &none));
        assert!(without.allowed(Some(mapped), &none));
        assert!(!without.allowed(Some(remote), &none));
        assert!(!without.allowed(Some(remote), &bearer("")));
        assert!(!without.allowed(None, &none));

        let with = faults(Some("s3cret"), Vec::new());
        assert!(with.allowed(Some(remote), &bearer("s3cret")));
        assert!(!with.allowed(Some(remote), &bearer("s3cre")));
        assert!(!with.allowed(Some(remote), &bearer("s3cret!")));
        assert!(!with.allowed(Some(remote), &none));
        // An empty token is no token.
        assert!(!faults(Some(""), Vec::new()).allowed(Some(remote), &bearer("")));

        // Behind a proxy every peer is loopback: the token is asked of everyone.
        let settings = FaultSettings {
            token: Some("s3cret".into()),
            token_required: true,
            ..FaultSettings::default()
        };
        let proxied = Faults::new("test", &settings, Vec::new(), &metrics::registry());
        assert!(!proxied.allowed(Some(local), &none));
        assert!(!proxied.allowed(Some(local), &bearer("nope")));
        assert!(proxied.allowed(Some(local), &bearer("s3cret")));
    }

    #[test]
    fn start_up_values_are_checked_like_run_time_ones() {
        assert_eq!(parse_latency("250"), Ok(250));
        assert!(
            parse_latency("60001")
                .unwrap_err()
                .contains("at most 60000")
        );
        assert!(parse_latency("fast").unwrap_err().contains("not a number"));
        assert_eq!(parse_rate("0.25"), Ok(0.25));
        assert!(parse_rate("2").unwrap_err().contains("from 0 to 1"));
        assert!(parse_rate("NaN").unwrap_err().contains("from 0 to 1"));
    }

    #[test]
    fn a_service_shows_and_changes_its_own_switches_and_only_those() {
        let sequential = Switch::new("sequential", false);
        let roller = faults(None, vec![sequential.clone()]);
        assert_eq!(
            roller.switches(),
            serde_json::json!({"latency_ms": 0, "error_rate": 0.0, "sequential": false})
        );
        let change = roller.read_change(br#"{"sequential": true}"#).unwrap();
        assert!(!sequential.is_on(), "reading a change applies nothing");
        roller.apply(change);
        assert!(sequential.is_on());
        roller.all_off();
        assert!(!sequential.is_on());

        let other = faults(None, Vec::new());
        assert_eq!(
            other.read_change(br#"{"sequential": true}"#).err().unwrap(),
            "unknown field `sequential`: test has latency_ms and error_rate"
        );
        for body in [&b"[300, 0.25, null]"[..], b"{\"sequential\": 1}"] {
            let error = roller.read_change(body).err().unwrap();
            assert!(
                error.starts_with(
                    "the body must be a JSON object with any of latency_ms, error_rate and sequential: "
                ),
                "{error}"
            );
        }
    }
}
