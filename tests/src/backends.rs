//! A fake Tempo and a fake Loki that answer what the real ones answer, from what the test's
//! services really exported and logged: for testing the frontend's trace routes without the real
//! backends.
//!
//! The Tempo half answers `GET /api/traces/{id}` from the spans a [`crate::otlp::Receiver`]
//! gathered, in the [`Shape`] chosen (and changeable while it runs): Tempo's v1 JSON with `404`
//! and an empty body for an unknown trace, or the v2 JSON that Tempo 2.x and 3.x answer with `200`
//! and an empty trace when unknown; a malformed id is `400` with Tempo's sentence. The Loki half
//! answers `query_range` for `{service=~".+"} |= "TEXT"` (and refuses anything else with `400`,
//! so a test learns what the frontend sends) from the services' JSON log lines, grouped into
//! streams by `service` and `level`, with `trace_id` and `span_id` merged in as Loki merges
//! structured metadata.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use traces::Span;
use warp::Filter as _;
use warp::http::{Response, StatusCode};

/// How the fake Tempo answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `{"batches": [...]}`; unknown: 404, empty body.
    V1,
    /// `{"trace": {"resourceSpans": [...]}}`; unknown: 200, `{"trace": {}}`.
    V2,
    /// `500` and a text body, as a Tempo that fails.
    Failing,
}

/// The fake backends, on one port (as the lab's store has them).
pub struct Backends {
    addr: SocketAddr,
    shape: Arc<AtomicU8>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

type Feed<T> = Arc<Mutex<Vec<T>>>;

/// A Loki stream's labels, sorted by name.
type Labels = Vec<(String, String)>;

impl Backends {
    /// Serves `spans` as Tempo and the lines of `logs` as Loki.
    pub async fn start(spans: Feed<Span>, logs: Vec<Feed<Value>>) -> Self {
        let shape = Arc::new(AtomicU8::new(0));
        let tempo = {
            let shape = shape.clone();
            warp::path!("api" / "traces" / String).map(move |id: String| {
                let shape = match shape.load(Ordering::SeqCst) {
                    0 => Shape::V1,
                    1 => Shape::V2,
                    _ => Shape::Failing,
                };
                tempo(&spans, &id, shape)
            })
        };
        let loki = warp::path!("loki" / "api" / "v1" / "query_range")
            .and(warp::query::<BTreeMap<String, String>>())
            .map(move |params: BTreeMap<String, String>| loki(&logs, &params));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let addr = listener.local_addr().expect("bound");
        let routes = tempo
            .or(loki)
            .unify()
            .map(warp::Reply::into_response)
            .boxed();
        Self {
            addr,
            shape,
            _stop: crate::in_process::serve(listener, routes),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers in `shape` from now on.
    pub fn set_shape(&self, shape: Shape) {
        let code = match shape {
            Shape::V1 => 0,
            Shape::V2 => 1,
            Shape::Failing => 2,
        };
        self.shape.store(code, Ordering::SeqCst);
    }
}

fn answer(status: StatusCode, content_type: &str, body: String) -> Response<String> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(body)
        .expect("a valid response")
}

fn tempo(spans: &Feed<Span>, id: &str, shape: Shape) -> Response<String> {
    if shape == Shape::Failing {
        return answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            "failed to get trace".into(),
        );
    }
    if !id.bytes().all(|b| b.is_ascii_hexdigit()) || id.len() > 32 {
        return answer(
            StatusCode::BAD_REQUEST,
            "text/plain",
            "trace IDs can only contain hex characters".into(),
        );
    }
    let found: Vec<Span> = spans
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.trace_id == id)
        .cloned()
        .collect();
    match shape {
        Shape::V1 if found.is_empty() => answer(StatusCode::NOT_FOUND, "text/plain", String::new()),
        Shape::V1 => answer(
            StatusCode::OK,
            "application/json",
            traces::tempo::v1(&found).to_string(),
        ),
        _ => answer(
            StatusCode::OK,
            "application/json",
            traces::tempo::v2(&found).to_string(),
        ),
    }
}

fn loki(logs: &[Feed<Value>], params: &BTreeMap<String, String>) -> Response<String> {
    let query = params.get("query").map(String::as_str).unwrap_or_default();
    let Some(text) = query
        .strip_prefix("{service=~\".+\"} |= \"")
        .and_then(|rest| rest.strip_suffix('"'))
    else {
        return answer(
            StatusCode::BAD_REQUEST,
            "text/plain",
            format!(
                "parse error: the fake Loki takes only {{service=~\".+\"}} |= \"TEXT\", not {query}"
            ),
        );
    };
    // Lines by their stream's labels; each line as (nanoseconds, text).
    let mut streams: BTreeMap<Labels, Vec<(String, String)>> = BTreeMap::new();
    for feed in logs {
        for line in feed.lock().unwrap().iter() {
            let written = line.to_string();
            if !written.contains(text) {
                continue;
            }
            let mut labels = Vec::new();
            for key in ["level", "service", "span_id", "trace_id"] {
                if let Some(value) = line[key].as_str() {
                    labels.push((key.to_owned(), value.to_owned()));
                }
            }
            let at = line["timestamp"]
                .as_str()
                .and_then(|t| {
                    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .map_or(0, |t| t.unix_timestamp_nanos());
            streams
                .entry(labels)
                .or_default()
                .push((at.to_string(), written));
        }
    }
    let result: Vec<Value> = streams
        .into_iter()
        .map(|(labels, values)| {
            let stream: serde_json::Map<String, Value> = labels
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            json!({ "stream": stream, "values": values })
        })
        .collect();
    answer(
        StatusCode::OK,
        "application/json",
        json!({"status": "success", "data": {"resultType": "streams", "result": result, "stats": {}}})
            .to_string(),
    )
}
