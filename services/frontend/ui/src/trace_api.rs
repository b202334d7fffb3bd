//! The JSON of the frontend's trace routes, written once for the server that answers them, the
//! page that draws them and `dice-lab trace` that prints them.
//!
//! `GET /api/traces/{trace_id}` answers a [`TraceAnswer`]: the trace's spans in waterfall order
//! (depth first, siblings by start), each with its offset from the trace's start, and the services
//! whose spans are expected but have not arrived. `GET /api/traces/{trace_id}/logs` answers a
//! [`LogsAnswer`]: the log lines that carry the trace id, in time order. Both answer
//! `{"error": "..."}` with 400 (not a trace id), 404 (no such trace, or not yet), 502 (the backend
//! answered something unreadable), 503 (the backend cannot be reached) or 504 (it did not answer
//! in time).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `GET /api/traces/{trace_id}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraceAnswer {
    pub trace_id: String,
    /// When the earliest span started, in nanoseconds since the Unix epoch, as a string: the
    /// number is beyond the integers a JSON reader is sure to keep exactly.
    pub start_unix_nano: String,
    /// From the earliest start to the latest end, in nanoseconds.
    pub duration_ns: u64,
    /// Every span, parents before their children and siblings earliest first.
    pub spans: Vec<SpanRow>,
    /// Services whose spans the trace shows to be on their way (a call answered, but the callee's
    /// span is not there yet), by name; empty once the trace is whole.
    pub waiting_for: Vec<String>,
}

/// One span, as a row of the waterfall.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpanRow {
    pub span_id: String,
    /// `None` for a root.
    pub parent_span_id: Option<String>,
    /// 0 for a root, its parent's depth plus one otherwise.
    pub depth: usize,
    /// The resource's `service.name`.
    pub service: String,
    pub name: String,
    /// `server`, `client`, `internal`, `producer`, `consumer` or `unspecified`.
    pub kind: String,
    /// `unset`, `ok` or `error`.
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status_message: String,
    /// Nanoseconds from the trace's start to the span's.
    pub start_ns: u64,
    pub duration_ns: u64,
    /// The span's attributes (`roll.value`, `http.route`, ...).
    pub attributes: Map<String, Value>,
}

impl SpanRow {
    pub fn end_ns(&self) -> u64 {
        self.start_ns.saturating_add(self.duration_ns)
    }

    pub fn is_error(&self) -> bool {
        self.status == "error"
    }

    /// An attribute, or `Value::Null`.
    pub fn attr(&self, key: &str) -> &Value {
        self.attributes.get(key).unwrap_or(&Value::Null)
    }
}

/// `GET /api/traces/{trace_id}/logs`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogsAnswer {
    pub trace_id: String,
    /// Earliest first.
    pub lines: Vec<LogLine>,
}

/// One log line of the trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    /// RFC 3339 with nanoseconds, as the service wrote it.
    pub time: String,
    pub service: String,
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub level: String,
    pub message: String,
    /// The span the line was written in; `None` outside any span.
    pub span_id: Option<String>,
    /// The line's other fields (`roll_value`, `route`, ...), without `timestamp`, `service`,
    /// `level`, `message`, `target`, `trace_id` and `span_id`.
    pub fields: Map<String, Value>,
}
