//! Services inside the test process, on port 0, as zero2prod starts its app in tests.
//!
//! These share the test's process, so no telemetry is installed: they are for the HTTP contract
//! and the metrics, which need no `service.name`. Dropping a [`Running`] shuts the server down.

use std::net::SocketAddr;
use std::path::PathBuf;

use lab_http::faults::FaultSettings;
use lab_http::server::{ConnectionSettings, Server};

/// A server running on a tokio task.
pub struct Running {
    addrs: Vec<SocketAddr>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Running {
    pub async fn start(server: Server) -> Self {
        let addrs = server.local_addrs();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        Self { addrs, _stop: stop }
    }

    /// The first address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// Every address it listens on, in the order they were given.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }
}

impl crate::http::Target for Running {
    fn url(&self) -> String {
        format!("http://{}", self.addr())
    }
}

/// Serves warp `routes` on `listener` on a tokio task, as the fake backends and the OTLP receiver
/// do; dropping the returned sender shuts the server down.
pub fn serve(
    listener: tokio::net::TcpListener,
    routes: warp::filters::BoxedFilter<(warp::reply::Response,)>,
) -> tokio::sync::oneshot::Sender<()> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(
        warp::serve(routes)
            .incoming(listener)
            .graceful(async move {
                let _ = stopped.await;
            })
            .run(),
    );
    stop
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().expect("a socket address")
}

/// A die-service with the given dice file (the built-in dice when `None`).
pub async fn die_service(dice_file: Option<PathBuf>) -> Running {
    die_service_with(die_service::Settings {
        listen: loopback(),
        dice_file,
        connections: ConnectionSettings::default(),
        faults: FaultSettings::default(),
    })
    .await
}

/// A die-service with `settings`.
pub async fn die_service_with(settings: die_service::Settings) -> Running {
    Running::start(
        die_service::build(&settings)
            .await
            .expect("die-service starts"),
    )
    .await
}

/// Dice-roller settings for a test: no roll delay, a 1 s upstream time-out, the default maximum.
pub fn roller_settings(die_service_url: &str) -> dice_roller::Settings {
    dice_roller::Settings {
        listen: loopback(),
        die_service_url: die_service_url.to_owned(),
        max_times: 100,
        roll_delay_ms: "0".parse().expect("a delay"),
        die_service_timeout_ms: 1000,
        max_rolls_in_flight: 10_000,
        max_die_service_calls: 64,
        sequential: false,
        connections: ConnectionSettings::default(),
        faults: FaultSettings::default(),
    }
}

/// A dice-roller with `settings`.
pub async fn dice_roller(settings: dice_roller::Settings) -> Running {
    Running::start(
        dice_roller::build(&settings)
            .await
            .expect("dice-roller starts"),
    )
    .await
}

/// Frontend settings for a test, in front of the given die-service and dice-roller.
pub fn frontend_settings(die_service_url: &str, dice_roller_url: &str) -> frontend::Settings {
    frontend::Settings {
        listen: loopback(),
        die_service_url: die_service_url.to_owned(),
        dice_roller_url: dice_roller_url.to_owned(),
        max_times: 100,
        grafana_url: None,
        trace_query_url: "http://127.0.0.1:9".into(),
        log_query_url: "http://127.0.0.1:9".into(),
        upstream_timeout_ms: 2000,
        connections: ConnectionSettings::default(),
        faults: FaultSettings::default(),
    }
}

/// A frontend with `settings`.
pub async fn frontend(settings: frontend::Settings) -> Running {
    Running::start(frontend::build(&settings).await.expect("frontend starts")).await
}

/// Store settings for a test: all three listeners on free ports (the Tempo API's first, then
/// OTLP's, then Loki's), reading logs from `log_dir`.
pub fn store_settings(log_dir: PathBuf, max_mib: u64) -> store::Settings {
    store::Settings {
        listen: loopback(),
        otlp_listen: loopback(),
        loki_listen: loopback(),
        max_mib,
        log_dir,
        connections: ConnectionSettings::default(),
    }
}

/// The store with `settings`; its addresses are the Tempo API's, OTLP's and Loki's.
pub async fn store(settings: store::Settings) -> Running {
    Running::start(store::build(&settings).await.expect("the store starts")).await
}
