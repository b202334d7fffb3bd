//! The HTTP contract (docs/contract.md), against the die-service and dice-roller running in this process
//! on real sockets: every route, every bad input, every upstream failure, and the metrics that
//! known traffic leaves behind.

use std::time::{Duration, Instant};

use lab_tests::fixtures::{TEST_DICE, dice_file};
use lab_tests::http::Target as _;
use lab_tests::in_process::{
    Running, dice_roller, die_service, frontend, frontend_settings, roller_settings,
};
use lab_tests::prom::{self, promtool_check};
use serde_json::{Value, json};

/// A die-service on the test dice and a roller in front of it.
async fn pair() -> (Running, Running) {
    let dice = die_service(Some(dice_file(TEST_DICE).to_path_buf())).await;
    let roller = dice_roller(roller_settings(&dice.url())).await;
    (dice, roller)
}

#[tokio::test]
async fn die_service_lists_and_serves_dice() {
    let dice = die_service(None).await;
    let (status, body) = dice.get("/dice").await;
    assert_eq!(status, 200);
    let types: Vec<&str> = body["dice"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["type"].as_str().unwrap())
        .collect();
    let mut sorted = types.clone();
    sorted.sort_unstable();
    assert_eq!(types, sorted, "sorted by type");
    assert_eq!(types.len(), 11);

    let (status, fair) = dice.get("/dice/fair").await;
    assert_eq!(status, 200);
    assert_eq!(fair["type"], "fair");
    assert_eq!(fair["faces"], json!([1, 2, 3, 4, 5, 6]));
    assert_eq!(fair["error_rate"], 0.0);
    let (_, extreme) = dice.get("/dice/extreme").await;
    assert_eq!(extreme["faces"], json!([0, 0, 6, 6, 6, 6]));
    assert_eq!(extreme["error_rate"], 0.5);
    let (_, d100) = dice.get("/dice/d100").await;
    assert_eq!(d100["delay_ms"], json!([100, 400]));

    let (status, body) = dice.get("/dice/nope").await;
    assert_eq!(status, 404);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("unknown die 'nope'; known dice: d10, d100")
    );
    let (status, body) = dice.get("/healthz").await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));
    let (status, body) = dice.get("/no/such/route").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "no route for /no/such/route");

    let response = reqwest::Client::new()
        .delete(format!("{}/dice/fair", dice.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET, HEAD");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "/dice/{type} answers GET, not DELETE");
}

#[tokio::test]
async fn rolls_answer_as_the_contract_says() {
    let (_dice, roller) = pair().await;
    let (status, body) = roller.get("/roll?die=fixed").await;
    assert_eq!((status, body), (200, json!({"die": "fixed", "roll": 3})));

    let (status, body) = roller.get("/roll-async?die=fixed&times=7").await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"die": "fixed", "count": 7, "rolls": [3, 3, 3, 3, 3, 3, 3], "failed": 0, "total": 21})
    );

    let (status, body) = roller
        .get("/roll-async?die=doomed&times=3&fetch=each")
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"die": "doomed", "count": 3, "rolls": [null, null, null], "failed": 3, "total": 0})
    );

    let (status, body) = roller.get("/roll?die=doomed").await;
    assert_eq!(
        (status, body),
        (500, json!({"error": "die 'doomed' failed"}))
    );

    let (status, body) = roller.get("/roll-async?die=fair&times=100").await;
    assert_eq!(status, 200, "{body}");
    let rolls = body["rolls"].as_array().unwrap();
    assert_eq!(rolls.len(), 100);
    assert!(rolls.iter().all(|r| (1..=6).contains(&r.as_i64().unwrap())));
    assert_eq!(
        body["total"].as_i64().unwrap(),
        rolls.iter().map(|r| r.as_i64().unwrap()).sum::<i64>()
    );
}

#[tokio::test]
async fn every_bad_input_gets_a_clear_4xx() {
    let (_dice, roller) = pair().await;
    let cases: &[(&str, u16, &str)] = &[
        ("/roll", 400, "die is required"),
        ("/roll?die=", 400, "die is required"),
        ("/roll?die=fair&die=fixed", 400, "given more than once"),
        (
            "/roll?die=fair&times=3",
            400,
            "/roll takes no parameter 'times'",
        ),
        ("/roll?die=nope", 404, "unknown die 'nope'"),
        (
            "/roll?die=..%2F..%2Fetc%2Fpasswd",
            404,
            "unknown die '../../etc/passwd'",
        ),
        (
            "/roll-async?die=fair",
            400,
            "times is required: a whole number from 1 to 100",
        ),
        ("/roll-async?die=fair&times=0", 400, "from 1 to 100"),
        ("/roll-async?die=fair&times=-3", 400, "from 1 to 100"),
        ("/roll-async?die=fair&times=ten", 400, "from 1 to 100"),
        (
            "/roll-async?die=fair&times=101",
            400,
            "from 1 to 100, got '101'",
        ),
        ("/roll-async?die=fair&times=2.5", 400, "from 1 to 100"),
        ("/roll-async?times=3", 400, "die is required"),
        ("/roll-async?die=nope&times=3", 404, "unknown die 'nope'"),
        (
            "/roll-async?die=nope&times=3&fetch=each",
            404,
            "unknown die 'nope'",
        ),
        (
            "/roll-async?die=fair&times=3&fetch=sometimes",
            400,
            "fetch must be 'once' or 'each'",
        ),
        ("/rolls", 404, "no route for /rolls"),
    ];
    for (path, status, message) in cases {
        let (got, body) = roller.get(path).await;
        assert_eq!(got, *status, "{path}: {body}");
        let error = body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{path}: {body}"));
        assert!(
            error.contains(message),
            "{path}: '{error}' should say '{message}'"
        );
    }
    let long = "x".repeat(5000);
    let (status, body) = roller.get(&format!("/roll?die={long}")).await;
    assert_eq!(status, 404);
    assert!(
        body["error"].as_str().unwrap().len() < 200,
        "a long name is cut short"
    );
}

#[tokio::test]
async fn max_times_is_configurable_and_named_in_errors() {
    let dice = die_service(Some(dice_file(TEST_DICE).to_path_buf())).await;
    let mut settings = roller_settings(&dice.url());
    settings.max_times = 1000;
    let roller = dice_roller(settings).await;
    let (status, body) = roller.get("/roll-async?die=fixed&times=1000").await;
    assert_eq!(status, 200);
    assert_eq!(body["total"], 3000);
    let (status, body) = roller.get("/roll-async?die=fixed&times=1001").await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("from 1 to 1000"));
}

#[tokio::test]
async fn a_dead_die_service_is_a_quick_503() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let roller = dice_roller(roller_settings(&closed)).await;
    for path in [
        "/roll?die=fair",
        "/roll-async?die=fair&times=10",
        "/roll-async?die=fair&times=10&fetch=each",
    ] {
        let started = Instant::now();
        let (status, body) = roller.get(path).await;
        assert_eq!(status, 503, "{path}: {body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .starts_with("die-service is unreachable at")
        );
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{path} took {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn a_silent_die_service_is_a_504_at_the_timeout() {
    // Accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let mut settings = roller_settings(&url);
    settings.die_service_timeout_ms = 300;
    let roller = dice_roller(settings).await;
    for path in ["/roll?die=fair", "/roll-async?die=fair&times=3&fetch=each"] {
        let started = Instant::now();
        let (status, body) = roller.get(path).await;
        let waited = started.elapsed();
        assert_eq!(status, 504, "{path}: {body}");
        assert_eq!(body["error"], "die-service did not answer within 300 ms");
        assert!(
            waited >= Duration::from_millis(300),
            "{path} gave up early: {waited:?}"
        );
        assert!(waited < Duration::from_secs(3), "{path} hung: {waited:?}");
    }
}

#[tokio::test]
async fn a_broken_die_service_is_a_502() {
    use warp::Filter as _;
    let broken = warp::path!("dice" / String).map(|die: String| match die.as_str() {
        "crash" => warp::reply::with_status(
            "boom".to_owned(),
            warp::http::StatusCode::INTERNAL_SERVER_ERROR,
        ),
        "garbage" => warp::reply::with_status("not json".to_owned(), warp::http::StatusCode::OK),
        _ => warp::reply::with_status(
            r#"{"type": "empty", "faces": [], "error_rate": 0}"#.to_owned(),
            warp::http::StatusCode::OK,
        ),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(warp::serve(broken).incoming(listener).run());
    let roller = dice_roller(roller_settings(&url)).await;
    for (die, message) in [
        ("crash", "die-service answered 500 Internal Server Error"),
        (
            "garbage",
            "die-service sent an answer that cannot be read: not JSON",
        ),
        ("empty", "field 'faces' must list at least one face"),
    ] {
        let (status, body) = roller.get(&format!("/roll?die={die}")).await;
        assert_eq!(status, 502, "{die}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains(message),
            "{die}: {body}"
        );
    }
}

#[tokio::test]
async fn metrics_count_known_traffic_and_pass_promtool() {
    let (dice, roller) = pair().await;
    for _ in 0..3 {
        assert_eq!(roller.get("/roll?die=fixed").await.0, 200);
    }
    assert_eq!(roller.get("/roll-async?die=fixed&times=5").await.0, 200);
    assert_eq!(
        roller
            .get("/roll-async?die=doomed&times=4&fetch=each")
            .await
            .0,
        200
    );
    for _ in 0..2 {
        assert_eq!(roller.get("/roll?die=doomed").await.0, 500);
    }
    for garbage in ["garbage-die", "another%20one", "x%22y"] {
        assert_eq!(roller.get(&format!("/roll?die={garbage}")).await.0, 404);
        assert_eq!(
            roller
                .get(&format!("/roll-async?die={garbage}&times=2"))
                .await
                .0,
            404
        );
    }
    assert_eq!(roller.get("/roll-async?die=fixed&times=0").await.0, 400);

    let text = roller.get_text("/metrics").await;
    promtool_check(&text)
        .unwrap_or_else(|e| panic!("promtool on the roller's metrics: {e}\n{text}"));
    let m = prom::parse(&text);
    let v = |name: &str, labels: &[(&str, &str)]| prom::value(&m, name, labels);
    assert_eq!(
        v(
            "dice_rolls_total",
            &[
                ("die_type", "fixed"),
                ("mode", "sync"),
                ("result", "success")
            ]
        ),
        Some(3.0)
    );
    assert_eq!(
        v(
            "dice_rolls_total",
            &[
                ("die_type", "fixed"),
                ("mode", "async"),
                ("result", "success")
            ]
        ),
        Some(5.0)
    );
    assert_eq!(
        v(
            "dice_rolls_total",
            &[
                ("die_type", "doomed"),
                ("mode", "async"),
                ("result", "error")
            ]
        ),
        Some(4.0)
    );
    assert_eq!(
        v(
            "dice_rolls_total",
            &[
                ("die_type", "doomed"),
                ("mode", "sync"),
                ("result", "error")
            ]
        ),
        Some(2.0)
    );
    assert_eq!(
        v(
            "dice_roll_results_total",
            &[("die_type", "fixed"), ("value", "3")]
        ),
        Some(8.0)
    );
    assert_eq!(v("async_roll_batch_size_count", &[]), Some(2.0));
    assert_eq!(v("async_roll_batch_size_sum", &[]), Some(9.0));
    assert_eq!(v("async_rolls_in_progress", &[]), Some(0.0));
    // 3 + 1 + 4 (fetch=each) + 2 specs fetched; 'garbage-die' asked for twice. The other two
    // garbage names are no die's name at all, so the roller refuses them without asking.
    assert_eq!(
        v("die_service_requests_total", &[("status", "200")]),
        Some(10.0)
    );
    assert_eq!(
        v("die_service_requests_total", &[("status", "404")]),
        Some(2.0)
    );
    assert_eq!(
        v("die_service_request_duration_seconds_count", &[]),
        Some(12.0)
    );
    assert_eq!(
        v(
            "http_requests_total",
            &[("handler", "/roll"), ("method", "GET"), ("status", "200")]
        ),
        Some(3.0)
    );
    assert_eq!(
        v(
            "http_requests_total",
            &[("handler", "/roll"), ("method", "GET"), ("status", "500")]
        ),
        Some(2.0)
    );
    assert_eq!(
        v(
            "http_requests_total",
            &[("handler", "/roll"), ("method", "GET"), ("status", "404")]
        ),
        Some(3.0)
    );
    assert_eq!(
        v(
            "http_requests_total",
            &[
                ("handler", "/roll-async"),
                ("method", "GET"),
                ("status", "400")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        v(
            "http_request_duration_seconds_count",
            &[("handler", "/roll-async"), ("method", "GET")]
        ),
        Some(6.0)
    );
    assert!(v("process_resident_memory_bytes", &[]).is_some_and(|b| b > 0.0));

    let text = dice.get_text("/metrics").await;
    promtool_check(&text)
        .unwrap_or_else(|e| panic!("promtool on the die-service's metrics: {e}\n{text}"));
    let d = prom::parse(&text);
    let dv = |name: &str, labels: &[(&str, &str)]| prom::value(&d, name, labels);
    assert_eq!(dv("die_specifications_loaded", &[]), Some(4.0));
    assert_eq!(
        dv("die_face_ratio", &[("die_type", "half"), ("value", "6")]),
        Some(0.5)
    );
    assert_eq!(
        dv("die_face_ratio", &[("die_type", "fixed"), ("value", "3")]),
        Some(1.0)
    );
    assert_eq!(
        dv(
            "die_specifications_requested_total",
            &[("die_type", "fixed")]
        ),
        Some(4.0)
    );
    assert_eq!(
        dv(
            "die_specifications_requested_total",
            &[("die_type", "doomed")]
        ),
        Some(6.0)
    );
    assert_eq!(
        dv(
            "http_requests_total",
            &[
                ("handler", "/dice/{type}"),
                ("method", "GET"),
                ("status", "404")
            ]
        ),
        Some(2.0)
    );

    for (service, samples) in [("roller", &m), ("die-service", &d)] {
        for sample in samples.iter() {
            for value in sample.labels.values() {
                assert!(
                    !value.contains("garbage")
                        && !value.contains("another")
                        && !value.contains("x\\\""),
                    "{service}: an unknown die made a series: {sample:?}"
                );
            }
            if let Some(handler) = sample.labels.get("handler") {
                assert!(
                    [
                        "/roll",
                        "/roll-async",
                        "/dice",
                        "/dice/{type}",
                        "/metrics",
                        "/healthz",
                        "unmatched"
                    ]
                    .contains(&handler.as_str()),
                    "{service}: handler label '{handler}' is not a route template"
                );
            }
        }
    }
}

/// The whole chain in this process: die-service, roller, frontend.
async fn chain() -> (Running, Running, Running) {
    let (dice, roller) = pair().await;
    let front = frontend(frontend_settings(&dice.url(), &roller.url())).await;
    (dice, roller, front)
}

#[tokio::test]
async fn the_frontend_api_passes_answers_and_errors_through() {
    let (_dice, _roller, front) = chain().await;
    let (status, body) = front.get("/api/roll?die=fixed").await;
    assert_eq!(
        (status, body),
        (200, json!({"die": "fixed", "roll": 3})),
        "no trace_id when tracing is off"
    );
    let (status, body) = front.get("/api/roll-async?die=fixed&times=4").await;
    assert_eq!(status, 200);
    assert_eq!(body["total"], 12);
    let (status, body) = front.get("/api/dice").await;
    assert_eq!(status, 200);
    assert_eq!(body["dice"].as_array().unwrap().len(), 4);

    // Bad input gets the roller's own 4xx.
    for (path, status, message) in [
        (
            "/api/roll-async?die=fair&times=101",
            400,
            "times must be a whole number from 1 to 100, got '101'",
        ),
        (
            "/api/roll-async?die=fair",
            400,
            "times is required: a whole number from 1 to 100",
        ),
        ("/api/roll", 400, "die is required"),
        ("/api/roll?die=nope", 404, "unknown die 'nope'"),
        ("/api/roll?die=doomed", 500, "die 'doomed' failed"),
        ("/api/nothing", 404, "no route for /api/nothing"),
        ("/assets/nothing.js", 404, "no asset named 'nothing.js'"),
        ("/api/dice?x=1", 400, "/api/dice takes no query parameters"),
    ] {
        let (got, body) = front.get(path).await;
        assert_eq!(got, status, "{path}: {body}");
        assert!(
            body["error"].as_str().unwrap().starts_with(message),
            "{path}: {body}"
        );
    }
}

#[tokio::test]
async fn the_frontend_serves_a_complete_first_paint_and_its_webassembly() {
    let (_dice, _roller, front) = chain().await;
    let response = reqwest::get(format!("{}/", front.url())).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = response.text().await.unwrap();
    for needle in [
        "<option value=\"fixed\"",
        "id=\"roll-once\"",
        "id=\"roll-multiple\"",
        "id=\"initial-state\"",
        "/assets/frontend_ui.js",
    ] {
        assert!(html.contains(needle), "{needle} is not in the page");
    }
    let wasm = reqwest::get(format!("{}/assets/frontend_ui_bg.wasm", front.url()))
        .await
        .unwrap();
    assert_eq!(wasm.headers()["content-type"], "application/wasm");
    assert!(wasm.bytes().await.unwrap().starts_with(b"\0asm"));
    let js = reqwest::get(format!("{}/assets/frontend_ui.js", front.url()))
        .await
        .unwrap();
    assert!(
        js.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
}

#[tokio::test]
async fn the_frontend_says_when_the_services_behind_it_are_down() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let front = frontend(frontend_settings(&closed, &closed)).await;
    let (status, body) = front.get("/api/roll?die=fair").await;
    assert_eq!(status, 503);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("dice-roller is unreachable at"),
        "{body}"
    );
    let html = front.get_text("/").await;
    assert!(
        html.contains("The dice cannot be listed: die-service is unreachable"),
        "the page explains itself"
    );
}

#[tokio::test]
async fn frontend_metrics_count_actions_and_pass_promtool() {
    let (_dice, _roller, front) = chain().await;
    front.get_text("/").await;
    for _ in 0..2 {
        front.get("/api/roll?die=fixed").await;
    }
    front.get("/api/roll-async?die=fixed&times=3").await;
    front.get("/api/dice").await;
    let text = front.get_text("/metrics").await;
    promtool_check(&text)
        .unwrap_or_else(|e| panic!("promtool on the frontend's metrics: {e}\n{text}"));
    let m = prom::parse(&text);
    let actions = |action: &str| prom::value(&m, "frontend_actions_total", &[("action", action)]);
    assert_eq!(actions("page_view"), Some(1.0));
    assert_eq!(actions("roll_once"), Some(2.0));
    assert_eq!(actions("roll_multiple"), Some(1.0));
    assert_eq!(actions("list_dice"), Some(1.0));
    assert_eq!(
        prom::value(
            &m,
            "http_requests_total",
            &[
                ("handler", "/api/roll"),
                ("method", "GET"),
                ("status", "200")
            ]
        ),
        Some(2.0)
    );
    assert_eq!(
        prom::value(
            &m,
            "http_requests_total",
            &[("handler", "/"), ("method", "GET"), ("status", "200")]
        ),
        Some(1.0)
    );
}

/// Names no die can have (`.`, `..`, encoded or not, a slash, a space) are unknown dice on every
/// route: a 404, never a 5xx, and no upstream call leaves their path.
#[tokio::test]
async fn names_that_are_no_die_are_unknown_dice_everywhere() {
    let (_dice, _roller, front) = chain().await;
    for die in [
        ".",
        "..",
        "%2e",
        "%2E%2E",
        "%2F",
        "a%2Fb",
        "a%20b",
        "%20",
        "fair%2F..",
        "x%00",
    ] {
        for path in [
            format!("/api/roll?die={die}"),
            format!("/api/roll-async?die={die}&times=2"),
            format!("/api/roll-async?die={die}&times=2&fetch=each"),
        ] {
            let (status, body) = front.get(&path).await;
            assert!(
                status == 404
                    || (status == 400
                        && body["error"]
                            == "die is required, for example ?die=fair (GET /dice on the die-service lists them)"),
                "{path}: {status} {body}"
            );
            if status == 404 {
                assert!(
                    body["error"].as_str().unwrap().starts_with("unknown die '"),
                    "{path}: {body}"
                );
            }
        }
    }
}

/// Routes that take no parameters say so, on every service; the page, its assets, `/healthz` and
/// `/metrics` ignore a query, as browsers and scrapers may send one.
#[tokio::test]
async fn unknown_parameters_are_refused_on_the_api() {
    let (dice, roller, front) = chain().await;
    for (service, path) in [
        (&dice, "/dice?x=1"),
        (&dice, "/dice/fair?x=1"),
        (&dice, "/admin/faults?x=1"),
        (&roller, "/admin/faults?x=1"),
        (&front, "/api/dice?x=1"),
        (&front, "/api/traces/4bf92f3577b34da6a3ce929d0e0e4736?x=1"),
        (
            &front,
            "/api/traces/4bf92f3577b34da6a3ce929d0e0e4736/logs?x=1",
        ),
        (&front, "/admin/faults?x=1"),
    ] {
        let (status, body) = service.get(path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .ends_with("takes no query parameters"),
            "{path}: {body}"
        );
    }
    for (service, path) in [(&dice, "/healthz?probe=1"), (&front, "/healthz?x")] {
        assert_eq!(service.get(path).await.0, 200, "{path}");
    }
    assert!(
        front
            .get_text("/?utm_source=x")
            .await
            .contains("Roll Multiple")
    );
}
