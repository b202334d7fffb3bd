//! Alloy's two hops, played by the test where Alloy cannot run: spans from the services to Tempo,
//! and the services' log lines to Loki, each as `observability/alloy/` wires it.
//!
//! Every address, label and field comes from the Alloy files themselves, read by [`Wiring`], so a
//! change there changes what the real-backends suite sends:
//! - [`TraceRelay`] listens where `traces.alloy`'s OTLP receiver listens for HTTP (where the
//!   services export) and sends each batch on, over OTLP/gRPC, to the endpoint its
//!   `otelcol.exporter.otlp` names (Tempo's own receiver). An export that fails on the way is
//!   answered `503`, so the service counts those spans as dropped: none is lost silently. It can
//!   also hand each batch, unchanged, to more OTLP/HTTP endpoints (the lab's store), so that two
//!   trace backends hold the same spans.
//! - [`LogShipper`] follows the `*.log` files of a directory as `logs-files.alloy`'s
//!   `loki.source.file` does (adding its `filename` label), and pushes each line to the URL of
//!   `logs.alloy`'s `loki.write` with the labels of its `stage.labels`, the structured metadata of
//!   its `stage.structured_metadata`, each taken from the line's JSON as its `stage.json` says, and
//!   the line's own time from `stage.timestamp`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;
use serde_json::{Value, json};
use warp::Filter as _;

use crate::repo;

/// What the Alloy files say, read from them.
#[derive(Clone, Debug)]
pub struct Wiring {
    /// `host:port` of the OTLP/HTTP receiver, where the services export.
    pub otlp_http: String,
    /// `host:port` the OTLP exporter sends to over gRPC (Tempo's receiver).
    pub otlp_export: String,
    /// Loki's push URL.
    pub loki_push: String,
    /// Label name → the `stage.json` field it is taken from.
    pub labels: BTreeMap<String, String>,
    /// Structured metadata name → the field it is taken from.
    pub metadata: BTreeMap<String, String>,
    /// The field that holds the line's time (RFC 3339).
    pub timestamp: String,
}

impl Wiring {
    /// The wiring of the repository's `traces.alloy` and `logs.alloy`.
    pub fn read() -> Self {
        let traces = repo::read("observability/alloy/traces.alloy");
        let logs = repo::read("observability/alloy/logs.alloy");
        let format = block(&logs, "stage.timestamp")
            .and_then(|b| attribute(b, "format"))
            .expect("logs.alloy's stage.timestamp has a format");
        assert_eq!(
            format, "RFC3339Nano",
            "the shipper reads RFC 3339 times, as logs.alloy's stage.timestamp says"
        );
        let fields = map(&logs, "stage.json", "expressions");
        let from_field = |stage: &str| -> BTreeMap<String, String> {
            map(&logs, stage, "values")
                .into_iter()
                .map(|(name, source)| {
                    // An empty value takes the extracted field of the same name.
                    let extracted = if source.is_empty() {
                        name.clone()
                    } else {
                        source
                    };
                    let field = fields.get(&extracted).cloned().unwrap_or(extracted);
                    (name, field)
                })
                .collect()
        };
        let timestamp = block(&logs, "stage.timestamp")
            .and_then(|b| attribute(b, "source"))
            .expect("logs.alloy's stage.timestamp has a source");
        Self {
            otlp_http: block(&traces, "http")
                .and_then(|b| attribute(b, "endpoint"))
                .expect("traces.alloy's receiver has an http endpoint"),
            otlp_export: block(&traces, "otelcol.exporter.otlp")
                .and_then(|b| attribute(b, "endpoint"))
                .expect("traces.alloy's exporter has an endpoint"),
            loki_push: block(&logs, "loki.write")
                .and_then(|b| attribute(b, "url"))
                .expect("logs.alloy's loki.write has a url"),
            labels: from_field("stage.labels"),
            metadata: from_field("stage.structured_metadata"),
            timestamp: fields.get(&timestamp).cloned().unwrap_or(timestamp),
        }
    }
}

/// The text inside the braces of the first block whose header starts with `name` (`name {` or
/// `name "label" {`), comments removed.
fn block<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(found) = text[from..].find(name) {
        let start = from + found;
        from = start + name.len();
        let at_line_start = text[..start]
            .chars()
            .rev()
            .take_while(|c| *c != '\n')
            .all(char::is_whitespace);
        let rest = &text[from..];
        let header = &rest[..rest.find('\n').unwrap_or(rest.len())];
        if !at_line_start || !header.trim_end().ends_with('{') {
            continue;
        }
        if !(header.starts_with(' ') || header.starts_with('{')) {
            continue;
        }
        let open = from + header.find('{')? + 1;
        let mut depth = 1;
        for (i, c) in text[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(&text[open..open + i]);
                    }
                }
                _ => {}
            }
        }
        return None;
    }
    None
}

/// The string value of `key = "value"` at the top of a block.
fn attribute(block: &str, key: &str) -> Option<String> {
    block.lines().find_map(|line| {
        let (k, v) = line.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_end_matches(',').trim_matches('"').to_owned())
    })
}

/// The `name = "value",` pairs of the map `key = { ... }` in the block `stage`.
fn map(text: &str, stage: &str, key: &str) -> BTreeMap<String, String> {
    let body = block(text, stage).unwrap_or_else(|| panic!("logs.alloy has no {stage} block"));
    let start = body
        .find(&format!("{key} = {{"))
        .unwrap_or_else(|| panic!("{stage} has no {key}"));
    let inner = &body[start..];
    let inner = &inner[inner.find('{').unwrap() + 1..inner.find('}').unwrap()];
    inner
        .lines()
        .filter_map(|line| {
            let (k, v) = line.split_once('=')?;
            Some((
                k.trim().to_owned(),
                v.trim().trim_end_matches(',').trim_matches('"').to_owned(),
            ))
        })
        .collect()
}

/// Alloy's trace hop: OTLP/HTTP in, OTLP/gRPC out. Dropping it stops it.
pub struct TraceRelay {
    forwarded: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl TraceRelay {
    /// Listens on the wiring's OTLP/HTTP address and forwards to its exporter's endpoint, and to
    /// each of `tee` (OTLP/HTTP base URLs) as well.
    pub async fn start(wiring: &Wiring, tee: Vec<String>) -> Self {
        let forwarded = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let target = format!("http://{}", wiring.otlp_export);
        // One channel for every batch, as Alloy keeps its connection; it connects (and connects
        // again after Tempo restarts) when a batch is sent.
        let client = TraceServiceClient::new(
            tonic::transport::Endpoint::from_shared(target.clone())
                .expect("a valid endpoint")
                .connect_timeout(Duration::from_secs(2))
                .timeout(Duration::from_secs(5))
                .connect_lazy(),
        );
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("an HTTP client");
        let route = {
            let (forwarded, failed) = (forwarded.clone(), failed.clone());
            warp::post()
                .and(warp::path!("v1" / "traces"))
                .and(warp::body::bytes())
                .then(move |body: Bytes| {
                    let (forwarded, failed) = (forwarded.clone(), failed.clone());
                    let (target, tee, http) = (target.clone(), tee.clone(), http.clone());
                    let client = client.clone();
                    async move {
                        for url in &tee {
                            let _ = http
                                .post(format!("{url}/v1/traces"))
                                .header("content-type", "application/x-protobuf")
                                .body(body.clone())
                                .send()
                                .await;
                        }
                        match forward(client, &target, &body).await {
                            Ok(spans) => {
                                forwarded.fetch_add(spans, Ordering::SeqCst);
                                warp::http::Response::builder()
                                    .header("content-type", "application/x-protobuf")
                                    .body(ExportTraceServiceResponse::default().encode_to_vec())
                                    .expect("a valid response")
                            }
                            Err(error) => {
                                if failed.fetch_add(1, Ordering::SeqCst) == 0 {
                                    eprintln!("Alloy's trace hop: {error}");
                                }
                                warp::http::Response::builder()
                                    .status(503)
                                    .body(error.into_bytes())
                                    .expect("a valid response")
                            }
                        }
                    }
                })
        };
        let listener = tokio::net::TcpListener::bind(&wiring.otlp_http)
            .await
            .unwrap_or_else(|e| {
                panic!("cannot listen on {} as Alloy would: {e}", wiring.otlp_http)
            });
        let routes = route.map(warp::Reply::into_response).boxed();
        Self {
            forwarded,
            failed,
            _stop: crate::in_process::serve(listener, routes),
        }
    }

    /// Spans Tempo accepted.
    pub fn forwarded(&self) -> u64 {
        self.forwarded.load(Ordering::SeqCst)
    }

    /// Batches Tempo refused or did not answer (the services count their spans as dropped).
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::SeqCst)
    }
}

/// One export over gRPC; the number of spans it carried.
async fn forward(
    mut client: TraceServiceClient<tonic::transport::Channel>,
    target: &str,
    body: &[u8],
) -> Result<u64, String> {
    let request = ExportTraceServiceRequest::decode(body).map_err(|e| e.to_string())?;
    let spans = request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len() as u64)
        .sum();
    client
        .export(request)
        .await
        .map_err(|e| format!("{target} did not take the export: {e}"))?;
    Ok(spans)
}

/// Alloy's log hop: follows `DIR/*.log` and pushes new lines to Loki every 100 ms. Dropping it
/// stops it.
pub struct LogShipper {
    pushed: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl LogShipper {
    pub fn start(wiring: &Wiring, dir: &Path) -> Self {
        let pushed = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(ship(wiring.clone(), dir.to_owned(), pushed.clone()));
        Self { pushed, task }
    }

    /// Lines Loki accepted so far.
    pub fn pushed(&self) -> u64 {
        self.pushed.load(Ordering::SeqCst)
    }
}

impl Drop for LogShipper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn ship(wiring: Wiring, dir: PathBuf, pushed: Arc<AtomicU64>) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("an HTTP client");
    // Per file, how far it has been read (whole lines only).
    let mut offsets: BTreeMap<PathBuf, u64> = BTreeMap::new();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| Some(e.ok()?.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        files.sort();
        for file in files {
            let from = offsets.get(&file).copied().unwrap_or(0);
            let Some(bytes) = read_from(&file, from) else {
                continue;
            };
            let Some(end) = bytes.iter().rposition(|b| *b == b'\n') else {
                continue;
            };
            let text = String::from_utf8_lossy(&bytes[..end]).into_owned();
            let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
            let body = push_body(&wiring, &file, &lines);
            // Loki away (restarting): the lines stay unread and go with the next push, as
            // Alloy's file source keeps its position until the write succeeds.
            let accepted = http
                .post(&wiring.loki_push)
                .json(&body)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if accepted {
                offsets.insert(file, from + end as u64 + 1);
                pushed.fetch_add(lines.len() as u64, Ordering::SeqCst);
            }
        }
    }
}

/// What `file` holds past byte `from` (only that is read), if it can be read.
fn read_from(file: &Path, from: u64) -> Option<Vec<u8>> {
    use std::io::{Read as _, Seek as _};
    let mut file = std::fs::File::open(file).ok()?;
    file.seek(std::io::SeekFrom::Start(from)).ok()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

/// A Loki push body (JSON) for `lines` of `file`: one stream per label set, each value
/// `[time in ns, line, structured metadata]`.
fn push_body(wiring: &Wiring, file: &Path, lines: &[&str]) -> Value {
    let mut streams: BTreeMap<Vec<(String, String)>, Vec<Value>> = BTreeMap::new();
    for line in lines {
        let parsed: Value = serde_json::from_str(line).unwrap_or(Value::Null);
        let field = |name: &str| parsed.get(name).and_then(Value::as_str).map(str::to_owned);
        let mut labels: Vec<(String, String)> = wiring
            .labels
            .iter()
            .filter_map(|(label, source)| Some((label.clone(), field(source)?)))
            .collect();
        // loki.source.file labels every line with the file it came from.
        labels.push(("filename".into(), file.display().to_string()));
        labels.sort();
        let metadata: serde_json::Map<String, Value> = wiring
            .metadata
            .iter()
            .filter_map(|(name, source)| Some((name.clone(), Value::from(field(source)?))))
            .collect();
        let nanos = field(&wiring.timestamp)
            .and_then(|t| {
                time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339).ok()
            })
            .unwrap_or_else(time::OffsetDateTime::now_utc)
            .unix_timestamp_nanos();
        streams
            .entry(labels)
            .or_default()
            .push(json!([nanos.to_string(), line, metadata]));
    }
    let streams: Vec<Value> = streams
        .into_iter()
        .map(|(labels, values)| {
            let stream: serde_json::Map<String, Value> = labels
                .into_iter()
                .map(|(k, v)| (k, Value::from(v)))
                .collect();
            json!({ "stream": stream, "values": values })
        })
        .collect();
    json!({ "streams": streams })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wiring_is_read_from_the_alloy_files() {
        let wiring = Wiring::read();
        assert_eq!(wiring.otlp_http, "127.0.0.1:4318");
        assert_eq!(wiring.otlp_export, "127.0.0.1:4417");
        assert_eq!(wiring.loki_push, "http://127.0.0.1:3100/loki/api/v1/push");
        assert_eq!(
            wiring.labels.keys().collect::<Vec<_>>(),
            ["level", "service"]
        );
        assert_eq!(
            wiring.metadata.keys().collect::<Vec<_>>(),
            ["span_id", "trace_id"]
        );
        assert_eq!(wiring.metadata["trace_id"], "trace_id");
        assert_eq!(wiring.timestamp, "timestamp");
    }

    #[test]
    fn a_line_is_pushed_with_its_labels_metadata_and_time() {
        let wiring = Wiring::read();
        let line = r#"{"timestamp":"2026-01-02T03:04:05.123456789Z","level":"info","service":"dice-roller","message":"roll","trace_id":"0af7651916cd43dd8448eb211c80319c","span_id":"b7ad6b7169203331"}"#;
        let body = push_body(&wiring, Path::new("/x/dice-roller.log"), &[line]);
        let stream = &body["streams"][0];
        assert_eq!(
            stream["stream"],
            json!({"filename": "/x/dice-roller.log", "level": "info", "service": "dice-roller"})
        );
        assert_eq!(stream["values"][0][0], "1767323045123456789");
        assert_eq!(stream["values"][0][1], line);
        assert_eq!(
            stream["values"][0][2],
            json!({"span_id": "b7ad6b7169203331", "trace_id": "0af7651916cd43dd8448eb211c80319c"})
        );
    }
}
