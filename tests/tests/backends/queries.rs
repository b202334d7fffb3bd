//! What Grafana asks of the backends, asked of the real ones: Tempo's search finds a click within
//! 5 s of its answer; after a short mixed load every provisioned query returns data (each
//! dashboard's PromQL, including the span-metrics and service-graph panels that Tempo's metrics
//! generator feeds over remote write; each LogQL target on Loki; the TraceQL table; the service
//! map; the Tempo data source's search; the traces-to-logs, traces-to-metrics and logs-to-trace
//! links after Grafana's own substitution); and under synchronous traffic only, the "Time
//! concurrency saves" panel reads 0.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lab_tests::dashboards::{self, TEMPO_GENERATED};
use lab_tests::process::binary;
use lab_tests::{repo, wait};
use parts::Part;
use serde_json::Value;

use crate::lab::Lab;
use crate::read_back::roll_multiple;

/// How long after its answer Tempo's search must find a click.
const SEARCH_WITHIN: Duration = Duration::from_secs(5);

fn now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap()
}

async fn get_json(url: reqwest::Url) -> Value {
    let answer = reqwest::get(url.clone())
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = answer.status();
    let text = answer.text().await.unwrap();
    assert!(status.is_success(), "{url}: {status}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: {e}: {text}"))
}

/// `data.result` of a Prometheus or Loki answer, as a list.
async fn result(url: reqwest::Url) -> Vec<Value> {
    let body = get_json(url).await;
    body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Tempo's `/api/search` with `params` and the last hour as its range, as Grafana's Tempo data
/// source asks it.
async fn tempo_search(params: &[(&str, &str)]) -> Vec<String> {
    let mut query: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let now = now().as_secs();
    query.push(("start".into(), (now - 3600).to_string()));
    query.push(("end".into(), (now + 60).to_string()));
    let url =
        reqwest::Url::parse_with_params(&format!("{}/api/search", Part::Tempo.local_url()), &query)
            .unwrap();
    let body = get_json(url).await;
    body["traces"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["traceID"].as_str())
        // Tempo leaves out a trace id's leading zeros.
        .map(|id| format!("{id:0>32}"))
        .collect()
}

/// The TraceQL of the dashboards' table of recent Roll Multiple traces.
fn table_traceql() -> String {
    dashboards::targets()
        .into_iter()
        .find(|t| t.query_type.as_deref() == Some("traceql"))
        .expect("a TraceQL table panel")
        .expr
}

pub async fn tempo_search_finds_a_click_within_5_s(lab: &mut Lab) {
    let traceql = table_traceql();
    // The table asks for the 20 most recent, as Grafana does; the other two ask for enough that
    // the click is among them whatever order Tempo answers in, so they measure the lag alone.
    let searches: [(&str, Vec<(&str, &str)>); 3] = [
        ("a plain search", vec![("limit", "5000")]),
        (
            "the table panel's TraceQL",
            vec![("q", traceql.as_str()), ("limit", "20")],
        ),
        (
            "a tag search",
            vec![("tags", "service.name=frontend"), ("limit", "5000")],
        ),
    ];
    let mut worst = Duration::ZERO;
    for _ in 0..3 {
        let (trace_id, _) = roll_multiple(lab, 5).await;
        let clicked = Instant::now();
        for (what, params) in &searches {
            let found = wait::until(
                Duration::from_secs(60),
                Duration::from_millis(100),
                || async {
                    if tempo_search(params).await.contains(&trace_id) {
                        Ok(clicked.elapsed())
                    } else {
                        Err(format!("{what} never found {trace_id}"))
                    }
                },
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
            eprintln!(
                "tempo {}: {what} found the click {:.2} s after its answer",
                lab.tempo_version,
                found.as_secs_f64()
            );
            worst = worst.max(found);
        }
    }
    assert!(
        worst <= SEARCH_WITHIN,
        "Tempo's search took {:.1} s to find a click; it must within {} s",
        worst.as_secs_f64(),
        SEARCH_WITHIN.as_secs()
    );
}

/// A PromQL query's samples now.
async fn promql(expr: &str) -> Vec<Value> {
    let url = reqwest::Url::parse_with_params(
        &format!("{}/api/v1/query", Part::Prometheus.local_url()),
        [("query", expr)],
    )
    .unwrap();
    result(url).await
}

/// Whether a sample's value is a finite number.
fn finite(sample: &Value) -> bool {
    sample["value"][1]
        .as_str()
        .and_then(|v| v.parse::<f64>().ok())
        .is_some_and(f64::is_finite)
}

/// Waits until `expr` has a finite sample, and returns the samples.
async fn promql_data(title: &str, expr: &str) -> Vec<Value> {
    wait::until(
        Duration::from_secs(60),
        Duration::from_millis(500),
        || async {
            let result = promql(expr).await;
            if result.iter().any(finite) {
                Ok(result)
            } else {
                Err(format!("{title}: no data for {expr}"))
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

/// A LogQL `query_range` over the last `window` on Loki: its streams.
async fn logql(expr: &str, window: (Duration, Duration)) -> Vec<Value> {
    let url = reqwest::Url::parse_with_params(
        &format!("{}/loki/api/v1/query_range", Part::Loki.local_url()),
        [
            ("query", expr),
            ("start", &window.0.as_nanos().to_string()),
            ("end", &window.1.as_nanos().to_string()),
            ("limit", "100"),
        ],
    )
    .unwrap();
    result(url).await
}

/// Waits (at most 20 s) until the LogQL `expr` finds lines in `window`, and returns its streams.
async fn logql_lines(what: &str, expr: &str, window: (Duration, Duration)) -> Vec<Value> {
    wait::until(
        Duration::from_secs(20),
        Duration::from_millis(300),
        || async {
            let streams = logql(expr, window).await;
            if streams.is_empty() {
                Err(format!("{what}: no lines for {expr}"))
            } else {
                Ok(streams)
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

/// A value of Grafana's provisioning file after its own expansion: `$$` is a literal `$`.
fn provisioned(text: &str) -> String {
    text.replace("$$", "$")
}

pub async fn every_provisioned_query_returns_data(lab: &mut Lab) {
    // A short mixed load, as `dice-lab load` sends it, with failing dice among it.
    let load = tokio::process::Command::new(binary("dice-lab"))
        .args([
            "load",
            "--url",
            &lab.frontend_url(),
            "--rate",
            "10",
            "--duration",
            "15s",
        ])
        .output()
        .await
        .expect("dice-lab load runs");
    assert!(
        load.status.success(),
        "{}",
        String::from_utf8_lossy(&load.stderr)
    );
    for _ in 0..5 {
        // Some fail (500), as the extreme die does: lines at error level for the warnings panel.
        lab_tests::http::send(
            reqwest::Method::GET,
            &format!("{}/api/roll?die=extreme", lab.frontend_url()),
            None,
        )
        .await;
    }
    let load_window = (
        now() - Duration::from_secs(600),
        now() + Duration::from_secs(60),
    );

    let mut checked = Vec::new();
    let mut generated = 0;
    for target in dashboards::targets() {
        if TEMPO_GENERATED.iter().any(|m| target.expr.contains(m))
            || target.query_type.as_deref() == Some("serviceMap")
        {
            generated += 1;
        }
        let expr = dashboards::concrete(&target.expr);
        match (target.datasource.as_str(), target.query_type.as_deref()) {
            ("prometheus", _) => {
                promql_data(&target.title, &expr).await;
            }
            ("loki", _) => {
                let streams = logql_lines(&target.title, &expr, load_window).await;
                assert!(
                    streams
                        .iter()
                        .all(|s| !s["values"].as_array().unwrap().is_empty())
                );
            }
            ("tempo", Some("traceql")) => {
                let found = tempo_search(&[("q", &expr), ("limit", "20")]).await;
                assert!(!found.is_empty(), "{}: no traces for {expr}", target.title);
            }
            ("tempo", Some("serviceMap")) => {
                // Grafana's service map reads the service-graph series from the data source
                // its `serviceMap` setting names, Prometheus: each edge the lab's calls make.
                let edges = promql_data(
                    &target.title,
                    "sum by (client, server) (rate(traces_service_graph_request_total[1m]))",
                )
                .await;
                for (client, server) in
                    [("frontend", "dice-roller"), ("dice-roller", "die-service")]
                {
                    assert!(
                        edges
                            .iter()
                            .any(|e| e["metric"]["client"] == client
                                && e["metric"]["server"] == server),
                        "{}: no edge {client} → {server} in {edges:?}",
                        target.title
                    );
                }
                promql_data(
                    &target.title,
                    "sum by (client, server) (rate(traces_service_graph_request_server_seconds_sum[1m]))",
                )
                .await;
            }
            (source, kind) => panic!(
                "{}: a target of {source} {kind:?} this test does not ask",
                target.title
            ),
        }
        checked.push(target.title);
    }
    eprintln!(
        "{} provisioned dashboard queries returned data",
        checked.len()
    );
    // After Roll Multiples, the concurrency panel reads their saving: async roll spans carry
    // their mode, and their time exceeds their requests'.
    let panel = dashboards::targets()
        .into_iter()
        .find(|t| t.title.ends_with("Time concurrency saves (from traces)"))
        .expect("the panel");
    let saved = promql_data(&panel.title, &panel.expr.replace("$__rate_interval", "1m")).await;
    let value: f64 = saved[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(value > 0.0, "{}: {saved:?}", panel.title);
    assert!(
        generated >= 3,
        "the span-metrics and service-graph panels are among them: {checked:?}"
    );
    data_source_links(lab).await;
}

/// The Tempo data source's search, and the links between traces, logs and metrics as Grafana
/// substitutes them in the provisioned data sources.
async fn data_source_links(lab: &Lab) {
    let sources = repo::json("observability/grafana/datasources.json");
    let source = |uid: &str| {
        sources["datasources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["uid"] == uid)
            .unwrap_or_else(|| panic!("no data source {uid}"))
            .clone()
    };
    let (trace_id, _) = roll_multiple(lab, 3).await;
    let trace = crate::read_back::whole_trace(&lab.frontend, &trace_id, 3).await;

    // The search editor offers the services by name.
    let url = reqwest::Url::parse(&format!(
        "{}/api/v2/search/tag/resource.service.name/values",
        Part::Tempo.local_url()
    ))
    .unwrap();
    let values = get_json(url).await;
    for part in Part::SERVICES {
        assert!(
            values["tagValues"]
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v["value"] == part.name()),
            "the search editor offers {part}: {values}"
        );
    }

    // Traces to logs: the custom query, for each span of the click, finds that span's service's
    // lines of the trace, within the shifts around the span.
    let tempo = source("tempo");
    let to_logs = &tempo["jsonData"]["tracesToLogsV2"];
    let template = provisioned(to_logs["query"].as_str().unwrap());
    let start = now() - Duration::from_secs(300);
    let end = now() + Duration::from_secs(300);
    for part in Part::SERVICES {
        let logql_text = template
            .replace("${__span.tags[\"service.name\"]}", part.name())
            .replace("${__trace.traceId}", &trace_id);
        assert!(
            !logql_text.contains('$'),
            "every variable substituted: {logql_text}"
        );
        let streams = logql_lines("the traces-to-logs link", &logql_text, (start, end)).await;
        assert!(
            streams
                .iter()
                .all(|s| s["stream"]["trace_id"] == trace_id.as_str())
        );
    }

    // Traces to metrics: each query, with the span's `service.name` as `job`.
    let tag = &tempo["jsonData"]["tracesToMetrics"]["tags"][0];
    for query in tempo["jsonData"]["tracesToMetrics"]["queries"]
        .as_array()
        .unwrap()
    {
        let text = provisioned(query["query"].as_str().unwrap())
            .replace(
                "$__tags",
                &format!("{}=\"{}\"", tag["value"].as_str().unwrap(), "dice-roller"),
            )
            .replace("$__rate_interval", "1m");
        promql_data(query["name"].as_str().unwrap(), &text).await;
    }

    // Logs to trace: the derived field's matcher picks the `trace_id` the line carries (Loki
    // answers structured metadata among the stream's labels), its URL is that value, and Tempo
    // has the trace.
    let loki = source("loki");
    let field = &loki["jsonData"]["derivedFields"][0];
    assert_eq!(field["matcherType"], "label");
    let matcher = regex::Regex::new(field["matcherRegex"].as_str().unwrap()).unwrap();
    let streams = logql(
        &format!("{{service=\"dice-roller\"}} |= \"{trace_id}\""),
        (start, end),
    )
    .await;
    let labels = streams[0]["stream"].as_object().unwrap();
    let (_, value) = labels
        .iter()
        .find(|(name, _)| matcher.is_match(name))
        .unwrap_or_else(|| panic!("no label matches {matcher} in {labels:?}"));
    let linked = provisioned(field["url"].as_str().unwrap())
        .replace("${__value.raw}", value.as_str().unwrap());
    assert_eq!(linked, trace_id);
    let url = reqwest::Url::parse(&format!(
        "{}/api/v2/traces/{linked}",
        Part::Tempo.local_url()
    ))
    .unwrap();
    let found = get_json(url).await;
    let spans = traces::tempo::read(found.to_string().as_bytes()).unwrap();
    assert_eq!(
        spans.len(),
        trace.spans.len(),
        "the linked trace is the click's"
    );
}

pub async fn sync_rolls_save_no_time_in_the_concurrency_panel(lab: &mut Lab) {
    let panel = dashboards::targets()
        .into_iter()
        .find(|t| t.title.ends_with("Time concurrency saves (from traces)"))
        .expect("the panel");
    // Only synchronous rolls from here: each its own `roll` span, none of them concurrent.
    let started = Instant::now();
    let interval = "30s";
    while started.elapsed() < Duration::from_secs(40) {
        lab.api("/api/roll?die=fair").await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rolls = promql_data(
        "roll span metrics",
        &format!("sum(rate(traces_spanmetrics_latency_sum{{span_name=\"roll\"}}[{interval}])) > 0"),
    )
    .await;
    eprintln!("roll spans' time per second under sync traffic: {rolls:?}");
    // The sync rolls are told apart by their `roll_mode` dimension.
    promql_data(
        "sync roll span metrics",
        "traces_spanmetrics_calls_total{span_name=\"roll\", roll_mode=\"sync\"}",
    )
    .await;
    let saved = promql(&panel.expr.replace("$__rate_interval", interval)).await;
    assert!(
        saved
            .iter()
            .all(|s| s["value"][1].as_str().and_then(|v| v.parse::<f64>().ok()) == Some(0.0))
            && !saved.is_empty(),
        "{}: with only synchronous rolls, concurrency saved nothing; the panel reads {saved:?}",
        panel.title
    );
}
