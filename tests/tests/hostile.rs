//! The services against a hostile client and a careless operator, on 127.0.0.1, with the release
//! binaries (as a workshop runs them) and an open-files limit of 1,024 (systemd's default): slow
//! connections by the thousand, an overload of batches, huge paths and `User-Agent`s, and a
//! standard output nobody reads. Every loop is bounded; each test prints its figures. They measure
//! load and memory, so they run one at a time, in a binary of their own.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lab_tests::fixtures::traceparent;
use lab_tests::http::Target as _;
use lab_tests::otlp::Receiver;
use lab_tests::process::Service;
use lab_tests::trace::Expect as _;
use lab_tests::{prom, signal, wait};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// The open-files limit the services run with here.
const OPEN_FILES: u64 = 1024;

/// One test at a time: each one loads the machine.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// This test process holds thousands of sockets: its own soft limit goes up to the hard one.
fn raise_own_open_files() {
    // SAFETY: getrlimit/setrlimit read and write only the struct given.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        assert!(
            limit.rlim_cur >= 8192,
            "this test needs an open-files limit of 8192 or more (ulimit -n), not {}",
            limit.rlim_cur
        );
    }
}

/// A die-service and a roller in front of it, release builds at the open-files limit.
async fn lab(roller_args: &[&str], env: &[(&str, &str)]) -> (Service, Service) {
    let die_service = Service::start_release("die-service", &[], env, Some(OPEN_FILES)).await;
    let url = die_service.url();
    let args = [&["--die-service-url", url.as_str()], roller_args].concat();
    let roller = Service::start_release("dice-roller", &args, env, Some(OPEN_FILES)).await;
    (die_service, roller)
}

const QUIET: &[(&str, &str)] = &[("OTEL_SDK_DISABLED", "true")];

/// Resident memory of a process, in MiB.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// Samples a process's memory until stopped; the peak.
fn watch_memory(pid: u32) -> (Arc<AtomicBool>, tokio::task::JoinHandle<f64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let watching = stop.clone();
    let peak = tokio::spawn(async move {
        let mut peak: f64 = 0.0;
        while !watching.load(Ordering::Relaxed) {
            peak = peak.max(rss_mib(pid));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        peak
    });
    (stop, peak)
}

/// The status of a plain `GET path` on a new connection, within `limit`; `None` when none came.
async fn get_status(url: &str, path: &str, limit: Duration) -> Option<u16> {
    let client = reqwest::Client::builder()
        .timeout(limit)
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let response = client.get(format!("{url}{path}")).send().await.ok()?;
    let status = response.status().as_u16();
    response.bytes().await.ok()?;
    Some(status)
}

fn closed(samples: &[prom::Sample], reason: &str) -> f64 {
    prom::value(
        samples,
        "http_connections_closed_total",
        &[("reason", reason)],
    )
    .unwrap_or(0.0)
}

/// 2,000 clients that send a request's headers a byte a second (and come back when closed) do not
/// keep a normal client out: at least 99% of its requests are answered within 1 s.
#[tokio::test(flavor = "multi_thread")]
async fn slow_connections_do_not_keep_normal_requests_out() {
    let _one = ONE_AT_A_TIME.lock().await;
    raise_own_open_files();
    let (_die_service, roller) = lab(&["--roll-delay-ms", "0"], QUIET).await;
    let addr = roller.url().trim_start_matches("http://").to_owned();

    let stop = Arc::new(AtomicBool::new(false));
    let held = Arc::new(AtomicUsize::new(0));
    let most_held = Arc::new(AtomicUsize::new(0));
    let mut attackers = Vec::new();
    for _ in 0..2_000 {
        let (stop, held, most_held, addr) =
            (stop.clone(), held.clone(), most_held.clone(), addr.clone());
        attackers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let Ok(mut socket) = TcpStream::connect(&addr).await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let now = held.fetch_add(1, Ordering::Relaxed) + 1;
                most_held.fetch_max(now, Ordering::Relaxed);
                let mut sent = socket.write_all(b"GET /roll?die=fair HTTP/1.1\r\n").await;
                while sent.is_ok() && !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    sent = socket.write_all(b"X").await;
                }
                held.fetch_sub(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;

    // The normal client: ten requests a second for 30 s, each on a new connection.
    let started = Instant::now();
    let mut asked = 0;
    let mut answered = 0;
    let mut latencies = Vec::new();
    while started.elapsed() < Duration::from_secs(30) {
        let sent = Instant::now();
        asked += 1;
        if get_status(&roller.url(), "/roll?die=fair", Duration::from_secs(1)).await == Some(200) {
            answered += 1;
            latencies.push(sent.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100).saturating_sub(sent.elapsed())).await;
    }
    stop.store(true, Ordering::Relaxed);
    let samples = roller.metrics().await;
    for attacker in attackers {
        attacker.abort();
    }
    latencies.sort();
    let share = answered as f64 / asked as f64;
    eprintln!(
        "slow clients: 2000, at most {} connected at once; normal requests answered within 1 s: \
         {answered}/{asked} ({:.1}%), p50 {:?}, p99 {:?}; the roller closed {} for their header \
         time-out and {} for newcomers, refused {}",
        most_held.load(Ordering::Relaxed),
        share * 100.0,
        latencies.get(latencies.len() / 2),
        latencies.get(latencies.len() * 99 / 100),
        closed(&samples, "header_timeout"),
        closed(&samples, "evicted"),
        closed(&samples, "refused"),
    );
    assert!(share >= 0.99, "{answered} of {asked} answered");
    assert!(
        closed(&samples, "evicted") + closed(&samples, "header_timeout") > 0.0,
        "the slow connections were held, not closed"
    );
}

/// 2,000 connections asking for batches of 100 as fast as they can: what passes the roller's
/// limits gets a fast 503 with `Retry-After`, memory stays under 150 MiB, and is back under 50 MiB
/// within 30 s. Batches that fetch the spec for every roll never run out of sockets.
#[tokio::test(flavor = "multi_thread")]
async fn overload_is_shed_and_memory_comes_back() {
    let _one = ONE_AT_A_TIME.lock().await;
    raise_own_open_files();
    let (_die_service, roller) = lab(&[], QUIET).await;
    let url = roller.url();
    let pid = roller.pid();
    let before = rss_mib(pid);
    let (stop_watching, peak) = watch_memory(pid);

    let ok = Arc::new(AtomicUsize::new(0));
    let shed = Arc::new(AtomicUsize::new(0));
    let other = Arc::new(AtomicUsize::new(0));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(20);
    let mut clients = Vec::new();
    for _ in 0..2_000 {
        let (client, url) = (client.clone(), url.clone());
        let (ok, shed, other) = (ok.clone(), shed.clone(), other.clone());
        clients.push(tokio::spawn(async move {
            while Instant::now() < until {
                let asked = client
                    .get(format!("{url}/roll-async?die=fair&times=100"))
                    .send()
                    .await;
                match asked {
                    Ok(response) if response.status() == 200 => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    // Shed: the roller at its limits says when to come back.
                    Ok(response)
                        if response.status() == 503
                            && response.headers().contains_key("retry-after") =>
                    {
                        shed.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        other.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
    drop(client);
    stop_watching.store(true, Ordering::Relaxed);
    let peak = peak.await.unwrap();
    let stopped = Instant::now();
    let mut after = rss_mib(pid);
    while after >= 50.0 && stopped.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        after = rss_mib(pid);
    }
    eprintln!(
        "2000 connections for 20 s: {} batches rolled, {} shed with 503, {} refused or cut; roller \
         RSS {before:.1} MiB before, {peak:.1} MiB at the peak, {after:.1} MiB {:.1} s after",
        ok.load(Ordering::Relaxed),
        shed.load(Ordering::Relaxed),
        other.load(Ordering::Relaxed),
        stopped.elapsed().as_secs_f64()
    );
    assert!(ok.load(Ordering::Relaxed) > 0, "nothing was rolled");
    assert!(shed.load(Ordering::Relaxed) > 0, "nothing was shed");
    assert!(peak < 150.0, "peak RSS {peak:.1} MiB");
    assert!(after < 50.0, "RSS {after:.1} MiB 30 s after the load");

    // fetch=each: 50 connections, a die-service call per roll, and no call short of a socket.
    let (_die_service, roller) = lab(&["--roll-delay-ms", "0"], QUIET).await;
    let url = roller.url();
    let until = Instant::now() + Duration::from_secs(10);
    let unreachable = Arc::new(AtomicUsize::new(0));
    let rolled = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..50 {
        let (url, unreachable, rolled) = (url.clone(), unreachable.clone(), rolled.clone());
        clients.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            while Instant::now() < until {
                let Ok(response) = client
                    .get(format!("{url}/roll-async?die=fair&times=100&fetch=each"))
                    .send()
                    .await
                else {
                    continue;
                };
                let status = response.status().as_u16();
                let body = response.text().await.unwrap_or_default();
                if status == 200 {
                    rolled.fetch_add(1, Ordering::Relaxed);
                } else if body.contains("unreachable") {
                    unreachable.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
    eprintln!(
        "fetch=each from 50 connections for 10 s: {} batches rolled, {} found the die-service unreachable",
        rolled.load(Ordering::Relaxed),
        unreachable.load(Ordering::Relaxed)
    );
    assert!(rolled.load(Ordering::Relaxed) > 0);
    assert_eq!(unreachable.load(Ordering::Relaxed), 0);
}

/// Requests with huge paths and `User-Agent`s: heads over 64 KiB are refused before any span,
/// smaller ones are recorded cut to the attribute length limit, memory stays under 64 MiB, and
/// every span of the normal requests around them is exported.
#[tokio::test(flavor = "multi_thread")]
async fn client_text_is_bounded_and_normal_spans_are_kept() {
    let _one = ONE_AT_A_TIME.lock().await;
    raise_own_open_files();
    let receiver = Receiver::start().await;
    let endpoint = receiver.endpoint();
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    let (_die_service, roller) = lab(&["--roll-delay-ms", "0"], &env).await;
    let addr = roller.url().trim_start_matches("http://").to_owned();
    let (stop_watching, peak) = watch_memory(roller.pid());

    let huge = "a".repeat(400 * 1024);
    let large = "b".repeat(30 * 1024);
    let mut normal = Vec::new();
    let (mut refused, mut reset) = (0, 0);
    let http = reqwest::Client::new();
    for round in 0..3_000 {
        // 400 KB of path: more than a head may be.
        let mut socket = TcpStream::connect(&addr).await.unwrap();
        let request = format!("GET /{huge} HTTP/1.1\r\nhost: {addr}\r\n\r\n");
        let _ = socket.write_all(request.as_bytes()).await;
        // The answer is a 431, unless the reset of the unread rest overtakes it.
        let mut answer = [0u8; 12];
        match socket.read_exact(&mut answer).await {
            Ok(_) => {
                assert!(answer.starts_with(b"HTTP/1.1 4"), "{answer:?}");
                refused += 1;
            }
            Err(_) => reset += 1,
        }
        // 30 KB of path and of User-Agent: under the limit, so recorded, cut.
        if round % 10 == 0 {
            let status = http
                .get(format!("{}/{large}", roller.url()))
                .header("user-agent", large.as_str())
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status, 404);
            let (trace_id, _, header) = traceparent();
            let status = http
                .get(format!("{}/roll?die=fair", roller.url()))
                .header("traceparent", header)
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status, 200);
            normal.push(trace_id);
        }
    }
    for trace_id in &normal {
        receiver
            .wait_for_trace(trace_id, Duration::from_secs(30), |t| {
                t.has_roll_request(false, 1, 1)
            })
            .await;
    }
    stop_watching.store(true, Ordering::Relaxed);
    let peak = peak.await.unwrap();
    let limit = telemetry::DEFAULT_ATTRIBUTE_VALUE_LENGTH_LIMIT;
    let spans = receiver.spans();
    assert!(
        !spans.iter().any(|s| s
            .attr("url.path")
            .as_str()
            .is_some_and(|p| p.starts_with("/aaa"))),
        "a head over the limit was recorded"
    );
    let cut: Vec<_> = spans
        .into_iter()
        .filter(|s| {
            s.attr("url.path")
                .as_str()
                .is_some_and(|p| p.starts_with("/bbb"))
        })
        .collect();
    assert_eq!(cut.len(), 300, "every long-path request has its span");
    for span in &cut {
        assert_eq!(
            span.attr("url.path").as_str().unwrap().chars().count(),
            limit
        );
        assert_eq!(
            span.attr("user_agent.original")
                .as_str()
                .unwrap()
                .chars()
                .count(),
            limit
        );
    }
    let samples = roller.metrics().await;
    let dropped = prom::value(
        &samples,
        "telemetry_spans_dropped_total",
        &[("reason", "queue_full")],
    );
    eprintln!(
        "3000 heads of 400 KB: none recorded ({refused} answered 431, {reset} reset before the \
         answer was read); 300 paths of 30 KB recorded cut to {limit} characters; {} normal \
         traces complete; roller RSS peak {peak:.1} MiB; spans dropped: {dropped:?}",
        normal.len()
    );
    assert_eq!(refused + reset, 3_000);
    assert!(refused > 0, "no 400 KB head was answered 431");
    assert!(peak < 64.0, "peak RSS {peak:.1} MiB");
    assert_eq!(dropped, Some(0.0));
}

/// A service whose standard output nobody reads drops its log lines, counts them, says so once on
/// stderr, and goes on answering every request, `/healthz`, `/metrics` and SIGTERM.
#[tokio::test(flavor = "multi_thread")]
async fn an_unread_stdout_costs_log_lines_not_answers() {
    let _one = ONE_AT_A_TIME.lock().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let program = lab_tests::process::release_binaries().join("die-service");
    let mut child = lab_tests::process::command(
        &program,
        &["--listen", &listen],
        &[("OTEL_SDK_DISABLED", "true")],
        Some(OPEN_FILES),
    )
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    // Stdout is a pipe that is never read: it fills after 64 KiB.
    let _unread = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let said = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut std::io::BufReader::new(stderr), &mut text);
        text
    });
    let url = format!("http://{listen}");
    wait::until(
        Duration::from_secs(20),
        Duration::from_millis(50),
        async || match get_status(&url, "/healthz", Duration::from_secs(1)).await {
            Some(200) => Ok(()),
            other => Err(format!(
                "the die-service has not started: /healthz {other:?}"
            )),
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let started = Instant::now();
    let mut answered = 0;
    for _ in 0..20_000 {
        let status = http
            .get(format!("{url}/dice/fair"))
            .send()
            .await
            .map(|r| r.status().as_u16());
        if status.is_ok_and(|s| s == 200) {
            answered += 1;
        }
    }
    let took = started.elapsed();
    assert_eq!(
        get_status(&url, "/healthz", Duration::from_secs(1)).await,
        Some(200)
    );
    let text = http
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let dropped = prom::value(
        &prom::parse(&text),
        "telemetry_log_lines_dropped_total",
        &[],
    )
    .unwrap_or(0.0);

    let stopping = Instant::now();
    assert!(signal::process(child.id(), signal::SIGTERM));
    let status = wait::until(Duration::from_secs(10), Duration::from_millis(50), || {
        std::future::ready(
            child
                .try_wait()
                .unwrap()
                .ok_or_else(|| "the die-service ignored SIGTERM".to_owned()),
        )
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let stderr = said.join().unwrap();
    eprintln!(
        "stdout unread: {answered}/20000 requests answered in {:.1} s; {dropped} log lines dropped; \
         stopped {:.1} s after SIGTERM ({status})",
        took.as_secs_f64(),
        stopping.elapsed().as_secs_f64()
    );
    assert_eq!(answered, 20_000);
    assert!(
        dropped > 0.0,
        "no line was dropped: was stdout read after all?"
    );
    assert!(status.success(), "{status}");
    assert_eq!(
        stderr.matches("standard output is not being read").count(),
        1,
        "said once on stderr: {stderr}"
    );
}
