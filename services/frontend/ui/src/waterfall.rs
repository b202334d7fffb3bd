//! What a trace's waterfall says, apart from how it is drawn: durations as people read them, the
//! sentence about a batch of `roll` spans, each service's colour, which spans still lack their log
//! lines, where a span's bar sits on the shared time axis, and the whole waterfall as text.
//!
//! The page (in `trace_view`) and `dice-lab trace` (through [`text`]) draw the same answers, so
//! everything they must agree on lives here, free of the browser, where unit tests can reach it.

use std::collections::HashSet;
use std::fmt::Write as _;

use serde_json::{Map, Value};

use crate::trace_api::{LogLine, LogsAnswer, SpanRow, TraceAnswer};

/// The name of the dice-roller's span around one roll.
pub const ROLL_SPAN: &str = "roll";
/// The attribute of a `roll` span that holds the face it showed.
pub const ROLL_VALUE: &str = "roll.value";

/// A unit durations are written in.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Unit {
    Seconds,
    Millis,
    Micros,
}

impl Unit {
    /// The unit whose figures for `ns` (already rounded) start at 1, down to microseconds.
    fn fitting(rounded_ns: f64) -> Self {
        if rounded_ns >= 1e9 {
            Self::Seconds
        } else if rounded_ns >= 1e6 {
            Self::Millis
        } else {
            Self::Micros
        }
    }

    fn nanos(self) -> f64 {
        match self {
            Self::Seconds => 1e9,
            Self::Millis => 1e6,
            Self::Micros => 1e3,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Self::Seconds => "s",
            Self::Millis => "ms",
            Self::Micros => "µs",
        }
    }

    /// `ns` in this unit, two significant digits and at most `max_decimals` of them after the point.
    fn write(self, ns: f64, max_decimals: i32) -> String {
        format!(
            "{} {}",
            two_digits(ns / self.nanos(), max_decimals),
            self.symbol()
        )
    }
}

/// `x` rounded to two significant digits.
fn round_two(x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    let step = 10f64.powi(x.log10().floor() as i32 - 1);
    (x / step).round() * step
}

/// `x` with two significant digits ("0.96", "4.9", "120"), cut at `max_decimals`; "0" for zero.
fn two_digits(x: f64, max_decimals: i32) -> String {
    let rounded = round_two(x);
    if rounded == 0.0 {
        return "0".into();
    }
    let decimals = (1 - rounded.log10().floor() as i32).clamp(0, max_decimals);
    let written = format!("{rounded:.*}", decimals as usize);
    // Cut at `max_decimals`, a small figure can round to nothing: then it is simply zero.
    if written.bytes().all(|b| b == b'0' || b == b'.') {
        "0".into()
    } else {
        written
    }
}

/// A duration with two significant digits, in s, ms or µs as fits: "4.9 s", "120 ms", "35 µs".
pub fn duration(ns: u64) -> String {
    let rounded = round_two(ns as f64);
    Unit::fitting(rounded).write(rounded, 3)
}

/// The `roll` spans of a trace taken together: how long they took side by side, and in all.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Batch {
    pub rolls: usize,
    /// The sum of the rolls' durations.
    pub work_ns: u64,
    /// From the earliest roll's start to the latest roll's end.
    pub wall_ns: u64,
}

impl Batch {
    /// The `roll` spans among `spans`, or `None` when there are none.
    pub fn of(spans: &[SpanRow]) -> Option<Self> {
        let rolls: Vec<&SpanRow> = spans.iter().filter(|s| s.name == ROLL_SPAN).collect();
        let start = rolls.iter().map(|s| s.start_ns).min()?;
        let end = rolls.iter().map(|s| s.end_ns()).max()?;
        Some(Self {
            rolls: rolls.len(),
            work_ns: rolls.iter().map(|s| s.duration_ns).sum(),
            wall_ns: end - start,
        })
    }

    /// The time running side by side saved; never below zero (rolls in a row leave gaps).
    pub fn saved_ns(&self) -> u64 {
        self.work_ns.saturating_sub(self.wall_ns)
    }

    /// How many times faster than one after the other.
    pub fn speedup(&self) -> f64 {
        if self.wall_ns == 0 {
            1.0
        } else {
            self.work_ns as f64 / self.wall_ns as f64
        }
    }

    /// "10 rolls, 4.9 s of work in 0.96 s: concurrency saved 3.9 s, 5.1×", or "1 roll, 120 ms".
    pub fn sentence(&self) -> String {
        if self.rolls == 1 {
            return format!("1 roll, {}", duration(self.work_ns));
        }
        // The figures share the unit of the largest, so they compare at a glance, unless one
        // is too small to read in it ("0.00 s"): that one takes its own.
        let unit = Unit::fitting(round_two(self.work_ns.max(self.wall_ns) as f64));
        let figure = |ns: u64| {
            if ns == 0 || round_two(ns as f64 / unit.nanos()) >= 0.1 {
                unit.write(ns as f64, 2)
            } else {
                duration(ns)
            }
        };
        let speedup = self.speedup();
        // Two significant digits here too: "5.1×", "65×".
        let places = if speedup >= 9.95 { 0 } else { 1 };
        format!(
            "{} rolls, {} of work in {}: concurrency saved {}, {speedup:.places$}×",
            self.rolls,
            figure(self.work_ns),
            figure(self.wall_ns),
            figure(self.saved_ns()),
        )
    }
}

/// The line above the waterfall: the batch sentence; when nothing was rolled, what failed (the
/// deepest error span with a message: the cause, not its callers) or else the trace's duration;
/// `None` for a trace without spans.
pub fn summary(trace: &TraceAnswer) -> Option<String> {
    if let Some(batch) = Batch::of(&trace.spans) {
        return Some(batch.sentence());
    }
    let root = trace.spans.first()?;
    let cause = trace
        .spans
        .iter()
        .filter(|s| s.is_error() && !s.status_message.is_empty())
        .max_by_key(|s| s.depth);
    Some(match cause {
        Some(span) => format!(
            "No roll: {} {} failed: {}.",
            span.service,
            span.name,
            span.status_message.trim_end_matches('.')
        ),
        None => format!(
            "No roll spans; the trace took {}.",
            duration(root.duration_ns.max(trace.duration_ns))
        ),
    })
}

/// Fixed colours for the lab's own services, so a screenshot in the guide matches the page.
const SERVICE_COLOURS: [(&str, &str); 3] = [
    ("frontend", "#3756d4"),
    ("dice-roller", "#1f9d74"),
    ("die-service", "#d9822b"),
];
/// Colours for any other service, picked by a hash of its name.
const OTHER_COLOURS: [&str; 6] = [
    "#8e44ad", "#c2185b", "#00838f", "#6d4c41", "#546e7a", "#7cb342",
];

/// A service's colour, as CSS: fixed for the lab's services, otherwise hashed from the name so it
/// stays the same from one trace to the next.
pub fn colour(service: &str) -> &'static str {
    if let Some((_, colour)) = SERVICE_COLOURS.iter().find(|(name, _)| *name == service) {
        return colour;
    }
    // FNV-1a: stable across builds and platforms, unlike the standard library's hasher.
    let hash = service.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    OTHER_COLOURS[hash as usize % OTHER_COLOURS.len()]
}

/// Whether a span is expected to write at least one log line: every server span writes its access
/// line and every roll its result.
fn writes_logs(span: &SpanRow) -> bool {
    span.kind == "server" || span.name == ROLL_SPAN
}

/// Whether two span ids name the same span (hex, whatever its case).
pub fn same_span(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// The spans that should have log lines and have none among `logs` (all of them without logs).
fn spans_without_logs<'a>(trace: &'a TraceAnswer, logs: Option<&LogsAnswer>) -> Vec<&'a SpanRow> {
    let logged: HashSet<String> = logs
        .into_iter()
        .flat_map(|logs| &logs.lines)
        .filter_map(|line| line.span_id.as_deref())
        .map(str::to_ascii_lowercase)
        .collect();
    trace
        .spans
        .iter()
        .filter(|span| writes_logs(span) && !logged.contains(&span.span_id.to_ascii_lowercase()))
        .collect()
}

/// The services of [`spans_without_logs`], each once, in waterfall order.
pub(crate) fn services_without_logs(trace: &TraceAnswer, logs: Option<&LogsAnswer>) -> Vec<String> {
    let mut services: Vec<String> = Vec::new();
    for span in spans_without_logs(trace, logs) {
        if !services.contains(&span.service) {
            services.push(span.service.clone());
        }
    }
    services
}

/// "a", "a and b", "a, b and c".
pub(crate) fn names(list: &[String]) -> String {
    match list {
        [] => String::new(),
        [only] => only.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The sentence shown while some services' spans have not arrived.
pub fn still_arriving(waiting_for: &[String]) -> String {
    format!("Spans still arriving: waiting for {}…", names(waiting_for))
}

/// The time axis every bar shares: the trace's duration, or the latest end if a span outlasts it.
pub fn axis_ns(trace: &TraceAnswer) -> u64 {
    trace
        .spans
        .iter()
        .map(SpanRow::end_ns)
        .fold(trace.duration_ns, u64::max)
}

/// A span's bar as percentages of the axis: (left, width).
pub fn bar(span: &SpanRow, axis_ns: u64) -> (f64, f64) {
    if axis_ns == 0 {
        return (0.0, 0.0);
    }
    let percent = |ns: u64| ns as f64 * 100.0 / axis_ns as f64;
    (percent(span.start_ns), percent(span.duration_ns))
}

/// The face a `roll` span showed, when it showed one.
pub fn roll_value(span: &SpanRow) -> Option<String> {
    if span.name != ROLL_SPAN {
        return None;
    }
    match span.attr(ROLL_VALUE) {
        Value::Null => None,
        Value::String(text) => Some(text.clone()),
        other => Some(other.to_string()),
    }
}

/// An attribute or field value as it reads: strings without their quotes, fractions to three
/// places at most (`duration_ms=470.848`, not `470.84755299999995`).
pub fn value_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Number(n) if n.is_f64() => {
            let fixed = format!("{:.3}", n.as_f64().unwrap_or_default());
            fixed.trim_end_matches('0').trim_end_matches('.').to_owned()
        }
        other => other.to_string(),
    }
}

/// A log line's fields as `key=value key=value`.
pub fn fields(fields: &Map<String, Value>) -> String {
    fields
        .iter()
        .map(|(key, value)| format!("{key}={}", value_text(value)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// HH:MM:SS.mmm of an RFC 3339 time (the services write UTC); the text itself when it is not one.
pub fn clock(time: &str) -> String {
    let Some((_, rest)) = time.split_once('T') else {
        return time.to_owned();
    };
    let Some(hms) = rest.get(..8).filter(|hms| is_hms(hms)) else {
        return time.to_owned();
    };
    let fraction = rest[8..].strip_prefix('.').unwrap_or("");
    let millis: String = fraction
        .chars()
        .take_while(char::is_ascii_digit)
        .chain(std::iter::repeat('0'))
        .take(3)
        .collect();
    format!("{hms}.{millis}")
}

fn is_hms(text: &str) -> bool {
    text.char_indices().all(|(i, c)| match i {
        2 | 5 => c == ':',
        _ => c.is_ascii_digit(),
    })
}

/// Characters of the terminal waterfall's name column.
const NAME_COLUMN: usize = 44;
/// Characters of its duration column.
const DURATION_COLUMN: usize = 8;
/// Room kept after the duration for " ✗" or " = VALUE".
const MARK_COLUMN: usize = 6;
/// The narrowest bar area drawn, however narrow the terminal.
const MIN_BARS: usize = 10;

/// The waterfall for a terminal `width` characters wide: one line per span (indented service,
/// kind and name; a bar on the shared axis; the duration; ` ✗` for an error, `= VALUE` for a roll),
/// the summary, then the log lines (`HH:MM:SS.mmm service level message key=value ...`).
pub fn text(trace: &TraceAnswer, logs: Option<&LogsAnswer>, width: usize) -> String {
    let mut out = format!(
        "trace {} · {} spans · {}\n",
        trace.trace_id,
        trace.spans.len(),
        duration(trace.duration_ns)
    );
    let bars = width
        .saturating_sub(NAME_COLUMN + DURATION_COLUMN + MARK_COLUMN + 2)
        .max(MIN_BARS);
    let axis = axis_ns(trace);
    for span in &trace.spans {
        out.push_str(span_line(span, axis, bars).trim_end());
        out.push('\n');
    }
    if !trace.waiting_for.is_empty() {
        out.push_str(&still_arriving(&trace.waiting_for));
        out.push('\n');
    }
    if let Some(summary) = summary(trace) {
        out.push_str(&summary);
        out.push('\n');
    }
    if let Some(logs) = logs.filter(|logs| !logs.lines.is_empty()) {
        out.push('\n');
        for line in &logs.lines {
            out.push_str(&log_line(line));
            out.push('\n');
        }
    }
    out
}

/// One span of [`text`].
fn span_line(span: &SpanRow, axis: u64, bars: usize) -> String {
    let label = format!(
        "{}{} {} {}",
        "  ".repeat(span.depth),
        span.service,
        span.kind,
        span.name
    );
    let mut mark = roll_value(span)
        .map(|value| format!(" = {value}"))
        .unwrap_or_default();
    if span.is_error() {
        mark.push_str(" ✗");
    }
    format!(
        "{} {} {:>DURATION_COLUMN$}{mark}",
        fit(&label, NAME_COLUMN),
        bar_chars(span, axis, bars),
        duration(span.duration_ns)
    )
}

/// `text` cut to `width` characters (ending in "…" when cut) or padded to it.
fn fit(text: &str, width: usize) -> String {
    let count = text.chars().count();
    if count > width {
        let mut cut: String = text.chars().take(width - 1).collect();
        cut.push('…');
        cut
    } else {
        format!("{text}{}", " ".repeat(width - count))
    }
}

/// The span's bar in `bars` columns: `█` over its time, or `▏` where it is too short to fill one.
fn bar_chars(span: &SpanRow, axis: u64, bars: usize) -> String {
    let column = |ns: u64| {
        if axis == 0 {
            0
        } else {
            ((ns as f64 * bars as f64 / axis as f64) as usize).min(bars)
        }
    };
    let start = column(span.start_ns).min(bars - 1);
    let end = column(span.end_ns()).max(start);
    let mut line: Vec<char> = vec![' '; bars];
    if end == start {
        line[start] = '▏';
    } else {
        line[start..end].fill('█');
    }
    line.into_iter().collect()
}

/// One log line of [`text`].
fn log_line(line: &LogLine) -> String {
    let mut out = format!(
        "{} {} {} {}",
        clock(&line.time),
        line.service,
        line.level,
        line.message
    );
    let fields = fields(&line.fields);
    if !fields.is_empty() {
        let _ = write!(out, " {fields}");
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    const MS: u64 = 1_000_000;

    pub(crate) fn span(id: &str, depth: usize, service: &str, name: &str, kind: &str) -> SpanRow {
        SpanRow {
            span_id: id.into(),
            parent_span_id: None,
            depth,
            service: service.into(),
            name: name.into(),
            kind: kind.into(),
            status: "unset".into(),
            status_message: String::new(),
            start_ns: 0,
            duration_ns: 0,
            attributes: Map::new(),
        }
    }

    fn timed(mut span: SpanRow, start_ms: u64, duration_ms: u64) -> SpanRow {
        span.start_ns = start_ms * MS;
        span.duration_ns = duration_ms * MS;
        span
    }

    fn roll(i: usize, start_ms: u64, duration_ms: u64) -> SpanRow {
        let mut roll = timed(
            span(&format!("r{i}"), 3, "dice-roller", ROLL_SPAN, "internal"),
            start_ms,
            duration_ms,
        );
        roll.attributes.insert(ROLL_VALUE.into(), json!(i % 6 + 1));
        roll
    }

    /// The lab's Roll Multiple: frontend → dice-roller → rolls, each `roll_ms` long, started
    /// together or one after the other.
    pub(crate) fn roll_multiple(n: usize, roll_ms: u64, sequential: bool) -> TraceAnswer {
        let rolls: Vec<SpanRow> = (0..n)
            .map(|i| {
                let start = if sequential {
                    10 + i as u64 * roll_ms
                } else {
                    10 + i as u64 % 3
                };
                roll(i, start, roll_ms)
            })
            .collect();
        let end = rolls.iter().map(SpanRow::end_ns).max().unwrap_or(0) / MS + 5;
        let mut spans = vec![
            timed(
                span("f1", 0, "frontend", "GET /api/roll-async", "server"),
                0,
                end + 2,
            ),
            timed(span("f2", 1, "frontend", "GET", "client"), 1, end),
            timed(
                span("d1", 2, "dice-roller", "GET /roll-async", "server"),
                2,
                end - 2,
            ),
        ];
        spans.extend(rolls);
        TraceAnswer {
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            start_unix_nano: "1700000000000000000".into(),
            duration_ns: (end + 2) * MS,
            spans,
            waiting_for: Vec::new(),
        }
    }

    pub(crate) fn line(span_id: &str, service: &str, message: &str) -> LogLine {
        LogLine {
            time: "2024-05-01T12:34:56.789123456Z".into(),
            service: service.into(),
            level: "info".into(),
            message: message.into(),
            span_id: Some(span_id.into()),
            fields: Map::new(),
        }
    }

    #[test]
    fn durations_have_two_significant_digits_in_a_fitting_unit() {
        assert_eq!(duration(4_930 * MS), "4.9 s");
        assert_eq!(duration(1_000 * MS), "1.0 s");
        assert_eq!(duration(12_400 * MS), "12 s");
        assert_eq!(duration(123 * MS), "120 ms");
        assert_eq!(duration(9_960_000), "10 ms");
        assert_eq!(duration(999_700_000), "1.0 s");
        assert_eq!(duration(1_500_000), "1.5 ms");
        assert_eq!(duration(35_400), "35 µs");
        assert_eq!(duration(500), "0.50 µs");
        assert_eq!(duration(0), "0 µs");
    }

    #[test]
    fn ten_overlapping_rolls_say_what_concurrency_saved() {
        let batch = Batch {
            rolls: 10,
            work_ns: 4_900 * MS,
            wall_ns: 960 * MS,
        };
        assert_eq!(
            batch.sentence(),
            "10 rolls, 4.9 s of work in 0.96 s: concurrency saved 3.9 s, 5.1×"
        );
        let trace = roll_multiple(10, 50, false);
        assert_eq!(
            summary(&trace).unwrap(),
            "10 rolls, 500 ms of work in 52 ms: concurrency saved 450 ms, 9.6×"
        );
        let hundred = Batch {
            rolls: 100,
            work_ns: 3_460 * MS,
            wall_ns: 54 * MS,
        };
        assert_eq!(
            hundred.sentence(),
            "100 rolls, 3.5 s of work in 54 ms: concurrency saved 3.4 s, 64×"
        );
    }

    #[test]
    fn a_staircase_of_rolls_saves_nothing_and_says_so_plainly() {
        let trace = roll_multiple(10, 50, true);
        assert_eq!(
            summary(&trace).unwrap(),
            "10 rolls, 500 ms of work in 500 ms: concurrency saved 0 ms, 1.0×"
        );
        // Gaps between the rolls make the wall time longer than the work: still no negative.
        let gaps = Batch {
            rolls: 10,
            work_ns: 2_500 * MS,
            wall_ns: 2_512 * MS,
        };
        assert_eq!(
            gaps.sentence(),
            "10 rolls, 2.5 s of work in 2.5 s: concurrency saved 0 s, 1.0×"
        );
        let little = Batch {
            rolls: 10,
            work_ns: 2_524 * MS,
            wall_ns: 2_512 * MS,
        };
        assert_eq!(
            little.sentence(),
            "10 rolls, 2.5 s of work in 2.5 s: concurrency saved 12 ms, 1.0×"
        );
    }

    #[test]
    fn one_roll_is_just_its_duration_and_no_roll_is_the_whole_trace() {
        let mut trace = roll_multiple(1, 123, false);
        assert_eq!(summary(&trace).unwrap(), "1 roll, 120 ms");
        trace.spans.retain(|s| s.name != ROLL_SPAN);
        assert_eq!(
            summary(&trace).unwrap(),
            "No roll spans; the trace took 140 ms."
        );
        // A failure says what failed, naming the deepest error: the cause, not its callers.
        for (depth, message) in [
            (1, "Service Unavailable"),
            (2, "die-service is unreachable at http://x/dice/fair"),
        ] {
            let mut failed = trace.spans[0].clone();
            failed.depth = depth;
            failed.status = "error".into();
            failed.status_message = message.into();
            failed.name = format!("GET {depth}");
            trace.spans.push(failed);
        }
        assert_eq!(
            summary(&trace).unwrap(),
            "No roll: frontend GET 2 failed: die-service is unreachable at http://x/dice/fair."
        );
        trace.spans.clear();
        assert_eq!(summary(&trace), None);
    }

    #[test]
    fn the_lab_services_have_fixed_colours_and_others_a_stable_one() {
        assert_eq!(colour("frontend"), "#3756d4");
        assert_ne!(colour("dice-roller"), colour("die-service"));
        assert_eq!(colour("billing"), colour("billing"));
        assert!(OTHER_COLOURS.contains(&colour("billing")));
    }

    #[test]
    fn server_and_roll_spans_without_log_lines_are_found() {
        let trace = roll_multiple(2, 10, false);
        let mut logs = LogsAnswer {
            trace_id: trace.trace_id.clone(),
            lines: vec![line("F1", "frontend", "GET /api/roll-async 200")],
        };
        let missing: Vec<&str> = spans_without_logs(&trace, Some(&logs))
            .iter()
            .map(|s| s.span_id.as_str())
            .collect();
        // The client span writes nothing, so it is not waited for.
        assert_eq!(missing, ["d1", "r0", "r1"]);
        assert_eq!(services_without_logs(&trace, Some(&logs)), ["dice-roller"]);
        for id in ["d1", "r0", "r1"] {
            logs.lines.push(line(id, "dice-roller", "rolled"));
        }
        assert!(services_without_logs(&trace, Some(&logs)).is_empty());
        assert_eq!(
            services_without_logs(&trace, None),
            ["frontend", "dice-roller"]
        );
    }

    #[test]
    fn lists_of_names_read_as_a_sentence() {
        let list = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(names(&list(&["a"])), "a");
        assert_eq!(names(&list(&["a", "b"])), "a and b");
        assert_eq!(names(&list(&["a", "b", "c"])), "a, b and c");
    }

    #[test]
    fn log_times_read_as_a_clock() {
        assert_eq!(clock("2024-05-01T12:34:56.789123456Z"), "12:34:56.789");
        assert_eq!(clock("2024-05-01T12:34:56.7Z"), "12:34:56.700");
        assert_eq!(clock("2024-05-01T12:34:56Z"), "12:34:56.000");
        assert_eq!(clock("yesterday"), "yesterday");
    }

    #[test]
    fn bars_are_shares_of_the_shared_axis() {
        let trace = roll_multiple(1, 50, false);
        let axis = axis_ns(&trace);
        assert_eq!(axis, trace.duration_ns);
        assert_eq!(bar(&trace.spans[0], axis).0, 0.0);
        let (left, width) = bar(&trace.spans[3], axis);
        assert!((left - 10.0 * 100.0 / 67.0).abs() < 1e-9, "{left}");
        assert!((width - 50.0 * 100.0 / 67.0).abs() < 1e-9, "{width}");
    }

    /// The column where each roll's bar starts in the text, in waterfall order.
    fn roll_bar_columns(text: &str) -> Vec<usize> {
        text.lines()
            .filter(|line| line.contains(&format!(" {ROLL_SPAN} ")) && line.contains('='))
            .map(|line| {
                line.chars()
                    .position(|c| c == '█' || c == '▏')
                    .expect("every roll has a bar")
            })
            .collect()
    }

    #[test]
    fn concurrent_rolls_overlap_in_the_text() {
        let trace = roll_multiple(10, 50, false);
        let text = text(&trace, None, 120);
        let columns = roll_bar_columns(&text);
        assert_eq!(columns.len(), 10, "{text}");
        let (first, last) = (columns.iter().min().unwrap(), columns.iter().max().unwrap());
        assert!(
            last - first <= 3,
            "the rolls start together: {columns:?}\n{text}"
        );
        assert!(text.contains("dice-roller internal roll"), "{text}");
        assert!(text.contains("= 1"), "{text}");
        assert!(text.contains("concurrency saved"), "{text}");
        for line in text.lines().skip(1).take(trace.spans.len()) {
            assert!(line.chars().count() <= 120, "{line}");
        }
    }

    #[test]
    fn sequential_rolls_form_a_staircase_in_the_text() {
        let trace = roll_multiple(10, 50, true);
        let text = text(&trace, None, 120);
        let columns = roll_bar_columns(&text);
        assert_eq!(columns.len(), 10, "{text}");
        assert!(
            columns.windows(2).all(|pair| pair[0] < pair[1]),
            "each roll starts after the last: {columns:?}\n{text}"
        );
    }

    #[test]
    fn fields_read_as_key_value_with_short_fractions() {
        let mut map = Map::new();
        map.insert(
            "duration_ms".into(),
            serde_json::json!(470.847_552_999_999_95),
        );
        map.insert("status".into(), serde_json::json!(200));
        map.insert("route".into(), serde_json::json!("/roll"));
        map.insert("whole".into(), serde_json::json!(2.0));
        assert_eq!(
            fields(&map),
            "duration_ms=470.848 status=200 route=/roll whole=2"
        );
    }

    #[test]
    fn the_text_marks_errors_and_short_spans_and_lists_the_logs() {
        let mut trace = roll_multiple(2, 50, false);
        trace.spans[4].status = "error".into();
        trace.spans[4].attributes.remove(ROLL_VALUE);
        trace.spans.push(timed(
            span(
                "c1",
                4,
                "dice-roller",
                "GET with a name far too long to fit in its column",
                "client",
            ),
            20,
            0,
        ));
        trace.waiting_for = vec!["die-service".into()];
        let mut log = line("r0", "dice-roller", "rolled 1");
        log.fields.insert("roll_value".into(), json!(1));
        log.fields.insert("die_type".into(), json!("fair"));
        let logs = LogsAnswer {
            trace_id: trace.trace_id.clone(),
            lines: vec![log],
        };
        let text = text(&trace, Some(&logs), 100);
        let failed = text.lines().find(|l| l.contains(" ✗")).expect(&text);
        assert!(failed.contains("roll"), "{failed}");
        assert!(text.contains('▏'), "{text}");
        let long = text
            .lines()
            .find(|l| l.contains("GET with a name"))
            .expect(&text);
        assert!(long.contains('…') && !long.contains("column"), "{long}");
        assert!(
            text.contains("Spans still arriving: waiting for die-service…"),
            "{text}"
        );
        assert!(
            text.ends_with("12:34:56.789 dice-roller info rolled 1 roll_value=1 die_type=fair\n"),
            "{text}"
        );
    }
}
