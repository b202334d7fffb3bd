//! Every span the lab makes, straight through OpenTelemetry's API.
//!
//! The lab's spans are few in kind (a SERVER span per request, a CLIENT span per call, a `roll`
//! span per roll) and all are made in two places of the HTTP crate and one of the dice-roller, so
//! they are made with the SDK's tracer directly rather than as `tracing` spans carried over by a
//! bridge: a bridged span goes through the subscriber's registry, the bridge's own span builder
//! and a context activation on every enter and exit, which was most of what telemetry cost a
//! request. `tracing` is kept for what it is good at, the log lines, and those read the ids of the
//! current OpenTelemetry context.
//!
//! A [`Span`] ends when dropped. [`Span::instrument`] makes it the current context while a future
//! is polled (what the future logs, and the spans it starts, are its children);
//! [`Span::in_scope`] does the same for a closure. With telemetry off, a span is nothing and
//! costs nothing.
//!
//! A [`Leaf`] is a span that never has children, such as a `roll`: it is the SDK's span itself,
//! never put in a context, which saves a `Span` its context's allocations and locks and the
//! attaching and detaching around each log line (a batch of rolls makes a hundred of them at
//! once). While [`Leaf::in_scope`] runs, log lines carry its ids (`current_ids`).

use std::borrow::Cow;
use std::cell::Cell;
use std::future::Future;
use std::sync::OnceLock;

use futures::future::Either;
use opentelemetry::context::FutureExt as _;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator as _};
use opentelemetry::trace::{
    Span as _, SpanId, SpanKind, Status, TraceContextExt as _, TraceId, Tracer as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::Tracer;

/// The tracer of this process, set by [`crate::init`] when telemetry is on.
pub(crate) static TRACER: OnceLock<Tracer> = OnceLock::new();

/// The context that new spans start under: the current one, which is the request's span inside
/// a handler. Take it once per request and start every span of a batch under it.
pub fn parent() -> Context {
    if TRACER.get().is_none() {
        return Context::new();
    }
    Context::current()
}

/// The context a request's span continues: the caller's W3C `traceparent` and `tracestate`
/// headers, read by the propagator itself rather than the global one (whose lock every request of
/// every worker would take); nothing is read with telemetry off.
pub fn extract(headers: &dyn Extractor) -> Context {
    if TRACER.get().is_none() {
        return Context::new();
    }
    TraceContextPropagator::new().extract(headers)
}

/// The SDK's span, started; `None` with telemetry off.
fn sdk_span(
    name: impl Into<Cow<'static, str>>,
    kind: SpanKind,
    parent: &Context,
    attributes: impl FnOnce() -> Vec<KeyValue>,
) -> Option<opentelemetry_sdk::trace::Span> {
    let tracer = TRACER.get()?;
    Some(
        tracer
            .span_builder(name)
            .with_kind(kind)
            .with_attributes(attributes())
            .start_with_context(tracer, parent),
    )
}

/// A span of this process, ended when dropped.
pub struct Span {
    /// The span, inside a context whose parent is the span's parent; `None` with telemetry off.
    cx: Option<Context>,
}

impl Span {
    /// No span: what a route that is not traced runs in.
    pub fn none() -> Self {
        Self { cx: None }
    }

    /// Starts `name`, of `kind`, under `parent`, with `attributes` (asked for only when telemetry
    /// is on).
    pub fn start(
        name: impl Into<Cow<'static, str>>,
        kind: SpanKind,
        parent: &Context,
        attributes: impl FnOnce() -> Vec<KeyValue>,
    ) -> Self {
        Self {
            cx: sdk_span(name, kind, parent, attributes).map(|span| parent.with_span(span)),
        }
    }

    /// Writes this span's W3C context (`traceparent`, and `tracestate` when it has one) into an
    /// outgoing request's headers; nothing with telemetry off.
    pub fn inject(&self, headers: &mut dyn Injector) {
        if let Some(cx) = &self.cx {
            TraceContextPropagator::new().inject_context(cx, headers);
        }
    }

    pub fn set_attribute(&self, attribute: KeyValue) {
        if let Some(cx) = &self.cx {
            cx.span().set_attribute(attribute);
        }
    }

    /// Marks it failed: `error.type` and status Error with `message`.
    pub fn set_error(
        &self,
        error_type: impl Into<opentelemetry::Value>,
        message: impl Into<Cow<'static, str>>,
    ) {
        if let Some(cx) = &self.cx {
            let span = cx.span();
            span.set_attribute(KeyValue::new("error.type", error_type));
            span.set_status(Status::error(message));
        }
    }

    /// Runs `f` with this span as the current context: what `f` logs carries its ids.
    pub fn in_scope<T>(&self, f: impl FnOnce() -> T) -> T {
        match &self.cx {
            Some(cx) => {
                let _current = cx.clone().attach();
                f()
            }
            None => f(),
        }
    }

    /// `future`, with this span as the current context whenever it is polled. (A plain wrapper,
    /// not an `async fn`, which would hold the future twice: a request's whole answer.)
    pub fn instrument<F: Future>(&self, future: F) -> impl Future<Output = F::Output> {
        match &self.cx {
            Some(cx) => Either::Left(future.with_context(cx.clone())),
            None => Either::Right(future),
        }
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        if let Some(cx) = &self.cx {
            cx.span().end();
        }
    }
}

/// A span without children, ended when dropped: see the module's introduction.
pub struct Leaf {
    /// `None` with telemetry off.
    span: Option<opentelemetry_sdk::trace::Span>,
}

thread_local! {
    /// The ids of the [`Leaf`] whose [`Leaf::in_scope`] runs on this thread.
    static LEAF: Cell<Option<(TraceId, SpanId)>> = const { Cell::new(None) };
}

/// The ids of the span this thread works in: the [`Leaf`] in scope, else the current context's
/// span; none with telemetry off. What a log line carries.
pub(crate) fn current_ids() -> Option<(TraceId, SpanId)> {
    TRACER.get()?;
    LEAF.get().or_else(|| {
        let cx = Context::current();
        let span = cx.span();
        let ids = span.span_context();
        ids.is_valid().then(|| (ids.trace_id(), ids.span_id()))
    })
}

impl Leaf {
    /// Starts `name`, of `kind`, under `parent`, with `attributes` (asked for only when telemetry
    /// is on).
    pub fn start(
        name: impl Into<Cow<'static, str>>,
        kind: SpanKind,
        parent: &Context,
        attributes: impl FnOnce() -> Vec<KeyValue>,
    ) -> Self {
        Self {
            span: sdk_span(name, kind, parent, attributes),
        }
    }

    pub fn set_attribute(&mut self, attribute: KeyValue) {
        if let Some(span) = &mut self.span {
            span.set_attribute(attribute);
        }
    }

    /// Marks it failed: `error.type` and status Error with `message`.
    pub fn set_error(
        &mut self,
        error_type: impl Into<opentelemetry::Value>,
        message: impl Into<Cow<'static, str>>,
    ) {
        if let Some(span) = &mut self.span {
            span.set_attribute(KeyValue::new("error.type", error_type));
            span.set_status(Status::error(message));
        }
    }

    /// Runs `f` with log lines carrying this span's ids.
    pub fn in_scope<T>(&self, f: impl FnOnce() -> T) -> T {
        let Some(span) = &self.span else {
            return f();
        };
        let ids = span.span_context();
        /// Puts back the ids that were in scope before, even if `f` panics.
        struct Restore(Option<(TraceId, SpanId)>);
        impl Drop for Restore {
            fn drop(&mut self) {
                LEAF.set(self.0);
            }
        }
        let _restore = Restore(LEAF.replace(Some((ids.trace_id(), ids.span_id()))));
        f()
    }
}
