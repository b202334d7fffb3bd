//! `dice-lab load`: realistic mixed traffic through the frontend's API, as the page would send it.
//!
//! Requests leave at a steady rate for the given duration: half Roll Once, half Roll Multiple
//! (2 to 20 rolls, now and then with `fetch=each`), each with a die drawn from the lab's own list.
//! A progress line shows how it goes; the summary gives requests, errors and latency percentiles.
//! At most 64 requests are in flight, so a slow lab slows the load instead of drowning.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng as _;
use tokio::sync::{Mutex, Semaphore};

/// What happened to one request.
struct Outcome {
    latency: Duration,
    /// HTTP status, or `None` when no answer came.
    status: Option<u16>,
}

pub async fn run(url: &str, rate: f64, duration: Duration) -> ExitCode {
    if !(rate > 0.0 && rate.is_finite()) {
        say!("dice-lab: --rate must be more than zero requests per second");
        return ExitCode::FAILURE;
    }
    let base = url.trim_end_matches('/').to_owned();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client");
    let dice = match list_dice(&http, &base).await {
        Ok(dice) if !dice.is_empty() => dice,
        Ok(_) => {
            say!("dice-lab: {base} lists no dice");
            return ExitCode::FAILURE;
        }
        Err(error) => {
            say!(
                "dice-lab: the lab does not answer at {base} ({error}); start it with `dice-lab up`"
            );
            return ExitCode::FAILURE;
        }
    };

    let outcomes = Arc::new(Mutex::new(Vec::<Outcome>::new()));
    let in_flight = Arc::new(Semaphore::new(64));
    let interval = Duration::from_secs_f64(1.0 / rate);
    let started = Instant::now();
    let mut next = started;
    let mut shown = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    while started.elapsed() < duration {
        let path = request_path(&dice);
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            break;
        };
        let (http, record, url) = (http.clone(), outcomes.clone(), format!("{base}{path}"));
        tasks.spawn(async move {
            let sent = Instant::now();
            let status = match http.get(&url).send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let _ = response.bytes().await;
                    Some(status)
                }
                Err(_) => None,
            };
            record.lock().await.push(Outcome {
                latency: sent.elapsed(),
                status,
            });
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
        if shown.elapsed() > Duration::from_millis(250) {
            progress(started.elapsed(), duration, &outcomes.lock().await);
            shown = Instant::now();
        }
        next += interval;
        tokio::time::sleep_until(next.into()).await;
    }
    while tasks.join_next().await.is_some() {}
    let outcomes = outcomes.lock().await;
    progress(duration, duration, &outcomes);
    say!();
    summary(&outcomes, started.elapsed());
    ExitCode::SUCCESS
}

async fn list_dice(http: &reqwest::Client, base: &str) -> Result<Vec<String>, String> {
    let body: serde_json::Value = http
        .get(format!("{base}/api/dice"))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    Ok(body["dice"]
        .as_array()
        .ok_or("no dice list in the answer")?
        .iter()
        .filter_map(|d| d["type"].as_str().map(str::to_owned))
        .collect())
}

fn request_path(dice: &[String]) -> String {
    let mut rng = rand::rng();
    let die = &dice[rng.random_range(0..dice.len())];
    if rng.random_bool(0.5) {
        format!("/api/roll?die={die}")
    } else {
        let times = rng.random_range(2..=20);
        let fetch = if rng.random_bool(0.2) {
            "&fetch=each"
        } else {
            ""
        };
        format!("/api/roll-async?die={die}&times={times}{fetch}")
    }
}

/// A request is an error when it got no answer or a 5xx. The lab's dice fail on purpose (a failed
/// Roll Once is a 500), so these count as errors here just as the dashboards count them.
fn is_error(outcome: &Outcome) -> bool {
    outcome.status.is_none_or(|s| s >= 500)
}

fn progress(elapsed: Duration, duration: Duration, outcomes: &[Outcome]) {
    let share = (elapsed.as_secs_f64() / duration.as_secs_f64()).min(1.0);
    let filled = (share * 30.0).round() as usize;
    let errors = outcomes.iter().filter(|o| is_error(o)).count();
    use std::io::Write as _;
    let _ = write!(
        std::io::stderr(),
        "\r[{}{}] {:>5.1}/{:.0} s  {} requests  {} errors ",
        "#".repeat(filled),
        " ".repeat(30 - filled),
        elapsed.as_secs_f64().min(duration.as_secs_f64()),
        duration.as_secs_f64(),
        outcomes.len(),
        errors
    );
}

fn summary(outcomes: &[Outcome], took: Duration) {
    let mut latencies: Vec<Duration> = outcomes.iter().map(|o| o.latency).collect();
    latencies.sort();
    let percentile = |p: f64| -> String {
        if latencies.is_empty() {
            return "–".into();
        }
        let index = ((p * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len()) - 1;
        format!("{:.1} ms", latencies[index].as_secs_f64() * 1000.0)
    };
    let errors = outcomes.iter().filter(|o| is_error(o)).count();
    let unanswered = outcomes.iter().filter(|o| o.status.is_none()).count();
    show!(
        "requests  {} in {:.1} s ({:.1}/s)",
        outcomes.len(),
        took.as_secs_f64(),
        outcomes.len() as f64 / took.as_secs_f64()
    );
    show!("errors    {errors} (5xx: failed rolls and upstream errors; {unanswered} unanswered)");
    show!(
        "latency   p50 {}  p95 {}  p99 {}",
        percentile(0.50),
        percentile(0.95),
        percentile(0.99)
    );
}
