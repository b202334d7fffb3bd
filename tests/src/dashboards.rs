//! The queries the provisioned dashboards ask, read from `dashboards/*.json`, and made concrete
//! the way Grafana would for a test: every suite that runs them against a real backend (a real
//! Prometheus here, the real Tempo and Loki in the real-backends suite) lists them from here.

use serde_json::Value;

use crate::repo;

/// One target of one panel.
pub struct Target {
    /// `file / panel title`, for messages.
    pub title: String,
    /// The data source's uid: `prometheus`, `loki` or `tempo`.
    pub datasource: String,
    /// Tempo's `queryType` (`traceql`, `serviceMap`), if any.
    pub query_type: Option<String>,
    /// The PromQL, LogQL or TraceQL as written (empty for a service map).
    pub expr: String,
    /// The whole panel.
    pub panel: Value,
}

/// Every target of every dashboard.
pub fn targets() -> Vec<Target> {
    let mut all = Vec::new();
    for file in repo::files("dashboards", "json") {
        let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                all.push(Target {
                    title: format!(
                        "{} / {}",
                        file.file_name().unwrap().to_string_lossy(),
                        panel["title"].as_str().unwrap_or_default()
                    ),
                    datasource: target["datasource"]["uid"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    query_type: target["queryType"].as_str().map(str::to_owned),
                    expr: target["expr"]
                        .as_str()
                        .or(target["query"].as_str())
                        .unwrap_or_default()
                        .to_owned(),
                    panel: panel.clone(),
                });
            }
        }
    }
    all
}

/// `expr` with Grafana's variables replaced: every service (the dashboards' `allValue`), the loaded die, a 20 s rate interval
/// and a 5 minute range.
pub fn concrete(expr: &str) -> String {
    expr.replace("$__rate_interval", "20s")
        .replace("$__range", "5m")
        .replace("$service", ".+")
        .replace("$die", "loaded")
}

/// Metrics only Tempo's metrics generator writes.
pub const TEMPO_GENERATED: &[&str] = &["traces_spanmetrics_", "traces_service_graph_"];
