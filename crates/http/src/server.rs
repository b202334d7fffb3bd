//! Serving a service's routes on a listener, and stopping it cleanly.
//!
//! [`Server::bind`] binds the address first, so a port in use is an error the user sees before
//! anything else happens (tests bind port 0). [`Server::run`] serves until a shutdown signal, then
//! lets open requests finish for at most [`DRAIN_TIMEOUT`]; [`shutdown_signal`] is SIGINT or
//! SIGTERM.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use warp::filters::BoxedFilter;
use warp::reply::Response;

/// How long open requests may take to finish once shutdown starts.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The address cannot be listened on (in use, say).
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {address}: {error}")]
pub struct BindError {
    address: SocketAddr,
    error: std::io::Error,
}

/// A service ready to serve: its routes bound to a listener. Tests build one on port 0.
pub struct Server {
    listener: tokio::net::TcpListener,
    routes: BoxedFilter<(Response,)>,
}

impl Server {
    /// Binds `address`, naming it in the error when that fails (a port in use, say).
    pub async fn bind(
        address: SocketAddr,
        routes: BoxedFilter<(Response,)>,
    ) -> Result<Self, BindError> {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|error| BindError { address, error })?;
        Ok(Self { listener, routes })
    }

    /// The address actually bound (the port chosen when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has a local address")
    }

    /// Serves until `shutdown` resolves, then lets open requests finish for at most
    /// [`DRAIN_TIMEOUT`].
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let (started, draining) = tokio::sync::oneshot::channel::<()>();
        let signal = async move {
            shutdown.await;
            let _ = started.send(());
        };
        let server = warp::serve(self.routes)
            .incoming(self.listener)
            .graceful(signal)
            .run();
        let deadline = async move {
            if draining.await.is_ok() {
                tokio::time::sleep(DRAIN_TIMEOUT).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = server => tracing::info!("server stopped"),
            () = deadline => tracing::warn!(
                seconds = DRAIN_TIMEOUT.as_secs(),
                "open requests did not finish in time; stopping anyway"
            ),
        }
    }
}

/// Resolves on SIGINT or SIGTERM, and logs which one came.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => tracing::info!(signal = "SIGINT", "shutting down"),
        () = terminate => tracing::info!(signal = "SIGTERM", "shutting down"),
    }
}
