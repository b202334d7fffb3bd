//! The trace under every result, as a user sees it in headless Chromium: the three services as
//! processes exporting to the lab's store (which also reads their log files), the frontend reading
//! traces and log lines back from it. Ten concurrent rolls draw ten overlapping bars; with the
//! dice-roller's `sequential` switch they form a staircase; a failed roll's row is marked; the log
//! lines sit under the waterfall, tied to their spans; a stopped die-service reads as a sentence.

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::Locator;
use lab_tests::browser::Browser;
use lab_tests::http::{Target as _, send};
use lab_tests::in_process::{self, Running};
use lab_tests::process::Service;
use reqwest::Method;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

struct Lab {
    _store: Running,
    die_service: Service,
    roller: Service,
    frontend: Service,
    /// The services' log files, which the store reads; removed after the services stop.
    _logs: tempfile::TempDir,
}

impl Lab {
    async fn start(name: &str) -> Self {
        let scratch = lab_tests::fixtures::scratch_dir(&format!("waterfall-{name}"));
        let logs = scratch.path();
        let store = in_process::store(in_process::store_settings(logs.to_owned(), 32)).await;
        let [tempo, otlp, loki] = [0, 1, 2].map(|i| format!("http://{}", store.addrs()[i]));
        let otel = [("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.as_str())];
        let log = |service: &str| logs.join(format!("{service}.log"));
        let die_service =
            Service::start_logging_to("die-service", &[], &otel, &log("die-service")).await;
        let roller = Service::start_logging_to(
            "dice-roller",
            &[
                "--die-service-url",
                &die_service.url(),
                "--roll-delay-ms",
                "60..160",
            ],
            &otel,
            &log("dice-roller"),
        )
        .await;
        let frontend = Service::start_logging_to(
            "frontend",
            &[
                "--die-service-url",
                &die_service.url(),
                "--dice-roller-url",
                &roller.url(),
                "--trace-query-url",
                &tempo,
                "--log-query-url",
                &loki,
            ],
            &otel,
            &log("frontend"),
        )
        .await;
        Self {
            _store: store,
            die_service,
            roller,
            frontend,
            _logs: scratch,
        }
    }
}

/// A screenshot of the waterfall (scrolled into view) in the target directory.
async fn screenshot(browser: &Browser, name: &str) {
    browser
        .client
        .execute(
            "document.querySelector('.trace-panel').scrollIntoView()",
            vec![],
        )
        .await
        .unwrap();
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("screenshots")
        .join(name);
    browser.screenshot(&path).await;
}

/// Waits until the waterfall holds `rolls` roll rows and says nothing is still arriving, then
/// returns the roll bars' horizontal extents (left, right in pixels), earliest first.
async fn whole_waterfall(browser: &Browser, rolls: usize) -> Vec<(f64, f64)> {
    browser
        .wait_until(
            &format!("the waterfall holds {rolls} roll rows, whole"),
            WAIT,
            async || {
                browser.texts(".span-row[data-name='roll']").await.len() == rolls
                    && browser.text("trace-status").await.is_empty()
            },
        )
        .await;
    let boxes = browser
        .client
        .execute(
            "return [...document.querySelectorAll(\".span-row[data-name='roll'] .span-bar\")]
                .map(b => b.getBoundingClientRect()).map(r => [r.left, r.right]);",
            vec![],
        )
        .await
        .unwrap();
    let mut bars: Vec<(f64, f64)> = boxes
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b[0].as_f64().unwrap(), b[1].as_f64().unwrap()))
        .collect();
    bars.sort_by(|a, b| a.0.total_cmp(&b.0));
    bars
}

/// The `x` of "…, 5.1×" at the end of the summary line.
fn speedup(summary: &str) -> f64 {
    summary
        .rsplit(' ')
        .next()
        .and_then(|s| s.strip_suffix('×'))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no speed-up in {summary:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_rolls_overlap_in_the_waterfall_with_their_log_lines_beneath() {
    let lab = Lab::start("overlap").await;
    let browser = Browser::start().await;
    browser.open_hydrated(&lab.frontend.url()).await;
    browser.choose("fair").await;
    browser.roll_multiple("10").await;
    let bars = whole_waterfall(&browser, 10).await;
    let latest_start = bars.iter().map(|b| b.0).fold(f64::MIN, f64::max);
    let earliest_end = bars.iter().map(|b| b.1).fold(f64::MAX, f64::min);
    assert!(
        latest_start < earliest_end,
        "every roll's bar overlaps every other: {bars:?}"
    );
    let summary = browser.text("trace-summary").await;
    assert!(summary.starts_with("10 rolls, "), "{summary}");
    assert!(
        summary.contains(" of work in ") && summary.contains("concurrency saved"),
        "{summary}"
    );
    assert!(speedup(&summary) >= 2.0, "ten rolls at once: {summary}");

    // Each roll row shows its value, and its log line is beneath, tied to it.
    let values = browser
        .texts(".span-row[data-name='roll'] .roll-value")
        .await;
    assert_eq!(values.len(), 10);
    assert!(
        values.iter().all(|v| matches!(v.parse::<i64>(), Ok(1..=6))),
        "{values:?}"
    );
    let roll_ids = span_ids(&browser, ".span-row[data-name='roll']").await;
    browser
        .wait_until("the ten roll log lines", WAIT, async || {
            let lines = span_ids(&browser, "#trace-logs .log-line").await;
            roll_ids.iter().all(|id| lines.contains(id))
        })
        .await;
    let logs = browser.texts("#trace-logs .log-line").await;
    let roll_lines: Vec<&String> = logs.iter().filter(|l| l.contains("roll_value=")).collect();
    assert_eq!(roll_lines.len(), 10, "{logs:#?}");
    assert!(
        roll_lines.iter().all(|l| l.contains("dice-roller")),
        "{roll_lines:#?}"
    );
    let trace_id = browser.text("trace-id").await;
    let answer = send(
        Method::GET,
        &format!("{}/api/traces/{trace_id}/logs", lab.frontend.url()),
        None,
    )
    .await
    .json();
    let lines_of_trace = answer["lines"].as_array().unwrap();
    assert!(
        lines_of_trace
            .iter()
            .filter(|l| l["fields"]["roll_value"].is_i64())
            .count()
            == 10,
        "the panel's lines are the trace's: {answer}"
    );

    // Clicking a roll row lights its log line and shows its attributes.
    let first = &roll_ids[0];
    browser
        .client
        .find(Locator::Css(&format!(".span-row[data-span-id='{first}']")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait_until("the row's log line lights up", WAIT, async || {
            let lit = span_ids(&browser, "#trace-logs .log-line.highlight").await;
            !lit.is_empty() && lit.iter().all(|id| id == first)
        })
        .await;
    let details = browser.text("span-details").await;
    assert!(
        details.contains("roll.value") && details.contains("die.type"),
        "{details}"
    );
    screenshot(&browser, "waterfall.png").await;

    // A hundred rolls stay readable: compact rows in a box that scrolls, not a page that grows.
    browser.roll_multiple("100").await;
    whole_waterfall(&browser, 100).await;
    let height = browser
        .client
        .execute(
            "return document.querySelector('#waterfall').getBoundingClientRect().height",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        height.as_f64().unwrap() < 900.0,
        "the waterfall of 100 rolls is {height} px high"
    );
    browser.client.set_window_size(390, 844).await.unwrap();
    let overflow = browser
        .client
        .execute(
            "return document.documentElement.scrollWidth - window.innerWidth",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        overflow.as_f64().unwrap() <= 0.0,
        "no sideways scroll on a phone: {overflow}"
    );
    screenshot(&browser, "waterfall-phone.png").await;
}

async fn span_ids(browser: &Browser, css: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for element in browser
        .client
        .find_all(Locator::Css(css))
        .await
        .unwrap_or_default()
    {
        if let Ok(Some(id)) = element.attr("data-span-id").await {
            ids.push(id);
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn sequential_rolls_form_a_staircase_and_failures_are_marked() {
    let lab = Lab::start("staircase").await;
    let switched = send(
        Method::PUT,
        &format!("{}/admin/faults", lab.roller.url()),
        Some(&json!({"sequential": true}).to_string()),
    )
    .await;
    assert_eq!(switched.status, 200, "{}", switched.body);
    let browser = Browser::start().await;
    browser.open_hydrated(&lab.frontend.url()).await;
    browser.choose("fair").await;
    browser.roll_multiple("5").await;
    let bars = whole_waterfall(&browser, 5).await;
    for pair in bars.windows(2) {
        assert!(
            pair[0].1 <= pair[1].0 + 1.0,
            "each roll starts as the one before ends: {bars:?}"
        );
    }
    let summary = browser.text("trace-summary").await;
    assert!(
        speedup(&summary) < 1.1,
        "in a row, concurrency saves nothing: {summary}"
    );
    screenshot(&browser, "waterfall-sequential.png").await;

    // extreme fails half its rolls: each failed roll's row is marked, and only those.
    let back = send(
        Method::DELETE,
        &format!("{}/admin/faults", lab.roller.url()),
        None,
    )
    .await;
    assert_eq!(back.status, 200);
    browser.choose("extreme").await;
    browser.roll_multiple("20").await;
    whole_waterfall(&browser, 20).await;
    let failed_shown = browser.texts("#rolls li.failed").await.len();
    assert!(failed_shown > 0, "extreme fails half its rolls");
    let marked = browser
        .texts(".span-row.error[data-name='roll'] .error-mark")
        .await
        .len();
    assert_eq!(marked, failed_shown, "one marked row per failed roll");
    let valued = browser
        .texts(".span-row[data-name='roll'] .roll-value")
        .await
        .len();
    assert_eq!(valued, 20 - failed_shown, "the others show their value");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_die_service_reads_as_a_sentence_in_the_waterfall() {
    let mut lab = Lab::start("down").await;
    let browser = Browser::start().await;
    browser.open_hydrated(&lab.frontend.url()).await;
    lab.die_service.terminate().await;
    browser.choose("fair").await;
    browser.click("roll-once").await;
    browser
        .wait_until("the waterfall says what failed", WAIT, async || {
            browser
                .text("trace-summary")
                .await
                .contains("die-service is unreachable")
        })
        .await;
    let summary = browser.text("trace-summary").await;
    assert!(
        summary.starts_with("No roll: dice-roller GET failed: "),
        "{summary}"
    );
    let errors: Vec<Value> = browser
        .client
        .execute(
            "return [...document.querySelectorAll('.span-row.error')].map(r => r.dataset.service)",
            vec![],
        )
        .await
        .unwrap()
        .as_array()
        .unwrap()
        .clone();
    assert!(errors.contains(&json!("dice-roller")), "{errors:?}");
    assert!(
        !browser.text("error").await.is_empty(),
        "the result area says so too"
    );
    screenshot(&browser, "waterfall-die-service-down.png").await;
}
