//! `dice-lab trace TRACE_ID`: a click's trace in the terminal, for the lab guide and for people
//! without a browser.
//!
//! It asks the frontend's `/api/traces/{id}` and `/api/traces/{id}/logs`, the routes the page's
//! waterfall is drawn from, and prints the same waterfall as text
//! ([`frontend_ui::waterfall::text`]): one bar per span on a shared time axis, the summary line,
//! then the trace's log lines. Spans and log lines leave the services in batches, so it asks again
//! while some are still on their way, for at most `--wait`, by the page's own rules
//! ([`frontend_ui::watch`]): a 404 is "not yet"; a 503 (a backend restarting) or a frontend that
//! cannot be reached is asked a few times more; any other error stops asking that route. It ends
//! with the page's sentences on what never arrived, and exits non-zero when the spans could not be
//! read; log lines that could not be read are said on stderr.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use frontend_ui::watch::{Answer, Watch};
use frontend_ui::waterfall;
use serde_json::Value;

/// How often the frontend is asked again while spans or log lines are on their way.
const POLL: Duration = Duration::from_millis(250);
/// The least and the most time one question is given.
const MIN_ASK: Duration = Duration::from_secs(1);
const MAX_ASK: Duration = Duration::from_secs(10);

pub async fn run(url: &str, trace_id: &str, wait: Duration) -> ExitCode {
    let http = reqwest::Client::new();
    let base = url.trim_end_matches('/');
    let deadline = Instant::now() + wait;
    let mut watch = Watch::new(trace_id.to_owned(), wait.as_secs_f64() * 1000.0);
    loop {
        if watch.needs_trace() {
            let url = format!("{base}{}", watch.trace_url());
            watch.on_trace(get(&http, &url, deadline).await);
        }
        if watch.needs_logs() {
            let url = format!("{base}{}", watch.logs_url());
            watch.on_logs(get(&http, &url, deadline).await);
        }
        if Instant::now() >= deadline {
            watch.give_up();
        }
        if !watch.polling() {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    let Some(trace) = &watch.trace else {
        // Without spans, the sentence says why: none arrived, or they cannot be read.
        if let Some(why) = watch.trace_status() {
            say!("dice-lab: {why}");
        }
        return ExitCode::FAILURE;
    };
    show!(
        "{}",
        waterfall::text(trace, watch.logs.as_ref(), terminal_width()).trim_end()
    );
    let mut exit = ExitCode::SUCCESS;
    match watch.trace_error() {
        Some(error) => {
            say!("dice-lab: the rest of the trace cannot be read: {error}");
            exit = ExitCode::FAILURE;
        }
        None => {
            if let Some(sentence) = watch.trace_status() {
                show!("{sentence}");
            }
        }
    }
    match watch.logs_error() {
        Some(error) => say!("dice-lab: no log lines: {error}"),
        None => {
            if let Some(sentence) = watch.logs_status() {
                show!("{sentence}");
            }
        }
    }
    exit
}

/// One GET, given until `deadline` (at least [`MIN_ASK`], at most [`MAX_ASK`]): its status and
/// JSON body (`null` when the body is not JSON: the status says what went wrong), or why the
/// frontend did not answer.
async fn get(http: &reqwest::Client, url: &str, deadline: Instant) -> Answer {
    let left = deadline.saturating_duration_since(Instant::now());
    let response = http
        .get(url)
        .timeout(left.clamp(MIN_ASK, MAX_ASK))
        .send()
        .await
        .map_err(|e| format!("cannot reach the frontend at {url}: {}", e.without_url()))?;
    let status = response.status().as_u16();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("the frontend's answer to {url} broke off: {e}"))?;
    Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
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
