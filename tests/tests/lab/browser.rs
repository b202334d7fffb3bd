//! The frontend as a user meets it: the real services as processes, the page in headless
//! Chromium, every click a real request. The screenshots land in the target directory.

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::Locator;
use lab_tests::browser::Browser;
use lab_tests::http::Target as _;
use lab_tests::otlp::Receiver;
use lab_tests::process::Service;
use lab_tests::trace::{Expect as _, assert_frontend_root, assert_resource, assert_roll_async};

const WAIT: Duration = Duration::from_secs(20);

struct Lab {
    receiver: Receiver,
    die_service: Service,
    _roller: Service,
    frontend: Service,
}

impl Lab {
    async fn start() -> Self {
        let receiver = Receiver::start().await;
        let endpoint = receiver.endpoint();
        let otel = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ];
        let die_service = Service::start("die-service", &[], &otel).await;
        let roller = Service::start(
            "dice-roller",
            &[
                "--die-service-url",
                &die_service.url(),
                "--roll-delay-ms",
                "0..50",
            ],
            &otel,
        )
        .await;
        let frontend = Service::start(
            "frontend",
            &[
                "--die-service-url",
                &die_service.url(),
                "--dice-roller-url",
                &roller.url(),
                "--grafana-url",
                "http://grafana.invalid:3000",
            ],
            &otel,
        )
        .await;
        Self {
            receiver,
            die_service,
            _roller: roller,
            frontend,
        }
    }
}

fn screenshot_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("screenshots")
        .join(name)
}

async fn numbers(browser: &Browser) -> Vec<Option<i64>> {
    browser
        .texts("#rolls li")
        .await
        .iter()
        .map(|t| t.parse().ok())
        .collect()
}

/// Waits until the page shows `count` rolls.
async fn rolls_shown(browser: &Browser, count: usize) {
    browser
        .wait_until(&format!("{count} rolls show"), WAIT, async || {
            browser.texts("#rolls li").await.len() == count
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_rolls_dice_and_sees_results_statistics_and_errors() {
    let mut lab = Lab::start().await;
    let browser = Browser::start().await;
    browser.open_hydrated(&lab.frontend.url()).await;

    let options = browser.texts("#die option").await;
    assert!(
        options.contains(&"fair".to_owned()) && options.contains(&"extreme".to_owned()),
        "{options:?}"
    );

    // Roll Once: one result, with its trace.
    browser.choose("fair").await;
    browser.click("roll-once").await;
    rolls_shown(&browser, 1).await;
    let once = numbers(&browser).await;
    assert!(matches!(once[0], Some(1..=6)), "{once:?}");
    assert!(browser.text("result").await.contains("Roll Once · fair"));
    let trace_id = browser.text("trace-id").await;
    assert_eq!(trace_id.len(), 32, "a trace id: {trace_id}");
    let href = browser
        .client
        .find(Locator::Id("trace-id"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    assert!(
        href.starts_with("http://grafana.invalid:3000/explore?") && href.contains(&trace_id),
        "{href}"
    );

    // Roll Multiple: ten results and statistics that agree with them.
    browser.roll_multiple("10").await;
    rolls_shown(&browser, 10).await;
    let rolls = numbers(&browser).await;
    let values: Vec<i64> = rolls.iter().flatten().copied().collect();
    assert_eq!(values.len(), 10, "a fair die never fails: {rolls:?}");
    assert_eq!(browser.text("stat-count").await, "10");
    assert_eq!(browser.text("stat-failed").await, "0");
    assert_eq!(
        browser.text("stat-total").await,
        values.iter().sum::<i64>().to_string()
    );
    assert_eq!(
        browser.text("stat-min").await,
        values.iter().min().unwrap().to_string()
    );
    assert_eq!(
        browser.text("stat-max").await,
        values.iter().max().unwrap().to_string()
    );
    let mean = values.iter().sum::<i64>() as f64 / 10.0;
    assert_eq!(browser.text("stat-mean").await, format!("{mean:.2}"));
    assert_eq!(
        browser.texts("#chart .bar-row").await.len(),
        6,
        "one bar per face"
    );
    browser
        .screenshot(&screenshot_path("roll-multiple.png"))
        .await;

    // The number is checked in the page.
    let input = browser.client.find(Locator::Id("times")).await.unwrap();
    input.clear().await.unwrap();
    input.send_keys("0").await.unwrap();
    browser
        .wait_until("the page refuses 0", WAIT, async || {
            browser.text("times-error").await == "Enter a whole number from 1 to 100."
        })
        .await;
    assert!(
        !browser
            .client
            .find(Locator::Id("roll-multiple"))
            .await
            .unwrap()
            .is_enabled()
            .await
            .unwrap()
    );

    // extreme fails half its rolls: the failures are marked and counted.
    browser.choose("extreme").await;
    browser.roll_multiple("30").await;
    rolls_shown(&browser, 30).await;
    let failed = browser.texts("#rolls li.failed").await.len();
    assert!(failed > 0, "extreme fails half its rolls");
    assert_eq!(browser.text("stat-failed").await, failed.to_string());
    assert!(browser.text("result").await.contains("extreme × 30"));

    // A phone-sized window still shows every control.
    browser.client.set_window_size(390, 844).await.unwrap();
    for id in ["die", "roll-once", "times", "roll-multiple"] {
        assert!(
            browser
                .client
                .find(Locator::Id(id))
                .await
                .unwrap()
                .is_displayed()
                .await
                .unwrap(),
            "{id} on a phone"
        );
    }
    browser.screenshot(&screenshot_path("phone.png")).await;
    browser.client.set_window_size(1100, 1000).await.unwrap();

    // The die-service goes away: a readable error, not a frozen page.
    lab.die_service.terminate().await;
    browser.choose("fair").await;
    browser.click("roll-once").await;
    browser
        .wait_until("an error shows", WAIT, async || {
            !browser.text("error").await.is_empty()
        })
        .await;
    let error = browser.text("error").await;
    assert!(
        error.contains("could not roll (503): die-service is unreachable"),
        "{error}"
    );
    assert!(
        browser
            .client
            .find(Locator::Id("roll-once"))
            .await
            .unwrap()
            .is_enabled()
            .await
            .unwrap(),
        "the page still works"
    );
    browser
        .screenshot(&screenshot_path("die-service-down.png"))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn roll_multiple_in_the_page_is_one_trace_from_the_frontend_to_every_roll() {
    let lab = Lab::start().await;
    let browser = Browser::start().await;
    browser.open_hydrated(&lab.frontend.url()).await;
    browser.choose("fair").await;
    browser.roll_multiple("10").await;
    rolls_shown(&browser, 10).await;
    let trace_id = browser.text("trace-id").await;

    let trace = lab
        .receiver
        .wait_for_trace(&trace_id, WAIT, |t| t.has_roll_request(true, 10, 1))
        .await;
    let (root, _) = assert_frontend_root(&trace, "/api/roll-async", "/roll-async");
    assert_resource(root, "frontend");
    let shape = assert_roll_async(&trace, "fair", 10, 1);
    let values: Vec<i64> = shape
        .rolls
        .iter()
        .map(|r| r.attr("roll.value").as_i64().unwrap())
        .collect();
    let shown: Vec<i64> = browser
        .texts("#rolls li")
        .await
        .iter()
        .map(|t| t.parse().unwrap())
        .collect();
    assert_eq!(values, shown, "the page shows what the spans recorded");
}
