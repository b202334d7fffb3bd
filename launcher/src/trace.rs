//! `dice-lab trace TRACE_ID`: a click's trace in the terminal, for the lab guide and for people
//! without a browser.
//!
//! It asks the frontend's `/api/traces/{id}` and `/api/traces/{id}/logs`, the routes the page's
//! waterfall is drawn from, and prints the same waterfall as text
//! ([`frontend_ui::waterfall::text`]): one bar per span on a shared time axis, the summary line,
//! then the trace's log lines. Spans and log lines leave the services in batches, so it asks again
//! while some are still on their way, for at most `--wait`, by the page's own rules
//! ([`frontend_ui::watch`]): a 404 is "not yet", a 503 (a backend restarting) is asked a few times
//! more, any other error ends the wait; and it ends with the page's sentences on what never
//! arrived.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use frontend_ui::watch::{Answer, Watch};
use frontend_ui::waterfall;
use serde_json::Value;

/// How often the frontend is asked again while spans or log lines are on their way.
const POLL: Duration = Duration::from_millis(250);

pub async fn run(url: &str, trace_id: &str, wait: Duration) -> ExitCode {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client");
    let base = url.trim_end_matches('/');
    let deadline = Instant::now() + wait;
    let mut watch = Watch::new(trace_id.to_owned(), wait.as_secs_f64() * 1000.0);
    loop {
        if watch.needs_trace() {
            watch.on_trace(get(&http, &format!("{base}{}", watch.trace_url())).await);
        }
        if watch.needs_logs() {
            watch.on_logs(get(&http, &format!("{base}{}", watch.logs_url())).await);
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
        say!(
            "dice-lab: {}",
            watch.trace_status().unwrap_or_else(|| "no trace".into())
        );
        return ExitCode::FAILURE;
    };
    show!(
        "{}",
        waterfall::text(trace, watch.logs.as_ref(), terminal_width()).trim_end()
    );
    for sentence in [watch.trace_status(), watch.logs_status()]
        .into_iter()
        .flatten()
    {
        show!("{sentence}");
    }
    ExitCode::SUCCESS
}

/// One GET: its status and JSON body (`null` when the body is not JSON: the status says what went
/// wrong), or why the frontend did not answer.
async fn get(http: &reqwest::Client, url: &str) -> Answer {
    let response = http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("cannot reach the frontend at {url}: {e}"))?;
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
