//! The lab's store, as the services and the frontend use it: OTLP/HTTP in (protobuf from the real
//! services, JSON and gzip by hand), Tempo's trace-by-id JSON out (in the shape Tempo documents),
//! a memory budget that holds, bad bodies refused without loss, and the Loki subset.

use std::io::Write as _;
use std::time::Duration;

use base64::Engine as _;
use lab_tests::fixtures::scratch_dir;
use lab_tests::http::{Target as _, send};
use lab_tests::in_process::{self, Running};
use lab_tests::process;
use lab_tests::trace::{Expect as _, Trace, assert_roll_async};
use lab_tests::{prom, wait};
use prost::Message as _;
use reqwest::Method;
use serde_json::{Value, json};
use traces::otlp::RpcStatus;

const WAIT: Duration = Duration::from_secs(15);

/// The store's three addresses: the Tempo API's, OTLP's and Loki's.
struct Store {
    running: Running,
    /// The log files it reads, removed with the store.
    _logs: tempfile::TempDir,
}

impl Store {
    async fn start(logs: tempfile::TempDir, max_mib: u64) -> Self {
        Self {
            running: in_process::store(in_process::store_settings(logs.path().to_owned(), max_mib))
                .await,
            _logs: logs,
        }
    }

    fn tempo(&self) -> String {
        format!("http://{}", self.running.addrs()[0])
    }

    fn otlp(&self) -> String {
        format!("http://{}", self.running.addrs()[1])
    }

    fn loki(&self) -> String {
        format!("http://{}", self.running.addrs()[2])
    }

    async fn post(
        &self,
        content_type: &str,
        encoding: Option<&str>,
        body: Vec<u8>,
    ) -> reqwest::Response {
        let mut request = reqwest::Client::new()
            .post(format!("{}/v1/traces", self.otlp()))
            .header("content-type", content_type)
            .body(body);
        if let Some(encoding) = encoding {
            request = request.header("content-encoding", encoding);
        }
        request.send().await.expect("the store answers")
    }

    /// The spans of a trace as the store's Tempo API gives them (v1).
    async fn trace(&self, trace_id: &str) -> Option<Trace> {
        let answer = send(
            Method::GET,
            &format!("{}/api/traces/{trace_id}", self.tempo()),
            None,
        )
        .await;
        match answer.status {
            200 => Some(Trace::new(
                traces::tempo::read(answer.body.as_bytes()).expect("Tempo's JSON"),
            )),
            404 => {
                assert_eq!(
                    answer.body, "",
                    "Tempo answers an unknown trace with an empty 404"
                );
                None
            }
            other => panic!("the store answered {other}: {}", answer.body),
        }
    }

    async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let text = send(Method::GET, &format!("{}/metrics", self.tempo()), None)
            .await
            .body;
        prom::value(&prom::parse(&text), name, labels)
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    }
}

#[tokio::test]
async fn spans_from_the_services_come_back_in_tempos_shape() {
    let store = Store::start(scratch_dir("store-shape"), 64).await;
    let (_die_service, roller) =
        process::die_service_and_roller(&store.otlp(), &["--roll-delay-ms", "5..20"], &[]).await;
    let (trace_id, _, header) = lab_tests::fixtures::traceparent();
    let answer = reqwest::Client::new()
        .get(format!("{}/roll-async?die=fair&times=10", roller.url()))
        .header("traceparent", header)
        .send()
        .await
        .expect("the roller answers");
    assert_eq!(answer.status(), 200);

    let trace = wait::until(WAIT, Duration::from_millis(50), || async {
        match store.trace(&trace_id).await {
            Some(trace) if trace.has_roll_request(false, 10, 1) => Ok(trace),
            other => Err(format!("not whole yet: {:?}", other.map(|t| t.render()))),
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_roll_async(&trace, "fair", 10, 1);

    // The shape Tempo documents for /api/traces/{id} (v1): batches of resource spans, ids in
    // base64, enums by name, 64-bit integers as strings.
    let v1 = send(
        Method::GET,
        &format!("{}/api/traces/{trace_id}", store.tempo()),
        None,
    )
    .await;
    assert_eq!(v1.content_type, "application/json");
    let v1 = v1.json();
    assert_tempo_shape(&v1["batches"], &trace_id);
    // And for /api/v2/traces/{id}: the same under trace.resourceSpans.
    let v2 = send(
        Method::GET,
        &format!("{}/api/v2/traces/{trace_id}", store.tempo()),
        None,
    )
    .await
    .json();
    assert_tempo_shape(&v2["trace"]["resourceSpans"], &trace_id);
    assert!(v2["metrics"].is_object());

    // Unknown: 404 and an empty body on v1, 200 and an empty trace on v2; a bad id: 400 in text.
    let unknown = "0123456789abcdef0123456789abcdef";
    assert!(store.trace(unknown).await.is_none());
    let empty = send(
        Method::GET,
        &format!("{}/api/v2/traces/{unknown}", store.tempo()),
        None,
    )
    .await;
    assert_eq!(
        (empty.status, empty.json()["trace"].clone()),
        (200, json!({}))
    );
    let bad = send(
        Method::GET,
        &format!("{}/api/traces/xyz", store.tempo()),
        None,
    )
    .await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.body
            .contains("trace IDs can only contain hex characters"),
        "{}",
        bad.body
    );
    for (path, body) in [("/ready", "ready"), ("/api/echo", "echo")] {
        let answer = send(Method::GET, &format!("{}{path}", store.tempo()), None).await;
        assert_eq!((answer.status, answer.body.trim()), (200, body));
    }
    assert!(store.metric("store_spans_received_total", &[]).await >= 13.0);
}

/// Checks resource spans as Tempo's JSON writes them, and that they hold spans of `trace_id`.
fn assert_tempo_shape(batches: &Value, trace_id: &str) {
    let batches = batches.as_array().expect("a list of resource spans");
    assert!(!batches.is_empty());
    let raw_id = hex_bytes(trace_id);
    for batch in batches {
        let attributes = batch["resource"]["attributes"]
            .as_array()
            .expect("resource attributes");
        assert!(
            attributes
                .iter()
                .any(|a| a["key"] == "service.name" && a["value"]["stringValue"].is_string()),
            "{batch}"
        );
        for scoped in batch["scopeSpans"].as_array().expect("scopeSpans") {
            for span in scoped["spans"].as_array().expect("spans") {
                let id = base64::engine::general_purpose::STANDARD
                    .decode(span["traceId"].as_str().expect("a traceId"))
                    .expect("a base64 trace id");
                assert_eq!(id, raw_id);
                let span_id = base64::engine::general_purpose::STANDARD
                    .decode(span["spanId"].as_str().expect("a spanId"))
                    .expect("a base64 span id");
                assert_eq!(span_id.len(), 8);
                assert!(
                    span["kind"]
                        .as_str()
                        .is_some_and(|k| k.starts_with("SPAN_KIND_")),
                    "{span}"
                );
                for time in ["startTimeUnixNano", "endTimeUnixNano"] {
                    assert!(
                        span[time]
                            .as_str()
                            .is_some_and(|t| t.bytes().all(|b| b.is_ascii_digit())),
                        "{time} is a string of digits: {span}"
                    );
                }
            }
        }
    }
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

/// An OTLP/JSON export request with one span, as the OTLP specification encodes JSON: hex ids,
/// enums as numbers, 64-bit integers as strings.
fn json_request(trace_id: &str, span_id: &str, name: &str) -> Value {
    json!({
        "resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "by-hand"}}]},
            "scopeSpans": [{
                "scope": {"name": "test"},
                "spans": [{
                    "traceId": trace_id,
                    "spanId": span_id,
                    "name": name,
                    "kind": 2,
                    "startTimeUnixNano": "1764300000000000000",
                    "endTimeUnixNano": "1764300000250000000",
                    "attributes": [
                        {"key": "roll.value", "value": {"intValue": "4"}},
                        {"key": "die.type", "value": {"stringValue": "fair"}}
                    ],
                    "status": {"code": 2, "message": "it failed"}
                }]
            }]
        }]
    })
}

#[tokio::test]
async fn json_and_gzip_come_in_and_bad_bodies_lose_nothing() {
    let store = Store::start(scratch_dir("store-bodies"), 64).await;
    let trace_id = "5b8efff798038103d269b633813fc60c";
    let request = json_request(trace_id, "eee19b7ec3c1b174", "by hand");
    let answer = store
        .post("application/json", None, request.to_string().into_bytes())
        .await;
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer.text().await.unwrap(),
        "{}",
        "an empty ExportTraceServiceResponse in JSON"
    );
    let trace = store.trace(trace_id).await.expect("the JSON span is kept");
    let span = &trace.spans()[0];
    assert_eq!(
        (span.service(), span.name.as_str(), span.kind, span.status),
        (
            "by-hand",
            "by hand",
            traces::Kind::Server,
            traces::Status::Error
        )
    );
    assert_eq!(span.attr("roll.value"), &json!(4));
    assert_eq!(span.duration_ns(), 250_000_000);

    // The same request in protobuf, gzipped, for another span of the trace.
    let mut protobuf: opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest =
        serde_json::from_value(json_request(trace_id, "00f067aa0ba902b7", "gzipped"))
            .expect("OTLP JSON");
    protobuf.resource_spans[0].scope_spans[0].spans[0].parent_span_id =
        hex_bytes("eee19b7ec3c1b174");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&protobuf.encode_to_vec()).unwrap();
    let answer = store
        .post("application/x-protobuf", Some("gzip"), gz.finish().unwrap())
        .await;
    assert_eq!(answer.status(), 200);
    assert!(
        answer.bytes().await.unwrap().is_empty(),
        "an empty response in protobuf"
    );
    let trace = store.trace(trace_id).await.expect("kept");
    assert_eq!(trace.len(), 2);
    assert_eq!(trace.depth_first()[1].1.name, "gzipped");

    // Bad bodies: each refused with a google.rpc.Status in the request's encoding, nothing lost.
    let refusals = [
        (
            "application/x-protobuf",
            None,
            b"\xff\xff\xff not protobuf".to_vec(),
            400,
        ),
        (
            "application/json",
            None,
            b"{\"resourceSpans\": 7}".to_vec(),
            400,
        ),
        (
            "application/json",
            None,
            json_request(trace_id, "short", "x")
                .to_string()
                .into_bytes(),
            400,
        ),
        ("application/json", Some("gzip"), b"not gzip".to_vec(), 400),
        ("application/json", Some("br"), b"{}".to_vec(), 415),
        ("text/plain", None, b"hello".to_vec(), 415),
    ];
    for (content_type, encoding, body, status) in refusals {
        let answer = store.post(content_type, encoding, body).await;
        assert_eq!(answer.status(), status, "{content_type} {encoding:?}");
        let bytes = answer.bytes().await.unwrap();
        let message = if content_type == "application/x-protobuf" {
            RpcStatus::decode(bytes.as_ref())
                .expect("a protobuf Status")
                .message
        } else {
            let status: Value = serde_json::from_slice(&bytes).expect("a JSON Status");
            status["message"].as_str().expect("a message").to_owned()
        };
        assert!(
            !message.is_empty(),
            "{content_type}: a Status that says why"
        );
    }
    assert_eq!(store.trace(trace_id).await.expect("still kept").len(), 2);
    let too_big = store
        .post("application/x-protobuf", None, vec![0; 17 * 1024 * 1024])
        .await;
    assert_eq!(too_big.status(), 413);
    assert_eq!(
        store
            .metric("store_export_requests_total", &[("outcome", "undecodable")])
            .await,
        3.0
    );
    assert_eq!(
        store
            .metric("store_export_requests_total", &[("outcome", "accepted")])
            .await,
        2.0
    );
    let get = send(Method::GET, &format!("{}/v1/traces", store.otlp()), None).await;
    assert_eq!(get.status, 405);
}

#[tokio::test]
async fn the_oldest_traces_go_when_the_budget_is_full() {
    let store = Store::start(scratch_dir("store-budget"), 1).await;
    let mut ids = Vec::new();
    for trace in 0..200u32 {
        let trace_id = format!("{:032x}", 0xabc0_0000u64 + u64::from(trace));
        let mut request = json_request(&trace_id, "eee19b7ec3c1b174", "first");
        let spans = request["resourceSpans"][0]["scopeSpans"][0]["spans"]
            .as_array_mut()
            .unwrap();
        let template = spans[0].clone();
        for i in 1..50u32 {
            let mut span = template.clone();
            span["spanId"] = json!(format!("{:016x}", i + 1));
            span["name"] = json!(format!("span {i} {}", "x".repeat(100)));
            spans.push(span);
        }
        let answer = store
            .post("application/json", None, request.to_string().into_bytes())
            .await;
        assert_eq!(answer.status(), 200);
        ids.push(trace_id);
    }
    assert!(
        store.trace(&ids[0]).await.is_none(),
        "the oldest trace went"
    );
    assert_eq!(
        store
            .trace(&ids[199])
            .await
            .expect("the newest stays")
            .len(),
        50
    );
    let kept = store.metric("store_kept_bytes", &[]).await;
    assert!(
        kept <= 1024.0 * 1024.0,
        "kept {kept} bytes in a 1 MiB budget"
    );
    assert!(store.metric("store_traces_evicted_total", &[]).await > 0.0);
    let traces = store.metric("store_traces", &[]).await;
    assert!((1.0..200.0).contains(&traces), "{traces} traces kept");
}

#[tokio::test]
async fn the_loki_subset_answers_from_the_log_files_and_refuses_the_rest() {
    let dir = scratch_dir("store-loki");
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let now = time::OffsetDateTime::now_utc();
    let stamp = |ms: i64| {
        (now - time::Duration::milliseconds(ms))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let lines = [
        json!({"timestamp": stamp(30), "level": "info", "service": "dice-roller", "message": "rolled 4", "roll_value": 4, "trace_id": trace_id, "span_id": "00f067aa0ba902b7"}),
        json!({"timestamp": stamp(20), "level": "info", "service": "dice-roller", "message": "GET /roll-async 200", "trace_id": trace_id, "span_id": "a3ce929d0e0e4736"}),
        json!({"timestamp": stamp(10), "level": "info", "service": "dice-roller", "message": "another trace", "trace_id": "0".repeat(32), "span_id": "a3ce929d0e0e4736"}),
    ];
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.path().join("dice-roller.log"), text + "not json\n").unwrap();
    std::fs::write(
        dir.path().join("die-service.log"),
        format!("{}\n", json!({"timestamp": stamp(25), "level": "warn", "service": "die-service", "message": "served", "trace_id": trace_id})),
    )
    .unwrap();
    let store = Store::start(dir, 8).await;
    let query = |q: &str, extra: &str| {
        let encoded: String = form_urlencoded::byte_serialize(q.as_bytes()).collect();
        format!(
            "{}/loki/api/v1/query_range?query={encoded}{extra}",
            store.loki()
        )
    };

    let answer = send(
        Method::GET,
        &query(
            &format!("{{service=~\".+\"}} |= \"{trace_id}\""),
            "&direction=forward",
        ),
        None,
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body = answer.json();
    assert_eq!(body["status"], "success");
    assert_eq!(body["data"]["resultType"], "streams");
    let mut entries: Vec<(String, String)> = Vec::new();
    for stream in body["data"]["result"].as_array().unwrap() {
        assert!(stream["stream"]["service"].is_string() && stream["stream"]["level"].is_string());
        for value in stream["values"].as_array().unwrap() {
            entries.push((
                value[0].as_str().unwrap().into(),
                value[1].as_str().unwrap().into(),
            ));
        }
    }
    entries.sort();
    let messages: Vec<String> = entries
        .iter()
        .map(|(_, line)| {
            serde_json::from_str::<Value>(line).unwrap()["message"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(messages, ["rolled 4", "served", "GET /roll-async 200"]);

    let only_warn = send(
        Method::GET,
        &query(&format!("{{level=\"warn\"}} |= \"{trace_id}\""), ""),
        None,
    )
    .await
    .json();
    assert_eq!(only_warn["data"]["result"].as_array().unwrap().len(), 1);
    let filtered = send(
        Method::GET,
        &query(
            "{service=\"dice-roller\"} |= \"trace\" != \"another\" |~ \"rolled [0-9]\"",
            "",
        ),
        None,
    )
    .await
    .json();
    let values: usize = filtered["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["values"].as_array().unwrap().len())
        .sum();
    assert_eq!(values, 1, "{filtered}");

    for refused in [
        "{service=~\".*\"}",
        "{service=\"dice-roller\"} | json",
        "rate({service=\"dice-roller\"}[1m])",
        "{service=\"dice-roller\"",
    ] {
        let answer = send(Method::GET, &query(refused, ""), None).await;
        assert_eq!(answer.status, 400, "{refused}: {}", answer.body);
        assert!(
            answer.content_type.starts_with("text/plain"),
            "{}",
            answer.content_type
        );
        assert!(!answer.body.trim().is_empty());
    }
    let bad_limit = send(
        Method::GET,
        &query("{service=\"x\"}", "&limit=100000"),
        None,
    )
    .await;
    assert_eq!(bad_limit.status, 400);
}
