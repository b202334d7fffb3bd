//! Serving a service's routes on a listener, with every connection bounded, and stopping cleanly.
//!
//! [`Server::bind`] binds the address first, so a port in use is an error the user sees before
//! anything else happens (tests bind port 0). [`Server::run`] accepts connections and serves each
//! with hyper until a shutdown signal, then lets open requests finish for at most
//! [`DRAIN_TIMEOUT`]; [`shutdown_signal`] is SIGINT or SIGTERM.
//!
//! No client can hold the service: a connection has [`ConnectionSettings::header_timeout_ms`] to
//! send a request's headers (from connecting, or from its first byte after an idle spell) and may
//! stay idle between requests for [`ConnectionSettings::idle_timeout_ms`]; at most
//! [`ConnectionSettings::max_connections`] are open at once. When that many are open, one with no
//! request in progress is closed to make room: the one that has been sending its headers longest
//! (over 0.1 s: a slow client), else the one idle longest (over a second); when there is none
//! (every one is serving a request, or was idle for a moment only), the newcomer gets a `503`
//! with `Retry-After`. Heads larger than
//! [`MAX_HEAD_BYTES`] get hyper's `431` (or `414`). Connections closed by the client are normal
//! and logged at debug; the reasons connections end are counted in `http_connections_closed_total`.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use prometheus::{IntCounterVec, IntGauge, Registry};
use serde::Serialize;
use telemetry::metrics;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use warp::filters::BoxedFilter;
use warp::reply::Response;

/// How long open requests may take to finish once shutdown starts.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest request head (request line and headers) a service reads.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// How long a connection may have been sending a request's head, unfinished, before a newcomer
/// may take its place: far longer than a client that sends its head at once takes (it arrives
/// whole), far shorter than a client that sends it a byte at a time.
const STALLED_HEAD_EVICTABLE_AFTER_MS: u64 = 20;

/// How long a connection that has sent nothing, or has been idle between requests, must have
/// waited before a newcomer may take its place: long enough that a client that has just
/// connected, or is between two requests, keeps its connection.
const QUIET_EVICTABLE_AFTER_MS: u64 = 1_000;

/// How each service bounds its connections: flags and environment variables shared by all.
#[derive(Clone, Debug, Serialize, clap::Args)]
pub struct ConnectionSettings {
    /// Most connections open at once. When full, a connection with no request in progress (a
    /// slow one sending its headers, else one idle over a second) is closed for the newcomer;
    /// when there is none, the newcomer gets a 503.
    #[arg(long = "max-connections", env = "MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub max_connections: u32,
    /// Milliseconds a client has to send a request's headers, from connecting or from its first
    /// byte after an idle spell.
    #[arg(long = "header-timeout-ms", env = "HEADER_TIMEOUT_MS", default_value_t = DEFAULT_HEADER_TIMEOUT_MS, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_timeout_ms: u64,
    /// Milliseconds a kept-alive connection may stay idle between requests.
    #[arg(long = "idle-timeout-ms", env = "IDLE_TIMEOUT_MS", default_value_t = DEFAULT_IDLE_TIMEOUT_MS, value_parser = clap::value_parser!(u64).range(1..))]
    pub idle_timeout_ms: u64,
}

const DEFAULT_MAX_CONNECTIONS: u32 = 512;
const DEFAULT_HEADER_TIMEOUT_MS: u64 = 10_000;
const DEFAULT_IDLE_TIMEOUT_MS: u64 = 60_000;

impl Default for ConnectionSettings {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout_ms: DEFAULT_HEADER_TIMEOUT_MS,
            idle_timeout_ms: DEFAULT_IDLE_TIMEOUT_MS,
        }
    }
}

/// A service's routes and the registry its metrics live in: what [`crate::app::App`] makes.
pub struct Routes {
    pub(crate) filter: BoxedFilter<(Response,)>,
    pub(crate) registry: Registry,
}

/// The address cannot be listened on (in use, say).
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {address}: {error}")]
pub struct BindError {
    address: SocketAddr,
    error: std::io::Error,
}

/// What a request learns of its connection: the peer, and whether the server cut it short.
#[derive(Clone)]
pub(crate) struct ConnInfo {
    pub(crate) peer: SocketAddr,
    /// The peer's address as spans record it (`client.address`), written once per connection.
    pub(crate) peer_address: opentelemetry::StringValue,
    pub(crate) cut: Arc<AtomicBool>,
}

/// A service ready to serve: its routes bound to a listener. Tests build one on port 0.
pub struct Server {
    /// One, or several that serve the same routes (the store's three ports).
    listeners: Vec<TcpListener>,
    routes: BoxedFilter<(Response,)>,
    settings: ConnectionSettings,
    metrics: ServerMetrics,
}

impl Server {
    /// Binds `address`, naming it in the error when that fails (a port in use, say).
    pub async fn bind(
        address: SocketAddr,
        routes: Routes,
        settings: &ConnectionSettings,
    ) -> Result<Self, BindError> {
        Self::bind_all(&[address], routes, settings).await
    }

    /// Binds every address, all serving the same routes within the same connection limits.
    pub async fn bind_all(
        addresses: &[SocketAddr],
        routes: Routes,
        settings: &ConnectionSettings,
    ) -> Result<Self, BindError> {
        let mut listeners = Vec::with_capacity(addresses.len());
        for &address in addresses {
            listeners.push(
                TcpListener::bind(address)
                    .await
                    .map_err(|error| BindError { address, error })?,
            );
        }
        let mut settings = settings.clone();
        settings.max_connections = fit_to_file_limit(settings.max_connections);
        Ok(Self {
            listeners,
            metrics: ServerMetrics::new(&routes.registry),
            routes: routes.filter,
            settings,
        })
    }

    /// The address actually bound (the port chosen when asked for port 0); the first one when
    /// there are several.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addrs()[0]
    }

    /// Every address bound, in the order given.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .map(|l| {
                l.local_addr()
                    .expect("a bound TCP listener has a local address")
            })
            .collect()
    }

    /// Serves until `shutdown` resolves, then lets open requests finish for at most
    /// [`DRAIN_TIMEOUT`]; requests still open then are cut short.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let Self {
            listeners,
            routes,
            settings,
            metrics,
        } = self;
        let connections = Arc::new(Connections::new(settings.max_connections as usize));
        let (stop, stopping) = watch::channel(false);
        let cut = Arc::new(AtomicBool::new(false));
        let service = warp::service(routes);
        let mut tasks = JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        let mut accept_failing = false;
        let refusing = Arc::new(tokio::sync::Semaphore::new(MAX_REFUSING));
        loop {
            let accepted = tokio::select! {
                accepted = accept_any(&listeners) => accepted,
                () = &mut shutdown => break,
            };
            while tasks.try_join_next().is_some() {}
            let (stream, peer) = match accepted {
                Ok(accepted) => {
                    accept_failing = false;
                    accepted
                }
                Err(error) => {
                    accept_error(&error, &mut accept_failing, &metrics).await;
                    continue;
                }
            };
            let Some(conn) = connections.admit(&metrics) else {
                if let Ok(turn) = refusing.clone().try_acquire_owned() {
                    tasks.spawn(refuse(stream, settings.max_connections, turn));
                }
                continue;
            };
            let info = ConnInfo {
                peer,
                peer_address: peer.ip().to_string().into(),
                cut: cut.clone(),
            };
            tasks.spawn(serve(
                stream,
                conn,
                connections.clone(),
                info,
                service.clone(),
                settings.clone(),
                metrics.clone(),
                stopping.clone(),
            ));
        }
        drop(listeners);
        let _ = stop.send(true);
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        match drained {
            Ok(()) => tracing::info!("server stopped"),
            Err(_) => {
                cut.store(true, Ordering::SeqCst);
                tracing::warn!(
                    seconds = DRAIN_TIMEOUT.as_secs(),
                    requests = connections.busy(),
                    "open requests did not finish in time; cutting them short"
                );
                tasks.shutdown().await;
            }
        }
    }
}

/// The next connection on any of `listeners`.
fn accept_any(
    listeners: &[TcpListener],
) -> impl Future<Output = std::io::Result<(TcpStream, SocketAddr)>> + '_ {
    std::future::poll_fn(move |cx| {
        for listener in listeners {
            if let std::task::Poll::Ready(accepted) = listener.poll_accept(cx) {
                return std::task::Poll::Ready(accepted);
            }
        }
        std::task::Poll::Pending
    })
}

/// One connection, served until it ends, times out, is evicted or the server stops.
#[allow(clippy::too_many_arguments)]
async fn serve<S>(
    stream: TcpStream,
    conn: Arc<Conn>,
    connections: Arc<Connections>,
    info: ConnInfo,
    service: S,
    settings: ConnectionSettings,
    metrics: ServerMetrics,
    mut stopping: watch::Receiver<bool>,
) where
    S: tower_service::Service<
            hyper::Request<Incoming>,
            Response = Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let _open = Open::new(&conn, &connections, &metrics);
    let io = TokioIo::new(Tracked {
        inner: stream,
        conn: conn.clone(),
        connections: connections.clone(),
    });
    let handler = {
        let conn = conn.clone();
        let connections = connections.clone();
        hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(info.clone());
            conn.set(Phase::Busy, connections.now());
            let answer = service.clone().call(request);
            let (conn, connections) = (conn.clone(), connections.clone());
            async move {
                let response = answer.await;
                conn.set(Phase::Idle, connections.now());
                response
            }
        })
    };
    let mut http = hyper::server::conn::http1::Builder::new();
    http.max_buf_size(MAX_HEAD_BYTES).keep_alive(true);
    let connection = http.serve_connection(io, handler);
    let mut connection = std::pin::pin!(connection);
    let mut shutting_down = false;
    let reason = loop {
        let deadline = conn.deadline(&settings, &connections);
        tokio::select! {
            result = connection.as_mut() => break ended(result),
            () = conn.evicted.notified() => break "evicted",
            changed = stopping.changed(), if !shutting_down => {
                shutting_down = true;
                if changed.is_err() || conn.phase() != Phase::Busy {
                    break "shutdown";
                }
                connection.as_mut().graceful_shutdown();
            }
            () = tokio::time::sleep_until(deadline.into()) => {
                if let Some(expired) = conn.expired(&settings, &connections) {
                    break expired;
                }
            }
        }
    };
    metrics.closed.with_label_values(&[reason]).inc();
}

/// Why a connection that hyper ended, ended: its client closed it (the usual way), or sent
/// something that is not HTTP/1.
fn ended(result: hyper::Result<()>) -> &'static str {
    match result {
        Ok(()) => "client",
        Err(error) => {
            // A client that hangs up mid-request, or sends garbage, is no fault of the service.
            tracing::debug!(%error, "connection ended early");
            if error.is_parse() || error.is_parse_too_large() {
                "bad_request"
            } else {
                "client"
            }
        }
    }
}

/// At most this many refused connections are being answered at once; past it, a refused
/// connection is closed without an answer, so that refusing never holds many sockets.
const MAX_REFUSING: usize = 64;

/// How long a refused connection is given to send its request's head, and then to read the answer.
const REFUSE_LINGER: Duration = Duration::from_millis(200);

/// The answer to a connection when no open one can make room: a `503`, after its request's head
/// (for [`REFUSE_LINGER`] at most, so that the client reads an answer to its request), and a
/// moment for the client to read it before the socket closes.
async fn refuse(mut stream: TcpStream, max: u32, _turn: tokio::sync::OwnedSemaphorePermit) {
    let body = format!(
        r#"{{"error":"the service has {max} connections open, its most; try again in a second"}}"#
    );
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut buffer = [0u8; 4096];
    let mut tail = Vec::new();
    let _ = tokio::time::timeout(REFUSE_LINGER, async {
        // Until the blank line that ends the head; only its last three bytes are kept.
        while let Ok(read @ 1..) = stream.read(&mut buffer).await {
            tail.extend_from_slice(&buffer[..read]);
            if tail.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
            tail.drain(..tail.len().saturating_sub(3));
        }
    })
    .await;
    let _ = tokio::time::timeout(REFUSE_LINGER, async {
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.shutdown().await;
        // Read what the client sends until it closes, so the answer is not lost to a reset.
        while matches!(stream.read(&mut buffer).await, Ok(read) if read > 0) {}
    })
    .await;
}

/// File descriptors kept for what is not a client connection: the listener, upstream
/// connections, log and telemetry output.
const SPARE_FILES: u64 = 128;

/// The most connections that fit in the open-files limit, after raising its soft value to the
/// hard one (as a server may): `max`, or fewer, said once, when the limit is low.
fn fit_to_file_limit(max: u32) -> u32 {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit and setrlimit read and write only the struct given.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return max;
            }
            if limit.rlim_cur < limit.rlim_max {
                let raised = libc::rlimit {
                    rlim_cur: limit.rlim_max,
                    rlim_max: limit.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    limit = raised;
                }
            }
        }
        let fits = limit.rlim_cur.saturating_sub(SPARE_FILES).max(1);
        if u64::from(max) > fits {
            tracing::warn!(
                max_connections = max,
                open_files_limit = limit.rlim_cur,
                "the open-files limit ({}) leaves room for {fits} connections, not {max}: serving at most {fits}",
                limit.rlim_cur
            );
            return fits as u32;
        }
    }
    max
}

/// An accept that failed. Running out of file descriptors is said once per spell, and the loop
/// waits a moment, for closing connections to free some, instead of spinning.
async fn accept_error(error: &std::io::Error, failing: &mut bool, metrics: &ServerMetrics) {
    let out_of_files = matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE));
    if out_of_files {
        tokio::time::sleep(Duration::from_millis(10)).await;
        metrics
            .closed
            .with_label_values(&["no_file_descriptor"])
            .inc();
        if !*failing {
            tracing::warn!(
                %error,
                "cannot accept connections: out of file descriptors (raise the open-files limit, or lower --max-connections); said once until accepting works again"
            );
        }
        *failing = true;
    } else {
        tracing::debug!(%error, "accept failed");
    }
}

// ---------------------------------------------------------------------------------------------
// Connections and their phases

/// Where a connection is: connected with nothing sent yet, reading a request's head, idle
/// between requests, or serving one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Waiting = 0,
    Headers = 1,
    Idle = 2,
    Busy = 3,
}

/// One open connection, as the server watches it.
struct Conn {
    id: u64,
    /// The phase in the top two bits; below, when it began (milliseconds since the server's
    /// epoch).
    state: AtomicU64,
    evicted: Notify,
}

const PHASE_SHIFT: u32 = 62;

impl Conn {
    fn set(&self, phase: Phase, now: u64) {
        self.state
            .store(((phase as u64) << PHASE_SHIFT) | now, Ordering::Relaxed);
    }

    fn load(&self) -> (Phase, u64) {
        let state = self.state.load(Ordering::Relaxed);
        let phase = match state >> PHASE_SHIFT {
            0 => Phase::Waiting,
            1 => Phase::Headers,
            2 => Phase::Idle,
            _ => Phase::Busy,
        };
        (phase, state & ((1 << PHASE_SHIFT) - 1))
    }

    fn phase(&self) -> Phase {
        self.load().0
    }

    /// When to look at the connection again.
    fn deadline(&self, settings: &ConnectionSettings, connections: &Connections) -> Instant {
        let (phase, since) = self.load();
        let limit = match phase {
            Phase::Waiting | Phase::Headers => settings.header_timeout_ms,
            Phase::Idle => settings.idle_timeout_ms,
            // Serving: the routes have their own time-outs; look again after a header time-out.
            Phase::Busy => {
                return Instant::now() + Duration::from_millis(settings.header_timeout_ms);
            }
        };
        connections.epoch + Duration::from_millis(since + limit)
    }

    /// Why the connection must close now, if it must.
    fn expired(
        &self,
        settings: &ConnectionSettings,
        connections: &Connections,
    ) -> Option<&'static str> {
        let (phase, since) = self.load();
        let waited = connections.now().saturating_sub(since);
        match phase {
            Phase::Waiting | Phase::Headers if waited >= settings.header_timeout_ms => {
                Some("header_timeout")
            }
            Phase::Idle if waited >= settings.idle_timeout_ms => Some("idle_timeout"),
            _ => None,
        }
    }
}

/// The open connections of a server.
struct Connections {
    epoch: Instant,
    max: usize,
    open: Mutex<HashMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
}

impl Connections {
    fn new(max: usize) -> Self {
        Self {
            epoch: Instant::now(),
            max,
            open: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place for a new connection: when all are taken, one with no request in progress is
    /// evicted for it: the one whose head has been arriving longest (and over
    /// [`STALLED_HEAD_EVICTABLE_AFTER_MS`]: a slow client), else the one silent or idle longest
    /// (and over [`QUIET_EVICTABLE_AFTER_MS`]); `None` when there is none.
    fn admit(&self, metrics: &ServerMetrics) -> Option<Arc<Conn>> {
        let mut open = self.lock();
        if open.len() >= self.max {
            let now = self.now();
            let oldest = |phases: &[Phase], after: u64| {
                open.values()
                    .filter(|c| {
                        let (phase, since) = c.load();
                        phases.contains(&phase) && now.saturating_sub(since) >= after
                    })
                    .min_by_key(|c| c.load().1)
                    .cloned()
            };
            let victim = oldest(&[Phase::Headers], STALLED_HEAD_EVICTABLE_AFTER_MS)
                .or_else(|| oldest(&[Phase::Waiting, Phase::Idle], QUIET_EVICTABLE_AFTER_MS));
            match victim {
                Some(victim) => {
                    open.remove(&victim.id);
                    victim.evicted.notify_one();
                }
                None => {
                    metrics.closed.with_label_values(&["refused"]).inc();
                    return None;
                }
            }
        }
        let conn = Arc::new(Conn {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            state: AtomicU64::new(0),
            evicted: Notify::new(),
        });
        conn.set(Phase::Waiting, self.now());
        open.insert(conn.id, conn.clone());
        Some(conn)
    }

    /// How many connections are serving a request.
    fn busy(&self) -> usize {
        self.lock()
            .values()
            .filter(|c| c.phase() == Phase::Busy)
            .count()
    }
}

/// Counts a connection as open for as long as it lives.
struct Open {
    conn: Arc<Conn>,
    connections: Arc<Connections>,
    gauge: IntGauge,
}

impl Open {
    fn new(conn: &Arc<Conn>, connections: &Arc<Connections>, metrics: &ServerMetrics) -> Self {
        metrics.open.inc();
        Self {
            conn: conn.clone(),
            connections: connections.clone(),
            gauge: metrics.open.clone(),
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.gauge.dec();
        self.connections.lock().remove(&self.conn.id);
    }
}

/// The connection's socket; the first bytes after an idle spell start the header time-out.
struct Tracked {
    inner: TcpStream,
    conn: Arc<Conn>,
    connections: Arc<Connections>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before && matches!(self.conn.phase(), Phase::Waiting | Phase::Idle)
        {
            let now = self.connections.now();
            self.conn.set(Phase::Headers, now);
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// `http_connections_open` and `http_connections_closed_total{reason}`.
#[derive(Clone)]
struct ServerMetrics {
    open: IntGauge,
    closed: IntCounterVec,
}

impl ServerMetrics {
    fn new(registry: &Registry) -> Self {
        let closed = metrics::counter_vec(
            registry,
            "http_connections_closed_total",
            "Connections that ended, by why: client (closed by it), bad_request, header_timeout, \
             idle_timeout, evicted (for a newcomer), refused (all busy), shutdown, \
             no_file_descriptor (could not be accepted).",
            &["reason"],
        );
        for reason in [
            "client",
            "bad_request",
            "header_timeout",
            "idle_timeout",
            "evicted",
            "refused",
            "shutdown",
            "no_file_descriptor",
        ] {
            closed.with_label_values(&[reason]);
        }
        Self {
            open: metrics::int_gauge(registry, "http_connections_open", "Connections open now."),
            closed,
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
