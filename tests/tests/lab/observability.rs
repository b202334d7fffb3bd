//! The observability stack's configuration, checked against real components where the suite has
//! them: every file parses, the ports agree with the table of the lab's parts and with each other,
//! `promtool` accepts the Prometheus configuration, and a real Prometheus, scraping the real
//! services with the project's own scrape configuration, answers every PromQL query of every
//! dashboard panel with data. Loki, Tempo, Alloy and Grafana do not run in the suite; their files
//! are checked against their rules in `backend_configs.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lab_tests::dashboards;
use lab_tests::http::Target as _;
use lab_tests::in_process::{
    Running, dice_roller, die_service, frontend, frontend_settings, roller_settings,
};
use lab_tests::repo::{self, json};
use parts::Part;
use serde_json::Value;

/// The Alloy components the configuration may use.
const ALLOY_COMPONENTS: &[&str] = &[
    "otelcol.receiver.otlp",
    "otelcol.processor.batch",
    "otelcol.exporter.otlp",
    "loki.process",
    "loki.write",
    "loki.relabel",
    "loki.source.file",
    "loki.source.journal",
    "local.file_match",
];

/// Blocks inside components.
const ALLOY_BLOCKS: &[&str] = &[
    "grpc",
    "http",
    "output",
    "client",
    "tls",
    "endpoint",
    "rule",
    "stage.json",
    "stage.labels",
    "stage.structured_metadata",
    "stage.timestamp",
];

#[test]
fn every_configuration_file_parses() {
    for dir in ["observability", "observability/grafana", "dashboards"] {
        for file in repo::files(dir, "json") {
            let text = std::fs::read_to_string(&file).unwrap();
            serde_json::from_str::<Value>(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        }
    }
    let alloy = repo::files("observability/alloy", "alloy");
    assert!(
        alloy.len() >= 4,
        "the Alloy configuration is split by concern"
    );
    for file in alloy {
        check_alloy(&file);
    }
}

/// Balanced blocks, brackets and strings, and only known component and block names.
fn check_alloy(file: &Path) {
    let text = std::fs::read_to_string(file).unwrap();
    let name = file.display();
    let mut depth: Vec<char> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let code = strip_comment(line);
        assert_eq!(
            code.matches('"').count() % 2,
            0,
            "{name}:{}: unbalanced quotes",
            number + 1
        );
        let trimmed = code.trim();
        if trimmed.ends_with('{') && !trimmed.contains('=') {
            let header: Vec<&str> = trimmed.trim_end_matches('{').split_whitespace().collect();
            let component = header[0];
            if depth.is_empty() {
                assert!(
                    ALLOY_COMPONENTS.contains(&component),
                    "{name}:{}: unknown component {component}",
                    number + 1
                );
                assert_eq!(
                    header.len(),
                    2,
                    "{name}:{}: a component has one label",
                    number + 1
                );
                assert!(
                    header[1].starts_with('"') && header[1].ends_with('"'),
                    "{name}:{}: the label is a string",
                    number + 1
                );
            } else {
                assert!(
                    ALLOY_BLOCKS.contains(&component),
                    "{name}:{}: unknown block {component}",
                    number + 1
                );
            }
        }
        let mut in_string = false;
        for c in code.chars() {
            match c {
                '"' => in_string = !in_string,
                '{' | '[' | '(' if !in_string => depth.push(c),
                '}' | ']' | ')' if !in_string => {
                    let open = depth
                        .pop()
                        .unwrap_or_else(|| panic!("{name}:{}: '{c}' closes nothing", number + 1));
                    let expected = match open {
                        '{' => '}',
                        '[' => ']',
                        _ => ')',
                    };
                    assert_eq!(
                        c,
                        expected,
                        "{name}:{}: '{open}' closed by '{c}'",
                        number + 1
                    );
                }
                _ => {}
            }
        }
    }
    assert!(depth.is_empty(), "{name}: unclosed {depth:?}");
    // Every component a file refers to exists somewhere in the configuration.
    let all: String = repo::files("observability/alloy", "alloy")
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    for reference in text.split(|c: char| c.is_whitespace() || "[],=".contains(c)) {
        if let Some(component) = reference
            .strip_suffix(".receiver")
            .or_else(|| reference.strip_suffix(".input"))
            .or_else(|| reference.strip_suffix(".targets"))
            .or_else(|| reference.strip_suffix(".rules"))
        {
            let (kind, label) = component
                .rsplit_once('.')
                .unwrap_or_else(|| panic!("{name}: odd reference {reference}"));
            assert!(
                all.contains(&format!("{kind} \"{label}\"")),
                "{name}: {reference} refers to no component"
            );
        }
    }
}

/// The line without a `//` comment (a `//` inside a string, as in a URL, is no comment).
fn strip_comment(line: &str) -> &str {
    let mut in_string = false;
    let bytes = line.as_bytes();
    for i in 0..bytes.len() {
        match bytes[i] {
            b'"' => in_string = !in_string,
            b'/' if !in_string && bytes.get(i + 1) == Some(&b'/') => return &line[..i],
            _ => {}
        }
    }
    line
}

fn port_of(address: &str) -> u16 {
    let authority = address
        .split("://")
        .last()
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    authority
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("no port in {address}"))
        .1
        .parse()
        .unwrap()
}

fn alloy_value(file: &str, key: &str, after: &str) -> String {
    let text =
        std::fs::read_to_string(repo::root().join("observability/alloy").join(file)).unwrap();
    let start = text
        .find(after)
        .unwrap_or_else(|| panic!("{file}: no {after}"));
    let line = text[start..]
        .lines()
        .find(|l| l.trim_start().starts_with(key))
        .unwrap_or_else(|| panic!("{file}: no {key} after {after}"));
    line.split('"').nth(1).unwrap().to_owned()
}

/// Every port each backend's file names is the one the table of the lab's parts gives it, and
/// the files agree with each other (who scrapes, pushes to or queries whom).
#[test]
fn ports_agree_with_the_table_and_with_each_other() {
    let prometheus = json("observability/prometheus.json");
    let targets: BTreeMap<String, u16> = prometheus["scrape_configs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|job| {
            (
                job["job_name"].as_str().unwrap().to_owned(),
                port_of(job["static_configs"][0]["targets"][0].as_str().unwrap()),
            )
        })
        .collect();
    // Prometheus scrapes every part, itself included, at its port; the store stands on Tempo's
    // port, so the `tempo` job scrapes it when it runs.
    for part in Part::all().filter(|p| !matches!(p, Part::Grafana | Part::Store)) {
        assert_eq!(targets[part.name()], part.port(), "the {part} scrape");
    }

    let flags = json("observability/prometheus-flags.json");
    let listen = flags
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .find_map(|f| f.strip_prefix("--web.listen-address="))
        .unwrap();
    let loki = json("observability/loki.json");
    let tempo = json("observability/tempo.json");
    let grafana = json("observability/grafana/datasources.json");
    let datasource = |uid: &str| {
        grafana["datasources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["uid"] == uid)
            .unwrap_or_else(|| panic!("no {uid} data source"))["url"]
            .as_str()
            .unwrap()
            .to_owned()
    };

    // Prometheus: its own flag, Tempo's remote write, Grafana.
    assert_eq!(port_of(listen), Part::Prometheus.port());
    assert_eq!(
        port_of(
            tempo["metrics_generator"]["storage"]["remote_write"][0]["url"]
                .as_str()
                .unwrap()
        ),
        Part::Prometheus.port()
    );
    assert_eq!(port_of(&datasource("prometheus")), Part::Prometheus.port());
    // Loki: its server, Alloy's writer, Grafana; its gRPC port.
    assert_eq!(
        loki["server"]["http_listen_port"].as_u64(),
        Some(u64::from(Part::Loki.port()))
    );
    assert_eq!(
        port_of(&alloy_value("logs.alloy", "url", "loki.write")),
        Part::Loki.port()
    );
    assert_eq!(port_of(&datasource("loki")), Part::Loki.port());
    assert_eq!(
        [loki["server"]["grpc_listen_port"].as_u64().unwrap() as u16],
        Part::Loki.other_ports()
    );
    // Tempo: its HTTP API for Grafana; gRPC and OTLP receivers (where Alloy exports).
    assert_eq!(
        tempo["server"]["http_listen_port"].as_u64(),
        Some(u64::from(Part::Tempo.port()))
    );
    assert_eq!(port_of(&datasource("tempo")), Part::Tempo.port());
    let otlp = &tempo["distributor"]["receivers"]["otlp"]["protocols"];
    let tempo_otlp_grpc = port_of(otlp["grpc"]["endpoint"].as_str().unwrap());
    assert_eq!(
        [
            tempo["server"]["grpc_listen_port"].as_u64().unwrap() as u16,
            tempo_otlp_grpc,
            port_of(otlp["http"]["endpoint"].as_str().unwrap()),
        ],
        Part::Tempo.other_ports()
    );
    assert_eq!(
        port_of(&alloy_value(
            "traces.alloy",
            "endpoint",
            "otelcol.exporter.otlp"
        )),
        tempo_otlp_grpc
    );
    // Alloy receives OTLP where the services send it by default (4318, HTTP; 4317, gRPC).
    assert_eq!(
        [
            port_of(&alloy_value("traces.alloy", "endpoint", "grpc {")),
            port_of(&alloy_value("traces.alloy", "endpoint", "http {")),
        ],
        Part::Alloy.other_ports()
    );
    assert_eq!(
        port_of(telemetry::DEFAULT_OTLP_ENDPOINT),
        Part::Alloy.other_ports()[1]
    );
    // Grafana.
    assert_eq!(
        json("observability/grafana/settings.json")["server"]["http_port"].as_u64(),
        Some(u64::from(Part::Grafana.port()))
    );
}

#[test]
fn promtool_accepts_the_prometheus_configuration() {
    let out = Command::new("promtool")
        .args(["check", "config"])
        .arg(repo::root().join("observability/prometheus.json"))
        .output()
        .unwrap_or_else(|e| panic!("promtool is needed (Debian: apt-get install prometheus): {e}"));
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn dashboards_use_the_provisioned_data_sources_and_no_fixed_instances() {
    let uids: Vec<String> = json("observability/grafana/datasources.json")["datasources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["uid"].as_str().unwrap().to_owned())
        .collect();
    let dashboards = repo::files("dashboards", "json");
    assert!(dashboards.len() >= 4);
    for file in dashboards {
        let dashboard: Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let name = file.display();
        for panel in dashboard["panels"].as_array().unwrap() {
            let uid = panel["datasource"]["uid"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: panel without a data source uid"));
            assert!(
                uids.iter().any(|u| u == uid),
                "{name}: unknown data source {uid}"
            );
            for target in panel["targets"].as_array().unwrap() {
                let expr = target["expr"].as_str().unwrap_or_default();
                assert!(
                    !expr.contains("instance="),
                    "{name}: a fixed instance in {expr}"
                );
                if expr.contains("rate(") {
                    assert!(
                        expr.contains("$__rate_interval") || expr.contains("$__range"),
                        "{name}: {expr}"
                    );
                }
            }
        }
    }
}

/// A Prometheus process with a data directory of its own.
struct Prometheus {
    child: Child,
    url: String,
    dir: PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts Debian's Prometheus with the project's configuration and flags, the services' targets
/// pointed at `services` (job name → address) and a 1 s scrape interval.
async fn prometheus(services: &BTreeMap<&str, String>) -> Prometheus {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(format!("dice-lab-prometheus-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut config = json("observability/prometheus.json");
    config["global"]["scrape_interval"] = "1s".into();
    for job in config["scrape_configs"].as_array_mut().unwrap() {
        let name = job["job_name"].as_str().unwrap().to_owned();
        if let Some(address) = services.get(name.as_str()) {
            job["static_configs"][0]["targets"] = serde_json::json!([address]);
        } else if name == "prometheus" {
            job["static_configs"][0]["targets"] = serde_json::json!([format!("127.0.0.1:{port}")]);
        }
    }
    let file = dir.join("prometheus.yml");
    std::fs::write(&file, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    let flags: Vec<String> = json("observability/prometheus-flags.json")
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .map(|f| {
            if f.starts_with("--web.listen-address=") {
                format!("--web.listen-address=127.0.0.1:{port}")
            } else {
                f.to_owned()
            }
        })
        .collect();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", file.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .args(&flags)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("prometheus is needed (Debian: apt-get install prometheus): {e}")
        });
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !reqwest::get(format!("{url}/-/ready"))
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(Instant::now() < deadline, "prometheus did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Prometheus { child, url, dir }
}

async fn query(prometheus: &Prometheus, expr: &str) -> Value {
    let url = reqwest::Url::parse_with_params(
        &format!("{}/api/v1/query", prometheus.url),
        [("query", expr)],
    )
    .unwrap();
    let body: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    assert_eq!(body["status"], "success", "{expr}: {body}");
    body["data"]["result"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_dashboard_query_returns_data_from_a_real_prometheus() {
    let dice = die_service(None).await;
    let mut settings = roller_settings(&dice.url());
    settings.roll_delay_ms = "0..20".parse().unwrap();
    let roller = dice_roller(settings).await;
    let front = frontend(frontend_settings(&dice.url(), &roller.url())).await;
    let address = |r: &Running| r.addr().to_string();
    let services = BTreeMap::from([
        ("die-service", address(&dice)),
        ("dice-roller", address(&roller)),
        ("frontend", address(&front)),
    ]);
    let prometheus = prometheus(&services).await;
    // Prometheus hands new targets to its scrapers every few seconds: wait for the first scrapes.
    let deadline = Instant::now() + Duration::from_secs(30);
    while query(
        &prometheus,
        "count(up{job=~\"frontend|dice-roller|die-service\"} == 1)",
    )
    .await[0]["value"][1]
        != "3"
    {
        assert!(
            Instant::now() < deadline,
            "prometheus never scraped the three services"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Known traffic over several scrapes: sync and async, every mode, failing dice, the page.
    let http = reqwest::Client::new();
    for round in 0..6 {
        let mut paths = vec![
            "/".to_owned(),
            "/api/roll?die=fair".to_owned(),
            "/api/roll?die=extreme".to_owned(),
            "/api/roll-async?die=loaded&times=60".to_owned(),
            "/api/roll-async?die=extreme&times=20".to_owned(),
            "/api/roll-async?die=fair&times=10&fetch=each".to_owned(),
            "/api/dice".to_owned(),
        ];
        paths.push(format!("/api/roll?die=d{}", [4, 6, 8][round % 3]));
        for path in paths {
            http.get(format!("{}{path}", front.url()))
                .send()
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let jobs: Value = reqwest::get(format!(
        "{}/api/v1/label/job/values?match[]=http_requests_total",
        prometheus.url
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    for job in ["frontend", "dice-roller", "die-service"] {
        assert!(
            jobs["data"].as_array().unwrap().iter().any(|j| j == job),
            "the service variable offers {job}: {jobs}"
        );
    }

    let mut checked = 0;
    let mut tempo_only = Vec::new();
    for target in dashboards::targets() {
        if target.datasource != "prometheus" {
            continue;
        }
        let concrete = dashboards::concrete(&target.expr);
        let result = query(&prometheus, &concrete).await;
        let title = target.title;
        if dashboards::TEMPO_GENERATED
            .iter()
            .any(|m| target.expr.contains(m))
        {
            tempo_only.push(title);
            continue;
        }
        let finite = result.as_array().unwrap().iter().any(|sample| {
            sample["value"][1]
                .as_str()
                .and_then(|v| v.parse::<f64>().ok())
                .is_some_and(f64::is_finite)
        });
        assert!(finite, "{title}: no data for {concrete}: {result}");
        // A bar chart draws one bar per value of its x field: a label of every series.
        if let Some(x) = target.panel["options"]["xField"].as_str() {
            let bars: BTreeSet<&str> = result
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    s["metric"][x]
                        .as_str()
                        .unwrap_or_else(|| panic!("{title}: a series without {x}: {s}"))
                })
                .collect();
            assert!(bars.len() >= 2, "{title}: bars {bars:?}");
        }
        checked += 1;
    }
    eprintln!(
        "{checked} dashboard queries returned data; valid PromQL only, as Tempo writes their metrics: {tempo_only:?}"
    );
    assert!(checked >= 15);
    assert!(!tempo_only.is_empty());

    // The loaded die stands out: its top face is three times as likely as on a fair die.
    let loaded = query(
        &prometheus,
        "max by (die_type) (die_face_ratio) * on (die_type) count by (die_type) (die_face_ratio)",
    )
    .await;
    let factor = |die: &str| {
        loaded
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["metric"]["die_type"] == die)
            .and_then(|s| s["value"][1].as_str()?.parse::<f64>().ok())
    };
    assert_eq!(factor("fair"), Some(1.0));
    assert_eq!(factor("loaded"), Some(3.0));
}
