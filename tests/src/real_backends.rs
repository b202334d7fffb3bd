//! The real Tempo, Loki and Prometheus, started exactly as `dice-lab up` starts them.
//!
//! Each is made by the launcher's own [`dice_lab::backends::configure`]: the project's file written
//! into a state directory, the same flags and environment, so the suite cannot drift from what
//! attendees run. The programs are looked up in `LAB_BACKENDS_DIR`, then on `PATH`; every `tempo`
//! and `tempo-VERSION` found there is one Tempo under test. Without them the suite's tests are
//! reported as ignored, with how to get them, unless `LAB_REQUIRE_BACKENDS=1` makes that a failure.
//! A [`Backend`]'s output goes to a log file in its state directory, where a test reads the lines
//! it logged at warn or error.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use parts::Part;

use crate::signal;

/// Set to `1`, a missing backend fails the suite instead of skipping it.
pub const REQUIRE: &str = "LAB_REQUIRE_BACKENDS";
/// A directory searched before `PATH`.
pub const DIR: &str = "LAB_BACKENDS_DIR";
/// Where users get the programs, for the message of a skipped suite.
pub const HOW_TO_GET: &str = "install Tempo, Loki and Prometheus (nixpkgs: `nix shell \
     nixpkgs#tempo nixpkgs#grafana-loki nixpkgs#prometheus`; or the release binaries of \
     grafana/tempo and grafana/loki) and put them on PATH or in LAB_BACKENDS_DIR";

/// The programs the suite runs.
#[derive(Clone, Debug)]
pub struct Programs {
    /// Every Tempo found, `tempo` first.
    pub tempos: Vec<PathBuf>,
    pub loki: PathBuf,
    pub prometheus: PathBuf,
}

/// Looks the programs up; the error says which are missing.
pub fn programs() -> Result<Programs, String> {
    let dirs: Vec<PathBuf> = std::env::var_os(DIR)
        .map(PathBuf::from)
        .into_iter()
        .chain(
            std::env::var_os("PATH").map_or_else(Vec::new, |p| std::env::split_paths(&p).collect()),
        )
        .collect();
    let find = |name: &str| dirs.iter().map(|d| d.join(name)).find(|p| is_executable(p));
    let mut tempos: Vec<PathBuf> = Vec::new();
    for dir in &dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| Some(e.ok()?.path()))
            .filter(|p| {
                // `tempo` and `tempo-VERSION`, not Tempo's own tools (`tempo-cli`, ...).
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n == "tempo"
                        || n.strip_prefix("tempo-")
                            .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()))
                }) && is_executable(p)
            })
            .collect();
        found.sort();
        for path in found {
            let name = path.file_name().map(ToOwned::to_owned);
            if !tempos.iter().any(|t| t.file_name() == name.as_deref()) {
                tempos.push(path);
            }
        }
    }
    let loki = find("loki");
    let prometheus = find("prometheus");
    let mut missing = Vec::new();
    if tempos.is_empty() {
        missing.push("tempo");
    }
    if loki.is_none() {
        missing.push("loki");
    }
    if prometheus.is_none() {
        missing.push("prometheus");
    }
    match (loki, prometheus) {
        (Some(loki), Some(prometheus)) if !tempos.is_empty() => Ok(Programs {
            tempos,
            loki,
            prometheus,
        }),
        _ => Err(format!("{} not found", missing.join(", "))),
    }
}

/// A file this user may run.
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A running backend. Dropping it kills it.
pub struct Backend {
    pub part: Part,
    program: PathBuf,
    state: PathBuf,
    child: Option<Child>,
    log: PathBuf,
    ready_after: Duration,
}

/// How long a backend may take to answer its readiness URL (Loki's ingester waits 15 s after it
/// is up before it says ready).
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

impl Backend {
    /// Starts `part` with `program` and the project's configuration under `state`, and waits until
    /// it is ready.
    pub async fn start(part: Part, program: &Path, state: &Path) -> Self {
        let mut backend = Self {
            part,
            program: program.to_owned(),
            state: state.to_owned(),
            child: None,
            log: state.join(format!("{}.log", part.name())),
            ready_after: Duration::ZERO,
        };
        backend.restart().await;
        backend
    }

    /// Starts it again on the same state directory (after [`Backend::stop`]), and waits until it
    /// is ready; returns how long that took.
    pub async fn restart(&mut self) -> Duration {
        assert!(self.child.is_none(), "{} is still running", self.part);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", self.log.display()));
        let component = dice_lab::backends::configure(self.part, &self.state, self.program.clone())
            .unwrap_or_else(|e| panic!("cannot configure {}: {e}", self.part));
        let started = Instant::now();
        let child = Command::new(&component.program)
            .args(&component.args)
            .envs(component.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("a log file"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.program.display()));
        self.child = Some(child);
        let ready = self.part.ready_url();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(1))
            .build()
            .expect("an HTTP client");
        loop {
            if let Ok(Some(status)) = self.child.as_mut().expect("started").try_wait() {
                panic!(
                    "{} exited at start-up ({status}):\n{}",
                    self.part,
                    self.log_text()
                );
            }
            if http
                .get(&ready)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                self.ready_after = started.elapsed();
                return self.ready_after;
            }
            assert!(
                started.elapsed() < READY_TIMEOUT,
                "{} not ready within {} s:\n{}",
                self.part,
                READY_TIMEOUT.as_secs(),
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends SIGTERM and waits for it to exit, at most `limit`; returns how long it took, or
    /// `None` if it was still running then (it is killed).
    pub async fn stop(&mut self, limit: Duration) -> Option<Duration> {
        let mut child = self.child.take().expect("running");
        let started = Instant::now();
        signal::process(child.id(), signal::SIGTERM);
        while started.elapsed() < limit {
            if child.try_wait().expect("waitable").is_some() {
                return Some(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Go programs print every goroutine's stack on SIGQUIT: where it hung, in its log.
        signal::process(child.id(), libc::SIGQUIT);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// The program it runs.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// How long its last start took to get ready.
    pub fn ready_after(&self) -> Duration {
        self.ready_after
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Everything it has printed.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The lines it logged at warn or error (go-kit's `level=warn`, slog's `level=WARN`).
    pub fn warnings(&self) -> Vec<String> {
        self.log_text()
            .lines()
            .filter(|l| {
                let l = l.to_ascii_lowercase();
                l.contains("level=warn") || l.contains("level=error")
            })
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The TCP ports process `pid` listens on: its sockets (`/proc/PID/fd`) found among the listening
/// ones of `/proc/net/tcp` and `tcp6`.
pub fn listening_ports(pid: u32) -> std::collections::BTreeSet<u16> {
    let inodes: std::collections::BTreeSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter_map(|target| {
                    let target = target.to_string_lossy().into_owned();
                    Some(
                        target
                            .strip_prefix("socket:[")?
                            .strip_suffix(']')?
                            .to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let mut ports = std::collections::BTreeSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address is HEXADDR:HEXPORT; state 0A is LISTEN; the inode is field 9.
            if fields.len() > 9
                && fields[3] == "0A"
                && inodes.contains(fields[9])
                && let Some(port) = fields[1]
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
            {
                ports.insert(port);
            }
        }
    }
    ports
}
