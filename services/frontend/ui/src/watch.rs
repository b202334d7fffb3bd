//! Waiting for a trace and its log lines to arrive, as plain state the page's polling loop feeds.
//!
//! Spans and log lines reach the backends seconds after the request that made them, and not all at
//! once, so the page asks again every [`POLL_MS`] until the trace is whole and every span that
//! writes a log line has one, or until [`WAIT_MS`] have passed. This module decides, from the
//! answers so far, whether to ask again and what sentence to show meanwhile; it knows nothing of
//! the browser, so the rules are unit-tested on the host, and `dice-lab trace` waits by the same
//! rules in the terminal.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::trace_api::{LogsAnswer, TraceAnswer};
use crate::waterfall::{names, services_without_logs, still_arriving};

/// How long to wait between two questions.
pub const POLL_MS: i32 = 400;
/// How long after the answer to a roll its spans and lines may take to arrive.
pub const WAIT_MS: f64 = 15_000.0;
/// How many more times a route that answered 503 (its backend unreachable) is asked: a backend
/// that is restarting comes back within seconds.
const RETRIES: u8 = 3;

/// What a fetch returned: the status and JSON body, or why there was no answer.
pub type Answer = Result<(u16, Value), String>;

/// Where one of the two routes stands.
#[derive(Clone, Debug, Default, PartialEq)]
struct Route {
    /// The last error, while it may still pass (503, or the frontend unreachable).
    passing: Option<String>,
    /// An error that will not pass by asking again; the route is not asked any more.
    failed: Option<String>,
    retries: u8,
}

impl Route {
    fn new() -> Self {
        Self {
            retries: RETRIES,
            ..Self::default()
        }
    }

    /// Reads an answer: `Some` body for a 200, `None` otherwise (404 is "not yet").
    fn read<T: DeserializeOwned>(&mut self, answer: Answer, what: &str) -> Option<T> {
        let (status, body) = match answer {
            Ok(answer) => answer,
            Err(unreachable) => {
                self.retry(unreachable);
                return None;
            }
        };
        match status {
            200 => match serde_json::from_value(body) {
                Ok(read) => {
                    self.passing = None;
                    Some(read)
                }
                Err(error) => {
                    self.failed = Some(format!("the frontend's answer is not {what}: {error}"));
                    None
                }
            },
            404 => {
                self.passing = None;
                None
            }
            503 => {
                self.retry(error_of(status, &body));
                None
            }
            _ => {
                self.failed = Some(error_of(status, &body));
                None
            }
        }
    }

    fn retry(&mut self, error: String) {
        if self.retries == 0 {
            self.failed = Some(error);
        } else {
            self.retries -= 1;
            self.passing = Some(error);
        }
    }

    /// The error to show, if any.
    fn error(&self) -> Option<&str> {
        self.failed.as_deref().or(self.passing.as_deref())
    }
}

/// The `error` of an error answer, or its status when it has none.
fn error_of(status: u16, body: &Value) -> String {
    match body["error"].as_str() {
        Some(error) => error.to_owned(),
        None => format!("the frontend answered {status}"),
    }
}

/// A trace being waited for, with everything learnt of it so far.
#[derive(Clone, Debug, PartialEq)]
pub struct Watch {
    pub trace_id: String,
    /// The latest answer with spans.
    pub trace: Option<TraceAnswer>,
    /// The latest answer with log lines.
    pub logs: Option<LogsAnswer>,
    trace_route: Route,
    logs_route: Route,
    /// How long the caller waits before it gives up, in the sentences that say so.
    wait_ms: f64,
    /// Set when the wait passed before everything arrived.
    gave_up: bool,
}

impl Watch {
    /// Waits for `trace_id`; the caller gives up after `wait_ms` ([`Watch::give_up`]).
    pub fn new(trace_id: String, wait_ms: f64) -> Self {
        Self {
            trace_id,
            trace: None,
            logs: None,
            trace_route: Route::new(),
            logs_route: Route::new(),
            wait_ms,
            gave_up: false,
        }
    }

    /// `GET /api/traces/{trace_id}`, percent-encoded.
    pub fn trace_url(&self) -> String {
        format!("/api/traces/{}", crate::encode(&self.trace_id))
    }

    /// `GET /api/traces/{trace_id}/logs`.
    pub fn logs_url(&self) -> String {
        format!("{}/logs", self.trace_url())
    }

    fn trace_whole(&self) -> bool {
        self.trace
            .as_ref()
            .is_some_and(|t| t.waiting_for.is_empty())
    }

    /// Whether to ask for the spans again.
    pub fn needs_trace(&self) -> bool {
        !self.gave_up && self.trace_route.failed.is_none() && !self.trace_whole()
    }

    /// Whether to ask for the log lines again: until the trace is whole and every span that writes
    /// a line has one. Without spans to compare with (their route failed), the first answer is it.
    pub fn needs_logs(&self) -> bool {
        if self.gave_up || self.logs_route.failed.is_some() {
            return false;
        }
        if self.trace_route.failed.is_some() {
            return self.logs.is_none();
        }
        match &self.trace {
            Some(trace) if self.trace_whole() => {
                !services_without_logs(trace, self.logs.as_ref()).is_empty()
            }
            _ => true,
        }
    }

    /// Whether anything is still to be asked for.
    pub fn polling(&self) -> bool {
        self.needs_trace() || self.needs_logs()
    }

    pub fn on_trace(&mut self, answer: Answer) {
        if let Some(trace) = self.trace_route.read(answer, "a trace") {
            self.trace = Some(trace);
        }
    }

    pub fn on_logs(&mut self, answer: Answer) {
        if let Some(logs) = self.logs_route.read(answer, "a list of log lines") {
            self.logs = Some(logs);
        }
    }

    /// Stops asking: the time allowed has passed.
    pub fn give_up(&mut self) {
        self.gave_up |= self.polling();
    }

    /// Why the spans could not be read, when their route ended in an error (or was still retrying
    /// one when the wait ended).
    pub fn trace_error(&self) -> Option<&str> {
        self.trace_route.error()
    }

    /// Why the log lines could not be read, as [`Watch::trace_error`].
    pub fn logs_error(&self) -> Option<&str> {
        self.logs_route.error()
    }

    /// The sentence above the waterfall: still arriving, never arrived, or why it cannot be shown;
    /// `None` once the trace is whole.
    pub fn trace_status(&self) -> Option<String> {
        if let Some(error) = self.trace_route.error() {
            return Some(format!("Traces cannot be shown: {error}"));
        }
        let waited = self.wait_ms / 1000.0;
        match &self.trace {
            None if self.gave_up => Some(format!(
                "No spans of this trace arrived in {waited} s: is the trace backend receiving them?"
            )),
            None => Some("Waiting for the trace…".into()),
            Some(trace) if trace.waiting_for.is_empty() => None,
            Some(trace) if self.gave_up => Some(format!(
                "The spans of {} never arrived (waited {waited} s).",
                names(&trace.waiting_for)
            )),
            Some(trace) => Some(still_arriving(&trace.waiting_for)),
        }
    }

    /// The sentence above the log lines, `None` once they are all there (or nothing is known to
    /// be missing).
    pub fn logs_status(&self) -> Option<String> {
        if let Some(error) = self.logs_route.error() {
            return Some(format!("Log lines cannot be shown: {error}"));
        }
        let Some(trace) = &self.trace else {
            return match (&self.logs, self.gave_up) {
                (None, true) => Some("No log lines of this trace arrived.".into()),
                (None, false) => Some("Waiting for the log lines…".into()),
                (Some(_), _) => None,
            };
        };
        let missing = services_without_logs(trace, self.logs.as_ref());
        if missing.is_empty() {
            None
        } else if self.gave_up {
            Some(format!("Log lines of {} never arrived.", names(&missing)))
        } else {
            Some(format!(
                "Log lines still arriving: waiting for {}…",
                names(&missing)
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::waterfall::tests::{line, roll_multiple};
    use serde_json::json;

    fn ok<T: serde::Serialize>(body: &T) -> Answer {
        Ok((200, serde_json::to_value(body).unwrap()))
    }

    fn error(status: u16, message: &str) -> Answer {
        Ok((status, json!({ "error": message })))
    }

    fn logs_for(trace: &TraceAnswer, spans: &[&str]) -> LogsAnswer {
        LogsAnswer {
            trace_id: trace.trace_id.clone(),
            lines: spans
                .iter()
                .map(|id| line(id, "dice-roller", "something"))
                .collect(),
        }
    }

    #[test]
    fn the_routes_are_the_trace_and_its_logs() {
        let watch = Watch::new("4bf9".into(), WAIT_MS);
        assert_eq!(watch.trace_url(), "/api/traces/4bf9");
        assert_eq!(watch.logs_url(), "/api/traces/4bf9/logs");
    }

    #[test]
    fn it_waits_for_the_trace_then_for_missing_services_then_for_the_logs() {
        let mut watch = Watch::new("t".into(), WAIT_MS);
        assert!(watch.needs_trace() && watch.needs_logs());
        assert_eq!(watch.trace_status().unwrap(), "Waiting for the trace…");
        watch.on_trace(error(404, "no such trace"));
        watch.on_logs(error(404, "no log lines"));
        assert_eq!(watch.trace_status().unwrap(), "Waiting for the trace…");
        assert_eq!(watch.logs_status().unwrap(), "Waiting for the log lines…");

        let whole = roll_multiple(2, 10, false);
        let mut partial = whole.clone();
        partial.spans.truncate(2);
        partial.waiting_for = vec!["dice-roller".into()];
        watch.on_trace(ok(&partial));
        assert!(watch.needs_trace());
        assert_eq!(
            watch.trace_status().unwrap(),
            "Spans still arriving: waiting for dice-roller…"
        );

        watch.on_trace(ok(&whole));
        assert!(!watch.needs_trace());
        assert_eq!(watch.trace_status(), None);
        assert!(watch.needs_logs());
        assert_eq!(
            watch.logs_status().unwrap(),
            "Log lines still arriving: waiting for frontend and dice-roller…"
        );
        watch.on_logs(ok(&logs_for(&whole, &["f1", "d1", "r0", "r1"])));
        assert!(!watch.polling());
        assert_eq!(watch.logs_status(), None);
    }

    #[test]
    fn after_the_wait_it_says_what_never_arrived() {
        let mut nothing = Watch::new("t".into(), WAIT_MS);
        nothing.on_trace(error(404, "no such trace"));
        nothing.give_up();
        assert!(!nothing.polling());
        assert_eq!(
            nothing.trace_status().unwrap(),
            "No spans of this trace arrived in 15 s: is the trace backend receiving them?"
        );
        assert_eq!(
            nothing.logs_status().unwrap(),
            "No log lines of this trace arrived."
        );

        let mut partial = roll_multiple(2, 10, false);
        partial.waiting_for = vec!["dice-roller".into(), "die-service".into()];
        let mut some = Watch::new("t".into(), WAIT_MS);
        some.on_trace(ok(&partial));
        some.on_logs(ok(&logs_for(&partial, &["f1", "r0", "r1"])));
        some.give_up();
        assert_eq!(
            some.trace_status().unwrap(),
            "The spans of dice-roller and die-service never arrived (waited 15 s)."
        );
        assert_eq!(
            some.logs_status().unwrap(),
            "Log lines of dice-roller never arrived."
        );
    }

    #[test]
    fn giving_up_when_everything_arrived_changes_nothing() {
        let whole = roll_multiple(1, 10, false);
        let mut watch = Watch::new("t".into(), WAIT_MS);
        watch.on_trace(ok(&whole));
        watch.on_logs(ok(&logs_for(&whole, &["f1", "d1", "r0"])));
        watch.give_up();
        assert_eq!((watch.trace_status(), watch.logs_status()), (None, None));
    }

    #[test]
    fn an_unreachable_backend_is_retried_a_few_times_and_shown_meanwhile() {
        let mut watch = Watch::new("t".into(), WAIT_MS);
        for _ in 0..RETRIES {
            watch.on_trace(error(503, "Tempo is unreachable at http://tempo:3200"));
            assert!(watch.needs_trace());
            assert_eq!(
                watch.trace_status().unwrap(),
                "Traces cannot be shown: Tempo is unreachable at http://tempo:3200"
            );
        }
        watch.on_trace(error(503, "Tempo is unreachable at http://tempo:3200"));
        assert!(!watch.needs_trace());
        // Without spans to compare with, one answer with log lines is enough.
        assert!(watch.needs_logs());
        watch.on_logs(ok(&LogsAnswer {
            trace_id: "t".into(),
            lines: Vec::new(),
        }));
        assert!(!watch.polling());

        let mut back = Watch::new("t".into(), WAIT_MS);
        back.on_trace(Err(
            "The frontend cannot be reached. Is it still running?".into()
        ));
        back.on_trace(ok(&roll_multiple(1, 10, false)));
        assert_eq!(back.trace_status(), None);
    }

    #[test]
    fn other_errors_stop_the_route_at_once() {
        for status in [400, 502, 504] {
            let mut watch = Watch::new("t".into(), WAIT_MS);
            watch.on_trace(error(status, "not a trace id: t"));
            watch.on_logs(error(status, "not a trace id: t"));
            assert!(!watch.polling(), "{status}");
            assert_eq!(
                watch.trace_status().unwrap(),
                "Traces cannot be shown: not a trace id: t"
            );
            assert_eq!(
                watch.logs_status().unwrap(),
                "Log lines cannot be shown: not a trace id: t"
            );
        }
        let mut odd = Watch::new("t".into(), WAIT_MS);
        odd.on_trace(Ok((200, json!({"spans": "none"}))));
        assert!(!odd.needs_trace());
        assert!(
            odd.trace_status()
                .unwrap()
                .starts_with("Traces cannot be shown: the frontend's answer is not a trace"),
            "{:?}",
            odd.trace_status()
        );
        let mut silent = Watch::new("t".into(), WAIT_MS);
        silent.on_trace(Ok((500, json!({}))));
        assert_eq!(
            silent.trace_status().unwrap(),
            "Traces cannot be shown: the frontend answered 500"
        );
    }
}
