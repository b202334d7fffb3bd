//! `dice-lab` as a user runs it: `up` with Debian's Prometheus on PATH (and the lab's store in
//! place of Alloy, Tempo and Loki), `status`, `load` whose traffic Prometheus then holds, a click's
//! trace and log lines read back through the frontend and printed by `dice-lab trace`, and a
//! SIGTERM that leaves no process and no port behind. These use the lab's fixed ports (8400-8402,
//! 9090, and the store's 3200, 4318, 3100), so they run one after another in one test. What
//! `dice-lab trace` says when there is no trace to print is checked apart, against a frontend and
//! store in the test on free ports.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use lab_tests::process::binary;
use lab_tests::{http, signal, wait};
use parts::Part;
use serde_json::Value;

/// The ports of what `dice-lab up` starts here: the services, Prometheus and the store.
const PORTS: [u16; 7] = [
    Part::Frontend.port(),
    Part::DiceRoller.port(),
    Part::DieService.port(),
    Part::Prometheus.port(),
    Part::Store.port(),
    Part::Store.other_ports()[0],
    Part::Store.other_ports()[1],
];

fn port_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

#[test]
fn dice_lab_up_load_status_and_a_clean_stop() {
    for port in PORTS {
        assert!(
            port_free(port),
            "port {port} is taken: stop whatever lab runs before testing"
        );
    }
    let scratch = lab_tests::fixtures::scratch_dir("up");
    let state = scratch.path();
    // Prometheus alone on PATH, whatever else this machine has installed (the real-backends suite
    // puts Tempo and Loki there): the store then stands in for Alloy, Tempo and Loki.
    let only_prometheus = scratch.path().join("bin");
    std::fs::create_dir_all(&only_prometheus).unwrap();
    let prometheus = std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|dir| dir.join("prometheus"))
        .find(|p| p.is_file())
        .expect("prometheus is needed (Debian: apt-get install prometheus)");
    std::os::unix::fs::symlink(&prometheus, only_prometheus.join("prometheus")).unwrap();

    // A taken port is named, and nothing starts.
    let blocker = std::net::TcpListener::bind("127.0.0.1:8401").unwrap();
    let refused = Command::new(binary("dice-lab"))
        .args(["up", "--state-dir"])
        .arg(state)
        .env("PATH", &only_prometheus)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("port 8401 (dice-roller) is already in use"),
        "{said}"
    );
    drop(blocker);
    assert!(PORTS.iter().all(|p| port_free(*p)), "nothing started");

    // Up: the services and Prometheus, ready, with a table of URLs.
    let mut up = Lab(Command::new(binary("dice-lab"))
        .args(["up", "--state-dir"])
        .arg(state)
        .env("PATH", &only_prometheus)
        .env("ROLL_DELAY_MS", "0..50")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap());
    let (lines, said) = mpsc::channel();
    let stderr = up.0.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let started = Instant::now();
    let mut output = Vec::new();
    while !output
        .iter()
        .any(|l: &String| l.contains("Ctrl-C stops everything"))
    {
        let line = said
            .recv_timeout(Duration::from_secs(60).saturating_sub(started.elapsed()))
            .unwrap_or_else(|_| panic!("dice-lab up did not get ready: {output:#?}"));
        output.push(line);
    }
    let ready = output
        .iter()
        .find(|l| l.contains("ready in"))
        .unwrap()
        .clone();
    eprintln!("dice-lab up: {}", ready.trim());
    for component in [
        "prometheus",
        "store",
        "die-service",
        "dice-roller",
        "frontend",
    ] {
        assert!(
            output
                .iter()
                .any(|l| l.contains('✓') && l.contains(component)),
            "{component} ready: {output:#?}"
        );
    }
    assert!(
        output
            .iter()
            .any(|l| l.contains("the lab's store stands in for loki, tempo, alloy")),
        "the store is explained: {output:#?}"
    );
    assert!(
        output.iter().any(|l| l.contains("http://127.0.0.1:8400/")),
        "the UI's URL is shown"
    );
    assert!(
        output
            .iter()
            .any(|l| l.contains("not on PATH") && l.contains("loki")),
        "missing backends are named"
    );
    assert!(
        state.join("logs/services/frontend.log").is_file(),
        "each component logs to a file"
    );

    let status = Command::new(binary("dice-lab"))
        .arg("status")
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("frontend") && l.contains(" up ")),
        "{table}"
    );

    assert!(
        table
            .lines()
            .any(|l| l.starts_with("store") && l.contains(" up ")),
        "{table}"
    );
    for standing_in_for in ["tempo", "loki"] {
        assert!(
            table.lines().any(|l| l.starts_with(standing_in_for)
                && l.contains(" down ")
                && l.ends_with("(the lab's store answers here in its place)")),
            "the store on its port is not taken for {standing_in_for}, and is named: {table}"
        );
    }

    // A Roll Multiple's trace and log lines come back through the frontend from the store, and
    // `dice-lab trace` prints them.
    let rolled = http::get_json_blocking("http://127.0.0.1:8400/api/roll-async?die=fair&times=10");
    let trace_id = rolled["trace_id"].as_str().expect("a trace id").to_owned();
    let clicked = Instant::now();
    let trace = wait::until_blocking(Duration::from_secs(10), Duration::from_millis(50), || {
        let trace =
            http::get_json_blocking(&format!("http://127.0.0.1:8400/api/traces/{trace_id}"));
        let rolls = trace["spans"]
            .as_array()
            .map_or(0, |s| s.iter().filter(|s| s["name"] == "roll").count());
        if rolls == 10 && trace["waiting_for"].as_array().is_some_and(Vec::is_empty) {
            Ok(trace)
        } else {
            Err(format!("not whole: {trace}"))
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "the click's {} spans were in the store {:.2} s after its answer",
        trace["spans"].as_array().unwrap().len(),
        clicked.elapsed().as_secs_f64()
    );
    let printed = Command::new(binary("dice-lab"))
        .args(["trace", &trace_id])
        .env("COLUMNS", "120")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&printed.stdout);
    assert!(
        printed.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&printed.stderr)
    );
    eprintln!("dice-lab trace:\n{text}");
    assert_eq!(
        text.lines()
            .filter(|l| l.contains("dice-roller internal roll"))
            .count(),
        10,
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("10 rolls, ")),
        "the summary line: {text}"
    );
    assert!(
        text.lines()
            .filter(|l| l.contains("dice-roller") && l.contains("roll_value="))
            .count()
            == 10,
        "the ten roll log lines: {text}"
    );

    let load = Command::new(binary("dice-lab"))
        .args(["load", "--rate", "20", "--duration", "3s"])
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&load.stdout);
    assert!(
        load.status.success(),
        "{summary}{}",
        String::from_utf8_lossy(&load.stderr)
    );
    assert!(
        summary.contains("requests") && summary.contains("p99"),
        "{summary}"
    );
    eprintln!("dice-lab load:\n{summary}");

    // Prometheus, scraping every 5 s, holds the rolls that the load made.
    let rolls = wait::until_blocking(Duration::from_secs(30), Duration::from_millis(500), || {
        let body: Value = http::get_json_blocking(
            "http://127.0.0.1:9090/api/v1/query?query=sum(dice_rolls_total)",
        );
        body["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|r| *r > 0.0)
            .ok_or_else(|| format!("Prometheus holds no dice_rolls_total: {body}"))
    })
    .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("Prometheus holds {rolls} rolls");

    // SIGTERM: everything stops, in order, and frees its port.
    let stopping = Instant::now();
    assert!(signal::process(up.0.id(), signal::SIGTERM));
    let status = wait::until_blocking(Duration::from_secs(60), Duration::from_millis(100), || {
        up.0.try_wait()
            .unwrap()
            .ok_or_else(|| "dice-lab up has not stopped".to_owned())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success(), "dice-lab up exits cleanly: {status}");
    let mut rest = Vec::new();
    while let Ok(line) = said.recv_timeout(Duration::from_millis(200)) {
        rest.push(line);
    }
    for component in [
        "frontend",
        "dice-roller",
        "die-service",
        "store",
        "prometheus",
    ] {
        assert!(
            rest.iter()
                .any(|l| l.trim() == format!("stopped {component}")),
            "{component} stopped on SIGTERM: {rest:#?}"
        );
    }
    assert!(
        PORTS.iter().all(|p| port_free(*p)),
        "every port is free again"
    );
    for pattern in [state.display().to_string(), "dice-lab serve".to_owned()] {
        let left = Command::new("pgrep")
            .args(["-f", &pattern])
            .output()
            .unwrap();
        assert!(
            left.stdout.is_empty(),
            "no process left ({pattern}): {}",
            String::from_utf8_lossy(&left.stdout)
        );
    }
    eprintln!("stopped in {:.2} s", stopping.elapsed().as_secs_f64());
}

/// `dice-lab up`, stopped with SIGTERM (so that it stops its children) if a test fails first.
struct Lab(std::process::Child);

impl Drop for Lab {
    fn drop(&mut self) {
        if self.0.try_wait().is_ok_and(|s| s.is_none()) {
            signal::process(self.0.id(), signal::SIGTERM);
            let _ =
                wait::until_blocking(Duration::from_secs(30), Duration::from_millis(100), || {
                    match self.0.try_wait() {
                        Ok(None) => Err("still running".to_owned()),
                        _ => Ok(()),
                    }
                });
        }
    }
}

/// `dice-lab status | head -n 1`: a reader that goes away early ends the output, not in a panic.
#[test]
fn status_survives_a_reader_that_stops_reading() {
    let mut child = Command::new(binary("dice-lab"))
        .arg("status")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dice-lab runs");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("dice-lab ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(101), "it panicked:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `dice-lab trace` (the binary at `program`) with `args`: its exit status, stdout and stderr.
async fn trace_command(program: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let program = program.to_owned();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(program)
            .arg("trace")
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "dice-lab trace took {:?}",
        started.elapsed()
    );
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// What `dice-lab trace` says, and its exit status, when there is no trace to print: a bad id, a
/// trace that never arrives, a trace backend that is down, a frontend that is not there. It asks by
/// the page's rules and always ends, within `--wait` and a few retries.
#[tokio::test]
async fn dice_lab_trace_says_why_there_is_no_trace() {
    use lab_tests::in_process;
    let program = tokio::task::spawn_blocking(|| binary("dice-lab"))
        .await
        .unwrap();
    let logs = lab_tests::fixtures::scratch_dir("trace-command");
    let store = in_process::store(in_process::store_settings(logs.path().to_owned(), 8)).await;
    let [tempo, _, loki] = [0, 1, 2].map(|i| format!("http://{}", store.addrs()[i]));
    let mut settings = in_process::frontend_settings("http://127.0.0.1:9", "http://127.0.0.1:9");
    settings.trace_query_url = tempo;
    settings.log_query_url = loki;
    let frontend = in_process::frontend(settings.clone()).await;
    let url = format!("http://{}", frontend.addr());
    let id = "4bf92f3577b34da6a3ce929d0e0e4736";

    let (ok, out, err) = trace_command(&program, &["not/an id", "--url", &url]).await;
    assert!(!ok && out.is_empty(), "{out}{err}");
    assert!(
        err.starts_with("dice-lab: Traces cannot be shown: ") && err.contains("not a trace id"),
        "{err}"
    );

    let (ok, out, err) = trace_command(&program, &[id, "--url", &url, "--wait", "1s"]).await;
    assert!(!ok && out.is_empty(), "{out}{err}");
    assert_eq!(
        err.trim(),
        "dice-lab: No spans of this trace arrived in 1 s: is the trace backend receiving them?"
    );

    settings.trace_query_url = "http://127.0.0.1:9".into();
    let no_backend = in_process::frontend(settings).await;
    let (ok, _, err) = trace_command(
        &program,
        &[
            id,
            "--url",
            &format!("http://{}", no_backend.addr()),
            "--wait",
            "1s",
        ],
    )
    .await;
    assert!(!ok, "{err}");
    assert!(
        err.starts_with("dice-lab: Traces cannot be shown: ") && err.contains("127.0.0.1:9"),
        "{err}"
    );

    let (ok, _, err) = trace_command(
        &program,
        &[id, "--url", "http://127.0.0.1:9", "--wait", "1s"],
    )
    .await;
    assert!(!ok, "{err}");
    assert!(
        err.starts_with("dice-lab: Traces cannot be shown: cannot reach the frontend at http://127.0.0.1:9/api/traces/"),
        "{err}"
    );
}
