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
        match probe() {
            Ok(found) => return Ok(found),
            Err(last) if Instant::now() > deadline => return Err(late(timeout, &last)),
            Err(_) => tokio::time::sleep(every).await,
        }
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
        match probe() {
            Ok(found) => return Ok(found),
            Err(last) if Instant::now() > deadline => return Err(late(timeout, &last)),
            Err(_) => std::thread::sleep(every),
        }
    }
}

fn late(timeout: Duration, last: &str) -> String {
    format!("still not so after {timeout:?}: {last}")
}
