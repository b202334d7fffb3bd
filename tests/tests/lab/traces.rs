//! Trace shape across real processes: the die-service and dice-roller binaries export OTLP to a
//! receiver in this test, and every assertion is on what was really exported and logged.

use std::time::Duration;

use lab_tests::fixtures::traceparent;
use lab_tests::http::Target as _;
use lab_tests::otlp::{Receiver, StatusCode};
use lab_tests::process::{self, Service};
use lab_tests::prom;
use lab_tests::trace::{
    Expect as _, Trace, assert_resource, assert_roll_async, assert_roll_sync, max_concurrency,
    total_duration_ns,
};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(15);

/// A receiver, a die-service on the test dice and a roller in front of it.
struct Lab {
    receiver: Receiver,
    die_service: Service,
    roller: Service,
    http: reqwest::Client,
}

impl Lab {
    async fn start(roller_args: &[&str]) -> Self {
        Self::start_with(roller_args, &[]).await
    }

    async fn start_with(roller_args: &[&str], roller_env: &[(&str, &str)]) -> Self {
        let receiver = Receiver::start().await;
        // Rolls take 20 to 80 ms unless a test says otherwise.
        let mut args = Vec::new();
        if !roller_args.contains(&"--roll-delay-ms") {
            args.extend_from_slice(&["--roll-delay-ms", "20..80"]);
        }
        args.extend_from_slice(roller_args);
        let (die_service, roller) =
            process::die_service_and_roller(&receiver.endpoint(), &args, roller_env).await;
        Self {
            receiver,
            die_service,
            roller,
            http: reqwest::Client::new(),
        }
    }

    /// GETs `path_and_query` on the roller inside a fresh trace; returns the trace id, the
    /// caller's span id, the status and the JSON body.
    async fn get(&self, path_and_query: &str) -> (String, String, u16, Value) {
        let (trace_id, parent, header) = traceparent();
        let response = self
            .http
            .get(format!("{}{path_and_query}", self.roller.url()))
            .header("traceparent", header)
            .send()
            .await
            .expect("the roller answers");
        let status = response.status().as_u16();
        let body = response.json().await.expect("a JSON body");
        (trace_id, parent, status, body)
    }

    /// Waits until the trace holds `rolls` roll spans and `served` die-service spans.
    async fn trace(&self, trace_id: &str, rolls: usize, served: usize) -> Trace {
        self.receiver
            .wait_for_trace(trace_id, WAIT, |t| t.has_roll_request(false, rolls, served))
            .await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn roll_once_is_one_chain_across_both_services() {
    let lab = Lab::start(&[]).await;
    let (trace_id, parent, status, body) = lab.get("/roll?die=fair").await;
    assert_eq!(status, 200, "{body}");
    let trace = lab.trace(&trace_id, 1, 1).await;
    let sync = assert_roll_sync(&trace, "fair", 200);

    assert_eq!(
        sync.server.parent_span_id, parent,
        "the caller's span is the parent"
    );
    assert_eq!(sync.client.parent_span_id, sync.server.span_id);
    assert_eq!(sync.die_service.parent_span_id, sync.client.span_id);
    assert_eq!(sync.roll.parent_span_id, sync.server.span_id);
    assert_eq!(sync.roll.attr("roll.value"), &body["roll"]);
    assert_eq!(
        sync.die_service.attr("url.path"),
        &Value::from("/dice/fair")
    );
    assert_eq!(trace.len(), 4, "{}", trace.render());
    assert_resource(sync.server, "dice-roller");
    assert_resource(sync.die_service, "die-service");
}

#[tokio::test(flavor = "multi_thread")]
async fn roll_multiple_runs_n_roll_spans_at_the_same_time() {
    let lab = Lab::start(&["--max-times", "100"]).await;
    for times in [1, 10, 100] {
        let (trace_id, _, status, body) = lab
            .get(&format!("/roll-async?die=fair&times={times}"))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["count"], times);
        let trace = lab.trace(&trace_id, times, 1).await;
        let shape = assert_roll_async(&trace, "fair", times, 1);

        let values: Vec<Value> = shape
            .rolls
            .iter()
            .map(|r| r.attr("roll.value").clone())
            .collect();
        assert_eq!(
            Value::Array(values),
            body["rolls"],
            "span values match the answer, in order"
        );
        for roll in &shape.rolls {
            assert_eq!(roll.parent_span_id, shape.server.span_id);
        }
        // Each roll waited at least 20 ms, so if they ran one after another their sum could not fit
        // in the server span.
        if times > 1 {
            let sum = total_duration_ns(&shape.rolls);
            assert!(
                sum > shape.server.duration_ns(),
                "N={times}: rolls took {sum} ns in all but the request only {} ns",
                shape.server.duration_ns()
            );
            assert!(
                max_concurrency(&shape.rolls) >= 2,
                "N={times}: rolls overlapped"
            );
        }
        // The spec was fetched once, before any roll started.
        let fetched = shape.clients[0];
        assert!(shape.rolls.iter().all(|r| r.start_ns >= fetched.end_ns));
    }
}

/// The lab guide's bug hunt: with `--sequential` (or the run-time switch) the same batch runs one
/// roll at a time, and the trace shows a staircase instead of a stack.
#[tokio::test(flavor = "multi_thread")]
async fn the_sequential_switch_makes_rolls_wait_for_each_other() {
    let lab = Lab::start(&["--sequential"]).await;
    let staircase = |trace: &Trace| {
        let shape = assert_roll_async(trace, "fair", 5, 1);
        let mut rolls = shape.rolls.clone();
        rolls.sort_by_key(|r| r.start_ns);
        assert_eq!(max_concurrency(&rolls), 1, "{}", trace.render());
        for pair in rolls.windows(2) {
            assert!(pair[1].start_ns >= pair[0].end_ns, "{}", trace.render());
        }
        assert!(total_duration_ns(&rolls) <= shape.server.duration_ns());
    };
    let (trace_id, _, status, body) = lab.get("/roll-async?die=fair&times=5").await;
    assert_eq!(status, 200, "{body}");
    staircase(&lab.trace(&trace_id, 5, 1).await);

    // Switched off at run time, the next batch overlaps again; switched on, it queues again.
    let switch = |on: bool| {
        let http = lab.http.clone();
        let url = format!("{}/admin/faults", lab.roller.url());
        async move {
            let response = http
                .put(url)
                .body(format!(r#"{{"sequential": {on}}}"#))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        }
    };
    switch(false).await;
    let (trace_id, _, _, _) = lab.get("/roll-async?die=fair&times=5").await;
    let trace = lab.trace(&trace_id, 5, 1).await;
    let shape = assert_roll_async(&trace, "fair", 5, 1);
    assert!(max_concurrency(&shape.rolls) >= 2, "{}", trace.render());
    switch(true).await;
    let (trace_id, _, _, _) = lab.get("/roll-async?die=fair&times=5").await;
    staircase(&lab.trace(&trace_id, 5, 1).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_each_calls_the_die_service_once_per_roll_concurrently() {
    let lab = Lab::start(&[]).await;
    let (trace_id, _, status, body) = lab.get("/roll-async?die=fixed&times=10&fetch=each").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total"], 30);
    let trace = lab.trace(&trace_id, 10, 10).await;
    let shape = assert_roll_async(&trace, "fixed", 10, 10);
    assert_eq!(shape.die_service.len(), 10);
    for client in &shape.clients {
        assert_eq!(client.parent_span_id, shape.server.span_id);
    }
    let first_roll_start = shape.rolls.iter().map(|r| r.start_ns).min().unwrap();
    let last_fetch_start = shape.clients.iter().map(|c| c.start_ns).max().unwrap();
    assert!(
        last_fetch_start < first_roll_start + 80_000_000,
        "the fetches start together, not one per finished roll"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_traceparent_the_roller_starts_the_trace() {
    let lab = Lab::start(&[]).await;
    let response = reqwest::get(format!("{}/roll?die=fair", lab.roller.url()))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let spans = lab
        .receiver
        .wait_for_spans(WAIT, 1, |s| s.name == "GET /roll")
        .await;
    let server = spans.iter().find(|s| s.name == "GET /roll").unwrap();
    assert_eq!(server.parent_span_id, "", "a new root span");
    let trace = lab.trace(&server.trace_id.clone(), 1, 1).await;
    assert_eq!(trace.roots().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_rolls_are_error_spans() {
    let lab = Lab::start(&[]).await;

    let (trace_id, _, status, body) = lab.get("/roll?die=doomed").await;
    assert_eq!(status, 500);
    assert_eq!(body["error"], "die 'doomed' failed");
    let trace = lab.trace(&trace_id, 1, 1).await;
    let sync = assert_roll_sync(&trace, "doomed", 500);
    assert_eq!(sync.roll.status, StatusCode::Error);

    let (trace_id, _, status, body) = lab.get("/roll-async?die=half&times=40").await;
    assert_eq!(
        status, 200,
        "a failed roll in a batch is data, not an error"
    );
    let trace = lab.trace(&trace_id, 40, 1).await;
    let shape = assert_roll_async(&trace, "half", 40, 1);
    let errors = shape
        .rolls
        .iter()
        .filter(|r| r.status == StatusCode::Error)
        .count();
    assert_eq!(Value::from(errors), body["failed"]);
    assert!(
        errors > 0 && errors < 40,
        "{errors} of 40 failed at error_rate 0.5"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn log_lines_carry_the_ids_of_the_exported_spans() {
    let lab = Lab::start(&[]).await;
    let (trace_id, _, status, _) = lab.get("/roll-async?die=fair&times=10").await;
    assert_eq!(status, 200);
    let trace = lab.trace(&trace_id, 10, 1).await;
    let shape = assert_roll_async(&trace, "fair", 10, 1);

    let roll_lines = lab
        .roller
        .wait_for_logs(WAIT, 10, |l| {
            l["trace_id"] == trace_id.as_str() && l["roll_index"].is_u64()
        })
        .await;
    assert_eq!(roll_lines.len(), 10, "one line per concurrent roll");
    for line in &roll_lines {
        let index = line["roll_index"].as_u64().unwrap() as usize;
        let span = shape.rolls[index];
        assert_eq!(line["span_id"], span.span_id.as_str(), "roll {index}");
        assert_eq!(line["die_type"], "fair");
        assert_eq!(line["roll_value"], *span.attr("roll.value"));
        assert_eq!(line["service"], "dice-roller");
        assert_eq!(line["level"], "info");
        assert!(
            line["timestamp"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z') && t.contains('T'))
        );
    }

    let access = lab
        .roller
        .wait_for_logs(WAIT, 1, |l| {
            l["trace_id"] == trace_id.as_str() && l["route"] == "/roll-async"
        })
        .await;
    assert_eq!(access.len(), 1, "one access line per request");
    assert_eq!(access[0]["span_id"], shape.server.span_id.as_str());
    assert_eq!(access[0]["status"], 200);
    assert_eq!(access[0]["method"], "GET");
    assert!(access[0]["duration_ms"].is_f64());

    let served = lab
        .die_service
        .wait_for_logs(WAIT, 1, |l| {
            l["trace_id"] == trace_id.as_str() && l["route"] == "/dice/{type}"
        })
        .await;
    assert_eq!(served[0]["span_id"], shape.die_service[0].span_id.as_str());
    assert_eq!(served[0]["service"], "die-service");

    for service in [&lab.roller, &lab.die_service] {
        assert!(
            service.logs().iter().all(|l| l.get("unparsed").is_none()),
            "every stdout line is JSON"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_flushes_spans_that_were_still_queued() {
    // A five-minute export delay: only the shutdown flush can deliver these spans.
    let mut lab = Lab::start_with(&[], &[("OTEL_BSP_SCHEDULE_DELAY", "300000")]).await;
    let (trace_id, _, status, _) = lab.get("/roll-async?die=fair&times=5").await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        lab.receiver
            .spans()
            .iter()
            .filter(|s| s.service() == "dice-roller")
            .count(),
        0,
        "nothing is exported before shutdown"
    );
    let exit = lab.roller.terminate().await;
    assert!(
        exit.success(),
        "the roller exits cleanly on SIGTERM: {exit}"
    );
    let trace = lab.trace(&trace_id, 5, 1).await;
    assert_roll_async(&trace, "fair", 5, 1);
    assert!(lab.roller.logs().iter().any(|l| {
        l["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("telemetry stopped"))
    }));
}

#[tokio::test(flavor = "multi_thread")]
async fn no_collector_costs_one_warning_and_no_requests() {
    // A port that was free a moment ago: nothing listens there.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let die_service = Service::start("die-service", &[], &[("OTEL_SDK_DISABLED", "true")]).await;
    let url = die_service.url();
    let roller = Service::start(
        "dice-roller",
        &["--die-service-url", &url, "--roll-delay-ms", "0"],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &closed),
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        ],
    )
    .await;
    let http = reqwest::Client::new();
    for _ in 0..20 {
        let response = http
            .get(format!("{}/roll-async?die=fair&times=5", roller.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    roller
        .wait_for_logs(WAIT, 1, |l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("cannot export spans"))
        })
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let warnings: Vec<Value> = roller
        .logs()
        .into_iter()
        .filter(|l| l["level"] == "warn" || l["level"] == "error")
        .collect();
    assert_eq!(
        warnings.len(),
        1,
        "one warning, not one per batch: {warnings:#?}"
    );
    assert_eq!(warnings[0]["endpoint"], format!("{closed}/v1/traces"));
    // It says why, and every lost span is counted.
    let said = warnings[0]["message"].as_str().unwrap();
    assert!(
        said.contains(warnings[0]["error"].as_str().unwrap()),
        "{said}"
    );
    let lost = prom::value(
        &roller.metrics().await,
        "telemetry_spans_dropped_total",
        &[("reason", "export_failed")],
    )
    .unwrap();
    assert!(lost >= 7.0, "{lost} spans counted as lost");
}

/// More spans than the queue in front of the exporter holds: the excess is dropped, counted and
/// said once, with the setting that sizes the queue; every span is either exported or counted.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_span_queue_drops_counted_spans_and_says_so_once() {
    let mut lab = Lab::start_with(
        &["--max-times", "1000", "--roll-delay-ms", "0"],
        &[
            ("OTEL_BSP_MAX_QUEUE_SIZE", "64"),
            ("OTEL_BSP_SCHEDULE_DELAY", "2000"),
        ],
    )
    .await;
    let (trace_id, _, status, _) = lab.get("/roll-async?die=fair&times=1000").await;
    assert_eq!(status, 200);
    let dropped = prom::value(
        &lab.roller.metrics().await,
        "telemetry_spans_dropped_total",
        &[("reason", "queue_full")],
    )
    .unwrap();
    assert!(lab.roller.terminate().await.success());
    let warnings: Vec<Value> = lab
        .roller
        .logs()
        .into_iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.contains("OTEL_BSP_MAX_QUEUE_SIZE"))
        })
        .collect();
    assert_eq!(warnings.len(), 1, "said once: {warnings:#?}");
    assert_eq!(warnings[0]["level"], "warn");
    // The roller's spans of the request: its server span, its call, 1000 rolls.
    let exported = lab
        .receiver
        .spans()
        .iter()
        .filter(|s| s.trace_id == trace_id && s.service() == "dice-roller")
        .count();
    assert!(dropped > 0.0, "nothing was dropped");
    assert_eq!(
        exported + dropped as usize,
        1002,
        "{exported} exported and {dropped} counted as dropped"
    );
}

/// At SIGTERM the server stops waiting for a half-sent request at once, lets a request in progress
/// run for its drain, then cuts it short: logged as that (not as a client's hang-up), its span
/// ended with `error.type = server_shutdown`, and the service exits cleanly with its spans flushed.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_then_cuts_and_still_flushes() {
    use tokio::io::AsyncWriteExt as _;

    let mut lab = Lab::start(&[]).await;
    let mut half_sent =
        tokio::net::TcpStream::connect(lab.roller.url().trim_start_matches("http://"))
            .await
            .unwrap();
    half_sent
        .write_all(b"GET /roll?die=fair HTTP/1.1\r\nhost: x")
        .await
        .unwrap();
    let stopping = std::time::Instant::now();
    let exit = lab.roller.terminate().await;
    assert!(exit.success(), "{exit}");
    assert!(
        stopping.elapsed() < Duration::from_secs(3),
        "a half-sent request held the shutdown for {:?}",
        stopping.elapsed()
    );

    let mut lab = Lab::start(&["--roll-delay-ms", "14000"]).await;
    let url = format!("{}/roll?die=fair", lab.roller.url());
    let (trace_id, _, header) = traceparent();
    let request = tokio::spawn(async move {
        reqwest::Client::new()
            .get(url)
            .header("traceparent", header)
            .send()
            .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stopping = std::time::Instant::now();
    let exit = lab.roller.terminate().await;
    let took = stopping.elapsed();
    assert!(exit.success(), "the roller ends by itself, cleanly: {exit}");
    assert!(took >= lab_http::server::DRAIN_TIMEOUT, "{took:?}");
    assert!(request.await.unwrap().is_err(), "the request was cut");
    let cut = lab
        .roller
        .wait_for_logs(WAIT, 1, |l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.contains("cut short by the server's shutdown"))
        })
        .await;
    assert_eq!(cut[0]["status"], 503);
    assert!(
        !lab.roller.logs().iter().any(|l| l["message"]
            .as_str()
            .is_some_and(|m| m.contains("the client hung up"))),
        "a cut request is not the client's hang-up"
    );
    let trace = lab
        .receiver
        .wait_for_trace(&trace_id, WAIT, |t| {
            t.count("dice-roller", "GET /roll") == 1 && t.count("dice-roller", "roll") == 1
        })
        .await;
    let server = trace.one("dice-roller", "GET /roll");
    assert_eq!(server.attr("error.type"), &Value::from("server_shutdown"));
    assert_eq!(server.status, StatusCode::Error);
}

/// A client that hangs up mid-request is no server error: nothing is logged at error level.
#[tokio::test(flavor = "multi_thread")]
async fn client_hang_ups_are_not_errors() {
    let lab = Lab::start(&["--roll-delay-ms", "300"]).await;
    let hasty = reqwest::Client::builder()
        .timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    for _ in 0..20 {
        assert!(
            hasty
                .get(format!("{}/roll-async?die=fair&times=3", lab.roller.url()))
                .send()
                .await
                .is_err()
        );
    }
    lab.roller
        .wait_for_logs(WAIT, 20, |l| l["status"] == 499)
        .await;
    let errors: Vec<Value> = lab
        .roller
        .logs()
        .into_iter()
        .filter(|l| l["level"] == "error")
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn standard_otel_variables_are_honoured() {
    let lab = Lab::start_with(
        &[],
        &[
            ("OTEL_SERVICE_NAME", "roller-renamed"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment.name=workshop",
            ),
        ],
    )
    .await;
    let (trace_id, _, status, _) = lab.get("/roll?die=fair").await;
    assert_eq!(status, 200);
    let trace = lab
        .receiver
        .wait_for_trace(&trace_id, WAIT, |t| t.count("roller-renamed", "roll") == 1)
        .await;
    let roll = trace.one("roller-renamed", "roll");
    assert_eq!(roll.resource["deployment.environment.name"], "workshop");
    assert_eq!(roll.resource["service.namespace"], "dice-lab");
    let start = lab.roller.logs();
    assert!(start.iter().any(|l| l["service"] == "roller-renamed"));

    // A roller of its own collector, so that nothing else's exports are counted there.
    let quiet_receiver = Receiver::start().await;
    let quiet = Service::start(
        "dice-roller",
        &["--die-service-url", &lab.die_service.url()],
        &[
            ("OTEL_SDK_DISABLED", "true"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &quiet_receiver.endpoint()),
        ],
    )
    .await;
    let response = reqwest::get(format!("{}/roll?die=fixed", quiet.url()))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let access = quiet
        .wait_for_logs(WAIT, 1, |l| l["route"] == "/roll")
        .await;
    assert!(
        access[0].get("trace_id").is_none(),
        "no ids when tracing is off"
    );
    let settings = &quiet.logs()[0];
    assert_eq!(settings["traces_endpoint"], "disabled");
    assert_eq!(
        settings["settings"]["max_times"], 100,
        "effective settings as JSON"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let roller_spans = lab
        .receiver
        .spans()
        .iter()
        .filter(|s| s.attr("die.type") == "fixed")
        .count();
    assert_eq!(roller_spans, 0, "OTEL_SDK_DISABLED=true exports nothing");
    assert_eq!(
        quiet_receiver.requests(),
        0,
        "OTEL_SDK_DISABLED=true sends nothing"
    );
}

/// A batch takes its rolls from `--max-rolls-in-flight` for as long as it runs: one that would
/// go past the limit is refused at once with `Retry-After`, and its turns come back afterwards.
#[tokio::test(flavor = "multi_thread")]
async fn batches_count_against_the_rolls_in_flight() {
    let lab = Lab::start(&[
        "--roll-delay-ms",
        "800",
        "--max-times",
        "10",
        "--max-rolls-in-flight",
        "15",
    ])
    .await;
    let url = format!("{}/roll-async?die=fair&times=10", lab.roller.url());
    let first = tokio::spawn(reqwest::get(url.clone()));
    // The first batch is rolling (its spec fetched, its rolls waiting) well within its 800 ms.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = reqwest::get(&url).await.unwrap();
    assert_eq!(second.status(), 503, "10 + 10 rolls are more than 15");
    assert_eq!(second.headers()["retry-after"], "1");
    let body: Value = second.json().await.unwrap();
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("15")),
        "{body}"
    );
    assert_eq!(first.await.unwrap().unwrap().status(), 200);
    assert_eq!(
        reqwest::get(&url).await.unwrap().status(),
        200,
        "the turns came back"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn frontend_api_calls_start_the_trace_and_return_its_id() {
    let lab = Lab::start(&[]).await;
    let endpoint = lab.receiver.endpoint();
    let frontend = Service::start(
        "frontend",
        &[
            "--die-service-url",
            &lab.die_service.url(),
            "--dice-roller-url",
            &lab.roller.url(),
        ],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    )
    .await;

    let body: Value = reqwest::get(format!("{}/api/roll?die=fair", frontend.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let trace_id = body["trace_id"]
        .as_str()
        .expect("the answer names its trace")
        .to_owned();
    let trace = lab
        .receiver
        .wait_for_trace(&trace_id, WAIT, |t| t.has_roll_request(true, 1, 1))
        .await;
    let (root, client) = lab_tests::trace::assert_frontend_root(&trace, "/api/roll", "/roll");
    assert_resource(root, "frontend");
    assert!(
        client
            .attr("url.full")
            .as_str()
            .unwrap()
            .ends_with("/roll?die=fair")
    );
    let sync = assert_roll_sync(&trace, "fair", 200);
    assert_eq!(sync.roll.attr("roll.value"), &body["roll"]);

    let access = frontend
        .wait_for_logs(WAIT, 1, |l| l["route"] == "/api/roll")
        .await;
    assert_eq!(access[0]["trace_id"], trace_id.as_str());
    assert_eq!(access[0]["span_id"], root.span_id.as_str());

    // A refused request is traced too, and says so.
    let response = reqwest::get(format!(
        "{}/api/roll-async?die=fair&times=0",
        frontend.url()
    ))
    .await
    .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["error"],
        "times must be a whole number from 1 to 100, got '0'"
    );
    assert_eq!(body["trace_id"].as_str().map(str::len), Some(32));
}
