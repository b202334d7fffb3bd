//! `dice-lab trace TRACE_ID`: a click's trace in the terminal, for the lab guide and for people
//! without a browser.
//!
//! It asks the frontend's `/api/traces/{id}` and `/api/traces/{id}/logs`, the routes the page's
//! waterfall is drawn from, and prints the same waterfall as text
//! ([`frontend_ui::waterfall::text`]): one bar per span on a shared time axis, the summary line,
//! then the trace's log lines. Spans and log lines leave the services in batches, so it asks again
//! while the trace says some are still on their way, for at most `--wait`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use frontend_ui::trace_api::{LogsAnswer, TraceAnswer};
use frontend_ui::waterfall;

/// How often the frontend is asked again while spans or log lines are on their way.
const POLL: Duration = Duration::from_millis(250);

pub async fn run(url: &str, trace_id: &str, wait: Duration) -> ExitCode {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client");
    let base = format!("{}/api/traces/{trace_id}", url.trim_end_matches('/'));
    let deadline = Instant::now() + wait;
    let trace =
        match poll::<TraceAnswer>(&http, &base, deadline, |t| t.waiting_for.is_empty()).await {
            Ok(trace) => trace,
            Err(message) => {
                say!("dice-lab: {message}");
                return ExitCode::FAILURE;
            }
        };
    let logs_url = format!("{base}/logs");
    let logs = poll::<LogsAnswer>(&http, &logs_url, deadline, |logs| {
        waterfall::spans_without_logs(&trace, Some(logs)).is_empty()
    })
    .await;
    let width = terminal_width();
    show!(
        "{}",
        waterfall::text(&trace, logs.as_ref().ok(), width).trim_end()
    );
    if !trace.waiting_for.is_empty() {
        show!(
            "The spans of {} did not arrive within {} s.",
            waterfall::names(&trace.waiting_for),
            wait.as_secs()
        );
    }
    match &logs {
        Ok(logs) => {
            let missing = waterfall::services_without_logs(&trace, Some(logs));
            if !missing.is_empty() {
                show!(
                    "The log lines of {} did not arrive within {} s.",
                    waterfall::names(&missing),
                    wait.as_secs()
                );
            }
        }
        Err(message) => say!("dice-lab: no log lines: {message}"),
    }
    ExitCode::SUCCESS
}

/// GETs `url` until its answer is `done` or `deadline` passes (then the last answer); a 404 is
/// asked again (the spans may be on their way), any other failure ends it with the error's sentence.
async fn poll<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
    deadline: Instant,
    done: impl Fn(&T) -> bool,
) -> Result<T, String> {
    loop {
        let response = http
            .get(url)
            .send()
            .await
            .map_err(|e| format!("cannot reach the frontend at {url}: {e}"))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| format!("{url}: {e}"))?;
        let last = Instant::now() >= deadline;
        if status.is_success() {
            let answer: T = serde_json::from_slice(&body)
                .map_err(|e| format!("{url} answered something unreadable: {e}"))?;
            if last || done(&answer) {
                return Ok(answer);
            }
        } else if last || status != reqwest::StatusCode::NOT_FOUND {
            let error = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
            return Err(format!("{status}: {error}"));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The terminal's width: `COLUMNS`, else the terminal's own, else 100.
fn terminal_width() -> usize {
    if let Some(columns) = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()) {
        return columns;
    }
    // SAFETY: TIOCGWINSZ only fills the winsize it is given.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    let known = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    if known && size.ws_col > 0 {
        usize::from(size.ws_col)
    } else {
        100
    }
}
