//! How fast the frontend's page becomes interactive in headless Chromium: the benchmark's browser
//! half (`bench/frontend.sh` starts the services and measures the bundle).
//!
//! Usage: `page-bench URL [LOADS]` (default 10 loads). Each load starts from `about:blank`; the
//! page records `performance.now()` when the WebAssembly has hydrated it, which is the time from
//! navigation start until the buttons work.

use std::time::Duration;

use lab_tests::browser::Browser;
use serde_json::Value;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let url = args.next().expect("usage: page-bench URL [LOADS]");
    let loads: usize = args
        .next()
        .map_or(10, |n| n.parse().expect("LOADS is a number"));
    let browser = Browser::start().await;
    let mut interactive = Vec::new();
    let mut parsed = Vec::new();
    for _ in 0..loads {
        browser
            .client
            .goto("about:blank")
            .await
            .expect("a blank page");
        browser.open_hydrated(&url).await;
        let ms = |script: &'static str| {
            let client = browser.client.clone();
            async move {
                client
                    .execute(script, vec![])
                    .await
                    .ok()
                    .and_then(|v: Value| v.as_f64())
                    .expect("a timing from the page")
            }
        };
        interactive.push(ms("return window.diceLabInteractiveMs").await);
        parsed.push(
            ms("return performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd")
                .await,
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("| measure | first load | median of {loads} | slowest |");
    println!("|---|---:|---:|---:|");
    for (name, samples) in [
        ("HTML parsed (DOMContentLoaded)", &parsed),
        ("interactive (hydrated)", &interactive),
    ] {
        let first = samples[0];
        let mut sorted = samples.clone();
        sorted.sort_by(f64::total_cmp);
        println!(
            "| {name} | {first:.0} ms | {:.0} ms | {:.0} ms |",
            sorted[sorted.len() / 2],
            sorted[sorted.len() - 1]
        );
    }
}
