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
//! system call. A logger wakes the writer only when the buffer was empty, and the writer, once
//! woken, lets lines gather for [`LINGER`] (or until [`WAKE_AT`] bytes have) before it writes: a
//! busy service pays a thread wake-up per burst, not per line, and a line reaches stdout within a
//! few milliseconds. The buffer is bounded, and logging never waits for stdout: when
//! nobody reads it (an unread pipe) and the buffer is full, lines are dropped, counted in
//! `telemetry_log_lines_dropped_total`, and one line on stderr says so; the service goes on
//! answering. [`Writer::close`] drains the buffer at shutdown, waiting for stdout at most
//! [`CLOSE_TIMEOUT`].

use std::io::Write as _;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;

/// Bytes that may wait for the writer thread; beyond, lines are dropped.
const BUFFER_LIMIT: usize = 4 * 1024 * 1024;

/// How long the writer lets lines gather after the first one of a burst.
const LINGER: Duration = Duration::from_millis(5);

/// Buffered bytes past which a logger wakes the writer at once instead of letting it linger.
const WAKE_AT: usize = 256 * 1024;

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
                            "{{\"level\":\"warn\",\"message\":\"standard output is not being read \
                             as fast as lines are logged (nobody reads it, or what it goes to is \
                             slower than the service): log lines are dropped and counted in \
                             telemetry_log_lines_dropped_total until it keeps up (said once)\"}}"
                        );
                    });
            }
            return;
        }
        let before = buffer.lines.len();
        buffer.lines.extend_from_slice(line);
        let after = buffer.lines.len();
        drop(buffer);
        if before == 0 || (before < WAKE_AT && after >= WAKE_AT) {
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
        // The first line of a burst: let the rest of it gather, so that one write takes it all.
        if !buffer.closed && buffer.lines.len() < WAKE_AT {
            buffer = shared
                .filled
                .wait_timeout_while(buffer, LINGER, |b| !b.closed && b.lines.len() < WAKE_AT)
                .unwrap_or_else(|e| e.into_inner())
                .0;
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
        // Each thread builds its lines in buffers of its own, kept from line to line: a line
        // costs no allocation once a thread has logged a few.
        thread_local! {
            static SCRATCH: std::cell::RefCell<(Fields, Vec<u8>)> = std::cell::RefCell::default();
        }
        SCRATCH.with(|scratch| {
            let Ok(mut scratch) = scratch.try_borrow_mut() else {
                // An event logged while a line is being built (by a field's Debug): rare; it
                // gets buffers of its own.
                let mut own = (Fields::default(), Vec::new());
                self.line(event, &mut own.0, &mut own.1);
                return;
            };
            let (fields, line) = &mut *scratch;
            self.line(event, fields, line);
        });
    }
}

impl JsonLines {
    /// Writes `event` as one line into `line` (using `fields` for its fields) and emits it.
    fn line(&self, event: &Event<'_>, fields: &mut Fields, line: &mut Vec<u8>) {
        fields.message.clear();
        fields.rest.clear();
        event.record(fields);
        line.clear();
        line.extend_from_slice(b"{\"timestamp\":\"");
        timestamp(line, OffsetDateTime::now_utc());
        line.extend_from_slice(b"\",\"level\":\"");
        line.extend_from_slice(level(event.metadata().level()).as_bytes());
        line.extend_from_slice(b"\",\"message\":");
        string(line, &fields.message);
        line.extend_from_slice(b",\"service\":");
        string(line, &self.service);
        line.extend_from_slice(b",\"target\":");
        string(line, event.metadata().target());
        line.extend_from_slice(&fields.rest);

        if let Some((trace_id, span_id)) = crate::span::current_ids() {
            line.extend_from_slice(b",\"trace_id\":\"");
            hex(line, &trace_id.to_bytes());
            line.extend_from_slice(b"\",\"span_id\":\"");
            hex(line, &span_id.to_bytes());
            line.push(b'"');
        }
        line.extend_from_slice(b"}\n");
        self.emit(line);
        // A huge line (a long settings dump) leaves a huge buffer behind; give it back.
        if line.capacity() > SCRATCH_CAPACITY {
            line.shrink_to(SCRATCH_CAPACITY);
            fields.rest.shrink_to(SCRATCH_CAPACITY);
            fields.message.shrink_to(SCRATCH_CAPACITY);
        }
    }
}

/// What a thread's line buffers keep between lines.
const SCRATCH_CAPACITY: usize = 4096;

/// RFC 3339 in UTC with nanoseconds, as `time`'s `Rfc3339` writes it: `2026-11-28T02:23:28.123456789Z`
/// (trailing zeros of the fraction left out, and the fraction with them when it is zero).
fn timestamp(out: &mut Vec<u8>, at: OffsetDateTime) {
    let (year, month, day) = (at.year(), u8::from(at.month()), at.day());
    let digits = |out: &mut Vec<u8>, value: u32, width: usize| {
        let mut buffer = [b'0'; 10];
        let mut rest = value;
        for slot in buffer[..width].iter_mut().rev() {
            *slot = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        out.extend_from_slice(&buffer[..width]);
    };
    digits(out, year.max(0) as u32, 4);
    out.push(b'-');
    digits(out, u32::from(month), 2);
    out.push(b'-');
    digits(out, u32::from(day), 2);
    out.push(b'T');
    digits(out, u32::from(at.hour()), 2);
    out.push(b':');
    digits(out, u32::from(at.minute()), 2);
    out.push(b':');
    digits(out, u32::from(at.second()), 2);
    let nanos = at.nanosecond();
    if nanos != 0 {
        out.push(b'.');
        let start = out.len();
        digits(out, nanos, 9);
        while out.last() == Some(&b'0') && out.len() > start {
            out.pop();
        }
    }
    out.push(b'Z');
}

/// Bytes as lowercase hex.
fn hex<const N: usize>(out: &mut Vec<u8>, bytes: &[u8; N]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    // Written into an array first, then appended at once.
    let mut text = [[0u8; 2]; N];
    for (pair, byte) in text.iter_mut().zip(bytes) {
        *pair = [
            DIGITS[usize::from(byte >> 4)],
            DIGITS[usize::from(byte & 0xf)],
        ];
    }
    out.extend_from_slice(text.as_flattened());
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
            self.message.push_str(value);
        } else {
            self.value(field, value);
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.value(field, value.to_string());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            use std::fmt::Write as _;
            let _ = write!(self.message, "{value:?}");
            return;
        }
        let text = format!("{value:?}");
        match field.name() {
            "settings" => match serde_json::from_str::<Value>(&text) {
                Ok(object) if object.is_object() => self.value(field, object),
                _ => self.value(field, text),
            },
            _ => self.value(field, text),
        }
    }
}

#[cfg(test)]
mod tests {
    use time::format_description::well_known::Rfc3339;

    use super::*;

    #[test]
    fn timestamps_are_written_as_rfc3339_writes_them() {
        for (seconds, nanos) in [
            (1_764_296_608, 123_456_789),
            (1_764_296_608, 120_000_000),
            (1_764_296_608, 0),
            (0, 5),
            (253_402_300_799, 999_999_999),
        ] {
            let at = OffsetDateTime::from_unix_timestamp(seconds).unwrap()
                + time::Duration::nanoseconds(nanos);
            let mut ours = Vec::new();
            timestamp(&mut ours, at);
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                at.format(&Rfc3339).unwrap()
            );
        }
    }

    #[test]
    fn ids_are_lowercase_hex() {
        let mut out = Vec::new();
        hex(&mut out, &[0x4b, 0xf9, 0x00, 0xab]);
        assert_eq!(out, b"4bf900ab");
    }
}
