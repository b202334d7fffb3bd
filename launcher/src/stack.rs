//! Starting, watching and stopping the lab's processes.
//!
//! `up` checks every port first (a taken port is named before anything starts), writes the
//! configurations, starts the backends and then the services (each in its own process group, its
//! output in `STATE/logs/`), waits for each to answer its readiness URL while saying so, prints the
//! URLs, and then waits. On Ctrl-C or SIGTERM it stops the services first, so their last spans
//! still reach Alloy, then the backends: SIGTERM each, SIGKILL after a grace period.

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use parts::Part;
use tokio::process::{Child, Command};

use crate::backends;
use crate::component::Component;

/// How long a component may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a component may take to stop after SIGTERM: longer than a service's own shutdown
/// (its drain of open requests, then the flush of its spans and its log lines), so that a
/// service is never killed while it still ends cleanly.
pub const STOP_GRACE: Duration = lab_http::server::DRAIN_TIMEOUT
    .saturating_add(telemetry::FLUSH_TIMEOUT)
    .saturating_add(telemetry::LOG_CLOSE_TIMEOUT)
    .saturating_add(Duration::from_secs(3));

/// The three services, in start order.
fn services() -> Vec<Component> {
    Part::SERVICES.into_iter().map(Component::own).collect()
}

/// A started component.
struct Running {
    component: Component,
    child: Child,
    log: PathBuf,
}

pub async fn up(state: &Path, services_only: bool) -> ExitCode {
    let started = Instant::now();
    match try_up(state, services_only, started).await {
        Ok(code) => code,
        Err(message) => {
            say!("dice-lab: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn try_up(state: &Path, services_only: bool, started: Instant) -> Result<ExitCode, String> {
    let logs = state.join("logs");
    std::fs::create_dir_all(logs.join("services"))
        .map_err(|e| format!("cannot create {}: {e}", logs.display()))?;
    let plan = if services_only {
        backends::Plan::default()
    } else {
        backends::plan(state).map_err(|e| {
            format!(
                "cannot write the configurations under {}: {e}",
                state.display()
            )
        })?
    };
    let missing = plan.missing;
    let components: Vec<Component> = plan.components.into_iter().chain(services()).collect();

    let taken: Vec<String> = components
        .iter()
        .flat_map(|c| c.part.ports().into_iter().map(move |p| (c.name(), p)))
        .filter(|(_, port)| std::net::TcpListener::bind(("127.0.0.1", *port)).is_err())
        .map(|(name, port)| format!("port {port} ({name}) is already in use"))
        .collect();
    if !taken.is_empty() {
        return Err(format!(
            "{}; is the lab already running? (dice-lab status)",
            taken.join("; ")
        ));
    }

    say!(
        "dice-lab: starting {} components; logs in {}",
        components.len(),
        logs.display()
    );
    let mut running: Vec<Running> = Vec::new();
    for component in components {
        match start(component, &logs) {
            Ok(started) => running.push(started),
            Err(message) => {
                stop_all(&mut running).await;
                return Err(message);
            }
        }
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .expect("an HTTP client");
    for index in 0..running.len() {
        if let Err(message) = wait_ready(&http, &mut running[index], started).await {
            stop_all(&mut running).await;
            return Err(message);
        }
    }
    let ready_in = started.elapsed();

    say!();
    let width = running
        .iter()
        .map(|r| r.component.part.landing_url().len())
        .max()
        .unwrap_or(0);
    say!("  {:<12} {:<width$} {}", "component", "URL", "memory");
    for r in &running {
        let memory = r
            .child
            .id()
            .and_then(rss_mib)
            .map_or(String::new(), |m| format!("{m:.1} MiB"));
        say!(
            "  {:<12} {:<width$} {memory}",
            r.component.name(),
            r.component.part.landing_url()
        );
    }
    let services_mib: f64 = running
        .iter()
        .filter(|r| r.component.part.is_service())
        .filter_map(|r| r.child.id().and_then(rss_mib))
        .sum();
    say!();
    say!(
        "  ready in {:.2} s; the three services use {services_mib:.1} MiB",
        ready_in.as_secs_f64()
    );
    if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|m| m.name()).collect();
        let programs: Vec<String> = missing.iter().map(|m| m.programs().join(" or ")).collect();
        say!(
            "  not on PATH, so not started: {} (install {}; `nix run` brings the full stack)",
            names.join(", "),
            programs.join(", ")
        );
    }
    if running.iter().any(|r| r.component.part == Part::Store) {
        say!(
            "  the lab's store stands in for {}: each click's trace and logs show in the page, \
             and `dice-lab trace TRACE_ID` prints them",
            Part::REPLACED_BY_STORE.map(Part::name).join(", ")
        );
    }
    if running.iter().any(|r| r.component.part == Part::Grafana) {
        say!(
            "  Grafana: anonymous viewing; the admin password is in {}",
            state.join("grafana/admin-password").display()
        );
    }
    say!("  Ctrl-C stops everything.");
    say!();

    wait_for_stop(&mut running).await;
    stop_all(&mut running).await;
    Ok(ExitCode::SUCCESS)
}

fn start(component: Component, logs: &Path) -> Result<Running, String> {
    // Services write where Alloy's file source (or the store) reads; the others beside them.
    let dir = if component.part.is_service() {
        logs.join("services")
    } else {
        logs.to_path_buf()
    };
    let log = dir.join(format!("{}.log", component.name()));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
    let err = file.try_clone().map_err(|e| e.to_string())?;
    let mut command = Command::new(&component.program);
    command
        .args(&component.args)
        .envs(component.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        // Its own process group: the terminal's Ctrl-C reaches only the launcher, which stops
        // the components in order.
        .process_group(0);
    // If the launcher itself dies (even by SIGKILL), the kernel sends the child SIGTERM, so no
    // component outlives it.
    // SAFETY: prctl is async-signal-safe and touches only the child being set up.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command.spawn().map_err(|e| {
        format!(
            "cannot start {} ({}): {e}",
            component.name(),
            component.program.display()
        )
    })?;
    Ok(Running {
        component,
        child,
        log,
    })
}

async fn wait_ready(
    http: &reqwest::Client,
    running: &mut Running,
    started: Instant,
) -> Result<(), String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let ready = running.component.part.ready_url();
    loop {
        if let Ok(Some(status)) = running.child.try_wait() {
            return Err(format!(
                "{} exited at start-up ({status}); its log {} ends with:\n{}",
                running.component.name(),
                running.log.display(),
                tail(&running.log)
            ));
        }
        if http
            .get(&ready)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            say!(
                "  ✓ {:<12} ready after {:.2} s",
                running.component.name(),
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{} did not become ready within {} s; see {}",
                running.component.name(),
                READY_TIMEOUT.as_secs(),
                running.log.display()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Until SIGINT or SIGTERM; a component that dies meanwhile is reported, and the rest go on.
async fn wait_for_stop(running: &mut [Running]) {
    let mut signal = std::pin::pin!(lab_http::server::shutdown_signal());
    let mut reported = vec![false; running.len()];
    loop {
        tokio::select! {
            () = &mut signal => return,
            () = tokio::time::sleep(Duration::from_millis(500)) => {
                for (r, seen) in running.iter_mut().zip(reported.iter_mut()) {
                    if !*seen && let Ok(Some(status)) = r.child.try_wait() {
                        *seen = true;
                        say!("dice-lab: {} stopped on its own ({status}); see {}", r.component.name(), r.log.display());
                    }
                }
            }
        }
    }
}

/// Stops services first (newest first), then backends: SIGTERM, once more after 3 s should the
/// first one have gone unnoticed, then SIGKILL when [`STOP_GRACE`] is over.
async fn stop_all(running: &mut Vec<Running>) {
    while let Some(mut r) = running.pop() {
        let Some(pid) = r.child.id() else { continue };
        let term = || {
            // SAFETY: kill(2) only sends a signal, to our own child.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        };
        term();
        let stopped = match tokio::time::timeout(Duration::from_secs(3), r.child.wait()).await {
            Ok(_) => true,
            Err(_) => {
                term();
                tokio::time::timeout(STOP_GRACE - Duration::from_secs(3), r.child.wait())
                    .await
                    .is_ok()
            }
        };
        if stopped {
            say!("  stopped {}", r.component.name());
        } else {
            let _ = r.child.kill().await;
            say!(
                "  killed {} (it ignored SIGTERM for {} s)",
                r.component.name(),
                STOP_GRACE.as_secs()
            );
        }
    }
}

/// `dice-lab status`: which components answer.
pub async fn status() -> ExitCode {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .expect("an HTTP client");
    let mut services_up = 0;
    show!("{:<12} {:<6} URL", "component", "state");
    for part in Part::all() {
        // The store answers on Tempo's and Loki's ports: whose `/ready` answered tells them apart.
        let answer = http.get(part.ready_url()).send().await.ok().map(|r| {
            let store = r
                .headers()
                .get(reqwest::header::SERVER)
                .is_some_and(|s| s == store::SERVER);
            (r.status().is_success(), store)
        });
        let up = answer.is_some_and(|(ready, store)| ready && store == (part == Part::Store));
        let store_in_place = part != Part::Store && answer.is_some_and(|(_, store)| store);
        if up && part.is_service() {
            services_up += 1;
        }
        show!(
            "{:<12} {:<6} {}{}",
            part.name(),
            if up { "up" } else { "down" },
            part.landing_url(),
            if store_in_place {
                "  (the lab's store answers here in its place)"
            } else {
                ""
            }
        );
    }
    if services_up == Part::SERVICES.len() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Resident memory of a process, from /proc.
fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}
