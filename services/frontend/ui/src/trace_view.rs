//! The trace under a result: its spans as a waterfall, the details of the span clicked, and its
//! log lines, filled in as they arrive.
//!
//! A [`Panel`] lives as long as the page and holds the trace being watched; each interaction
//! with a trace id calls [`Panel::watch`], which polls the frontend's trace routes (the rules are
//! in `watch`) and publishes what it learns into signals the view reads. What the page says and
//! where bars go comes from `waterfall`; this module only draws it and links rows to log lines.

use sycamore::prelude::*;

use crate::trace_api::{LogLine, LogsAnswer, SpanRow, TraceAnswer};
use crate::watch::{POLL_MS, WAIT_MS, Watch};
use crate::waterfall::{self, same_span};
use crate::{fetch_json, spawn};

/// More rows than this are drawn compact, so a Roll Multiple of 100 stays readable.
const COMPACT_ABOVE: usize = 30;
/// The log levels with a style of their own.
const LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];
/// Deeper spans are indented no further, so the name keeps some room on a phone.
const MAX_INDENT: usize = 6;

/// The trace being watched and what is known of it, as signals for the view.
#[derive(Clone, Copy)]
pub(crate) struct Panel {
    /// Bumped by every new watch: a poll of an older generation stops without publishing.
    generation: Signal<u64>,
    trace_id: Signal<Option<String>>,
    trace: Signal<Option<TraceAnswer>>,
    logs: Signal<Option<LogsAnswer>>,
    trace_status: Signal<Option<String>>,
    logs_status: Signal<Option<String>>,
    /// The span under the pointer, in the waterfall or the log lines.
    hovered: Signal<Option<String>>,
    /// The span clicked, whose details show.
    selected: Signal<Option<String>>,
}

impl Panel {
    pub(crate) fn new() -> Self {
        Self {
            generation: create_signal(0),
            trace_id: create_signal(None),
            trace: create_signal(None),
            logs: create_signal(None),
            trace_status: create_signal(None),
            logs_status: create_signal(None),
            hovered: create_signal(None),
            selected: create_signal(None),
        }
    }

    /// Shows `trace_id`'s trace from now on, polling until it and its log lines have arrived; the
    /// poll of the previous interaction stops.
    pub(crate) fn watch(self, trace_id: String) {
        self.generation.update(|g| *g += 1);
        let generation = self.generation.get_untracked();
        let watch = Watch::new(trace_id.clone(), WAIT_MS);
        self.hovered.set(None);
        self.selected.set(None);
        self.publish(&watch);
        self.trace_id.set(Some(trace_id));
        spawn(self.poll(generation, watch));
    }

    async fn poll(self, generation: u64, mut watch: Watch) {
        let started = now_ms();
        loop {
            if watch.needs_trace() {
                let answer = fetch_json(&watch.trace_url()).await;
                if self.stale(generation) {
                    return;
                }
                watch.on_trace(answer);
            }
            if watch.needs_logs() {
                let answer = fetch_json(&watch.logs_url()).await;
                if self.stale(generation) {
                    return;
                }
                watch.on_logs(answer);
            }
            if now_ms() - started >= WAIT_MS {
                watch.give_up();
            }
            self.publish(&watch);
            if !watch.polling() {
                return;
            }
            sleep(POLL_MS).await;
            if self.stale(generation) {
                return;
            }
        }
    }

    fn stale(self, generation: u64) -> bool {
        self.generation.get_untracked() != generation
    }

    /// Sets only what changed, so rows that stay the same are not drawn again (nor lose the
    /// pointer) every time the page asks.
    fn publish(self, watch: &Watch) {
        set_changed(self.trace, watch.trace.clone());
        set_changed(self.logs, watch.logs.clone());
        set_changed(self.trace_status, watch.trace_status());
        set_changed(self.logs_status, watch.logs_status());
    }

    /// Whether `span_id` is the span pointed at or clicked.
    fn lit(self, span_id: &str) -> bool {
        let is = |other: Option<&String>| other.is_some_and(|other| same_span(other, span_id));
        self.hovered.with(|h| is(h.as_ref())) || self.selected.with(|s| is(s.as_ref()))
    }

    fn chosen(self, span_id: &str) -> bool {
        self.selected
            .with(|s| s.as_deref().is_some_and(|s| same_span(s, span_id)))
    }

    /// Selects a span, or lets go of it when it was already selected.
    fn toggle(self, span_id: &str) {
        let again = self.chosen(span_id);
        self.selected.set((!again).then(|| span_id.to_owned()));
    }
}

fn set_changed<T: PartialEq + 'static>(signal: Signal<T>, value: T) {
    if signal.with_untracked(|old| *old != value) {
        signal.set(value);
    }
}

/// The panel under the result or problem that started `trace_id`, while that is the trace watched.
pub(crate) fn for_trace(panel: Panel, trace_id: String) -> View {
    let shown = create_selector(move || {
        panel
            .trace_id
            .with(|watched| watched.as_deref() == Some(trace_id.as_str()))
    });
    view! {
        (move || if shown.get() { body(panel) } else { view! {} })
    }
}

fn body(panel: Panel) -> View {
    let summary = move || {
        panel
            .trace
            .with(|t| t.as_ref().and_then(waterfall::summary))
            .map(|summary| view! { p(id="trace-summary", class="trace-summary") { (summary) } })
            .unwrap_or_default()
    };
    // Views are made from clones: making one while a signal is borrowed would panic.
    let rows = move || {
        panel
            .trace
            .get_clone()
            .map(|trace| rows(panel, &trace))
            .unwrap_or_default()
    };
    let lines = move || {
        panel
            .logs
            .get_clone()
            .map(|logs| log_lines(panel, &logs))
            .unwrap_or_default()
    };
    view! {
        section(class="trace-panel") {
            h3 { "Trace" }
            div(id="waterfall", class="waterfall") {
                (move || status("trace-status", panel.trace_status.get_clone()))
                (summary)
                (rows)
                (move || details(panel))
            }
            h3 { "Log lines" }
            (move || status("logs-status", panel.logs_status.get_clone()))
            ol(id="trace-logs", class="trace-logs") { (lines) }
        }
    }
}

/// A sentence about what has not arrived (or cannot be shown), under a stable id.
fn status(id: &'static str, sentence: Option<String>) -> View {
    match sentence {
        Some(sentence) => view! { p(id=id, class="trace-status", role="status") { (sentence) } },
        None => view! {},
    }
}

fn rows(panel: Panel, trace: &TraceAnswer) -> View {
    let axis = waterfall::axis_ns(trace);
    let class = if trace.spans.len() > COMPACT_ABOVE {
        "span-rows compact"
    } else {
        "span-rows"
    };
    let total = waterfall::duration(axis);
    let rows: Vec<View> = trace.spans.iter().map(|s| row(panel, s, axis)).collect();
    view! {
        div(class=class) {
            div(class="span-axis", aria-hidden="true") {
                span(class="span-name") { "span" }
                span(class="span-track") { span { "0" } span { (total) } }
                span(class="span-meta") { "duration" }
            }
            (rows)
        }
    }
}

fn row(panel: Panel, span: &SpanRow, axis: u64) -> View {
    let id = span.span_id.clone();
    let error = span.is_error();
    let class = {
        let id = id.clone();
        move || {
            let mut class = String::from("span-row");
            for (on, name) in [
                (error, " error"),
                (panel.lit(&id), " highlight"),
                (panel.chosen(&id), " selected"),
            ] {
                if on {
                    class.push_str(name);
                }
            }
            class
        }
    };
    let (left, width) = waterfall::bar(span, axis);
    let colour = waterfall::colour(&span.service);
    // The 2px floor keeps the shortest span visible; `min` keeps it inside the track at the end.
    let bar_style = format!(
        "left: min({left:.3}%, calc(100% - 2px)); width: {width:.3}%; background: {colour}"
    );
    let indent = format!(
        "padding-left: {:.2}rem",
        span.depth.min(MAX_INDENT) as f64 * 0.7
    );
    let dot_style = format!("background: {colour}");
    let duration = waterfall::duration(span.duration_ns);
    let title = format!(
        "{} · {} · {} · {duration}",
        span.service, span.kind, span.name
    );
    let mark = if error {
        view! { span(class="error-mark", title="error") { "✗" } }
    } else {
        view! {}
    };
    let value = waterfall::roll_value(span)
        .map(|value| view! { span(class="roll-value", title="roll.value") { (value) } })
        .unwrap_or_default();
    let (service, name, kind) = (span.service.clone(), span.name.clone(), span.kind.clone());
    let (label, kind_label) = (name.clone(), kind.clone());
    let (clicked, entered) = (id.clone(), id.clone());
    view! {
        div(class=class, data-span-id=id, data-service=service, data-name=name, data-kind=kind,
            title=title,
            on:click=move |_| panel.toggle(&clicked),
            on:mouseenter=move |_| panel.hovered.set(Some(entered.clone())),
            on:mouseleave=move |_| panel.hovered.set(None)) {
            span(class="span-name", style=indent) {
                span(class="service-dot", style=dot_style) {}
                span(class="span-label") { (label) }
                span(class="span-kind") { (kind_label) }
            }
            span(class="span-track") { span(class="span-bar", style=bar_style) {} }
            span(class="span-meta") {
                span(class="span-duration") { (duration) }
                (mark)
                (value)
            }
        }
    }
}

/// The selected span's facts and every attribute.
fn details(panel: Panel) -> View {
    let Some(id) = panel.selected.get_clone() else {
        return view! {};
    };
    let span = panel.trace.with(|t| {
        t.as_ref()
            .and_then(|t| t.spans.iter().find(|s| same_span(&s.span_id, &id)).cloned())
    });
    let Some(span) = span else {
        return view! {};
    };
    let status = if span.status_message.is_empty() {
        span.status.clone()
    } else {
        format!("{}: {}", span.status, span.status_message)
    };
    let facts = [
        ("service", span.service.clone()),
        ("kind", span.kind.clone()),
        ("status", status),
        ("start", format!("+{}", waterfall::duration(span.start_ns))),
        ("duration", waterfall::duration(span.duration_ns)),
        ("span id", span.span_id.clone()),
        (
            "parent",
            span.parent_span_id
                .clone()
                .unwrap_or_else(|| "none (root)".into()),
        ),
    ]
    .into_iter()
    .map(|(key, value)| view! { div { dt { (key) } dd { (value) } } })
    .collect::<Vec<_>>();
    let attributes = span
        .attributes
        .iter()
        .map(|(key, value)| {
            let (key, value) = (key.clone(), waterfall::value_text(value));
            view! { tr { th(scope="row") { (key) } td { (value) } } }
        })
        .collect::<Vec<_>>();
    let colour = format!("border-left-color: {}", waterfall::colour(&span.service));
    let name = span.name;
    view! {
        aside(id="span-details", class="span-details", style=colour) {
            div(class="details-head") {
                h4 { (name) }
                button(class="details-close", r#type="button", aria-label="Close the details",
                    on:click=move |_| panel.selected.set(None)) { "×" }
            }
            dl(class="span-facts") { (facts) }
            table(class="span-attributes") {
                thead { tr { th(scope="col") { "attribute" } th(scope="col") { "value" } } }
                tbody { (attributes) }
            }
        }
    }
}

fn log_lines(panel: Panel, logs: &LogsAnswer) -> View {
    logs.lines
        .iter()
        .map(|line| log_line(panel, line))
        .collect::<Vec<_>>()
        .into()
}

fn log_line(panel: Panel, line: &LogLine) -> View {
    let span_id = line.span_id.clone().unwrap_or_default();
    let level = LEVELS
        .into_iter()
        .find(|known| *known == line.level)
        .unwrap_or("other");
    let class = {
        let span_id = span_id.clone();
        move || {
            if !span_id.is_empty() && panel.lit(&span_id) {
                format!("log-line level-{level} highlight")
            } else {
                format!("log-line level-{level}")
            }
        }
    };
    let service_style = format!("color: {}", waterfall::colour(&line.service));
    let fields = waterfall::fields(&line.fields);
    let fields = if fields.is_empty() {
        view! {}
    } else {
        view! { span(class="log-fields") { (fields) } }
    };
    let (clicked, entered) = (span_id.clone(), span_id.clone());
    let (time, clock) = (line.time.clone(), waterfall::clock(&line.time));
    let (service, level_text, message) = (
        line.service.clone(),
        line.level.clone(),
        line.message.clone(),
    );
    view! {
        li(class=class, data-span-id=span_id,
            on:click=move |_| if !clicked.is_empty() { panel.toggle(&clicked) },
            on:mouseenter=move |_| panel.hovered.set((!entered.is_empty()).then(|| entered.clone())),
            on:mouseleave=move |_| panel.hovered.set(None)) {
            time(class="log-time", datetime=time) { (clock) }
            span(class="log-service", style=service_style) { (service) }
            span(class="log-level") { (level_text) }
            span(class="log-message") { (message) }
            (fields)
        }
    }
}

/// Milliseconds by the browser's clock, to know when [`WAIT_MS`] have passed.
#[cfg(target_arch = "wasm32")]
fn now_ms() -> f64 {
    wasm_bindgen_futures::js_sys::Date::now()
}

/// The server renders the first paint only and never polls, so its clock is never read.
#[cfg(not(target_arch = "wasm32"))]
fn now_ms() -> f64 {
    0.0
}

/// Waits `ms` milliseconds on the browser's timer.
#[cfg(target_arch = "wasm32")]
async fn sleep(ms: i32) {
    use wasm_bindgen_futures::js_sys::Promise;
    let timer = Promise::new(&mut |resolve, _| {
        if let Some(window) = web_sys::window() {
            // Without a timer the promise stays pending and the poll simply ends with the page.
            let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(timer).await;
}

#[cfg(not(target_arch = "wasm32"))]
async fn sleep(_ms: i32) {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::waterfall::tests::{line, roll_multiple};
    use serde_json::json;

    /// The panel's HTML after `watch` has learnt what it has, with `selected` clicked.
    fn drawn(watch: Watch, watched: &str, selected: Option<&str>) -> String {
        let (watched, selected) = (watched.to_owned(), selected.map(str::to_owned));
        sycamore::render_to_string(move || {
            let panel = Panel::new();
            panel.publish(&watch);
            panel.selected.set(selected);
            panel.trace_id.set(Some(watched));
            for_trace(panel, watch.trace_id.clone())
        })
    }

    fn whole_with_logs() -> Watch {
        let mut trace = roll_multiple(3, 20, false);
        trace.spans[4].status = "error".into();
        trace.spans[4].attributes.remove(waterfall::ROLL_VALUE);
        let logs = LogsAnswer {
            trace_id: trace.trace_id.clone(),
            lines: vec![
                line("f1", "frontend", "GET 200"),
                line("r0", "dice-roller", "rolled 1"),
            ],
        };
        let mut watch = Watch::new(trace.trace_id.clone(), WAIT_MS);
        watch.on_trace(Ok((200, serde_json::to_value(&trace).unwrap())));
        watch.on_logs(Ok((200, serde_json::to_value(&logs).unwrap())));
        watch
    }

    #[test]
    fn a_whole_trace_is_drawn_with_its_hooks() {
        let watch = whole_with_logs();
        let html = drawn(watch.clone(), &watch.trace_id, Some("r0"));
        assert_eq!(html.matches(" data-kind=").count(), 6, "{html}");
        assert_eq!(html.matches("class=\"span-bar\"").count(), 6, "{html}");
        assert_eq!(html.matches("class=\"roll-value\"").count(), 2, "{html}");
        for needle in [
            "id=\"waterfall\"",
            "id=\"trace-summary\"",
            "3 rolls, 60 ms of work in 22 ms: concurrency saved 38 ms, 2.7×",
            "class=\"span-row highlight selected\" data-span-id=\"r0\" data-service=\"dice-roller\" data-name=\"roll\" data-kind=\"internal\"",
            "class=\"span-row error\" data-span-id=\"r1\"",
            "id=\"span-details\"",
            "roll.value",
            "id=\"trace-logs\"",
            "class=\"log-line level-info highlight\" data-span-id=\"r0\"",
            "12:34:56.789",
            "Log lines still arriving: waiting for dice-roller…",
        ] {
            assert!(html.contains(needle), "{needle} missing from {html}");
        }
        assert!(!html.contains("id=\"trace-status\""), "{html}");
    }

    #[test]
    fn while_waiting_the_panel_says_so() {
        let mut watch = Watch::new("t".into(), WAIT_MS);
        watch.on_trace(Ok((404, json!({"error": "no such trace"}))));
        let html = drawn(watch, "t", None);
        assert!(html.contains("id=\"trace-status\""), "{html}");
        assert!(html.contains("Waiting for the trace…"), "{html}");
        assert!(!html.contains("span-row"), "{html}");
    }

    #[test]
    fn only_the_trace_watched_is_drawn() {
        let watch = whole_with_logs();
        let html = drawn(watch, "another", None);
        assert!(!html.contains("waterfall"), "{html}");
    }
}
