//! `GET /api/traces/{trace_id}` and `GET /api/traces/{trace_id}/logs`: the trace of a click and
//! its log lines, for the page's waterfall and `dice-lab trace`.
//!
//! The frontend asks a trace backend over Tempo's HTTP API (`GET /api/traces/{id}`, reading both
//! the 2.x/3.x v1 answer and the v2 one) and a log backend over Loki's (`query_range` with
//! `{service=~".+"} |= "<trace id>"` over the last [`LOG_WINDOW`]), and answers in its own JSON
//! ([`frontend_ui::trace_api`]). Under `nix run` those are the real Tempo and Loki; under
//! `dice-lab up` without them, the lab's store. The reads are untraced and quiet: the page polls
//! them while spans arrive, and that must not add traces or log lines of its own.
//!
//! A trace is whole when every call that was answered has its callee's SERVER span, and every span
//! has its parent; otherwise `waiting_for` names the services whose spans are still to come (a
//! service's spans leave it in batches, so they arrive apart).

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use frontend_ui::trace_api::{LogLine, LogsAnswer, SpanRow, TraceAnswer};
use lab_http::client::{ClientError, Upstream, UpstreamError};
use lab_http::reply::ErrorStatus;
use parts::Part;
use serde_json::{Map, Value};
use traces::{Kind, Span, Trace};
use warp::http::StatusCode;

/// How long a read of the trace or log backend may take.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How far back the log lines of a trace are looked for.
pub const LOG_WINDOW: Duration = Duration::from_secs(6 * 3600);
/// The most log lines asked of the log backend for one trace (Loki's own most, by default).
const LOG_LIMIT: u32 = 5000;

/// The backends the trace routes read, and who the lab's services are by address.
pub(crate) struct Readers {
    tempo: Upstream,
    loki: Upstream,
    /// `host:port` of the services this frontend calls, for naming the callee of a call.
    names: HashMap<String, &'static str>,
}

/// Why a trace or its logs cannot be answered.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    #[error("'{0}' is not a trace id: a trace id is 32 hexadecimal digits")]
    BadId(String),
    #[error(
        "no trace {0} at the trace backend (yet): its spans may still be on their way, or it is older than the backend keeps"
    )]
    Unknown(String),
    #[error(transparent)]
    Backend(#[from] UpstreamError),
}

impl ErrorStatus for ReadError {
    fn status(&self) -> StatusCode {
        match self {
            Self::BadId(_) => StatusCode::BAD_REQUEST,
            Self::Unknown(_) => StatusCode::NOT_FOUND,
            Self::Backend(error) => error.status(),
        }
    }
}

impl Readers {
    /// Readers of the backends at `tempo` and `loki`; `services` are the base URLs of the
    /// services this frontend calls, with their names.
    pub(crate) fn new(
        tempo: &str,
        loki: &str,
        services: &[(&'static str, &str)],
    ) -> Result<Self, ClientError> {
        let names = services
            .iter()
            .filter_map(|(name, url)| Some((host_port(&url::Url::parse(url).ok()?)?, *name)))
            .collect();
        Ok(Self {
            tempo: Upstream::new("the trace backend", tempo, READ_TIMEOUT)?.untraced(),
            loki: Upstream::new("the log backend", loki, READ_TIMEOUT)?.untraced(),
            names,
        })
    }

    /// The trace, as the waterfall draws it.
    pub(crate) async fn trace(&self, id: &str) -> Result<TraceAnswer, ReadError> {
        let id = trace_id(id)?;
        let answer = self.tempo.get(&["api", "traces", &id], None).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Err(ReadError::Unknown(id));
        }
        if answer.status != StatusCode::OK {
            return Err(backend_status(&self.tempo, answer.status));
        }
        let spans = traces::tempo::read(&answer.body).map_err(|detail| UpstreamError::Invalid {
            name: self.tempo.name(),
            detail,
        })?;
        if spans.is_empty() {
            return Err(ReadError::Unknown(id));
        }
        Ok(self.answer(id, Trace::new(spans)))
    }

    /// The trace's log lines, earliest first.
    pub(crate) async fn logs(&self, id: &str) -> Result<LogsAnswer, ReadError> {
        let id = trace_id(id)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let start = now.saturating_sub(LOG_WINDOW).as_nanos().to_string();
        let end = (now + Duration::from_secs(60)).as_nanos().to_string();
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("query", &format!("{{service=~\".+\"}} |= \"{id}\""))
            .append_pair("start", &start)
            .append_pair("end", &end)
            .append_pair("limit", &LOG_LIMIT.to_string())
            .append_pair("direction", "forward")
            .finish();
        let answer = self
            .loki
            .get(&["loki", "api", "v1", "query_range"], Some(&query))
            .await?;
        if answer.status != StatusCode::OK {
            return Err(backend_status(&self.loki, answer.status));
        }
        let lines = read_loki(&answer.body, &id).map_err(|detail| UpstreamError::Invalid {
            name: self.loki.name(),
            detail,
        })?;
        Ok(LogsAnswer {
            trace_id: id,
            lines,
        })
    }

    fn answer(&self, trace_id: String, trace: Trace) -> TraceAnswer {
        let start = trace.spans().iter().map(|s| s.start_ns).min().unwrap_or(0);
        let end = trace
            .spans()
            .iter()
            .map(|s| s.end_ns)
            .max()
            .unwrap_or(start);
        let spans = trace
            .depth_first()
            .into_iter()
            .map(|(depth, span)| SpanRow {
                span_id: span.span_id.clone(),
                parent_span_id: (!span.parent_span_id.is_empty())
                    .then(|| span.parent_span_id.clone()),
                depth,
                service: span.service().to_owned(),
                name: span.name.clone(),
                kind: span.kind.name().to_owned(),
                status: span.status.name().to_owned(),
                status_message: span.status_message.clone(),
                start_ns: span.start_ns.saturating_sub(start),
                duration_ns: span.duration_ns(),
                attributes: span
                    .attributes
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            })
            .collect();
        TraceAnswer {
            trace_id,
            start_unix_nano: start.to_string(),
            duration_ns: end.saturating_sub(start),
            spans,
            waiting_for: self.waiting_for(&trace),
        }
    }

    /// The services whose spans the trace shows to be still on their way.
    fn waiting_for(&self, trace: &Trace) -> Vec<String> {
        let spans = trace.spans();
        let mut waiting = Vec::new();
        // A call that was answered, with no SERVER span of its callee under it yet.
        for span in spans {
            let answered = span.kind == Kind::Client
                && !span.attr("http.response.status_code").is_null()
                && !trace
                    .children(span)
                    .iter()
                    .any(|child| child.kind == Kind::Server);
            if answered {
                waiting.push(self.callee(span));
            }
        }
        // A span whose parent is not there yet: the frontend's own spans are the root of every
        // trace it names, so if none is there, they are what is missing.
        for orphan in trace
            .roots()
            .into_iter()
            .filter(|root| !root.parent_span_id.is_empty())
        {
            let frontend = Part::Frontend.name();
            waiting.push(if spans.iter().any(|s| s.service() == frontend) {
                format!("the caller of {}", orphan.service())
            } else {
                frontend.to_owned()
            });
        }
        waiting.sort();
        waiting.dedup();
        waiting
    }

    /// The service a CLIENT span called, by its address.
    fn callee(&self, client: &Span) -> String {
        let host = client.attr("server.address").as_str().unwrap_or_default();
        let port = client.attr("server.port").as_i64().unwrap_or(80);
        let address = format!("{host}:{port}");
        if let Some(name) = self.names.get(&address) {
            return (*name).to_owned();
        }
        let loopback = matches!(host, "127.0.0.1" | "localhost" | "::1" | "[::1]");
        Part::SERVICES
            .into_iter()
            .find(|part| loopback && i64::from(part.port()) == port)
            .map_or_else(
                || format!("the service at {address}"),
                |part| part.name().to_owned(),
            )
    }
}

/// `host:port` of a URL, the port filled in.
fn host_port(url: &url::Url) -> Option<String> {
    Some(format!(
        "{}:{}",
        url.host_str()?,
        url.port_or_known_default()?
    ))
}

/// The id in lowercase, if it is a trace id.
fn trace_id(id: &str) -> Result<String, ReadError> {
    let decoded = percent_encoding::percent_decode_str(id).decode_utf8_lossy();
    if traces::is_trace_id(&decoded) {
        Ok(decoded.to_ascii_lowercase())
    } else {
        Err(ReadError::BadId(decoded.chars().take(64).collect()))
    }
}

fn backend_status(upstream: &Upstream, status: StatusCode) -> ReadError {
    ReadError::Backend(UpstreamError::Status {
        name: upstream.name(),
        status,
    })
}

/// The fields of a log line that [`LogLine`] has a place for, or leaves out.
const OWN_FIELDS: [&str; 7] = [
    "timestamp",
    "service",
    "level",
    "message",
    "target",
    "trace_id",
    "span_id",
];

/// The lines of a `query_range` answer that belong to `trace_id`, earliest first.
fn read_loki(body: &[u8], trace_id: &str) -> Result<Vec<LogLine>, String> {
    let answer: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let streams = answer["data"]["result"]
        .as_array()
        .ok_or("it has no data.result list")?;
    let mut lines: Vec<(u128, usize, LogLine)> = Vec::new();
    for stream in streams {
        let labels = &stream["stream"];
        for value in stream["values"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let (Some(at), Some(text)) = (value[0].as_str(), value[1].as_str()) else {
                return Err("a value is not [timestamp, line]".into());
            };
            let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(text) else {
                continue;
            };
            // The id was matched anywhere in the line; keep lines written in the trace.
            if fields.get("trace_id").and_then(Value::as_str) != Some(trace_id) {
                continue;
            }
            let order = lines.len();
            lines.push((at.parse().unwrap_or(0), order, log_line(fields, labels)));
        }
    }
    lines.sort_by_key(|(at, order, _)| (*at, *order));
    Ok(lines.into_iter().map(|(_, _, line)| line).collect())
}

fn log_line(mut fields: Map<String, Value>, labels: &Value) -> LogLine {
    let take = |key: &str| match fields.get(key) {
        Some(Value::String(text)) => Some(text.clone()),
        _ => None,
    };
    let time = take("timestamp").unwrap_or_default();
    let service = take("service")
        .or_else(|| labels["service"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let level = take("level")
        .or_else(|| labels["level"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let message = take("message").unwrap_or_default();
    let span_id = take("span_id");
    fields.retain(|key, _| !OWN_FIELDS.contains(&key.as_str()));
    LogLine {
        time,
        service,
        level,
        message,
        span_id,
        fields,
    }
}
