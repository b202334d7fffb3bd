//! One lab on the real backends: Prometheus, Loki and a Tempo started through the launcher's own
//! configuration, Alloy's two hops played by the test, the three services on their usual ports
//! (where Prometheus's scrape targets and the frontend's defaults expect them), and, for the
//! comparison, the lab's store fed the same spans and log files, with a second frontend reading
//! from it.

use std::collections::BTreeSet;
use std::path::Path;

use lab_tests::alloy::{LogShipper, TraceRelay, Wiring};
use lab_tests::http::Target as _;
use lab_tests::in_process::{self, Running};
use lab_tests::process::Service;
use lab_tests::real_backends::{self, Backend, Programs};
use lab_tests::repo;
use parts::Part;

pub struct Lab {
    /// `tempo, version 2.10.8` → `2.10.8`.
    pub tempo_version: String,
    // Dropped in this order: the services first, then what they send to.
    pub frontend: Service,
    pub store_frontend: Service,
    pub roller: Service,
    pub die_service: Service,
    pub relay: TraceRelay,
    pub _shipper: LogShipper,
    pub store: Running,
    pub tempo: Backend,
    pub loki: Backend,
    pub prometheus: Backend,
    /// The backends' state and the services' log files; removed last.
    pub _scratch: tempfile::TempDir,
}

impl Lab {
    pub async fn start(programs: &Programs, tempo: &Path) -> Self {
        let scratch = lab_tests::fixtures::scratch_dir("real-backends");
        let state = scratch.path().to_owned();
        let logs = state.join("logs/services");
        std::fs::create_dir_all(&logs).unwrap();
        // In `dice-lab up`'s order.
        let prometheus = Backend::start(Part::Prometheus, &programs.prometheus, &state).await;
        let loki = Backend::start(Part::Loki, &programs.loki, &state).await;
        let tempo_backend = Backend::start(Part::Tempo, tempo, &state).await;

        let store = in_process::store(in_process::store_settings(logs.clone(), 64)).await;
        let store_otlp = format!("http://{}", store.addrs()[1]);
        let wiring = Wiring::read();
        let relay = TraceRelay::start(&wiring, vec![store_otlp]).await;
        let shipper = LogShipper::start(&wiring, &logs);

        // Each service as `dice-lab up` runs it: its usual address, its lines in its log file.
        let mut services = Vec::new();
        for part in Part::SERVICES {
            let log = logs.join(format!("{}.log", part.name()));
            services
                .push(Service::start_at(part.name(), part.default_listen(), &[], &[], &log).await);
        }
        let Ok([die_service, roller, frontend]) = <[Service; 3]>::try_from(services) else {
            unreachable!("three services")
        };
        let [store_tempo, _, store_loki] =
            [0, 1, 2].map(|i| format!("http://{}", store.addrs()[i]));
        let store_frontend = Service::start(
            Part::Frontend.name(),
            &[
                "--die-service-url",
                &die_service.url(),
                "--dice-roller-url",
                &roller.url(),
                "--trace-query-url",
                &store_tempo,
                "--log-query-url",
                &store_loki,
            ],
            // Its own spans and lines are no part of what is compared.
            &[("OTEL_SDK_DISABLED", "true")],
        )
        .await;
        Self {
            tempo_version: dice_lab::backends::version(tempo).unwrap_or_else(|| "unknown".into()),
            frontend,
            store_frontend,
            roller,
            die_service,
            relay,
            _shipper: shipper,
            store,
            tempo: tempo_backend,
            loki,
            prometheus,
            _scratch: scratch,
        }
    }

    /// The frontend's base URL.
    pub fn frontend_url(&self) -> String {
        self.frontend.url()
    }

    /// `GET` on the frontend, as JSON.
    pub async fn api(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.frontend.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        body
    }
}

pub async fn backends_get_ready_with_the_projects_files(lab: &mut Lab) {
    for backend in [&lab.prometheus, &lab.loki, &lab.tempo] {
        eprintln!(
            "{} ready after {:.1} s",
            backend.part,
            backend.ready_after().as_secs_f64()
        );
    }
    // The checks `nix flake check` runs (nix/backend-configs.nix), each line as written there,
    // with these programs: the flags are right and the files pass their own parsers.
    let nix = repo::read("nix/backend-configs.nix");
    for program in ["tempo", "loki"] {
        let line = nix
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with(&format!("{program} -")))
            .unwrap_or_else(|| panic!("nix/backend-configs.nix runs no {program} check"));
        let line = line
            // The settings the module gives a Tempo of this version are those `dice-lab up`
            // wrote for it (nix/tempo.nix and the launcher merge the same overlay).
            .replace(
                "${tempoConfig}",
                &lab._scratch
                    .path()
                    .join("tempo/tempo.yaml")
                    .display()
                    .to_string(),
            )
            .replace("${../", &format!("{}/", repo::root().display()))
            .replace('}', "");
        let program_path = if program == "tempo" {
            lab.tempo.program().to_owned()
        } else {
            lab.loki.program().to_owned()
        };
        let data = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("bash")
            .args([
                "-euc",
                &format!("{} {}", program_path.display(), &line[program.len()..]),
            ])
            .env("TEMPO_DATA_DIR", data.path())
            .env("LOKI_DATA_DIR", data.path())
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "{line}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    eprintln!("tempo {}", lab.tempo_version);
    assert_ne!(lab.tempo_version, "unknown", "the Tempo says its version");
    // Each listens only on the ports the table of the lab's parts gives it: `dice-lab up` checks
    // those before it starts anything, and a port it does not know of collides unnoticed.
    for backend in [&lab.tempo, &lab.loki, &lab.prometheus] {
        let listening = real_backends::listening_ports(backend.pid());
        let known: BTreeSet<u16> = backend.part.ports().into_iter().collect();
        assert!(
            listening.is_subset(&known),
            "{} listens on {listening:?}; the table of parts lists {known:?}",
            backend.part
        );
        assert!(listening.contains(&backend.part.port()));
    }
}
