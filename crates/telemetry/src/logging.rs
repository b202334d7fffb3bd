//! JSON log lines that Loki can parse and that point at the exported spans.
//!
//! `tracing_subscriber`'s own JSON formatter knows nothing of OpenTelemetry ids, so this layer
//! writes each event as one object per line on stdout: `timestamp` (RFC 3339, UTC), `level`,
//! `message`, `service`, `target`, the event's own fields, and, inside a sampled span, `trace_id` and
//! `span_id` taken from the OpenTelemetry context that the span activated on entry, so they equal the
//! ids of the span that is exported. A field named `settings` that holds a JSON object is written as
//! that object, so the start-up line shows the effective settings as structured data.
//!
//! A concurrent batch logs one line per roll, so lines are built without intermediate maps and
//! appended to a shared buffer that one writer thread empties, writing whatever has gathered in one
//! system call. Loggers wake the writer only when the buffer was empty, so a busy service does not
//! pay a thread wake-up per line. The buffer is bounded, and logging never waits for stdout: when
//! nobody reads it (an unread pipe) and the buffer is full, lines are dropped, counted in
//! `telemetry_log_lines_dropped_total`, and one line on stderr says so; the service goes on
//! answering. [`Writer::close`] drains the buffer at shutdown, waiting for stdout at most
//! [`CLOSE_TIMEOUT`].

use std::io::Write as _;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use opentelemetry::trace::TraceContextExt as _;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;

/// Bytes that may wait for the writer thread; beyond, lines are dropped.
const BUFFER_LIMIT: usize = 4 * 1024 * 1024;

/// What the writer's buffers keep between bursts.
const SPARE_CAPACITY: usize = 64 * 1024;

/// How long shutdown waits for the buffered lines to reach stdout.
pub(crate) const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// The layer; `service` is the `service.name` in use.
pub(crate) struct JsonLines {
    service: String,
    shared: Arc<Shared>,
}

/// The writer thread; [`Writer::close`] flushes what is buffered and stops it.
pub(crate) struct Writer {
    shared: Arc<Shared>,
}

/// Lines waiting for the writer, and the signals between loggers and writer.
struct Shared {
    buffer: Mutex<Buffer>,
    /// Signalled when the buffer stops being empty, or on close.
    filled: Condvar,
    /// Signalled when the writer has finished, at close.
    finished: Condvar,
}

#[derive(Default)]
struct Buffer {
    lines: Vec<u8>,
    closed: bool,
    /// The writer thread has ended.
    done: bool,
    /// Lines are being dropped (said once per spell).
    dropping: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Buffer> {
        self.buffer.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl JsonLines {
    pub(crate) fn new(service: String) -> (Self, Writer) {
        let shared = Arc::new(Shared {
            buffer: Mutex::new(Buffer::default()),
            filled: Condvar::new(),
            finished: Condvar::new(),
        });
        {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("json-logs".into())
                .spawn(move || write_lines(&shared))
                .expect("a thread for the log writer");
        }
        let layer = Self {
            service,
            shared: shared.clone(),
        };
        (layer, Writer { shared })
    }

    fn emit(&self, line: &[u8]) {
        let mut buffer = self.shared.lock();
        if buffer.done || buffer.lines.len() + line.len() > BUFFER_LIMIT {
            crate::metrics::log_lines_dropped().inc();
            if !buffer.dropping && !buffer.done {
                buffer.dropping = true;
                // Said on stderr, from a thread of its own: stderr may be as stuck as stdout.
                let _ = std::thread::Builder::new()
                    .name("log-overflow".into())
                    .spawn(|| {
                        let _ = writeln!(
                            std::io::stderr(),
                            "{{\"level\":\"warn\",\"message\":\"standard output is not being read: \
                             log lines are dropped and counted in telemetry_log_lines_dropped_total \
                             until it is (said once)\"}}"
                        );
                    });
            }
            return;
        }
        let was_empty = buffer.lines.is_empty();
        buffer.lines.extend_from_slice(line);
        drop(buffer);
        if was_empty {
            self.shared.filled.notify_one();
        }
    }
}

impl Writer {
    /// Writes what is buffered and stops the thread, waiting for stdout at most
    /// [`CLOSE_TIMEOUT`]; lines logged after it are dropped.
    pub(crate) fn close(self) {
        let buffer = {
            let mut buffer = self.shared.lock();
            buffer.closed = true;
            buffer
        };
        self.shared.filled.notify_one();
        let _ = self
            .shared
            .finished
            .wait_timeout_while(buffer, CLOSE_TIMEOUT, |b| !b.done);
    }
}

fn write_lines(shared: &Shared) {
    let stdout = std::io::stdout();
    let mut spare = Vec::with_capacity(SPARE_CAPACITY);
    loop {
        let mut buffer = shared.lock();
        while buffer.lines.is_empty() && !buffer.closed {
            buffer = shared
                .filled
                .wait(buffer)
                .unwrap_or_else(|e| e.into_inner());
        }
        if buffer.lines.is_empty() {
            buffer.done = true;
            drop(buffer);
            shared.finished.notify_all();
            return;
        }
        if buffer.lines.len() < BUFFER_LIMIT / 2 {
            buffer.dropping = false;
        }
        std::mem::swap(&mut buffer.lines, &mut spare);
        drop(buffer);
        // A closed stdout must not take the service down; the lines are lost either way.
        let mut out = stdout.lock();
        let _ = out.write_all(&spare).and_then(|()| out.flush());
        spare.clear();
        // A burst leaves a large buffer behind; give it back rather than keep it for good.
        spare.shrink_to(SPARE_CAPACITY);
    }
}

impl<S: Subscriber> tracing_subscriber::Layer<S> for JsonLines {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);

        let mut line = Vec::with_capacity(256 + fields.rest.len());
        let timestamp = OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_default();
        line.extend_from_slice(b"{\"timestamp\":\"");
        line.extend_from_slice(timestamp.as_bytes());
        line.extend_from_slice(b"\",\"level\":\"");
        line.extend_from_slice(level(event.metadata().level()).as_bytes());
        line.extend_from_slice(b"\",\"message\":");
        string(&mut line, &fields.message);
        line.extend_from_slice(b",\"service\":");
        string(&mut line, &self.service);
        line.extend_from_slice(b",\"target\":");
        string(&mut line, event.metadata().target());
        line.extend_from_slice(&fields.rest);

        let cx = opentelemetry::Context::current();
        let span = cx.span();
        let ids = span.span_context();
        if ids.is_valid() {
            line.extend_from_slice(b",\"trace_id\":\"");
            line.extend_from_slice(ids.trace_id().to_string().as_bytes());
            line.extend_from_slice(b"\",\"span_id\":\"");
            line.extend_from_slice(ids.span_id().to_string().as_bytes());
            line.push(b'"');
        }
        line.extend_from_slice(b"}\n");
        self.emit(&line);
    }
}

fn level(level: &tracing::Level) -> &'static str {
    match *level {
        tracing::Level::ERROR => "error",
        tracing::Level::WARN => "warn",
        tracing::Level::INFO => "info",
        tracing::Level::DEBUG => "debug",
        tracing::Level::TRACE => "trace",
    }
}

/// A JSON string literal.
fn string(out: &mut Vec<u8>, text: &str) {
    serde_json::to_writer(out, text).expect("writing a string into a Vec cannot fail");
}

/// The event's message, and its other fields as `,"name":value` pairs, numbers and booleans
/// typed.
#[derive(Default)]
struct Fields {
    message: String,
    rest: Vec<u8>,
}

impl Fields {
    fn key(&mut self, field: &Field) {
        self.rest.push(b',');
        string(&mut self.rest, field.name());
        self.rest.push(b':');
    }

    fn value(&mut self, field: &Field, value: impl serde::Serialize) {
        self.key(field);
        serde_json::to_writer(&mut self.rest, &value).expect("writing into a Vec cannot fail");
    }
}

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.value(field, value);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.value(field, value);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.value(field, value);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.value(field, value);
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            value.clone_into(&mut self.message);
        } else {
            self.value(field, value);
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.value(field, value.to_string());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        match field.name() {
            "message" => self.message = text,
            "settings" => match serde_json::from_str::<Value>(&text) {
                Ok(object) if object.is_object() => self.value(field, object),
                _ => self.value(field, text),
            },
            _ => self.value(field, text),
        }
    }
}
