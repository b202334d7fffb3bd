//! Waiting for what arrives on its own time: spans batched by an exporter, log lines, scrapes.
//!
//! Tests never sleep a fixed time and hope; they ask again until the answer is there or a
//! deadline passes, and then say what they last saw. [`until`] does that inside tokio (the probe
//! may itself be async: `|| std::future::ready(...)` for one that is not), [`until_blocking`] on
//! a plain thread.

use std::future::Future;
use std::time::{Duration, Instant};

/// Asks `probe` every `every` until it answers `Ok`, or fails with its last `Err` once `timeout`
/// has passed.
pub async fn until<T, F>(
    timeout: Duration,
    every: Duration,
    mut probe: impl FnMut() -> F,
) -> Result<T, String>
where
    F: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let answer = probe().await;
        if let Some(done) = settle(answer, deadline, timeout) {
            return done;
        }
        tokio::time::sleep(every).await;
    }
}

/// [`until`], for a thread outside tokio.
pub fn until_blocking<T>(
    timeout: Duration,
    every: Duration,
    mut probe: impl FnMut() -> Result<T, String>,
) -> Result<T, String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(done) = settle(probe(), deadline, timeout) {
            return done;
        }
        std::thread::sleep(every);
    }
}

/// The outcome once there is one (an answer, or the deadline passed), else `None`.
fn settle<T>(
    answer: Result<T, String>,
    deadline: Instant,
    timeout: Duration,
) -> Option<Result<T, String>> {
    match answer {
        Ok(found) => Some(Ok(found)),
        Err(last) if Instant::now() > deadline => {
            Some(Err(format!("still not so after {timeout:?}: {last}")))
        }
        Err(_) => None,
    }
}
