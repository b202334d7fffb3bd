//! The service binaries as child processes, the way users run them.
//!
//! Trace-shape tests need each service's own `service.name`, and the tracing subscriber and
//! tracer provider are per process, so those tests run the real binaries. [`binary`] builds them
//! once per test run (with the same cargo and profile as the tests); [`Service::start`] runs one on
//! a free port, reads its JSON log lines from stdout, and learns its address from the
//! "listening" line. [`Service::terminate`] sends SIGTERM, as a user's Ctrl-C or `docker stop`
//! would.

use std::io::BufRead as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use parts::Part;
use serde_json::Value;

use crate::{signal, wait};

/// The launcher's binary; the services' binaries are named as their parts.
pub const LAUNCHER: &str = "dice-lab";

/// The path of a service binary, built on first use.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = BUILT
        .get_or_init(build)
        .as_ref()
        .unwrap_or_else(|e| panic!("{e}"));
    dir.join(name)
}

/// `cargo build` of the service binaries into the test's own target directory and profile.
fn build() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    // target/<profile>/deps/<test binary>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .ok_or("the test binary is not in target/<profile>/deps")?
        .to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_owned());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    let mut command = Command::new(cargo);
    command.args(["build", "--quiet", "--manifest-path", manifest]);
    for name in Part::SERVICES.map(Part::name).into_iter().chain([LAUNCHER]) {
        command.args(["--package", name]);
    }
    if profile_dir.file_name().is_some_and(|p| p == "release") {
        command.arg("--release");
    }
    let status = command
        .status()
        .map_err(|e| format!("cannot run cargo to build the services: {e}"))?;
    if !status.success() {
        return Err(format!("building the services failed: {status}"));
    }
    Ok(profile_dir)
}

/// The command for a service binary, with no inherited settings that would change what tests see,
/// stdin closed and stdout piped.
fn command(name: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(binary(name));
    command
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("OTEL_SDK_DISABLED")
        .env_remove("OTEL_SERVICE_NAME")
        .env_remove("OTEL_RESOURCE_ATTRIBUTES")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    command
}

/// A running service process. Dropping it kills the process.
pub struct Service {
    name: String,
    child: Child,
    addr: SocketAddr,
    lines: Arc<Mutex<Vec<Value>>>,
}

impl Service {
    /// Starts `name` listening on a free loopback port with extra `args` and `env`, and waits
    /// until it says it is listening.
    pub async fn start(name: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = command(name, &[&["--listen", "127.0.0.1:0"], args].concat(), env)
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let stdout = child.stdout.take().expect("stdout is piped");
        let lines: Arc<Mutex<Vec<Value>>> = Arc::new(Mutex::new(Vec::new()));
        {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    // A line that is not JSON is kept as {"unparsed": line} for tests to find.
                    let value = serde_json::from_str(&line)
                        .unwrap_or_else(|_| serde_json::json!({ "unparsed": line }));
                    lines.lock().unwrap().push(value);
                }
            });
        }
        let listening = format!("{name} listening");
        let deadline = Instant::now() + Duration::from_secs(20);
        let addr = loop {
            let found = lines
                .lock()
                .unwrap()
                .iter()
                .find(|l| l["message"] == listening.as_str())
                .and_then(|l| l["address"].as_str()?.parse().ok());
            if let Some(addr) = found {
                break addr;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("{name} exited at start-up with {status}");
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not start listening in time"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        Self {
            name: name.to_owned(),
            child,
            addr,
            lines,
        }
    }

    /// Every JSON log line so far.
    pub fn logs(&self) -> Vec<Value> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits (at most `timeout`) for `count` log lines that satisfy `select`, and returns them.
    pub async fn wait_for_logs(
        &self,
        timeout: Duration,
        count: usize,
        select: impl Fn(&Value) -> bool,
    ) -> Vec<Value> {
        wait::until(timeout, Duration::from_millis(20), || {
            std::future::ready({
                let found: Vec<Value> = self.logs().into_iter().filter(|l| select(l)).collect();
                if found.len() >= count {
                    Ok(found)
                } else {
                    Err(format!(
                        "{} logged only {} of {count} expected lines",
                        self.name,
                        found.len()
                    ))
                }
            })
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Sends SIGTERM and waits (at most 15 s) for the process to exit.
    pub async fn terminate(&mut self) -> ExitStatus {
        assert!(
            signal::process(self.child.id(), signal::SIGTERM),
            "cannot signal {}",
            self.name
        );
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().expect("waitable child") {
                return status;
            }
            assert!(Instant::now() < deadline, "{} ignored SIGTERM", self.name);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl crate::http::Target for Service {
    /// `http://127.0.0.1:PORT`.
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a service printed before it exited on its own.
pub struct Exited {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `name` with `args` and expects it to exit by itself within 10 s (a start-up error).
pub fn run_to_exit(name: &str, args: &[&str], env: &[(&str, &str)]) -> Exited {
    let mut child = command(
        name,
        args,
        &[&[("OTEL_SDK_DISABLED", "true")], env].concat(),
    )
    .stderr(Stdio::piped())
    .spawn()
    .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().expect("waitable child").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{name} {args:?} kept running; it should have refused to start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output of an exited child");
    Exited {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
