//! The flake and the NixOS module, checked without nixpkgs (`nix flake check` builds the lab and
//! boots the VM test; see docs/nix.md for what is checked where). Every `.nix` file must parse with the real
//! `nix-instantiate`, be formatted as the flake's `formatter` (alejandra) would leave it, and have
//! no dead code by `deadnix`. The module must read the backends' configurations from the files
//! `dice-lab up` uses, and name its systemd units as the Alloy journal source expects. A missing
//! `nix-instantiate` or `deadnix` fails these tests with how to install it; `.ci/run` installs both.

use std::path::{Path, PathBuf};
use std::process::Command;

use lab_tests::repo;

fn repo() -> PathBuf {
    repo::root()
}

/// Every `.nix` file of the repository, outside build output.
fn nix_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if !name.starts_with('.') && name != "target" {
                    walk(&path, found);
                }
            } else if name.ends_with(".nix") {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(&repo(), &mut found);
    found.sort();
    assert!(
        found.len() >= 5,
        "expected the flake, the module and nix/*.nix, found {found:?}"
    );
    found
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn tool(program: &str, install: &str) -> Command {
    let found = Command::new(program).arg("--version").output();
    assert!(
        found.is_ok_and(|out| out.status.success()),
        "`{program}` is needed for this test: {install}"
    );
    Command::new(program)
}

#[test]
fn nix_files_parse() {
    for file in nix_files() {
        let out = tool(
            "nix-instantiate",
            "apt-get install nix-bin (or install Nix)",
        )
        .args(["--option", "substituters", "", "--parse"])
        .arg(&file)
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "{} does not parse:\n{}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn nix_files_are_formatted_like_nix_fmt() {
    let mut unformatted = Vec::new();
    for file in nix_files() {
        let before = read(&file);
        let (status, after) =
            alejandra::format::in_memory(file.display().to_string(), before.clone());
        if let alejandra::format::Status::Error(error) = status {
            panic!("alejandra cannot read {}: {error}", file.display());
        }
        if after != before {
            unformatted.push(file.display().to_string());
        }
    }
    assert!(
        unformatted.is_empty(),
        "not formatted; run `nix fmt` (alejandra): {unformatted:?}"
    );
}

#[test]
fn nix_files_have_no_dead_code() {
    let out = tool("deadnix", "cargo install deadnix")
        .args(["--fail", "--no-underscore"])
        .args(nix_files())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "deadnix found unused code:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The module configures each backend from the shared files, and those files exist.
#[test]
fn the_module_reads_the_shared_configurations() {
    let module = read(&repo().join("nixos-modules/dice-lab.nix"));
    for file in [
        "/prometheus.json",
        "/prometheus-flags.json",
        "/loki.json",
        "/tempo.json",
        "/grafana/settings.json",
        "/grafana/datasources.json",
        "/grafana/dashboards.json",
    ] {
        assert!(
            module.contains(&format!("observability + \"{file}\"")),
            "the module does not read observability{file}"
        );
        assert!(
            repo().join(format!("observability{file}")).is_file(),
            "observability{file} is missing"
        );
    }
    for alloy in ["traces.alloy", "logs.alloy", "logs-journal.alloy"] {
        assert!(
            module.contains(&format!("\"{alloy}\"")),
            "Alloy on NixOS does not load {alloy}"
        );
        assert!(repo().join("observability/alloy").join(alloy).is_file());
    }
    assert!(
        !module.contains("\"logs-files.alloy\""),
        "on NixOS logs come from the journal, not from files"
    );
    assert!(module.contains("${../dashboards}"));
    for upstream in [
        "services.alloy",
        "services.loki",
        "services.tempo",
        "services.prometheus",
        "services.grafana",
    ] {
        assert!(
            module.contains(&format!("{upstream} = {{")),
            "observability.enable should configure the upstream {upstream}"
        );
    }
}

/// Alloy's journal source matches exactly the units the module defines.
#[test]
fn the_journal_source_matches_the_module_units() {
    let module = read(&repo().join("nixos-modules/dice-lab.nix"));
    let journal = read(&repo().join("observability/alloy/logs-journal.alloy"));
    for service in ["frontend", "dice-roller", "die-service"] {
        let unit = format!("dice-lab-{service}");
        assert!(
            module.contains(&format!("systemd.services.{unit} = unit \"{service}\"")),
            "the module has no unit {unit} running {service}"
        );
        assert!(
            journal.contains(&format!("_SYSTEMD_UNIT={unit}.service")),
            "logs-journal.alloy does not read {unit}.service"
        );
    }
}

/// The flake exposes what README and the issue promise, in syntax Nix 2.8 evaluates.
#[test]
fn the_flake_has_every_output() {
    let flake = read(&repo().join("flake.nix"));
    for output in [
        "packages =",
        "apps =",
        "devShells =",
        "nixosModules.default = import ./nixos-modules/dice-lab.nix;",
        "checks =",
        "formatter =",
        "overlays.default =",
    ] {
        assert!(flake.contains(output), "flake.nix lacks `{output}`");
    }
    let packages = read(&repo().join("nix/packages.nix"));
    for package in [
        "default =",
        "dice-lab =",
        "die-service =",
        "dice-roller =",
        "frontend =",
        "ui;",
        "lab-up =",
    ] {
        assert!(
            packages.contains(package),
            "nix/packages.nix lacks `{package}`"
        );
    }
    for backend in [
        "grafana-alloy",
        "grafana-loki",
        "tempo",
        "prometheus",
        "grafana",
    ] {
        assert!(
            flake.contains(backend),
            "`nix run` does not put {backend} on PATH"
        );
    }
}

/// The flake follows a NixOS release branch, so that everyone who runs `nix run` for a workshop
/// gets the same backends; `nix flake check` asks those backends to check the lab's
/// configurations.
#[test]
fn the_flake_pins_a_release_branch_and_checks_the_backend_configurations() {
    let flake = read(&repo().join("flake.nix"));
    let url = flake
        .lines()
        .find_map(|l| l.trim().strip_prefix("inputs.nixpkgs.url = \""))
        .and_then(|rest| rest.strip_suffix("\";"))
        .expect("flake.nix sets inputs.nixpkgs.url");
    let branch = url
        .strip_prefix("github:NixOS/nixpkgs/nixos-")
        .unwrap_or_else(|| panic!("{url} is not a NixOS channel branch"));
    let (year, month) = branch
        .split_once('.')
        .unwrap_or_else(|| panic!("{url} is not a release branch (nixos-YY.MM)"));
    assert!(
        year.parse::<u32>().is_ok() && ["05", "11"].contains(&month),
        "{url} is not a release branch (nixos-YY.MM)"
    );
    assert!(flake.contains("backend-configs = import ./nix/backend-configs.nix"));
    let check = read(&repo().join("nix/backend-configs.nix"));
    for command in [
        "tempo -config.file=${../observability/tempo.json} -config.expand-env=true -config.verify",
        "loki -config.file=${../observability/loki.json} -config.expand-env=true -verify-config",
        "promtool check config ${../observability/prometheus.json}",
        "alloy fmt",
    ] {
        assert!(
            check.contains(command),
            "the check does not run `{command}`"
        );
    }
}

/// Recent Nix warns about an app without `meta.description`.
#[test]
fn every_app_says_what_it_does() {
    let flake = read(&repo().join("flake.nix"));
    let apps = &flake[flake.find("apps = ").expect("flake.nix has apps")..];
    let app = &apps[..apps.find("});").unwrap()];
    assert!(
        app.contains("meta.description = \""),
        "apps.default has no meta.description:\n{app}"
    );
}

/// The wasm linker comes from the LLVM that rustc was built with, and every way the lab is built
/// (the flake's packages, its overlay, the module's default package) goes through the one file
/// that passes it.
#[test]
fn the_lab_links_with_the_compilers_own_lld() {
    let lab = read(&repo().join("nix/lab.nix"));
    assert!(
        lab.contains("inherit (pkgs.buildPackages.rustc.llvmPackages) lld;"),
        "{lab}"
    );
    for (file, call) in [
        ("nix/packages.nix", "import ./lab.nix pkgs"),
        ("flake.nix", "import ./nix/lab.nix final"),
        ("nixos-modules/dice-lab.nix", "import ../nix/lab.nix pkgs"),
    ] {
        let text = read(&repo().join(file));
        assert!(
            text.contains(call),
            "{file} does not build the lab with {call}"
        );
        assert!(
            !text.contains("package.nix {}"),
            "{file} builds package.nix without its lld"
        );
    }
}

/// The VM test's script as Nix hands it to the NixOS test driver: Nix evaluates the real file,
/// with only `runNixOSTest` replaced by the identity, so that no nixpkgs is needed.
fn vm_test_script() -> String {
    let out = tool(
        "nix-instantiate",
        "apt-get install nix-bin (or install Nix)",
    )
    .current_dir(repo())
    .args([
        "--option",
        "substituters",
        "",
        "--eval",
        "--strict",
        "--json",
        "-E",
    ])
    .arg(
        "(import ./nix/vm-test.nix { pkgs = { testers.runNixOSTest = test: test; curl = null; }; \
         module = null; }).testScript",
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The VM test's script is valid Python that uses only what the driver provides, and asks what
/// the lab promises.
#[test]
fn the_vm_test_script_is_valid_python() {
    let script = vm_test_script();
    for expected in [
        "/api/roll-async?die=fair&times={TIMES}",
        "http://127.0.0.1:3200/api/traces/{trace_id}",
        "http://127.0.0.1:3100/loki/api/v1/query_range",
        "sum(dice_rolls_total)",
        // Both shapes of Tempo's answer: `batches` and `trace.resourceSpans`.
        r#"body.get("batches") or body.get("trace", {}).get("resourceSpans", [])"#,
        // Tempo is ready before it is asked; a unit that fails or keeps restarting shows its
        // journal.
        r#""tempo": "http://127.0.0.1:3200/ready""#,
        "journalctl -b -u {unit}.service",
        r#"info.get("NRestarts")"#,
    ] {
        assert!(
            script.contains(expected),
            "the VM test does not use {expected}"
        );
    }
    let checked = Command::new("python3")
        .args(["-c", CHECK_PYTHON])
        .arg(&script)
        .output()
        .expect("python3 runs");
    assert!(
        checked.status.success(),
        "the VM test script is not valid Python:\n{}",
        String::from_utf8_lossy(&checked.stderr)
    );
}

/// Compiles the script and fails on any global name that is neither defined in it, a builtin, nor
/// one the NixOS test driver defines.
const CHECK_PYTHON: &str = r#"
import ast, builtins, sys
tree = ast.parse(sys.argv[1])
compile(tree, "testScript", "exec")
defined = set(dir(builtins)) | {"machine", "subtest", "start_all", "retry"}
for node in ast.walk(tree):
    if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
        defined.add(node.name)
        defined.update(a.arg for a in node.args.args) if isinstance(node, ast.FunctionDef) else None
    elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
        defined.add(node.id)
    elif isinstance(node, (ast.Import, ast.ImportFrom)):
        defined.update((a.asname or a.name).split(".")[0] for a in node.names)
    elif isinstance(node, ast.ExceptHandler) and node.name:
        defined.add(node.name)
    elif isinstance(node, ast.Lambda):
        defined.update(a.arg for a in node.args.args)
used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
unknown = used - defined
if unknown:
    sys.exit(f"undefined names: {sorted(unknown)}")
"#;

/// The VM test's script, run against a stand-in for the driver's `machine` whose Tempo keeps
/// restarting (as Tempo 3 did with a configuration it refused), fails at once and shows Tempo's
/// journal, instead of waiting out a time-out with no reason. Both answers of Tempo's trace API
/// are read by the same function.
#[test]
fn the_vm_test_fails_with_the_journal_of_a_crash_looping_backend() {
    let script = vm_test_script();
    let out = Command::new("python3")
        .args(["-c", CRASH_LOOP_PYTHON])
        .arg(&script)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

const CRASH_LOOP_PYTHON: &str = r#"
import contextlib, sys
script = sys.argv[1]
JOURNAL = "tempo: failed parsing config: field compactor not found in type app.Config"

class Machine:
    def wait_for_unit(self, unit, timeout=900):
        pass
    def get_unit_info(self, unit):
        if unit == "tempo.service":
            return {"ActiveState": "activating", "SubState": "auto-restart", "NRestarts": "3"}
        return {"ActiveState": "active", "SubState": "running", "NRestarts": "0"}
    def execute(self, command):
        if command.startswith("journalctl"):
            return (0, JOURNAL if "tempo.service" in command else "")
        return (0, "")
    def succeed(self, command):
        raise AssertionError(f"the script went on to {command}")
    def log(self, message):
        pass

@contextlib.contextmanager
def subtest(name):
    yield

scope = {"machine": Machine(), "subtest": subtest, "retry": None, "start_all": None}
try:
    exec(compile(script, "testScript", "exec"), scope)
except AssertionError as error:
    text = str(error)
    if not (text.startswith("tempo is activating (auto-restart) after 3 restarts") and JOURNAL in text):
        sys.exit(f"the failure does not name tempo and show its journal: {text}")
else:
    sys.exit("the script passed with tempo crash-looping")

span = {"name": "roll"}
scope_spans = [{"scopeSpans": [{"spans": [span]}]}]
for shape in ({"batches": scope_spans}, {"trace": {"resourceSpans": scope_spans}}):
    assert scope["tempo_spans"](shape) == [span], shape
assert scope["tempo_spans"]({"trace": {}}) == []
"#;
