//! The backends' configurations, read the way the backend versions that nixpkgs ships read them.
//!
//! Tempo, Loki, Alloy and Grafana do not run in this suite, so each rule that made one of them
//! refuse or silently change a file is applied here as its source states it: Tempo 2.10 and 3.0
//! parse strictly (any key their structs lack stops them, `tests/data/tempo-config-keys.json`);
//! Grafana 12–13 expand `$...` in provisioning files from the environment, and `$$` is a literal
//! `$`; Loki refuses a LogQL selector whose every matcher accepts the empty string; a Grafana bar
//! chart needs a table whose column is its x field; Grafana's Viewer role has no Explore unless
//! `viewers_can_edit` is on. `nix flake check` (the `backend-configs` check) runs the backends'
//! own parsers on the same files, where nixpkgs is at hand.

use std::collections::{BTreeMap, BTreeSet};

use lab_tests::repo::{self, json};
use serde_json::Value;

fn dashboards() -> Vec<(String, Value)> {
    let found: Vec<(String, Value)> = repo::files("dashboards", "json")
        .iter()
        .map(|p| {
            let name = format!("dashboards/{}", p.file_name().unwrap().to_string_lossy());
            (name.clone(), json(&name))
        })
        .collect();
    assert!(found.len() >= 4, "the four dashboards");
    found
}

// ---------------------------------------------------------------------------------------------
// Tempo

/// Every key of `observability/tempo.json` exists in both Tempo 2.10 and 3.0, as their strict
/// parser requires; the file's blocks removed in 3.0 (`ingester`, `compactor`,
/// `metrics_generator.traces_storage`) made Tempo 3 exit at start-up.
#[test]
fn tempo_accepts_the_configuration_in_2_10_and_3_0() {
    let keys = json("tests/data/tempo-config-keys.json");
    for (version, structs) in keys["versions"].as_object().unwrap() {
        // Tempo 2 also reads the overlay the launcher and the module merge in for 2.x.
        let mut tempo = json("observability/tempo.json");
        if version.starts_with("2.") {
            for (key, value) in json("observability/tempo-2.json").as_object().unwrap() {
                assert!(
                    tempo.get(key).is_none(),
                    "the overlay only adds blocks: {key}"
                );
                tempo[key] = value.clone();
            }
        }
        let mut unknown = Vec::new();
        check_tempo_keys(&tempo, "", structs, &mut unknown);
        assert!(
            unknown.is_empty(),
            "Tempo {version} would refuse observability/tempo.json: {unknown:?}"
        );
    }
}

/// Walks `value` at struct path `path`, collecting keys the struct does not have.
fn check_tempo_keys(value: &Value, path: &str, structs: &Value, unknown: &mut Vec<String>) {
    let Some(object) = value.as_object() else {
        return;
    };
    // A struct no one has checked knows no key.
    let known: Vec<&str> = structs[path]
        .as_array()
        .map(|keys| keys.iter().map(|k| k.as_str().unwrap()).collect())
        .unwrap_or_default();
    for (key, inner) in object {
        let full = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        if known.contains(&format!("{key}:*").as_str()) {
            continue;
        }
        if !known.contains(&key.as_str()) {
            unknown.push(full);
            continue;
        }
        match inner {
            Value::Object(_) => check_tempo_keys(inner, &full, structs, unknown),
            Value::Array(items) => {
                for item in items.iter().filter(|i| i.is_object()) {
                    check_tempo_keys(item, &format!("{full}[]"), structs, unknown);
                }
            }
            _ => {}
        }
    }
}

/// Every place a monolithic Tempo writes to disk is set under the one data directory: under
/// NixOS's `DynamicUser` only the unit's `StateDirectory` (`/var/lib/tempo`, the default of
/// `TEMPO_DATA_DIR` here) is writable, and the built-in defaults are under `/var/tempo`.
#[test]
fn tempo_writes_only_under_its_data_directory() {
    let keys = json("tests/data/tempo-config-keys.json");
    let tempo = json("observability/tempo.json");
    const DATA_DIR: &str = "${TEMPO_DATA_DIR:-/var/lib/tempo}/";
    for (path, default) in keys["disk_paths"].as_object().unwrap() {
        if path == "about" {
            continue;
        }
        let value = path.split('.').fold(&tempo, |v, k| &v[k]);
        let set = value.as_str().unwrap_or_else(|| {
            panic!("tempo.json does not set {path}, whose default is {default}")
        });
        assert!(
            set.starts_with(DATA_DIR),
            "{path} is {set}, outside {DATA_DIR}"
        );
    }
    // A week of traces, in the one retention key both versions honour.
    assert_eq!(
        tempo["overrides"]["defaults"]["compaction"]["block_retention"],
        "168h"
    );
    // Every listener on loopback.
    for address in [
        &tempo["server"]["http_listen_address"],
        &tempo["server"]["grpc_listen_address"],
        &tempo["memberlist"]["bind_addr"][0],
    ] {
        assert_eq!(address, "127.0.0.1");
    }
}

// ---------------------------------------------------------------------------------------------
// Grafana's expansion of `$` in provisioning files

/// One expansion Grafana makes in a string: the environment variable (or file) it reads.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Expansion {
    Env(String),
    File(String),
}

/// What Grafana stores for a string of a provisioning file (datasources, dashboard providers),
/// and the expansions it made: `interpolateValue` in grafana/grafana
/// `pkg/services/provisioning/values/values.go` splits the string on `$$` (a literal `$`), applies
/// `setting.ExpandVar` (`pkg/setting/expanders.go`: `${X}` and `$__env{X}` from the environment,
/// `$__file{path}` from a file) and then Go's `os.ExpandEnv` to each piece, and joins the pieces
/// with `$`. Every variable here reads as empty, and every file as `<file>`.
fn grafana_provisioned(value: &str) -> (String, Vec<Expansion>) {
    let mut expansions = Vec::new();
    let pieces: Vec<String> = value
        .split("$$")
        .map(|piece| {
            let expanded = grafana_expand_var(piece, &mut expansions);
            go_expand_env(&expanded, &mut expansions)
        })
        .collect();
    (pieces.join("$"), expansions)
}

/// What Grafana reads from a `grafana.ini` value: `setting.ExpandVar` only (`expandConfig`), so
/// `${X}`, `$__env{X}` and `$__file{path}`, and no `$$`.
fn grafana_ini(value: &str) -> (String, Vec<Expansion>) {
    let mut expansions = Vec::new();
    let expanded = grafana_expand_var(value, &mut expansions);
    (expanded, expansions)
}

/// `setting.ExpandVar`: the matches of `\$(|__\w+){([^}]+)}`, environment first, then files; an
/// unknown `$__name{...}` is left as it is.
fn grafana_expand_var(text: &str, expansions: &mut Vec<Expansion>) -> String {
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        if bytes.get(j) != Some(&b'{') {
            if !text[j..].starts_with("__") {
                i += 1;
                continue;
            }
            j += 2;
            let word = j;
            while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
                j += 1;
            }
            if j == word || bytes.get(j) != Some(&b'{') {
                i += 1;
                continue;
            }
        }
        let kind = &text[i + 1..j];
        let Some(close) = text[j + 1..].find('}').filter(|&n| n > 0) else {
            i += 1;
            continue;
        };
        let argument = &text[j + 1..j + 1 + close];
        let end = j + 1 + close + 1;
        let replacement = match kind {
            "" | "__env" => {
                expansions.push(Expansion::Env(argument.to_owned()));
                Some(String::new())
            }
            "__file" => {
                expansions.push(Expansion::File(argument.to_owned()));
                Some("<file>".to_owned())
            }
            _ => None,
        };
        if let Some(replacement) = replacement {
            out.push_str(&text[copied..i]);
            out.push_str(&replacement);
            copied = end;
        }
        i = end;
    }
    out.push_str(&text[copied..]);
    out
}

/// Go's `os.ExpandEnv` (`os.Expand` with `getShellName`): `$NAME` and `${NAME}` read the
/// environment; `$` before a shell special character or a digit takes that one character as the
/// name; a malformed `${` is eaten; any other `$` stays.
fn go_expand_env(text: &str, expansions: &mut Vec<Expansion>) -> String {
    let bytes = text.as_bytes();
    let special = |b: u8| b"*#$@!?-".contains(&b) || b.is_ascii_digit();
    let mut out = String::new();
    let mut copied = 0;
    let mut j = 0;
    while j < bytes.len() {
        if bytes[j] == b'$' && j + 1 < bytes.len() {
            out.push_str(&text[copied..j]);
            let rest = &bytes[j + 1..];
            let (name, width): (&str, usize) = if rest[0] == b'{' {
                if rest.len() > 2 && special(rest[1]) && rest[2] == b'}' {
                    (&text[j + 2..j + 3], 3)
                } else {
                    match rest.iter().skip(1).position(|&b| b == b'}') {
                        Some(0) => ("", 2),
                        Some(n) => (&text[j + 2..j + 2 + n], n + 2),
                        None => ("", 1),
                    }
                }
            } else if special(rest[0]) {
                (&text[j + 1..j + 2], 1)
            } else {
                let n = rest
                    .iter()
                    .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                    .count();
                (&text[j + 1..j + 1 + n], n)
            };
            if !name.is_empty() {
                expansions.push(Expansion::Env(name.to_owned()));
            } else if width == 0 {
                out.push('$');
            }
            j += width;
            copied = j + 1;
        }
        j += 1;
    }
    out.push_str(&text[copied.min(bytes.len())..]);
    out
}

/// Every string in `value`, at any depth, with its JSON path.
fn strings<'a>(value: &'a Value, path: String, found: &mut Vec<(String, &'a str)>) {
    match value {
        Value::String(s) => found.push((path, s)),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                strings(item, format!("{path}[{i}]"), found);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                strings(item, format!("{path}.{key}"), found);
            }
        }
        _ => {}
    }
}

/// `value` as Grafana stores it from a provisioning file, with every expansion it made.
fn provisioned(value: &Value) -> (Value, Vec<(String, Expansion)>) {
    let mut expansions = Vec::new();
    let stored = provisioned_at(value, "", &mut expansions);
    (stored, expansions)
}

fn provisioned_at(value: &Value, path: &str, expansions: &mut Vec<(String, Expansion)>) -> Value {
    match value {
        Value::String(s) => {
            let (stored, made) = grafana_provisioned(s);
            expansions.extend(made.into_iter().map(|e| (path.to_owned(), e)));
            Value::String(stored)
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| provisioned_at(item, &format!("{path}[{i}]"), expansions))
                .collect(),
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        provisioned_at(v, &format!("{path}.{k}"), expansions),
                    )
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

#[test]
fn the_grafana_expansion_rules_are_those_of_grafana() {
    let stored = |s: &str| grafana_provisioned(s).0;
    // Grafana's own examples and the cases its code settles (values.go, expanders.go, os.Expand).
    assert_eq!(stored("a$$b"), "a$b");
    assert_eq!(stored("5$"), "5$");
    assert_eq!(stored("$$$"), "$$");
    assert_eq!(stored("${}"), "");
    assert_eq!(stored("$1abc"), "abc");
    assert_eq!(stored("x$-y"), "xy");
    assert_eq!(stored("$__vault{secret:path}"), "{secret:path}");
    assert_eq!(stored("${__value.raw}"), "");
    assert_eq!(stored("$${__value.raw}"), "${__value.raw}");
    assert_eq!(stored("{$__tags}[$__rate_interval]"), "{}[]");
    assert_eq!(stored("$__file{/run/secret}"), "<file>");
    assert_eq!(
        grafana_provisioned("$HOME and ${USER}").1,
        vec![Expansion::Env("USER".into()), Expansion::Env("HOME".into())]
    );
    assert_eq!(grafana_ini("$HOME ${USER} $$").0, "$HOME  $$");
}

/// Grafana expands every string of a provisioning file; the lab's must expand nothing but the
/// variables the launcher sets on purpose, and Grafana's own template variables (`${__span...}`,
/// `$__tags`, `$__rate_interval`, `${__value.raw}`) must reach Grafana intact, or the links from
/// traces to logs and metrics and from logs to traces are empty.
#[test]
fn grafana_provisioning_expands_only_the_intended_variables() {
    let intended = [Expansion::Env("DICE_LAB_DASHBOARDS".into())];
    let mut stored_files = BTreeMap::new();
    for file in [
        "observability/grafana/datasources.json",
        "observability/grafana/dashboards.json",
    ] {
        let (stored, expansions) = provisioned(&json(file));
        let unintended: Vec<&(String, Expansion)> = expansions
            .iter()
            .filter(|(_, e)| !intended.contains(e) && !matches!(e, Expansion::File(_)))
            .collect();
        assert!(
            unintended.is_empty(),
            "Grafana would expand these in {file} (write $$ for a literal $): {unintended:?}"
        );
        stored_files.insert(file, stored);
    }
    let datasources = &stored_files["observability/grafana/datasources.json"]["datasources"];
    let by_uid = |uid: &str| {
        datasources
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["uid"] == uid)
            .unwrap_or_else(|| panic!("no {uid} data source"))
            .clone()
    };
    let tempo = by_uid("tempo");
    assert_eq!(
        tempo["jsonData"]["tracesToLogsV2"]["query"],
        r#"{service="${__span.tags["service.name"]}"} | trace_id="${__trace.traceId}""#
    );
    for query in tempo["jsonData"]["tracesToMetrics"]["queries"]
        .as_array()
        .unwrap()
    {
        let query = query["query"].as_str().unwrap();
        assert!(
            query.contains("{$__tags}") && query.contains("[$__rate_interval]"),
            "{query}"
        );
    }
    let loki = by_uid("loki");
    for field in loki["jsonData"]["derivedFields"].as_array().unwrap() {
        assert_eq!(field["url"], "${__value.raw}");
    }
    let dashboards = &stored_files["observability/grafana/dashboards.json"];
    assert_eq!(
        dashboards["providers"][0]["options"]["path"], "",
        "the dashboards' path comes from DICE_LAB_DASHBOARDS (empty here)"
    );

    // grafana.ini: only the admin password comes from the environment.
    let settings = json("observability/grafana/settings.json");
    let mut found = Vec::new();
    strings(&settings, String::new(), &mut found);
    let ini: BTreeSet<Expansion> = found.iter().flat_map(|(_, s)| grafana_ini(s).1).collect();
    assert_eq!(
        ini,
        BTreeSet::from([Expansion::Env("DICE_LAB_GRAFANA_ADMIN_PASSWORD".into())])
    );
}

/// Dashboard files are not expanded (the file provider reads them as they are): Grafana's
/// variables there keep one `$`, and a `$$` would reach the query as it is.
#[test]
fn dashboards_write_grafana_variables_with_one_dollar() {
    for (name, dashboard) in dashboards() {
        let mut found = Vec::new();
        strings(&dashboard, String::new(), &mut found);
        for (path, text) in found {
            assert!(!text.contains("$$"), "{name}{path}: {text}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Grafana's other rules

/// `traceToMetrics` was a feature toggle until Grafana 11 and is unknown to the 12.x and 13.x
/// registries (pkg/services/featuremgmt/registry.go); the lab uses only features that need none.
#[test]
fn grafana_needs_no_feature_toggle() {
    let settings = json("observability/grafana/settings.json");
    assert!(
        settings.get("feature_toggles").is_none(),
        "feature toggles come and go between Grafana versions: {}",
        settings["feature_toggles"]
    );
}

/// In Grafana 12–13 `/explore` needs `datasources:explore`, which the Editor role has and the
/// Viewer role has only with `[users] viewers_can_edit` (pkg/api/accesscontrol.go). Anonymous lab
/// users are Viewers with it: they use Explore, and can save nothing, provisioned or not.
#[test]
fn anonymous_lab_users_can_explore_and_save_nothing() {
    let settings = json("observability/grafana/settings.json");
    let anonymous = &settings["auth.anonymous"];
    assert_eq!(anonymous["enabled"], true);
    let role = anonymous["org_role"].as_str().unwrap();
    let viewers_can_edit = settings["users"]["viewers_can_edit"] == true;
    let explores = role == "Editor" || role == "Admin" || (role == "Viewer" && viewers_can_edit);
    assert!(explores, "anonymous {role}s cannot open Explore");
    assert_eq!(role, "Viewer", "a Viewer can save no dashboard");
    // Provisioned data sources are read-only unless `editable`; provisioned dashboards cannot be
    // saved from the UI.
    for source in json("observability/grafana/datasources.json")["datasources"]
        .as_array()
        .unwrap()
    {
        assert_ne!(source["editable"], true, "{}", source["name"]);
    }
    for provider in json("observability/grafana/dashboards.json")["providers"]
        .as_array()
        .unwrap()
    {
        assert_eq!(provider["allowUiUpdates"], false);
    }
}

/// Grafana assumes a 15 s scrape interval unless told, so every `$__rate_interval` would be at
/// least a minute; the Prometheus data source says the scrape interval the lab uses.
#[test]
fn grafana_knows_the_scrape_interval() {
    let prometheus = json("observability/prometheus.json");
    let sources = json("observability/grafana/datasources.json");
    let source = sources["datasources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["type"] == "prometheus")
        .unwrap();
    assert_eq!(
        source["jsonData"]["timeInterval"],
        prometheus["global"]["scrape_interval"]
    );
}

/// The Tempo data source's settings are all ones Grafana 12–13 know (the Tempo plugin's
/// `pkg/schema/dsconfig.json`); `lokiSearch` went with Grafana 11.
#[test]
fn the_tempo_data_source_uses_known_settings() {
    const KNOWN: &[&str] = &[
        "tracesToLogsV2",
        "tracesToLogs",
        "tracesToMetrics",
        "tracesToProfiles",
        "serviceMap",
        "nodeGraph",
        "search",
        "traceQuery",
        "spanBar",
        "streamingEnabled",
        "timeRangeForTags",
        "tagLimit",
    ];
    let sources = json("observability/grafana/datasources.json");
    let tempo = sources["datasources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["type"] == "tempo")
        .unwrap();
    for key in tempo["jsonData"].as_object().unwrap().keys() {
        assert!(KNOWN.contains(&key.as_str()), "unknown Tempo setting {key}");
    }
}

/// Each log line links to its trace once: derived fields with different names each add a link,
/// and the `trace_id` structured metadata is matched exactly (an unanchored regex also matches
/// keys that merely contain it).
#[test]
fn each_log_line_links_to_its_trace_once() {
    let sources = json("observability/grafana/datasources.json");
    let loki = sources["datasources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["type"] == "loki")
        .unwrap();
    let fields = loki["jsonData"]["derivedFields"].as_array().unwrap();
    let to_tempo: Vec<&Value> = fields
        .iter()
        .filter(|f| f["datasourceUid"] == "tempo")
        .collect();
    assert_eq!(to_tempo.len(), 1, "{fields:?}");
    assert_eq!(to_tempo[0]["matcherType"], "label");
    assert_eq!(to_tempo[0]["matcherRegex"], "^trace_id$");
}

/// A bar chart takes its x axis from a field; a Prometheus range query makes `value` a series
/// label instead, so the chart groups by time. Each bar chart asks an instant query as a table,
/// whose columns are the labels, and names the label it draws along x.
#[test]
fn bar_charts_draw_one_bar_per_label_value() {
    let mut charts = 0;
    for (name, dashboard) in dashboards() {
        for panel in dashboard["panels"].as_array().unwrap() {
            if panel["type"] != "barchart" {
                continue;
            }
            charts += 1;
            let title = format!("{name} / {}", panel["title"]);
            let x = panel["options"]["xField"]
                .as_str()
                .unwrap_or_else(|| panic!("{title}: no xField"));
            assert_eq!(x, "value", "{title}: one bar per face");
            // That the answers carry the label is checked against a real Prometheus
            // (observability.rs).
            for target in panel["targets"].as_array().unwrap() {
                assert_eq!(target["instant"], true, "{title}");
                assert_eq!(target["range"], false, "{title}");
                assert_eq!(target["format"], "table", "{title}");
            }
        }
    }
    assert_eq!(charts, 2, "the observed and the expected distribution");
}

// ---------------------------------------------------------------------------------------------
// LogQL

/// One matcher of a LogQL stream selector.
struct Matcher {
    label: String,
    op: String,
    value: String,
}

/// The matchers of the stream selector (`{...}`) that a LogQL query starts with.
fn selector(query: &str) -> Vec<Matcher> {
    let start = query
        .find('{')
        .unwrap_or_else(|| panic!("no selector in {query}"));
    let mut matchers = Vec::new();
    let mut rest = &query[start + 1..];
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        if rest.starts_with('}') {
            return matchers;
        }
        let label_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or_else(|| panic!("bad selector in {query}"));
        let label = rest[..label_end].to_owned();
        rest = rest[label_end..].trim_start();
        let op = ["=~", "!~", "!=", "="]
            .into_iter()
            .find(|op| rest.starts_with(op))
            .unwrap_or_else(|| panic!("no operator after {label} in {query}"));
        rest = rest[op.len()..].trim_start();
        assert!(rest.starts_with('"'), "unquoted value in {query}");
        let value_end = rest[1..].find('"').unwrap() + 1;
        let value = rest[1..value_end].replace("\\\\", "\\");
        rest = &rest[value_end + 1..];
        matchers.push(Matcher {
            label,
            op: op.to_owned(),
            value,
        });
    }
}

/// Loki's rule (grafana/loki `pkg/logql/syntax/parser.go`, `validateMatchers`, 3.x): a query needs
/// a matcher that does not match the empty string.
fn loki_accepts(query: &str) -> bool {
    selector(query).iter().any(|m| {
        let accepts_empty = match m.op.as_str() {
            "=" => m.value.is_empty(),
            "!=" => !m.value.is_empty(),
            "=~" | "!~" => {
                let matches = regex::Regex::new(&format!("^(?:{})$", m.value))
                    .unwrap_or_else(|e| panic!("{}: {e}", m.label))
                    .is_match("");
                matches == (m.op == "=~")
            }
            _ => unreachable!(),
        };
        !accepts_empty
    })
}

#[test]
fn the_logql_rule_is_lokis() {
    assert!(!loki_accepts(r#"{service=~".*"}"#));
    assert!(loki_accepts(r#"{service=~".+"}"#));
    assert!(!loki_accepts(r#"{service!="x"}"#));
    assert!(loki_accepts(r#"{service=~".*", level="warn"}"#));
}

/// Every LogQL query the lab gives Grafana, with each value its variables can take (the "All"
/// value included), is one Loki accepts.
#[test]
fn every_logql_query_is_one_loki_accepts() {
    let mut checked = 0;
    for (name, dashboard) in dashboards() {
        let variables: Vec<&Value> = dashboard["templating"]["list"]
            .as_array()
            .map(|l| l.iter().collect())
            .unwrap_or_default();
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                if target["datasource"]["type"] != "loki" {
                    continue;
                }
                let expr = target["expr"].as_str().unwrap();
                let mut concrete = vec![expr.to_owned()];
                for variable in &variables {
                    let placeholder = format!("${}", variable["name"].as_str().unwrap());
                    let mut values = vec!["dice-roller".to_owned()];
                    if let Some(all) = variable["allValue"].as_str() {
                        values.push(all.to_owned());
                    }
                    concrete = concrete
                        .iter()
                        .flat_map(|e| values.iter().map(|v| e.replace(&placeholder, v)))
                        .collect();
                }
                for query in concrete {
                    assert!(
                        loki_accepts(&query),
                        "{name} / {}: Loki refuses {query}",
                        panel["title"]
                    );
                    checked += 1;
                }
            }
        }
    }
    // The traces-to-logs query, as Grafana fills it in for a span.
    let (sources, _) = provisioned(&json("observability/grafana/datasources.json"));
    let tempo = sources["datasources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["type"] == "tempo")
        .unwrap()
        .clone();
    let query = tempo["jsonData"]["tracesToLogsV2"]["query"]
        .as_str()
        .unwrap()
        .replace(r#"${__span.tags["service.name"]}"#, "dice-roller")
        .replace("${__trace.traceId}", "4bf92f3577b34da6a3ce929d0e0e4736");
    assert!(loki_accepts(&query), "{query}");
    assert!(checked >= 4, "{checked} dashboard LogQL queries");
}

/// The link Grafana puts on an exemplar is named by the Prometheus data source's
/// `urlDisplayLabel`, and the worked example in docs/observability.md calls it by that name.
#[test]
fn the_docs_name_the_exemplar_link_as_grafana_shows_it() {
    let sources = json("observability/grafana/datasources.json");
    let prometheus = sources["datasources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["type"] == "prometheus")
        .unwrap();
    let labels: Vec<&str> = prometheus["jsonData"]["exemplarTraceIdDestinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["urlDisplayLabel"].as_str().unwrap())
        .collect();
    let doc = lab_tests::repo::read("docs/observability.md");
    let example = doc
        .split("2. **To an exemplar.**")
        .nth(1)
        .and_then(|rest| rest.split("3. **").next())
        .expect("the worked example's exemplar step");
    for label in labels {
        assert!(
            example.contains(&format!("link, *{label}*")),
            "the example calls the link something else than {label:?}: {example}"
        );
    }
}
