//! The lab's parts, listed once.
//!
//! Every process of the lab, the three services, the five observability backends and the store
//! that stands in for three of them, is a [`Part`]: its name, the port it serves HTTP on (and any other it listens on), the prefix of the
//! environment variables that configure it, and the URL that says it is ready. The services'
//! default settings, the launcher (`serve`, `up`, `status`) and the tests read them from here; the
//! Nix module and the files under `observability/` keep their own literals, as Nix and the
//! backends need, and a test checks that they agree with this table.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};

/// One process of the lab.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    DieService,
    DiceRoller,
    Frontend,
    Prometheus,
    Loki,
    Tempo,
    Alloy,
    Grafana,
    /// The lab's own store, run in place of Alloy, Tempo and Loki when they are not all there:
    /// it listens on their ports.
    Store,
}

impl Part {
    /// The three services, in the order they start (each after what it calls).
    pub const SERVICES: [Part; 3] = [Part::DieService, Part::DiceRoller, Part::Frontend];

    /// The observability backends, in the order `dice-lab up` starts them.
    pub const BACKENDS: [Part; 5] = [
        Part::Prometheus,
        Part::Loki,
        Part::Tempo,
        Part::Alloy,
        Part::Grafana,
    ];

    /// The backends the store stands in for, all three or none.
    pub const REPLACED_BY_STORE: [Part; 3] = [Part::Loki, Part::Tempo, Part::Alloy];

    /// Every part: the services, the backends, then the store.
    pub fn all() -> impl Iterator<Item = Part> {
        Self::SERVICES
            .into_iter()
            .chain(Self::BACKENDS)
            .chain([Part::Store])
    }

    /// Its name: the service's `service.name` and binary, or the backend's usual name.
    pub const fn name(self) -> &'static str {
        match self {
            Part::DieService => "die-service",
            Part::DiceRoller => "dice-roller",
            Part::Frontend => "frontend",
            Part::Prometheus => "prometheus",
            Part::Loki => "loki",
            Part::Tempo => "tempo",
            Part::Alloy => "alloy",
            Part::Grafana => "grafana",
            Part::Store => "store",
        }
    }

    /// The part named `name`.
    pub fn from_name(name: &str) -> Option<Part> {
        Self::all().find(|part| part.name() == name)
    }

    /// Whether it is one of the three services (rather than a backend).
    pub const fn is_service(self) -> bool {
        matches!(self, Part::DieService | Part::DiceRoller | Part::Frontend)
    }

    /// The port it serves HTTP on by default.
    pub const fn port(self) -> u16 {
        match self {
            Part::Frontend => 8400,
            Part::DiceRoller => 8401,
            Part::DieService => 8402,
            Part::Prometheus => 9090,
            Part::Loki => 3100,
            Part::Tempo => 3200,
            Part::Alloy => 12345,
            Part::Grafana => 3000,
            Part::Store => Part::Tempo.port(),
        }
    }

    /// The other ports it listens on with the lab's configuration: Loki's and Tempo's gRPC,
    /// Tempo's OTLP receivers behind Alloy, Alloy's OTLP receivers (where the services export);
    /// the store's OTLP/HTTP receiver (Alloy's) and Loki API (Loki's).
    pub const fn other_ports(self) -> &'static [u16] {
        match self {
            Part::Loki => &[9096],
            Part::Tempo => &[9097, 4417, 4418],
            Part::Alloy => &[4317, 4318],
            Part::Store => &[4318, 3100],
            _ => &[],
        }
    }

    /// Every port it listens on.
    pub fn ports(self) -> Vec<u16> {
        std::iter::once(self.port())
            .chain(self.other_ports().iter().copied())
            .collect()
    }

    /// The prefix of a service's own environment variables (`DIE_SERVICE_LISTEN`, ...).
    pub const fn env_prefix(self) -> Option<&'static str> {
        match self {
            Part::DieService => Some("DIE_SERVICE"),
            Part::DiceRoller => Some("DICE_ROLLER"),
            Part::Frontend => Some("FRONTEND"),
            Part::Store => Some("STORE"),
            _ => None,
        }
    }

    /// The path that answers 200 once it is ready.
    pub const fn ready_path(self) -> &'static str {
        match self {
            Part::DieService | Part::DiceRoller | Part::Frontend => "/healthz",
            Part::Prometheus | Part::Alloy => "/-/ready",
            Part::Loki | Part::Tempo | Part::Store => "/ready",
            Part::Grafana => "/api/health",
        }
    }

    /// The page to show a person: what the part is for, at a glance.
    pub const fn landing_path(self) -> &'static str {
        match self {
            Part::DieService => "/dice",
            Part::DiceRoller => "/roll-async?die=fair&times=10",
            Part::Frontend => "/",
            _ => "",
        }
    }

    /// The programs that run a backend, tried in order on `PATH`.
    pub const fn programs(self) -> &'static [&'static str] {
        match self {
            Part::Grafana => &["grafana", "grafana-server"],
            Part::Prometheus => &["prometheus"],
            Part::Loki => &["loki"],
            Part::Tempo => &["tempo"],
            Part::Alloy => &["alloy"],
            _ => &[],
        }
    }

    /// Where it listens by default: loopback and its port.
    pub const fn default_listen(self) -> SocketAddr {
        SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), self.port())
    }

    /// `http://127.0.0.1:PORT`, its base URL on this machine.
    pub fn local_url(self) -> String {
        format!("http://{}", self.default_listen())
    }

    /// Its readiness URL on this machine.
    pub fn ready_url(self) -> String {
        format!("{}{}", self.local_url(), self.ready_path())
    }

    /// Its landing page on this machine.
    pub fn landing_url(self) -> String {
        format!("{}{}", self.local_url(), self.landing_path())
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ports_are_unique_and_found_again() {
        let parts: Vec<Part> = Part::all().collect();
        assert_eq!(parts.len(), 9);
        for part in &parts {
            assert_eq!(Part::from_name(part.name()), Some(*part));
        }
        // The store runs instead of the parts it replaces, on ports they would have used.
        let replaced: Vec<u16> = Part::REPLACED_BY_STORE
            .iter()
            .flat_map(|p| p.ports())
            .collect();
        assert!(Part::Store.ports().iter().all(|p| replaced.contains(p)));
        assert_eq!(Part::Store.port(), Part::Tempo.port());
        let mut ports: Vec<u16> = parts
            .iter()
            .filter(|p| **p != Part::Store)
            .flat_map(|p| p.ports())
            .collect();
        let count = ports.len();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), count, "no two listeners share a port");
        assert_eq!(Part::from_name("nope"), None);
    }

    #[test]
    fn urls_are_on_loopback() {
        assert_eq!(
            Part::DieService.ready_url(),
            "http://127.0.0.1:8402/healthz"
        );
        assert_eq!(
            Part::Grafana.ready_url(),
            "http://127.0.0.1:3000/api/health"
        );
        assert_eq!(Part::Frontend.landing_url(), "http://127.0.0.1:8400/");
        assert!(Part::SERVICES.iter().all(|p| p.env_prefix().is_some()));
        assert!(Part::BACKENDS.iter().all(|p| p.env_prefix().is_none()));
    }
}
