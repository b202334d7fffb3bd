//! Spans made by the hundred per request (a batch's rolls), straight through OpenTelemetry's API.
//!
//! A `tracing` span goes through the subscriber's registry, the filters and the OpenTelemetry
//! bridge on every creation, enter, exit and close; for the spans a request makes once that is a
//! fair price for `#[instrument]`-style code, for the hundred `roll` spans of a batch it was most
//! of the telemetry's cost. An [`Internal`] span is started with the same tracer the bridge uses
//! (so it has the same instrumentation scope), under the current `tracing` span's context, and
//! ends when dropped. [`Internal::in_scope`] makes it the current OpenTelemetry context for a
//! moment, so the log lines written there carry its ids. With telemetry off, it costs nothing.

use std::borrow::Cow;
use std::sync::OnceLock;

use opentelemetry::trace::{SpanKind, Status, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::Tracer;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The tracer of this process, set by [`crate::init`] when telemetry is on.
pub(crate) static TRACER: OnceLock<Tracer> = OnceLock::new();

/// The context that [`Internal`] spans are started under: the current `tracing` span's. Take it
/// once per request and start every span of a batch under it.
pub fn parent() -> Context {
    if TRACER.get().is_none() {
        return Context::new();
    }
    tracing::Span::current().context()
}

/// An INTERNAL span, ended when dropped.
pub struct Internal {
    /// The span, inside a context whose parent is the span's parent; `None` with telemetry off.
    cx: Option<Context>,
}

impl Internal {
    /// Starts `name` under `parent` with `attributes`.
    pub fn start(
        name: &'static str,
        parent: &Context,
        attributes: impl FnOnce() -> Vec<KeyValue>,
    ) -> Self {
        let Some(tracer) = TRACER.get() else {
            return Self { cx: None };
        };
        let span = tracer
            .span_builder(Cow::Borrowed(name))
            .with_kind(SpanKind::Internal)
            .with_attributes(attributes())
            .start_with_context(tracer, parent);
        Self {
            cx: Some(parent.with_span(span)),
        }
    }

    pub fn set_attribute(&self, attribute: KeyValue) {
        if let Some(cx) = &self.cx {
            cx.span().set_attribute(attribute);
        }
    }

    /// Marks it failed: `error.type` and status Error with `message`.
    pub fn set_error(&self, error_type: &'static str, message: String) {
        if let Some(cx) = &self.cx {
            let span = cx.span();
            span.set_attribute(KeyValue::new("error.type", error_type));
            span.set_status(Status::error(message));
        }
    }

    /// Runs `f` with this span as the current OpenTelemetry context: what `f` logs carries its ids.
    pub fn in_scope<T>(&self, f: impl FnOnce() -> T) -> T {
        match &self.cx {
            Some(cx) => {
                let _current = cx.clone().attach();
                f()
            }
            None => f(),
        }
    }
}

impl Drop for Internal {
    fn drop(&mut self) {
        if let Some(cx) = &self.cx {
            cx.span().end();
        }
    }
}
