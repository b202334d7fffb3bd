//! The fault switches the lab guide uses, against the services running in this process on real
//! sockets: off by default, on at start-up or at run time through `/admin/faults`, every bad
//! change refused with a clear error and without changing anything, and each fault where the
//! exercises expect it (a 500 from the die-service becoming the roller's 502, latency in the
//! answer time, `faults_injected_total`). Sequential rolling is checked on traces in `traces.rs`.

use std::time::{Duration, Instant};

use lab_http::faults::FaultSettings;
use lab_tests::http::Target as _;
use lab_tests::in_process::{Running, dice_roller, die_service, die_service_with, roller_settings};
use lab_tests::prom;
use lab_tests::wait;
use reqwest::Method;
use serde_json::{Value, json};

async fn switches(service: &Running) -> Value {
    let (status, body) = service.get("/admin/faults").await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn put(service: &Running, body: &str) -> (u16, Value) {
    service.call(Method::PUT, "/admin/faults", Some(body)).await
}

async fn injected(service: &Running, kind: &str) -> f64 {
    prom::value(
        &service.metrics().await,
        "faults_injected_total",
        &[("kind", kind)],
    )
    .expect("faults_injected_total is exported")
}

#[tokio::test]
async fn every_switch_is_off_by_default() {
    let dice = die_service(None).await;
    let roller = dice_roller(roller_settings(&dice.url())).await;
    assert_eq!(
        switches(&dice).await,
        json!({"latency_ms": 0, "error_rate": 0.0})
    );
    assert_eq!(
        switches(&roller).await,
        json!({"latency_ms": 0, "error_rate": 0.0, "sequential": false})
    );
    for _ in 0..20 {
        let (status, _) = roller.get("/roll?die=fair").await;
        assert_eq!(status, 200);
    }
    assert_eq!(injected(&dice, "error").await, 0.0);
    assert_eq!(injected(&dice, "latency").await, 0.0);
}

#[tokio::test]
async fn an_error_rate_at_start_up_fails_the_die_service_and_the_roller_says_502() {
    let dice = die_service_with(die_service::Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        dice_file: None,
        connections: Default::default(),
        faults: FaultSettings {
            error_rate: 1.0,
            ..FaultSettings::default()
        },
    })
    .await;
    let roller = dice_roller(roller_settings(&dice.url())).await;

    let (status, body) = dice.get("/dice/fair").await;
    assert_eq!(status, 500);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("injected fault: die-service fails 100% of requests"),
        "{body}"
    );
    let (status, body) = roller.get("/roll?die=fair").await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(injected(&dice, "error").await, 2.0);

    let (status, body) = dice.call(Method::DELETE, "/admin/faults", None).await;
    assert_eq!(
        (status, body),
        (200, json!({"latency_ms": 0, "error_rate": 0.0}))
    );
    let (status, _) = roller.get("/roll?die=fair").await;
    assert_eq!(status, 200);
    // The switch's own page and the service's health are never failed on purpose.
    let (status, _) = put(&dice, r#"{"error_rate": 1}"#).await;
    assert_eq!(status, 200);
    for path in ["/healthz", "/admin/faults"] {
        let (status, _) = dice.get(path).await;
        assert_eq!(status, 200, "{path}");
    }
}

#[tokio::test]
async fn latency_switched_on_at_run_time_slows_every_roll() {
    let dice = die_service(None).await;
    let roller = dice_roller(roller_settings(&dice.url())).await;
    let (status, body) = put(&dice, r#"{"latency_ms": 300}"#).await;
    assert_eq!(
        (status, body),
        (200, json!({"latency_ms": 300, "error_rate": 0.0}))
    );
    let started = Instant::now();
    let (status, _) = roller.get("/roll-async?die=fair&times=5").await;
    assert_eq!(status, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "the die-service's 300 ms are in the roll's answer time"
    );
    assert_eq!(injected(&dice, "latency").await, 1.0);

    // Beyond the roller's time-out (1 s in these tests) the latency becomes a 504.
    put(&dice, r#"{"latency_ms": 1500}"#).await;
    let (status, body) = roller.get("/roll?die=fair").await;
    assert_eq!(status, 504, "{body}");
    // The die-service saw its caller hang up: it counts the request as 499, not as nothing.
    wait::until(Duration::from_secs(5), Duration::from_millis(50), || {
        let dice = &dice;
        async move {
            let samples = dice.metrics().await;
            let closed = prom::value(
                &samples,
                "http_requests_total",
                &[("handler", "/dice/{type}"), ("status", "499")],
            );
            (closed == Some(1.0))
                .then_some(())
                .ok_or_else(|| format!("no request counted as 499:\n{samples:?}"))
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn bad_changes_are_refused_and_change_nothing() {
    let dice = die_service(None).await;
    let roller = dice_roller(roller_settings(&dice.url())).await;
    put(&roller, r#"{"latency_ms": 5, "sequential": true}"#).await;
    let before = switches(&roller).await;
    let cases: &[(&str, u16, &str)] = &[
        (
            r#"{"error_rate": 1.5}"#,
            400,
            "error_rate must be from 0 to 1",
        ),
        (
            r#"{"error_rate": -0.1}"#,
            400,
            "error_rate must be from 0 to 1",
        ),
        (
            r#"{"latency_ms": 60001, "sequential": false}"#,
            400,
            "latency_ms must be at most 60000",
        ),
        (
            r#"{"latency_ms": -1}"#,
            400,
            "the body must be a JSON object",
        ),
        (r#"{"latency": 100}"#, 400, "unknown field `latency`"),
        ("not json", 400, "the body must be a JSON object"),
        ("[300, 0.25, null]", 400, "the body must be a JSON object"),
        ("", 400, "the body must be a JSON object"),
    ];
    for (body, status, message) in cases {
        let (got, answer) = put(&roller, body).await;
        assert_eq!(got, *status, "PUT {body:?}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(message),
            "PUT {body:?}: {answer}"
        );
        assert_eq!(
            switches(&roller).await,
            before,
            "PUT {body:?} changed nothing"
        );
    }
    let (status, answer) = put(&roller, &format!(r#"{{"x": "{}"}}"#, "a".repeat(5000))).await;
    assert_eq!(status, 413, "{answer}");
    let (status, answer) = put(&dice, r#"{"sequential": true}"#).await;
    assert_eq!(status, 400);
    // The switch is the dice-roller's own; the die-service has none of that name.
    assert_eq!(
        answer["error"],
        "unknown field `sequential`: die-service has latency_ms and error_rate"
    );
    let (status, answer) = dice.call(Method::POST, "/admin/faults", None).await;
    assert_eq!(status, 405, "{answer}");
}
