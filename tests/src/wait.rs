//! Waiting for what arrives on its own time: spans batched by an exporter, log lines, scrapes.
//!
//! Tests never sleep a fixed time and hope; they ask again until the answer is there or a
//! deadline passes, and then say what they last saw. [`until`] does that inside tokio,
//! [`until_blocking`] on a plain thread.

use std::time::{Duration, Instant};

/// Asks `probe` every `every` until it answers `Ok`, or fails with its last `Err` once `timeout`
/// has passed.
pub async fn until<T>(
    timeout: Duration,
    every: Duration,
    mut probe: impl FnMut() -> Result<T, String>,
) -> Result<T, String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(done) = ask(&mut probe, deadline, timeout) {
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
        if let Some(done) = ask(&mut probe, deadline, timeout) {
            return done;
        }
        std::thread::sleep(every);
    }
}

/// One question: the outcome once there is one (an answer, or the deadline passed), else `None`.
fn ask<T>(
    probe: &mut impl FnMut() -> Result<T, String>,
    deadline: Instant,
    timeout: Duration,
) -> Option<Result<T, String>> {
    match probe() {
        Ok(found) => Some(Ok(found)),
        Err(last) if Instant::now() > deadline => {
            Some(Err(format!("still not so after {timeout:?}: {last}")))
        }
        Err(_) => None,
    }
}
