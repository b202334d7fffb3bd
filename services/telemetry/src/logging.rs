//! JSON log lines that Loki can parse and that point at the exported spans.
//!
//! `tracing_subscriber`'s own JSON formatter knows nothing of OpenTelemetry ids, so this layer
//! writes each event as one object per line on stdout: `timestamp` (RFC 3339, UTC), `level`,
//! `message`, `service`, `target`, the event's own fields, and, inside a sampled span, `trace_id` and
//! `span_id` taken from the OpenTelemetry context that the span activated on entry, so they equal the
//! ids of the span that is exported. A field named `settings` that holds a JSON object is written as
//! that object, so the start-up line shows the effective settings as structured data.

use std::io::Write as _;

use opentelemetry::trace::TraceContextExt as _;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;

/// The layer; `service` is the `service.name` in use.
pub(crate) struct JsonLines {
    service: Value,
}

impl JsonLines {
    pub(crate) fn new(service: String) -> Self {
        Self {
            service: Value::String(service),
        }
    }
}

impl<S: Subscriber> tracing_subscriber::Layer<S> for JsonLines {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut line = Map::new();
        let timestamp = OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_default();
        line.insert("timestamp".into(), Value::String(timestamp));
        let level = event.metadata().level().as_str().to_ascii_lowercase();
        line.insert("level".into(), Value::String(level));
        line.insert("message".into(), Value::String(String::new()));
        line.insert("service".into(), self.service.clone());
        line.insert(
            "target".into(),
            Value::String(event.metadata().target().to_owned()),
        );
        event.record(&mut Fields(&mut line));

        let cx = opentelemetry::Context::current();
        let span = cx.span();
        let ids = span.span_context();
        if ids.is_valid() {
            line.insert("trace_id".into(), Value::String(ids.trace_id().to_string()));
            line.insert("span_id".into(), Value::String(ids.span_id().to_string()));
        }

        let mut bytes = serde_json::to_vec(&line).unwrap_or_default();
        bytes.push(b'\n');
        // A closed stdout must not take the service down; the line is lost either way.
        let _ = std::io::stdout().lock().write_all(&bytes);
    }
}

/// Copies an event's fields into the JSON object, keeping numbers and booleans typed.
struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.insert(
            field,
            serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number),
        );
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.insert(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.insert(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.insert(field, Value::Bool(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.insert(field, Value::String(value.to_owned()));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.insert(field, Value::String(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        let value = match field.name() {
            "settings" => serde_json::from_str(&text)
                .ok()
                .filter(Value::is_object)
                .unwrap_or(Value::String(text)),
            _ => Value::String(text),
        };
        self.insert(field, value);
    }
}

impl Fields<'_> {
    fn insert(&mut self, field: &Field, value: Value) {
        self.0.insert(field.name().to_owned(), value);
    }
}
