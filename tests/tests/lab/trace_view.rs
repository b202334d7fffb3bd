//! The frontend's trace routes (`/api/traces/{id}` and `/api/traces/{id}/logs`) against a fake
//! Tempo and a fake Loki that answer what the real ones answer, from the spans and log lines that
//! the three real services produced: both of Tempo's answer shapes, unknown and bad ids, a failing
//! and an absent backend.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use frontend_ui::trace_api::{LogsAnswer, TraceAnswer};
use lab_tests::backends::{Backends, Shape};
use lab_tests::http::{Target as _, send};
use lab_tests::in_process;
use lab_tests::otlp::Receiver;
use lab_tests::process::{self, Service};
use lab_tests::wait;
use reqwest::Method;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_frontend_reads_traces_and_logs_over_tempos_and_lokis_apis() {
    let receiver = Receiver::start().await;
    let logs = Arc::new(Mutex::new(Vec::new()));
    let backends = Backends::start(receiver.span_feed(), vec![logs.clone()]).await;
    let (die_service, roller) =
        process::die_service_and_roller(&receiver.endpoint(), &["--roll-delay-ms", "10..40"], &[])
            .await;
    let die_url = die_service.url();
    let endpoint = receiver.endpoint();
    let otel = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    let roller_url = roller.url();
    let backend_url = backends.url();
    let frontend = Service::start(
        "frontend",
        &[
            "--die-service-url",
            &die_url,
            "--dice-roller-url",
            &roller_url,
            "--trace-query-url",
            &backend_url,
            "--log-query-url",
            &backend_url,
        ],
        &otel,
    )
    .await;
    // The fake Loki serves every service's lines as they come.
    let sources = [
        die_service.log_feed(),
        roller.log_feed(),
        frontend.log_feed(),
    ];
    let collect = {
        let logs = logs.clone();
        tokio::spawn(async move {
            loop {
                let all: Vec<Value> = sources
                    .iter()
                    .flat_map(|s| s.lock().unwrap().clone())
                    .collect();
                *logs.lock().unwrap() = all;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    let rolled = send(
        Method::GET,
        &format!("{}/api/roll-async?die=fair&times=10", frontend.url()),
        None,
    )
    .await
    .json();
    let trace_id = rolled["trace_id"].as_str().expect("a trace id").to_owned();
    let trace_url = format!("{}/api/traces/{trace_id}", frontend.url());

    // Until every service's spans are in, the answer names those still on their way.
    let whole: TraceAnswer = wait::until(WAIT, Duration::from_millis(100), || async {
        let answer = send(Method::GET, &trace_url, None).await;
        match answer.status {
            200 => {
                let trace: TraceAnswer = serde_json::from_str(&answer.body).expect("a TraceAnswer");
                if trace.waiting_for.is_empty() {
                    Ok(trace)
                } else {
                    Err(format!("still waiting for {:?}", trace.waiting_for))
                }
            }
            404 => Err("not there yet".into()),
            other => panic!("{other}: {}", answer.body),
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(whole.trace_id, trace_id);
    let root = &whole.spans[0];
    assert_eq!(
        (root.depth, root.service.as_str(), root.kind.as_str()),
        (0, "frontend", "server")
    );
    assert_eq!(root.name, "GET /api/roll-async");
    assert_eq!(root.start_ns, 0, "offsets count from the trace's start");
    let rolls: Vec<_> = whole.spans.iter().filter(|s| s.name == "roll").collect();
    assert_eq!(rolls.len(), 10);
    let mut values: Vec<i64> = rolls
        .iter()
        .filter_map(|r| r.attr("roll.value").as_i64())
        .collect();
    let mut answered: Vec<i64> = rolled["rolls"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_i64)
        .collect();
    values.sort_unstable();
    answered.sort_unstable();
    assert_eq!(
        values, answered,
        "the roll rows carry the values the page showed"
    );
    for (i, span) in whole.spans.iter().enumerate() {
        if let Some(parent) = &span.parent_span_id {
            let at = whole
                .spans
                .iter()
                .position(|p| &p.span_id == parent)
                .expect("the parent is there");
            assert!(at < i, "parents come before their children");
            assert_eq!(span.depth, whole.spans[at].depth + 1);
        }
        assert!(span.end_ns() <= whole.duration_ns);
    }
    assert!(whole.start_unix_nano.parse::<u64>().unwrap() > 1_700_000_000_000_000_000);

    // Tempo's other answer shape gives the same trace.
    backends.set_shape(Shape::V2);
    let v2: TraceAnswer =
        serde_json::from_value(send(Method::GET, &trace_url, None).await.json()).unwrap();
    assert_eq!(v2, whole);

    // An unknown trace is a 404 with either shape; a bad id a 400; a failing backend a 502.
    let unknown = format!("{}/api/traces/{}", frontend.url(), "ab".repeat(16));
    for shape in [Shape::V1, Shape::V2] {
        backends.set_shape(shape);
        let answer = send(Method::GET, &unknown, None).await;
        assert_eq!(answer.status, 404, "{shape:?}: {}", answer.body);
        assert!(
            answer.json()["error"]
                .as_str()
                .unwrap()
                .contains("no trace")
        );
    }
    let bad = send(
        Method::GET,
        &format!("{}/api/traces/not-a-trace", frontend.url()),
        None,
    )
    .await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.json()["error"]
            .as_str()
            .unwrap()
            .contains("32 hexadecimal digits")
    );
    let asked = send(Method::GET, &format!("{trace_url}?x=1"), None).await;
    assert_eq!(asked.status, 400);
    backends.set_shape(Shape::Failing);
    let failing = send(Method::GET, &trace_url, None).await;
    assert_eq!(failing.status, 502, "{}", failing.body);
    assert!(
        failing.json()["error"]
            .as_str()
            .unwrap()
            .contains("the trace backend answered 500")
    );
    backends.set_shape(Shape::V1);

    // The log lines of the trace: one per roll, each with its roll span's id, in time order.
    let logs_url = format!("{trace_url}/logs");
    let lines: LogsAnswer = wait::until(WAIT, Duration::from_millis(100), || async {
        let answer = send(Method::GET, &logs_url, None).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let logs: LogsAnswer = serde_json::from_str(&answer.body).expect("a LogsAnswer");
        let roll_lines = logs
            .lines
            .iter()
            .filter(|l| l.fields.contains_key("roll_value"))
            .count();
        if roll_lines == 10 {
            Ok(logs)
        } else {
            Err(format!("{roll_lines} roll lines"))
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    for roll in &rolls {
        let line = lines
            .lines
            .iter()
            .find(|l| l.span_id.as_deref() == Some(roll.span_id.as_str()))
            .unwrap_or_else(|| panic!("no line for roll span {}", roll.span_id));
        assert_eq!(line.service, "dice-roller");
        assert_eq!(line.level, "info");
        assert_eq!(line.fields["roll_value"], *roll.attr("roll.value"));
        assert!(!line.fields.contains_key("trace_id") && !line.fields.contains_key("timestamp"));
    }
    let times: Vec<&str> = lines.lines.iter().map(|l| l.time.as_str()).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "earliest first");
    for service in ["frontend", "dice-roller", "die-service"] {
        assert!(
            lines.lines.iter().any(|l| l.service == service),
            "{service} logged in the trace"
        );
    }

    // Reading the trace made no trace and no access line at info.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !receiver
            .spans()
            .iter()
            .any(|s| s.name.contains("/api/traces")),
        "the trace routes are not traced"
    );
    assert!(
        !frontend.logs().iter().any(|l| l["path"]
            .as_str()
            .is_some_and(|p| p.starts_with("/api/traces"))),
        "the trace routes log at debug"
    );
    collect.abort();
}

#[tokio::test]
async fn a_backend_that_is_down_is_a_503_that_says_which() {
    let die = in_process::die_service(None).await;
    let settings = in_process::frontend_settings(&die.url(), &die.url());
    let frontend = in_process::frontend(settings).await;
    let id = "4bf92f3577b34da6a3ce929d0e0e4736";
    for path in [
        format!("/api/traces/{id}"),
        format!("/api/traces/{id}/logs"),
    ] {
        let answer = send(Method::GET, &format!("{}{path}", frontend.url()), None).await;
        assert_eq!(answer.status, 503, "{path}: {}", answer.body);
        let error = answer.json()["error"].as_str().unwrap().to_owned();
        let backend = if path.ends_with("logs") {
            "the log backend"
        } else {
            "the trace backend"
        };
        assert!(
            error.starts_with(&format!("{backend} is unreachable at http://127.0.0.1:9/")),
            "{error}"
        );
    }
}
