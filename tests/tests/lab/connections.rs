//! Connections are bounded, in the services running in this process on real sockets: a client
//! that sends no request's headers is closed after the header time-out, an idle kept-alive one
//! after the idle time-out; at the connection limit, a newcomer takes the place of the connection
//! that waited longest, and gets a 503 with `Retry-After` when every connection is serving.

use std::time::{Duration, Instant};

use lab_http::server::ConnectionSettings;
use lab_tests::http::Target as _;
use lab_tests::in_process::{Running, dice_roller, die_service, die_service_with, roller_settings};
use lab_tests::prom;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

fn tight(max_connections: u32) -> ConnectionSettings {
    ConnectionSettings {
        max_connections,
        header_timeout_ms: 300,
        idle_timeout_ms: 600,
    }
}

async fn die_service_limited(connections: ConnectionSettings) -> Running {
    die_service_with(die_service::Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        dice_file: None,
        connections,
        faults: Default::default(),
    })
    .await
}

async fn connect(service: &Running) -> TcpStream {
    TcpStream::connect(service.addr()).await.unwrap()
}

/// Reads until the peer closes; the time it took.
async fn closed_after(socket: &mut TcpStream) -> Duration {
    let started = Instant::now();
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => {}
            Err(_) => panic!("the connection stayed open for 5 s"),
        }
    }
}

async fn closed(service: &Running, reason: &str) -> f64 {
    prom::value(
        &service.metrics().await,
        "http_connections_closed_total",
        &[("reason", reason)],
    )
    .unwrap_or(0.0)
}

const REQUEST: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n";

#[tokio::test]
async fn silent_and_slow_clients_are_closed_at_the_header_timeout() {
    let dice = die_service_limited(tight(16)).await;
    let mut silent = connect(&dice).await;
    let waited = closed_after(&mut silent).await;
    assert!(
        (Duration::from_millis(250)..Duration::from_secs(2)).contains(&waited),
        "{waited:?}"
    );
    // A byte every 100 ms never makes a request's headers.
    let mut slow = connect(&dice).await;
    let started = Instant::now();
    for byte in b"GET /healthz HTTP/1.1\r\nx-slow: yes" {
        if slow.write_all(&[*byte]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the slow client was served for long"
    );
    let _ = closed_after(&mut slow).await;
    assert!(closed(&dice, "header_timeout").await >= 2.0);
    drop(silent);
}

#[tokio::test]
async fn idle_kept_alive_connections_are_closed_at_the_idle_timeout() {
    let dice = die_service_limited(tight(16)).await;
    let mut socket = connect(&dice).await;
    socket.write_all(REQUEST).await.unwrap();
    let mut answer = [0u8; 12];
    socket.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
    let waited = closed_after(&mut socket).await;
    assert!(
        (Duration::from_millis(500)..Duration::from_secs(2)).contains(&waited),
        "{waited:?}"
    );
    assert_eq!(closed(&dice, "idle_timeout").await, 1.0);
}

#[tokio::test]
async fn a_newcomer_takes_the_place_of_the_longest_waiting_connection() {
    let dice = die_service_limited(ConnectionSettings {
        max_connections: 3,
        header_timeout_ms: 10_000,
        idle_timeout_ms: 10_000,
    })
    .await;
    let mut waiting = Vec::new();
    for _ in 0..3 {
        waiting.push(connect(&dice).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Over a second of waiting makes them evictable.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let (status, _) = dice.get("/dice/fair").await;
    assert_eq!(status, 200, "the newcomer is served");
    // The oldest went first.
    let _ = closed_after(&mut waiting[0]).await;
    assert!(closed(&dice, "evicted").await >= 1.0);
}

#[tokio::test]
async fn when_every_connection_is_serving_a_newcomer_gets_a_503() {
    let dice = die_service(None).await;
    let mut settings = roller_settings(&dice.url());
    settings.roll_delay_ms = "1500".parse().unwrap();
    settings.die_service_timeout_ms = 5_000;
    settings.connections = tight(2);
    settings.connections.header_timeout_ms = 5_000;
    let roller = dice_roller(settings).await;
    let busy: Vec<_> = (0..2)
        .map(|_| {
            let url = format!("{}/roll?die=fair", roller.url());
            tokio::spawn(async move { reqwest::get(url).await.unwrap().status().as_u16() })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let response = reqwest::get(format!("{}/roll?die=fair", roller.url()))
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("2 connections open"),
        "{body}"
    );
    for request in busy {
        assert_eq!(request.await.unwrap(), 200, "the busy ones are served");
    }
    assert_eq!(closed(&roller, "refused").await, 1.0);
}
