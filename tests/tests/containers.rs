//! The services in containers on a user-defined network, talking to each other by container name,
//! exporting OTLP to a receiver in this process through the host gateway. The trace assertions are
//! the same helpers the process suite uses.
//!
//! Without Docker these tests are reported as ignored, with the reason, unless
//! `LAB_REQUIRE_DOCKER=1` (CI sets it), which makes them fail instead.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use lab_tests::containers::{self, REQUIRE_DOCKER};
use lab_tests::http::Target;
use lab_tests::otlp::{Receiver, StatusCode};
use lab_tests::trace::{
    Expect as _, Trace, assert_frontend_root, assert_roll_async, max_concurrency, total_duration_ns,
};
use libtest_mimic::{Arguments, Failed, Trial};
use parts::Part;
use serde_json::Value;
use testcontainers::core::Host;
use testcontainers::runners::AsyncRunner as _;
use testcontainers::{ContainerAsync, GenericImage, ImageExt as _};

const WAIT: Duration = Duration::from_secs(30);

type Test = fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

fn main() -> std::process::ExitCode {
    let args = Arguments::from_args();
    let tests: [(&str, Test); 5] = [
        ("roll_multiple_is_one_trace_across_the_containers", || {
            Box::pin(roll_multiple_is_one_trace_across_the_containers())
        }),
        ("fetch_each_gives_n_die_service_spans", || {
            Box::pin(fetch_each_gives_n_die_service_spans())
        }),
        (
            "a_die_service_outage_is_a_traced_503_and_heals_by_itself",
            || Box::pin(a_die_service_outage_is_a_traced_503_and_heals_by_itself()),
        ),
        ("docker_stop_loses_no_finished_span", || {
            Box::pin(docker_stop_loses_no_finished_span())
        }),
        (
            "fault_switches_answer_other_hosts_only_with_the_token",
            || Box::pin(fault_switches_answer_other_hosts_only_with_the_token()),
        ),
    ];
    let docker = containers::docker();
    let required = std::env::var(REQUIRE_DOCKER).is_ok_and(|v| v == "1");
    if let Err(why) = &docker {
        if required {
            eprintln!("containers: {REQUIRE_DOCKER}=1 but {why}");
        } else {
            eprintln!(
                "containers: SKIPPED, not passed: {why}. Set {REQUIRE_DOCKER}=1 to make this an error."
            );
        }
    }
    let started = Instant::now();
    let trials = tests
        .into_iter()
        .map(|(name, test)| {
            let docker = docker.clone();
            let skip = docker.is_err() && !required;
            Trial::test(name, move || match docker {
                Ok(()) => run(test),
                Err(why) => Err(Failed::from(format!(
                    "Docker is required ({REQUIRE_DOCKER}=1) but {why}"
                ))),
            })
            .with_ignored_flag(skip)
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    eprintln!(
        "containers: suite took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    conclusion.exit_code()
}

/// Runs a test on the one runtime all container tests share (testcontainers keeps one Docker
/// client per process).
fn run(test: Test) -> Result<(), Failed> {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
    });
    runtime.block_on(test());
    Ok(())
}

/// Three containers on their own network and the receiver they export to.
struct Lab {
    receiver: Receiver,
    die_service: ContainerAsync<GenericImage>,
    roller: ContainerAsync<GenericImage>,
    _frontend: ContainerAsync<GenericImage>,
    url: String,
}

/// The frontend's API, asked with the suites' request helpers.
impl Target for Lab {
    fn url(&self) -> String {
        self.url.clone()
    }
}

impl Lab {
    async fn start(roller_env: &[(&str, &str)]) -> Self {
        let receiver = Receiver::start_on("0.0.0.0:0").await;
        let otlp = format!("http://host.docker.internal:{}", receiver.port());
        let id = format!(
            "{:x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
                & 0xffff_ffff_ffff
        );
        let network = format!("dice-lab-{id}");
        let name = |part: Part| format!("dice-lab-{id}-{part}");
        let images = containers::images().await;
        let image = |part: Part| {
            images
                .iter()
                .find(|(p, _)| *p == part)
                .expect("an image per service")
                .1
                .clone()
        };
        let listen = |part: Part| {
            (
                format!("{}_LISTEN", part.env_prefix().expect("a service")),
                format!("0.0.0.0:{}", part.port()),
            )
        };
        let url = |part: Part| format!("http://{}:{}", name(part), part.port());

        let start = async |part: Part, env: Vec<(String, String)>| {
            let mut request = image(part)
                .with_network(network.clone())
                .with_container_name(name(part))
                .with_host("host.docker.internal", Host::HostGateway)
                .with_env_var("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.clone())
                .with_env_var("OTEL_BSP_SCHEDULE_DELAY", "100");
            for (key, value) in env {
                request = request.with_env_var(key, value);
            }
            request
                .start()
                .await
                .unwrap_or_else(|e| panic!("{part} does not start: {e}"))
        };
        let die_service = start(Part::DieService, vec![listen(Part::DieService)]).await;
        let mut env = vec![
            listen(Part::DiceRoller),
            ("DIE_SERVICE_URL".to_owned(), url(Part::DieService)),
            ("ROLL_DELAY_MS".to_owned(), "20..80".to_owned()),
        ];
        env.extend(
            roller_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let roller = start(Part::DiceRoller, env).await;
        let frontend = start(
            Part::Frontend,
            vec![
                listen(Part::Frontend),
                ("DIE_SERVICE_URL".to_owned(), url(Part::DieService)),
                ("DICE_ROLLER_URL".to_owned(), url(Part::DiceRoller)),
            ],
        )
        .await;
        let port = frontend
            .get_host_port_ipv4(Part::Frontend.port())
            .await
            .expect("a mapped port");
        Self {
            receiver,
            die_service,
            roller,
            _frontend: frontend,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn trace(&self, trace_id: &str, rolls: usize, served: usize) -> Trace {
        self.receiver
            .wait_for_trace(trace_id, WAIT, |t| t.has_roll_request(true, rolls, served))
            .await
    }
}

/// The JSON lines a container wrote to stdout so far.
async fn logs(container: &ContainerAsync<GenericImage>) -> Vec<Value> {
    let out = container.stdout_to_vec().await.expect("container logs");
    String::from_utf8_lossy(&out)
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line}"))
        })
        .collect()
}

async fn roll_multiple_is_one_trace_across_the_containers() {
    let lab = Lab::start(&[]).await;
    for times in [10, 100] {
        let (status, body) = lab
            .get(&format!("/api/roll-async?die=fair&times={times}"))
            .await;
        assert_eq!(status, 200, "{body}");
        let trace_id = body["trace_id"].as_str().expect("a trace id").to_owned();
        let trace = lab.trace(&trace_id, times, 1).await;
        assert_frontend_root(&trace, "/api/roll-async", "/roll-async");
        let shape = assert_roll_async(&trace, "fair", times, 1);
        assert!(
            total_duration_ns(&shape.rolls) > shape.server.duration_ns(),
            "N={times}: the rolls overlap"
        );
        assert!(
            max_concurrency(&shape.rolls) >= 2,
            "N={times}: rolls ran at the same time"
        );

        if times == 10 {
            let lines = logs(&lab.roller).await;
            let rolls: Vec<&Value> = lines
                .iter()
                .filter(|l| l["trace_id"] == trace_id.as_str() && l["roll_index"].is_u64())
                .collect();
            assert_eq!(rolls.len(), 10, "one log line per roll");
            for line in rolls {
                let span = shape.rolls[line["roll_index"].as_u64().unwrap() as usize];
                assert_eq!(line["span_id"], span.span_id.as_str());
            }
            let served = logs(&lab.die_service).await;
            let access = served
                .iter()
                .find(|l| l["trace_id"] == trace_id.as_str() && l["route"] == "/dice/{type}")
                .expect("the die-service's access line for this trace");
            assert_eq!(access["span_id"], shape.die_service[0].span_id.as_str());
        }
    }
}

async fn fetch_each_gives_n_die_service_spans() {
    let lab = Lab::start(&[]).await;
    let (status, body) = lab
        .get("/api/roll-async?die=fair&times=10&fetch=each")
        .await;
    assert_eq!(status, 200, "{body}");
    let trace_id = body["trace_id"].as_str().unwrap().to_owned();
    let trace = lab.trace(&trace_id, 10, 10).await;
    let shape = assert_roll_async(&trace, "fair", 10, 10);
    let first_roll = shape.rolls.iter().map(|r| r.start_ns).min().unwrap();
    let last_fetch = shape.clients.iter().map(|c| c.start_ns).max().unwrap();
    assert!(
        last_fetch < first_roll + 80_000_000,
        "the fetches start together"
    );
}

async fn a_die_service_outage_is_a_traced_503_and_heals_by_itself() {
    let lab = Lab::start(&[]).await;
    assert_eq!(lab.get("/api/roll?die=fair").await.0, 200);

    lab.die_service.stop().await.expect("docker stop");
    let (status, body) = lab.get("/api/roll?die=fair").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("die-service is unreachable"),
        "{body}"
    );
    let trace_id = body["trace_id"].as_str().unwrap().to_owned();
    let trace = lab
        .receiver
        .wait_for_trace(&trace_id, WAIT, |t| {
            t.count("dice-roller", "GET /roll") == 1 && t.count("dice-roller", "GET") == 1
        })
        .await;
    let server = trace.one("dice-roller", "GET /roll");
    assert_eq!(server.status, StatusCode::Error);
    assert_eq!(server.attr("http.response.status_code"), &Value::from(503));
    let call = trace.one("dice-roller", "GET");
    assert_eq!(call.status, StatusCode::Error);
    assert_eq!(call.attr("error.type"), &Value::from("unreachable"));

    lab.die_service.start().await.expect("docker start");
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, _) = lab.get("/api/roll?die=fair").await;
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the roller never reached the die-service again"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// From the host, a container sees a request from the Docker network, not from its own loopback:
/// the run-time fault switch refuses it, unless it carries the token the service was started with.
async fn fault_switches_answer_other_hosts_only_with_the_token() {
    let lab = Lab::start(&[("FAULT_TOKEN", "s3cret")]).await;
    let port = lab
        .roller
        .get_host_port_ipv4(Part::DiceRoller.port())
        .await
        .expect("a mapped port");
    let url = format!("http://127.0.0.1:{port}/admin/faults");
    let http = reqwest::Client::new();
    let put = |token: Option<&'static str>| {
        let mut request = http.put(&url).body(r#"{"sequential": true}"#);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        request.send()
    };

    for token in [None, Some("wrong")] {
        let response = put(token).await.expect("the roller answers");
        assert_eq!(response.status(), 403, "token {token:?}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("answer only on localhost"),
            "{body}"
        );
    }
    let (_, answer) = lab.get("/api/roll-async?die=fair&times=5").await;
    assert_eq!(answer["count"], 5, "refused changes changed nothing");

    let response = put(Some("s3cret")).await.expect("the roller answers");
    assert_eq!(response.status(), 200);
    let state: Value = response.json().await.unwrap();
    assert_eq!(state["sequential"], true);
    let (status, body) = lab.get("/api/roll-async?die=fair&times=5").await;
    assert_eq!(status, 200, "{body}");
    let trace = lab.trace(body["trace_id"].as_str().unwrap(), 5, 1).await;
    let shape = assert_roll_async(&trace, "fair", 5, 1);
    assert_eq!(
        max_concurrency(&shape.rolls),
        1,
        "the switch took effect:\n{}",
        trace.render()
    );
}

async fn docker_stop_loses_no_finished_span() {
    let lab = Lab::start(&[("OTEL_BSP_SCHEDULE_DELAY", "300000")]).await;
    let (status, body) = lab.get("/api/roll-async?die=fair&times=5").await;
    assert_eq!(status, 200, "{body}");
    let trace_id = body["trace_id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !lab.receiver
            .spans()
            .iter()
            .any(|s| s.service() == "dice-roller"),
        "the roller exports nothing before it stops"
    );
    lab.roller.stop().await.expect("docker stop");
    assert_eq!(
        lab.roller.exit_code().await.expect("an exit code"),
        Some(0),
        "a clean exit on SIGTERM"
    );
    let trace = lab.trace(&trace_id, 5, 1).await;
    assert_roll_async(&trace, "fair", 5, 1);
}
