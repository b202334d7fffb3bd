//! Traces as trees, and the shapes the contract promises (docs/contract.md), asserted in one place.
//!
//! A [`Trace`] (the lab's own, from the `traces` crate) is the spans of one trace id; [`Expect`]
//! adds what tests ask of one. The `assert_*` functions check the contract's span names, kinds,
//! parents and attributes and return the spans they found, so a test can go on to compare them
//! with log lines or with a caller's span. Failures print the whole tree.

use std::collections::BTreeSet;

use serde_json::Value;

pub use crate::otlp::Trace;
use crate::otlp::{Kind, Span, StatusCode};

/// What the tests ask of a trace beyond the tree itself.
pub trait Expect {
    /// The one span of `service` named `name`; panics with the tree when there are none or more.
    fn one(&self, service: &str, name: &str) -> &Span;

    /// Whether every span of one successful roll request has arrived, so that assertions see the
    /// whole tree and not a batch that is still on its way: one dice-roller SERVER span with
    /// `fetches` calls to the die-service (each with its SERVER span) and `rolls` `roll` spans
    /// and, when the request came `via_frontend`, the frontend's SERVER and CLIENT spans above it.
    fn has_roll_request(&self, via_frontend: bool, rolls: usize, fetches: usize) -> bool;
}

impl Expect for Trace {
    fn one(&self, service: &str, name: &str) -> &Span {
        let found = self.find(service, name);
        assert!(
            found.len() == 1,
            "expected one '{name}' span of {service}, found {}:\n{}",
            found.len(),
            self.render()
        );
        found[0]
    }

    fn has_roll_request(&self, via_frontend: bool, rolls: usize, fetches: usize) -> bool {
        let servers = |service: &str| {
            self.spans()
                .iter()
                .filter(|s| s.service() == service && s.kind == Kind::Server)
                .count()
        };
        servers("dice-roller") == 1
            && self.count("dice-roller", "GET") == fetches
            && self.count("die-service", "GET /dice/{type}") == fetches
            && self.count("dice-roller", "roll") == rolls
            && (!via_frontend || (servers("frontend") == 1 && self.count("frontend", "GET") == 1))
    }
}

/// What a trace of `/roll-async` holds, as found by [`assert_roll_async`].
pub struct RollAsync<'a> {
    /// The dice-roller's SERVER span `GET /roll-async`.
    pub server: &'a Span,
    /// Its CLIENT spans to the die-service (one, or N with `fetch=each`).
    pub clients: Vec<&'a Span>,
    /// The die-service SERVER spans `GET /dice/{type}`, one under each client span.
    pub die_service: Vec<&'a Span>,
    /// The N `roll` spans, ordered by `roll.index`.
    pub rolls: Vec<&'a Span>,
}

/// Asserts the dice-roller part of a Roll Multiple trace: the server span, `fetches` client spans
/// each with a die-service server span under it, and `times` `roll` spans under the server span
/// with `die.type`, distinct `roll.index` 0..times, and `roll.value` unless the roll failed (then
/// status Error).
pub fn assert_roll_async<'a>(
    trace: &'a Trace,
    die: &str,
    times: usize,
    fetches: usize,
) -> RollAsync<'a> {
    let server = trace.one("dice-roller", "GET /roll-async");
    assert_server(server, "/roll-async", 200);
    let children = trace.children(server);
    let clients: Vec<&Span> = children
        .iter()
        .copied()
        .filter(|s| s.kind == Kind::Client)
        .collect();
    assert_eq!(
        clients.len(),
        fetches,
        "die-service calls under the roller:\n{}",
        trace.render()
    );
    let die_service = clients
        .iter()
        .map(|client| assert_die_service_call(trace, client, die))
        .collect();

    let mut rolls: Vec<&Span> = children
        .iter()
        .copied()
        .filter(|s| s.name == "roll")
        .collect();
    assert_eq!(
        rolls.len(),
        times,
        "roll spans under the roller:\n{}",
        trace.render()
    );
    rolls.sort_by_key(|s| s.attr("roll.index").as_i64());
    let indexes: BTreeSet<i64> = rolls
        .iter()
        .filter_map(|s| s.attr("roll.index").as_i64())
        .collect();
    assert_eq!(
        indexes,
        (0..times as i64).collect(),
        "roll.index must number the rolls 0..N"
    );
    for roll in &rolls {
        assert_roll(roll, die);
        assert_eq!(roll.attr("roll.mode"), &Value::from("async"));
    }
    RollAsync {
        server,
        clients,
        die_service,
        rolls,
    }
}

/// The frontend's part of a trace: its SERVER span for `route` as the root of the whole trace, and
/// the CLIENT span under it whose child is the dice-roller's server span `roller_route`.
pub fn assert_frontend_root<'a>(
    trace: &'a Trace,
    route: &str,
    roller_route: &str,
) -> (&'a Span, &'a Span) {
    let root = trace.one("frontend", &format!("GET {route}"));
    assert_server(root, route, 200);
    assert_eq!(root.parent_span_id, "", "the frontend's span is the root");
    assert_eq!(trace.roots().len(), 1, "one root:\n{}", trace.render());
    let children = trace.children(root);
    assert_eq!(
        children.len(),
        1,
        "one call under the frontend:\n{}",
        trace.render()
    );
    let client = children[0];
    assert_eq!(client.service(), "frontend");
    assert_client(client, 200);
    let roller = trace.one("dice-roller", &format!("GET {roller_route}"));
    assert_eq!(
        roller.parent_span_id, client.span_id,
        "the roller continues the frontend's call"
    );
    (root, client)
}

/// What a trace of `/roll` holds, as found by [`assert_roll_sync`].
pub struct RollSync<'a> {
    pub server: &'a Span,
    pub client: &'a Span,
    pub die_service: &'a Span,
    pub roll: &'a Span,
}

/// Asserts the dice-roller part of a Roll Once trace: server span, one client span with the
/// die-service server span under it, and one `roll` span without `roll.index`.
pub fn assert_roll_sync<'a>(trace: &'a Trace, die: &str, status: u16) -> RollSync<'a> {
    let server = trace.one("dice-roller", "GET /roll");
    assert_server(server, "/roll", status);
    let children = trace.children(server);
    let client = children
        .iter()
        .copied()
        .find(|s| s.kind == Kind::Client)
        .unwrap_or_else(|| panic!("no client span under the roller:\n{}", trace.render()));
    let die_service = assert_die_service_call(trace, client, die);
    let roll = children
        .iter()
        .copied()
        .find(|s| s.name == "roll")
        .unwrap_or_else(|| panic!("no roll span under the roller:\n{}", trace.render()));
    assert_roll(roll, die);
    assert_eq!(
        roll.attr("roll.index"),
        &Value::Null,
        "a sync roll has no roll.index"
    );
    assert_eq!(roll.attr("roll.mode"), &Value::from("sync"));
    RollSync {
        server,
        client,
        die_service,
        roll,
    }
}

/// A roller CLIENT span to the die-service, and the die-service SERVER span under it.
fn assert_die_service_call<'a>(trace: &'a Trace, client: &'a Span, die: &str) -> &'a Span {
    assert_eq!(client.service(), "dice-roller");
    assert_client(client, 200);
    let url = client.attr("url.full").as_str().unwrap_or_default();
    assert!(url.ends_with(&format!("/dice/{die}")), "url.full is {url}");
    let under: Vec<&Span> = trace.children(client);
    assert_eq!(
        under.len(),
        1,
        "one die-service span under each call:\n{}",
        trace.render()
    );
    let served = under[0];
    assert_eq!(served.service(), "die-service");
    assert_eq!(served.name, "GET /dice/{type}");
    assert_server(served, "/dice/{type}", 200);
    served
}

/// A `roll` span: INTERNAL, `die.type`, and either `roll.value` or status Error.
pub fn assert_roll(roll: &Span, die: &str) {
    assert_eq!(roll.kind, Kind::Internal, "roll span kind");
    assert_eq!(roll.service(), "dice-roller");
    assert_eq!(roll.attr("die.type"), &Value::from(die));
    match roll.status {
        StatusCode::Error => {
            assert_eq!(
                roll.attr("roll.value"),
                &Value::Null,
                "a failed roll has no value"
            );
            assert_eq!(roll.status_message, format!("die '{die}' failed"));
        }
        _ => assert!(roll.attr("roll.value").is_i64(), "roll.value on {roll:?}"),
    }
}

/// A SERVER span following the HTTP semantic conventions.
pub fn assert_server(span: &Span, route: &str, status: u16) {
    assert_eq!(span.kind, Kind::Server, "{} is a server span", span.name);
    assert_eq!(span.name, format!("GET {route}"));
    assert_eq!(span.attr("http.request.method"), &Value::from("GET"));
    assert_eq!(span.attr("http.route"), &Value::from(route));
    assert_eq!(span.attr("url.scheme"), &Value::from("http"));
    assert!(
        span.attr("url.path").is_string(),
        "url.path on {}",
        span.name
    );
    assert!(
        span.attr("server.address").is_string(),
        "server.address on {}",
        span.name
    );
    assert!(
        span.attr("server.port").is_i64(),
        "server.port on {}",
        span.name
    );
    assert_eq!(span.attr("http.response.status_code"), &Value::from(status));
    if status >= 500 {
        assert_eq!(
            span.status,
            StatusCode::Error,
            "a 5xx server span is an error"
        );
        assert_eq!(span.attr("error.type"), &Value::from(status.to_string()));
    } else {
        assert_ne!(
            span.status,
            StatusCode::Error,
            "a {status} server span is no error"
        );
    }
}

/// A CLIENT span following the HTTP semantic conventions.
pub fn assert_client(span: &Span, status: u16) {
    assert_eq!(span.kind, Kind::Client, "{} is a client span", span.name);
    assert_eq!(span.name, "GET");
    assert_eq!(span.attr("http.request.method"), &Value::from("GET"));
    assert!(span.attr("url.full").is_string());
    assert!(span.attr("server.address").is_string());
    assert!(span.attr("server.port").is_i64());
    assert_eq!(span.attr("http.response.status_code"), &Value::from(status));
}

/// The resource every dice-lab span carries.
pub fn assert_resource(span: &Span, service: &str) {
    assert_eq!(span.service(), service);
    assert_eq!(
        span.resource.get("service.namespace"),
        Some(&Value::from("dice-lab"))
    );
    assert!(
        span.resource
            .get("service.version")
            .is_some_and(Value::is_string),
        "service.version on {service}"
    );
}

/// The most spans running at one instant.
pub fn max_concurrency(spans: &[&Span]) -> usize {
    let mut edges: Vec<(u64, i32)> = spans
        .iter()
        .flat_map(|s| [(s.start_ns, 1), (s.end_ns, -1)])
        .collect();
    // At equal times, ends before starts: touching spans do not overlap.
    edges.sort();
    let (mut now, mut most) = (0i32, 0i32);
    for (_, step) in edges {
        now += step;
        most = most.max(now);
    }
    most as usize
}

/// The sum of the spans' durations.
pub fn total_duration_ns(spans: &[&Span]) -> u64 {
    spans.iter().map(|s| s.duration_ns()).sum()
}
