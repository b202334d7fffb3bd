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

/// A free loopback port, for a service that needs no fixed address.
const ANY_PORT: &str = "127.0.0.1:0";

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

/// The services built for release as static binaries (`+crt-static`, for [`TARGET`]), once per
/// test run: what the container images hold, and what the load tests attack. Returns their
/// directory.
pub fn release_binaries() -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_owned());
            let workspace = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
            let mut command = Command::new(cargo);
            command
                .current_dir(workspace)
                .args([
                    "build",
                    "--quiet",
                    "--release",
                    "--locked",
                    "--target",
                    TARGET,
                ])
                .env("RUSTFLAGS", "-C target-feature=+crt-static");
            for part in Part::SERVICES {
                command.args(["--package", part.name()]);
            }
            let status = command
                .status()
                .map_err(|e| format!("cannot run cargo: {e}"))?;
            if !status.success() {
                return Err(format!("building the static binaries failed: {status}"));
            }
            Ok(PathBuf::from(workspace)
                .join("target")
                .join(TARGET)
                .join("release"))
        })
        .clone()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The target the release binaries are built for.
pub const TARGET: &str = "x86_64-unknown-linux-gnu";

/// The command for a service binary, with no inherited settings that would change what tests see,
/// stdin closed and stdout piped; with `open_files`, the child's open-files limit (soft and hard)
/// is set to it, as a systemd unit's `LimitNOFILE` would.
pub fn command(
    program: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
    open_files: Option<u64>,
) -> Command {
    let mut command = Command::new(program);
    if let Some(limit) = open_files {
        use std::os::unix::process::CommandExt as _;
        // SAFETY: setrlimit is async-signal-safe and changes only the child being set up.
        unsafe {
            command.pre_exec(move || {
                let rlimit = libc::rlimit {
                    rlim_cur: limit,
                    rlim_max: limit,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
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

/// The die-service on the test dice and a dice-roller in front of it, both exporting their spans
/// to the OTLP/HTTP endpoint `otlp` every 100 ms; `roller_args` and `roller_env` go to the roller
/// after the die-service's URL.
pub async fn die_service_and_roller(
    otlp: &str,
    roller_args: &[&str],
    roller_env: &[(&str, &str)],
) -> (Service, Service) {
    let otel = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    let dice = crate::fixtures::dice_file(crate::fixtures::TEST_DICE);
    let die_service = Service::start(
        "die-service",
        &["--dice-file", dice.to_str().expect("a UTF-8 path")],
        &otel,
    )
    .await;
    let url = crate::http::Target::url(&die_service);
    let args = [&["--die-service-url", url.as_str()], roller_args].concat();
    let env = [&otel[..], roller_env].concat();
    let roller = Service::start("dice-roller", &args, &env).await;
    (die_service, roller)
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
        Self::start_program(&binary(name), name, ANY_PORT, args, env, None, None).await
    }

    /// [`Service::start`], with its log lines also appended to `log_file` as they come, as the
    /// launcher's log files hold them (where the lab's store reads them).
    pub async fn start_logging_to(
        name: &str,
        args: &[&str],
        env: &[(&str, &str)],
        log_file: &std::path::Path,
    ) -> Self {
        Self::start_program(
            &binary(name),
            name,
            ANY_PORT,
            args,
            env,
            None,
            Some(log_file),
        )
        .await
    }

    /// [`Service::start_logging_to`], listening on `listen` (its default address, as under
    /// `dice-lab up`, where Prometheus's scrape targets expect it).
    pub async fn start_at(
        name: &str,
        listen: std::net::SocketAddr,
        args: &[&str],
        env: &[(&str, &str)],
        log_file: &std::path::Path,
    ) -> Self {
        let listen = listen.to_string();
        Self::start_program(
            &binary(name),
            name,
            &listen,
            args,
            env,
            None,
            Some(log_file),
        )
        .await
    }

    /// Starts the release build of `name`, with the open-files limit `open_files` when given.
    pub async fn start_release(
        name: &str,
        args: &[&str],
        env: &[(&str, &str)],
        open_files: Option<u64>,
    ) -> Self {
        let program = release_binaries().join(name);
        Self::start_program(&program, name, ANY_PORT, args, env, open_files, None).await
    }

    /// Starts `program` as the service `name`, listening on `listen`.
    async fn start_program(
        program: &std::path::Path,
        name: &str,
        listen: &str,
        args: &[&str],
        env: &[(&str, &str)],
        open_files: Option<u64>,
        log_file: Option<&std::path::Path>,
    ) -> Self {
        let args = [&["--listen", listen], args].concat();
        let mut file = log_file.map(|path| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()))
        });
        let mut child = command(program, &args, env, open_files)
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
                    if let Some(file) = file.as_mut() {
                        use std::io::Write as _;
                        let _ = writeln!(file, "{line}");
                    }
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

    /// The process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every JSON log line so far.
    pub fn logs(&self) -> Vec<Value> {
        self.lines.lock().unwrap().clone()
    }

    /// The log lines as they keep arriving, for a fake backend that serves them.
    pub fn log_feed(&self) -> Arc<Mutex<Vec<Value>>> {
        self.lines.clone()
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
    run_to_exit_with_telemetry(
        name,
        args,
        &[&[("OTEL_SDK_DISABLED", "true")], env].concat(),
    )
}

/// [`run_to_exit`], with telemetry set up as `env` says (it is off in `run_to_exit`).
pub fn run_to_exit_with_telemetry(name: &str, args: &[&str], env: &[(&str, &str)]) -> Exited {
    let mut child = command(&binary(name), args, env, None)
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
