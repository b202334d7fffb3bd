//! The observability backends `dice-lab up` can start, each from the project's own configuration.
//!
//! The files under `observability/` and `dashboards/` are compiled in, so the launcher needs no
//! checkout at run time, and written into the state directory before anything starts. A backend
//! is started only if its program is on `PATH`; the others are listed with how to get them.
//! Alloy, Tempo and Loki work as one chain (spans and logs in, traces and logs out), so unless all
//! three are there, none of them starts and the lab's store takes their place and ports.

use std::path::{Path, PathBuf};

use parts::Part;

use crate::component::Component;

const PROMETHEUS: &str = include_str!("../../observability/prometheus.json");
const PROMETHEUS_FLAGS: &str = include_str!("../../observability/prometheus-flags.json");
const LOKI: &str = include_str!("../../observability/loki.json");
const TEMPO: &str = include_str!("../../observability/tempo.json");
/// What Tempo 2.x needs besides `TEMPO` (its ingester's timings), in a block 3.x refuses.
const TEMPO_2: &str = include_str!("../../observability/tempo-2.json");
const ALLOY: &[(&str, &str)] = &[
    (
        "traces.alloy",
        include_str!("../../observability/alloy/traces.alloy"),
    ),
    (
        "logs.alloy",
        include_str!("../../observability/alloy/logs.alloy"),
    ),
    (
        "logs-files.alloy",
        include_str!("../../observability/alloy/logs-files.alloy"),
    ),
];
const GRAFANA_DATASOURCES: &str = include_str!("../../observability/grafana/datasources.json");
const GRAFANA_DASHBOARDS: &str = include_str!("../../observability/grafana/dashboards.json");
const GRAFANA_SETTINGS: &str = include_str!("../../observability/grafana/settings.json");
const DASHBOARDS: &[(&str, &str)] = &[
    (
        "dice-lab-overview.json",
        include_str!("../../dashboards/dice-lab-overview.json"),
    ),
    (
        "sync-vs-async.json",
        include_str!("../../dashboards/sync-vs-async.json"),
    ),
    (
        "dice-distribution.json",
        include_str!("../../dashboards/dice-distribution.json"),
    ),
    (
        "logs-and-traces.json",
        include_str!("../../dashboards/logs-and-traces.json"),
    ),
];

/// What `dice-lab up` starts besides the services.
#[derive(Default)]
pub struct Plan {
    /// The backends found on PATH (and maybe the store), configured, in start order.
    pub components: Vec<Component>,
    /// The backends not on PATH.
    pub missing: Vec<Part>,
}

/// Every backend found on PATH, configured under `state`, or the store in place of Alloy, Tempo
/// and Loki when one of them is missing.
pub fn plan(state: &Path) -> std::io::Result<Plan> {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for part in Part::BACKENDS {
        match part.programs().iter().find_map(|p| which(p)) {
            Some(program) => found.push((part, program)),
            None => missing.push(part),
        }
    }
    let store = Part::REPLACED_BY_STORE
        .iter()
        .any(|part| missing.contains(part));
    if store {
        found.retain(|(part, _)| !Part::REPLACED_BY_STORE.contains(part));
    }
    let mut components = Vec::new();
    for (part, program) in found {
        components.push(configure(part, state, program)?);
    }
    if store {
        components.push(
            Component::own(Part::Store).with_env("STORE_LOG_DIR", state.join("logs/services")),
        );
    }
    Ok(Plan {
        components,
        missing,
    })
}

/// The backend `part`, run by `program`, with the project's configuration of it written under
/// `state`: what `dice-lab up` starts for it.
///
/// # Panics
///
/// If `part` is a service or the store, which are no backends.
pub fn configure(part: Part, state: &Path, program: PathBuf) -> std::io::Result<Component> {
    match part {
        Part::Prometheus => prometheus(state, program),
        Part::Loki => loki(state, program),
        Part::Tempo => tempo(state, program),
        Part::Alloy => alloy(state, program),
        Part::Grafana => grafana(state, program),
        other => panic!("{other} is no backend"),
    }
}

fn prometheus(state: &Path, program: PathBuf) -> std::io::Result<Component> {
    let dir = state.join("prometheus");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("prometheus.yml"), PROMETHEUS)?;
    let mut args = vec![
        format!("--config.file={}", dir.join("prometheus.yml").display()),
        format!("--storage.tsdb.path={}", dir.join("data").display()),
    ];
    args.extend(json_strings(PROMETHEUS_FLAGS));
    Ok(Component::backend(Part::Prometheus, program, args))
}

fn loki(state: &Path, program: PathBuf) -> std::io::Result<Component> {
    let dir = state.join("loki");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("loki.yaml"), LOKI)?;
    let args = vec![
        format!("-config.file={}", dir.join("loki.yaml").display()),
        "-config.expand-env=true".into(),
    ];
    Ok(Component::backend(Part::Loki, program, args).with_env("LOKI_DATA_DIR", dir.join("data")))
}

fn tempo(state: &Path, program: PathBuf) -> std::io::Result<Component> {
    let dir = state.join("tempo");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("tempo.yaml"), tempo_config(&program))?;
    let args = vec![
        format!("-config.file={}", dir.join("tempo.yaml").display()),
        "-config.expand-env=true".into(),
    ];
    Ok(Component::backend(Part::Tempo, program, args).with_env("TEMPO_DATA_DIR", dir.join("data")))
}

/// The lab's Tempo configuration for the Tempo `program` is, as text.
fn tempo_config(program: &Path) -> String {
    let version = version(program).unwrap_or_default();
    serde_json::to_string_pretty(&tempo_settings(&version)).expect("JSON")
}

/// The lab's Tempo settings for a Tempo of `version` (`2.10.8`): the shared file, with the 2.x
/// overlay merged in for a 2.x, as `nix/tempo.nix` has them for the NixOS module.
pub fn tempo_settings(version: &str) -> serde_json::Value {
    let mut settings: serde_json::Value =
        serde_json::from_str(TEMPO).expect("the compiled-in Tempo configuration is JSON");
    if version.starts_with("2.") {
        merge(
            &mut settings,
            serde_json::from_str(TEMPO_2).expect("the compiled-in Tempo 2 overlay is JSON"),
        );
    }
    settings
}

/// The version a Go backend says it is with `-version` (`tempo, version v2.10.8 (...)` →
/// `2.10.8`), if it says one.
pub fn version(program: &Path) -> Option<String> {
    let out = std::process::Command::new(program)
        .arg("-version")
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let version = text
        .split_whitespace()
        .skip_while(|word| *word != "version")
        .nth(1)?;
    Some(
        version
            .trim_end_matches(',')
            .trim_start_matches('v')
            .to_owned(),
    )
}

/// `overlay`'s keys into `base`, objects merged key by key, as Nix's `lib.recursiveUpdate`.
fn merge(base: &mut serde_json::Value, overlay: serde_json::Value) {
    match (base, overlay) {
        (serde_json::Value::Object(base), serde_json::Value::Object(overlay)) => {
            for (key, value) in overlay {
                merge(base.entry(key).or_insert(serde_json::Value::Null), value);
            }
        }
        (base, overlay) => *base = overlay,
    }
}

fn alloy(state: &Path, program: PathBuf) -> std::io::Result<Component> {
    let dir = state.join("alloy");
    std::fs::create_dir_all(dir.join("config"))?;
    for (name, text) in ALLOY {
        std::fs::write(dir.join("config").join(name), text)?;
    }
    let args = vec![
        "run".into(),
        dir.join("config").display().to_string(),
        format!("--server.http.listen-addr={}", Part::Alloy.default_listen()),
        format!("--storage.path={}", dir.join("data").display()),
        // As the NixOS module runs it: no usage report sent home from a workshop's laptops.
        "--disable-reporting".into(),
    ];
    Ok(Component::backend(Part::Alloy, program, args)
        .with_env("DICE_LAB_LOG_DIR", state.join("logs").join("services")))
}

fn grafana(state: &Path, program: PathBuf) -> std::io::Result<Component> {
    let dir = state.join("grafana");
    let provisioning = dir.join("provisioning");
    for sub in ["datasources", "dashboards", "plugins", "alerting"] {
        std::fs::create_dir_all(provisioning.join(sub))?;
    }
    std::fs::create_dir_all(dir.join("dashboards"))?;
    std::fs::write(
        provisioning.join("datasources/dice-lab.yaml"),
        GRAFANA_DATASOURCES,
    )?;
    std::fs::write(
        provisioning.join("dashboards/dice-lab.yaml"),
        GRAFANA_DASHBOARDS,
    )?;
    for (name, text) in DASHBOARDS {
        std::fs::write(dir.join("dashboards").join(name), text)?;
    }
    let mut ini = ini_from_json(GRAFANA_SETTINGS);
    ini.push_str(&format!(
        "[paths]\ndata = {data}\nlogs = {data}/log\nplugins = {data}/plugins\nprovisioning = {provisioning}\n",
        data = dir.join("data").display(),
        provisioning = provisioning.display()
    ));
    std::fs::write(dir.join("grafana.ini"), ini)?;
    let password = admin_password(&dir)?;
    let home = program
        .canonicalize()
        .ok()
        .and_then(|p| Some(p.parent()?.parent()?.join("share/grafana")))
        .filter(|p| p.is_dir());
    let mut args = Vec::new();
    if program.file_name().is_some_and(|n| n == "grafana") {
        args.push("server".to_owned());
    }
    args.push(format!("--config={}", dir.join("grafana.ini").display()));
    if let Some(home) = home {
        args.push(format!("--homepath={}", home.display()));
    }
    Ok(Component::backend(Part::Grafana, program, args)
        .with_env("DICE_LAB_DASHBOARDS", dir.join("dashboards"))
        .with_env("DICE_LAB_GRAFANA_ADMIN_PASSWORD", password))
}

/// A random admin password, made once per state directory and kept in it (mode 0600).
fn admin_password(dir: &Path) -> std::io::Result<String> {
    use rand::Rng as _;
    let file = dir.join("admin-password");
    if let Ok(existing) = std::fs::read_to_string(&file) {
        return Ok(existing.trim().to_owned());
    }
    let password: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    std::fs::write(&file, &password)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(password)
}

/// `{"section": {"key": value}}` as INI text.
fn ini_from_json(text: &str) -> String {
    let settings: serde_json::Value =
        serde_json::from_str(text).expect("the compiled-in Grafana settings are JSON");
    let mut ini = String::new();
    for (section, keys) in settings.as_object().expect("an object of sections") {
        ini.push_str(&format!("[{section}]\n"));
        for (key, value) in keys.as_object().expect("an object of keys") {
            let value = match value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            ini.push_str(&format!("{key} = {value}\n"));
        }
    }
    ini
}

fn json_strings(text: &str) -> Vec<String> {
    serde_json::from_str(text).expect("the compiled-in flags are a JSON list of strings")
}

/// The first `program` on PATH.
fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tempo_2_alone_gets_the_ingester_block() {
        assert!(tempo_settings("2.10.8")["ingester"].is_object());
        assert!(tempo_settings("3.0.2").get("ingester").is_none());
        assert!(tempo_settings("").get("ingester").is_none());
        // What the 2.x overlay adds, it adds beside the shared settings.
        assert_eq!(
            tempo_settings("2.10.8")["live_store"],
            tempo_settings("3.0.2")["live_store"]
        );
    }

    #[test]
    fn the_tempo_2_overlay_merges_key_by_key() {
        let mut base: serde_json::Value =
            serde_json::json!({"a": {"b": 1, "c": {"d": 2}}, "e": [1]});
        merge(
            &mut base,
            serde_json::json!({"a": {"c": {"f": 3}}, "e": [2], "g": true}),
        );
        assert_eq!(
            base,
            serde_json::json!({"a": {"b": 1, "c": {"d": 2, "f": 3}}, "e": [2], "g": true})
        );
    }
}
