//! A click read back: the frontend's trace and log routes answered from Tempo and Loki hold the
//! Roll Multiple's overlapping rolls and their lines, and say exactly what the same routes say
//! when the lab's store answers them for the same spans and files (and so does `dice-lab
//! trace`, and so do the raw answers, field by field where the lab reads them); the page draws
//! the waterfall from them.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use frontend_ui::trace_api::{LogsAnswer, TraceAnswer};
use lab_tests::browser::Browser;
use lab_tests::http::Target as _;
use lab_tests::process::{Service, binary};
use lab_tests::wait;
use serde_json::Value;

use crate::lab::Lab;

/// How long a click's trace and lines may take to be whole in a backend.
const ARRIVAL: Duration = Duration::from_secs(15);

/// Rolls `times` dice through the frontend; the trace id and the values.
pub async fn roll_multiple(lab: &Lab, times: usize) -> (String, Vec<i64>) {
    let rolled = lab
        .api(&format!("/api/roll-async?die=fair&times={times}"))
        .await;
    let values = rolled["rolls"]
        .as_array()
        .expect("rolls")
        .iter()
        .filter_map(Value::as_i64)
        .collect();
    (
        rolled["trace_id"].as_str().expect("a trace id").to_owned(),
        values,
    )
}

/// The frontend's answer for `trace_id` once it holds `rolls` roll spans and waits for nothing.
pub async fn whole_trace(frontend: &Service, trace_id: &str, rolls: usize) -> TraceAnswer {
    wait::until(ARRIVAL, Duration::from_millis(100), || async {
        let (status, body) = frontend.get(&format!("/api/traces/{trace_id}")).await;
        if status != 200 {
            return Err(format!("{status}: {body}"));
        }
        let trace: TraceAnswer = serde_json::from_value(body).map_err(|e| e.to_string())?;
        let found = trace.spans.iter().filter(|s| s.name == "roll").count();
        if found == rolls && trace.waiting_for.is_empty() {
            Ok(trace)
        } else {
            Err(format!(
                "{found} of {rolls} rolls, waiting for {:?}",
                trace.waiting_for
            ))
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{} never had trace {trace_id} whole: {e}", frontend.url()))
}

/// The frontend's log lines for `trace_id` once there are at least `count`.
pub async fn trace_logs(frontend: &Service, trace_id: &str, count: usize) -> LogsAnswer {
    wait::until(ARRIVAL, Duration::from_millis(100), || async {
        let (status, body) = frontend.get(&format!("/api/traces/{trace_id}/logs")).await;
        if status != 200 {
            return Err(format!("{status}: {body}"));
        }
        let logs: LogsAnswer = serde_json::from_value(body).map_err(|e| e.to_string())?;
        if logs.lines.len() >= count {
            Ok(logs)
        } else {
            Err(format!("{} of {count} lines", logs.lines.len()))
        }
    })
    .await
    .unwrap_or_else(|e| {
        panic!(
            "{} never had {count} lines of {trace_id}: {e}",
            frontend.url()
        )
    })
}

/// The frontend's log lines for `trace_id` once there are at least `count` and a second read,
/// 1 s later, finds no more: the lines of one click arrive from several services' files.
pub async fn settled_logs(frontend: &Service, trace_id: &str, count: usize) -> LogsAnswer {
    let mut last = trace_logs(frontend, trace_id, count).await;
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = trace_logs(frontend, trace_id, last.lines.len()).await;
        if now == last {
            return now;
        }
        last = now;
    }
    panic!("the lines of {trace_id} never stopped changing: {last:?}")
}

pub async fn a_roll_multiple_reads_back_as_from_the_store(lab: &mut Lab) {
    let (trace_id, mut values) = roll_multiple(lab, 10).await;
    let clicked = Instant::now();
    let trace = whole_trace(&lab.frontend, &trace_id, 10).await;
    eprintln!(
        "the click's {} spans whole from Tempo {:.2} s after its answer",
        trace.spans.len(),
        clicked.elapsed().as_secs_f64()
    );
    let rolls: Vec<_> = trace.spans.iter().filter(|s| s.name == "roll").collect();
    let latest_start = rolls.iter().map(|r| r.start_ns).max().unwrap();
    let earliest_end = rolls.iter().map(|r| r.end_ns()).min().unwrap();
    assert!(
        latest_start < earliest_end,
        "the 10 roll spans overlap: all start before any ends"
    );
    let mut shown: Vec<i64> = rolls
        .iter()
        .filter_map(|r| r.attr("roll.value").as_i64())
        .collect();
    shown.sort_unstable();
    values.sort_unstable();
    assert_eq!(shown, values, "the rows carry the values the answer gave");

    // Each roll's log line, from Loki, with its span's id.
    let roll_ids: BTreeSet<&str> = rolls.iter().map(|r| r.span_id.as_str()).collect();
    let logs = wait::until(ARRIVAL, Duration::from_millis(200), || async {
        let logs = trace_logs(&lab.frontend, &trace_id, 1).await;
        let of_rolls = logs
            .lines
            .iter()
            .filter(|l| l.span_id.as_deref().is_some_and(|s| roll_ids.contains(s)))
            .count();
        if of_rolls == 10 {
            Ok(logs)
        } else {
            Err(format!("{of_rolls} of 10 roll lines in {:?}", logs.lines))
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "{} log lines of the click from Loki {:.2} s after its answer",
        logs.lines.len(),
        clicked.elapsed().as_secs_f64()
    );

    // The store, fed the same spans and reading the same files, answers the same.
    let from_store = whole_trace(&lab.store_frontend, &trace_id, 10).await;
    assert_eq!(
        from_store, trace,
        "the frontend's trace answer from the store is the one from Tempo"
    );
    let logs = settled_logs(&lab.frontend, &trace_id, logs.lines.len()).await;
    let store_logs = trace_logs(&lab.store_frontend, &trace_id, logs.lines.len()).await;
    assert_eq!(
        store_logs, logs,
        "the frontend's log answer from the store is the one from Loki"
    );
    let printed = [lab.frontend.url(), lab.store_frontend.url()].map(|url| {
        let out = std::process::Command::new(binary("dice-lab"))
            .args(["trace", &trace_id, "--url", &url])
            .env("COLUMNS", "120")
            .output()
            .expect("dice-lab trace runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    });
    assert_eq!(
        printed[0], printed[1],
        "dice-lab trace prints the same from Tempo and from the store"
    );
    raw_answers_agree(lab, &trace_id).await;
}

/// Tempo's and the store's trace-by-id (v1 and v2), and Loki's and the store's `query_range`, on
/// every field the lab reads.
async fn raw_answers_agree(lab: &Lab, trace_id: &str) {
    let tempo = parts::Part::Tempo.local_url();
    let loki = parts::Part::Loki.local_url();
    let store_tempo = format!("http://{}", lab.store.addrs()[0]);
    let store_loki = format!("http://{}", lab.store.addrs()[2]);
    for path in [
        format!("/api/traces/{trace_id}"),
        format!("/api/v2/traces/{trace_id}"),
    ] {
        let read = |base: String| {
            let path = path.clone();
            async move {
                let body = reqwest::get(format!("{base}{path}"))
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
                let mut spans =
                    traces::tempo::read(&body).unwrap_or_else(|e| panic!("{base}{path}: {e}"));
                spans.sort_by(|a, b| a.span_id.cmp(&b.span_id));
                spans
            }
        };
        let (real, ours) = (read(tempo.clone()).await, read(store_tempo.clone()).await);
        assert!(!real.is_empty());
        assert_eq!(real, ours, "{path}: Tempo and the store");
    }
    for unknown in [
        format!("/api/traces/{}", "ab".repeat(16)),
        format!("/api/v2/traces/{}", "ab".repeat(16)),
        "/api/traces/not-a-trace".to_owned(),
    ] {
        let status = |base: String| {
            let unknown = unknown.clone();
            async move {
                reqwest::get(format!("{base}{unknown}"))
                    .await
                    .unwrap()
                    .status()
            }
        };
        assert_eq!(
            status(tempo.clone()).await,
            status(store_tempo.clone()).await,
            "{unknown}: the same status from Tempo and the store"
        );
    }
    let query = format!("{{service=~\".+\"}} |= \"{trace_id}\"");
    let lines = |base: String| {
        let query = query.clone();
        async move {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            let url = reqwest::Url::parse_with_params(
                &format!("{base}/loki/api/v1/query_range"),
                [
                    ("query", query.as_str()),
                    (
                        "start",
                        &(now - Duration::from_secs(3600)).as_nanos().to_string(),
                    ),
                    (
                        "end",
                        &(now + Duration::from_secs(60)).as_nanos().to_string(),
                    ),
                    ("limit", "1000"),
                    ("direction", "forward"),
                ],
            )
            .unwrap();
            let body: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
            assert_eq!(body["status"], "success", "{base}: {body}");
            assert_eq!(body["data"]["resultType"], "streams", "{base}: {body}");
            let mut seen = BTreeSet::new();
            for stream in body["data"]["result"].as_array().unwrap() {
                let label = |k: &str| stream["stream"][k].as_str().unwrap_or("").to_owned();
                for value in stream["values"].as_array().unwrap() {
                    seen.insert((
                        value[0].as_str().unwrap().to_owned(),
                        value[1].as_str().unwrap().to_owned(),
                        label("service"),
                        label("level"),
                        label("trace_id"),
                        label("span_id"),
                    ));
                }
            }
            seen
        }
    };
    let (real, ours) = (lines(loki).await, lines(store_loki).await);
    assert!(!real.is_empty());
    assert_eq!(
        real, ours,
        "Loki's and the store's query_range for the trace's lines"
    );
}

pub async fn the_page_draws_the_waterfall(lab: &mut Lab) {
    let browser = Browser::start().await;
    browser.open_hydrated(&lab.frontend.url()).await;
    browser.choose("fair").await;
    browser.roll_multiple("10").await;
    browser
        .wait_until(
            "the waterfall from Tempo holds 10 roll rows, whole, with their log lines",
            ARRIVAL,
            async || {
                browser.texts(".span-row[data-name='roll']").await.len() == 10
                    && browser.text("trace-status").await.is_empty()
                    && browser.texts(".log-line").await.len() >= 10
            },
        )
        .await;
    let path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("screenshots")
        .join(format!("real-backends-tempo-{}.png", lab.tempo_version));
    browser.screenshot(&path).await;
}
