//! The flake and the NixOS module, checked without nixpkgs (`nix flake check` builds the lab and
//! boots the VM test; see docs/nix.md for what is checked where). Every `.nix` file must parse with the real
//! `nix-instantiate`, be formatted as the flake's `formatter` (alejandra) would leave it, and have
//! no dead code by `deadnix`. The module must read the backends' configurations from the files
//! `dice-lab up` uses, and name its systemd units as the Alloy journal source expects. Where the
//! answer depends on what Nix makes of the files, the real files are evaluated by the real
//! `nix-instantiate` against stand-ins for nixpkgs (its `lib` and packages, a few lines each,
//! below): the backends' check is run with stand-in backends on the PATH its derivation would
//! have, the module's options and definitions are resolved, and the VM test's script is run
//! against a stand-in machine. A missing `nix-instantiate` or `deadnix` fails these tests with how
//! to install it; `.ci/run` installs both.

use std::path::{Path, PathBuf};
use std::process::Command;

use lab_tests::{fixtures, repo};
use serde_json::Value;

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

/// Evaluates the Nix expression `expr` in the repository's root, strictly, as JSON. Read-only: a
/// path written into a string (`${../observability/tempo.json}`) becomes its store path without
/// being copied to the store, so that no writable store is needed.
fn nix_eval(expr: &str) -> Value {
    let out = tool(
        "nix-instantiate",
        "apt-get install nix-bin (or install Nix)",
    )
    .current_dir(repo())
    .args([
        "--option",
        "substituters",
        "",
        "--readonly-mode",
        "--eval",
        "--strict",
        "--json",
        "-E",
    ])
    .arg(expr)
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "nix-instantiate cannot evaluate:\n{}\n{expr}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The part of nixpkgs' `lib` that the flake, `nix/*.nix` and the module use, written with
/// `builtins` after nixpkgs' own definitions, and a stand-in of the module system: `mkOption`
/// keeps its arguments, `mkIf`, `mkMerge` and `mkDefault` are left as markers for `resolve` in
/// [`MODULE_HARNESS`]. Functions a file calls that are not here fail the evaluation by name.
const STAND_IN_LIB: &str = r#"rec {
  genAttrs = names: f: builtins.listToAttrs (map (name: { inherit name; value = f name; }) names);
  meta.availableOn = _platform: _package: true;
  getName = x: x.pname or (builtins.parseDrvName x.name).name;
  getExe = x: "${x}/bin/${x.meta.mainProgram or (getName x)}";
  getExe' = x: name: "${x}/bin/${name}";
  optional = cond: x: if cond then [ x ] else [ ];
  optionals = cond: xs: if cond then xs else [ ];
  optionalAttrs = cond: attrs: if cond then attrs else { };
  optionalString = cond: s: if cond then s else "";
  hasPrefix = prefix: s: builtins.substring 0 (builtins.stringLength prefix) s == prefix;
  hasInfix = infix: s:
    let
      n = builtins.stringLength infix;
      at = i: i + n <= builtins.stringLength s && (builtins.substring i n s == infix || at (i + 1));
    in at 0;
  importJSON = file: builtins.fromJSON (builtins.readFile file);
  findFirst = pred: default: list:
    let found = builtins.filter pred list; in if found == [ ] then default else builtins.head found;
  versionOlder = v1: v2: builtins.compareVersions v2 v1 == 1;
  getVersion = x: x.version or (builtins.parseDrvName x.name).version;
  recursiveUpdate = lhs: rhs:
    lhs // builtins.mapAttrs (name: value:
      if builtins.isAttrs value && builtins.isAttrs (lhs.${name} or null)
      then recursiveUpdate lhs.${name} value
      else value) rhs;
  literalExpression = text: text;
  literalMD = text: text;
  types = {
    str = "str"; bool = "bool"; port = "port"; package = "package"; path = "path";
    attrsOf = _: "attrsOf"; nullOr = _: "nullOr";
  };
  mkOption = attrs: attrs // { _isOption = true; };
  mkEnableOption = _: mkOption { default = false; };
  mkIf = condition: content: { _type = "if"; inherit condition content; };
  mkMerge = contents: { _type = "merge"; inherit contents; };
  mkDefault = content: { _type = "override"; inherit content; };
}"#;

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
    // Tempo's settings: the shared file, and Tempo 2's overlay for 2.x, as `dice-lab up` has them.
    assert!(module.contains(
        "settings = import ../nix/tempo.nix {inherit lib;} (lib.getVersion (config.services.tempo.package or pkgs.tempo));"
    ));
    let tempo = read(&repo().join("nix/tempo.nix"));
    for file in ["tempo.json", "tempo-2.json"] {
        assert!(tempo.contains(&format!("../observability/{file}")));
        assert!(repo().join("observability").join(file).is_file());
    }
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

/// nixos-modules/dice-lab.nix evaluated with [`STAND_IN_LIB`] as a host enables it: `USER` is
/// what the host sets under `services.dice-lab` besides `enable` and `observability.enable`.
/// `values` gives each option the host's value or its default; `resolve` turns the module's
/// definitions into one value each (`mkIf` false leaves `null`; priorities are not compared, so a
/// test defines nothing twice). The module reads its own options and Grafana's port back through
/// `config`, as under the real module system.
const MODULE_HARNESS: &str = r#"
let
  lib = STAND_IN_LIB;
  user = { enable = true; observability.enable = true; } // (USER);
  pkgs.linkFarm = name: entries: { inherit name entries; };
  module = import ./nixos-modules/dice-lab.nix { inherit config lib pkgs; };
  values = options: given: builtins.mapAttrs (name: option:
    if option._isOption or false
    then given.${name} or option.default
    else values option (given.${name} or { })) options;
  merge = a: b:
    if b == null then a
    else a // builtins.mapAttrs (name: value:
      if !(a ? ${name}) then value
      else if builtins.isAttrs value && builtins.isAttrs a.${name} then merge a.${name} value
      else if builtins.isList value then a.${name} ++ value
      else throw "${name} is defined twice") b;
  resolve = def:
    if builtins.isAttrs def && def ? _type then
      if def._type == "if" then (if def.condition then resolve def.content else null)
      else if def._type == "merge" then builtins.foldl' merge { } (map resolve def.contents)
      else resolve def.content
    else if builtins.isAttrs def then builtins.mapAttrs (_: resolve) def
    else def;
  resolved = resolve module.config;
  # Keys known before anything is resolved, since resolving reads `config.services.dice-lab`.
  config = {
    services = {
      dice-lab = values module.options.services.dice-lab user;
      inherit (resolved.services) alloy grafana;
    };
    inherit (resolved) systemd;
  };
in {
  grafanaUrl = config.systemd.services.dice-lab-frontend.environment.GRAFANA_URL or null;
  frontendListen = config.systemd.services.dice-lab-frontend.environment.FRONTEND_LISTEN;
  grafana = {
    inherit (config.services.grafana.settings.server) http_addr;
    root_url = config.services.grafana.settings.server.root_url or null;
  };
  failedAssertions = map (a: a.message) (builtins.filter (a: !a.assertion) (resolved.assertions or [ ]));
  alloyFiles = map (entry: entry.name) config.services.alloy.configPath.entries;
}
"#;

/// The module as a host with `user` under `services.dice-lab` gets it (see [`MODULE_HARNESS`]).
fn module_with(user: &str) -> Value {
    nix_eval(
        &MODULE_HARNESS
            .replace("STAND_IN_LIB", STAND_IN_LIB)
            .replace("USER", user),
    )
}

/// Remote attendees follow the page's links to Grafana and Grafana's own links (its `root_url`):
/// both must name the address the lab listens on, not `localhost`, which on an attendee's laptop
/// is the laptop. A loopback address keeps `localhost`; an IPv6 address gets brackets; a wildcard
/// names no address a browser can use, so the module refuses it with what to set, and takes the
/// URL it is given.
#[test]
fn links_to_grafana_follow_the_listen_address() {
    for (user, url) in [
        ("{ }", "http://localhost:3000"),
        (
            r#"{ listenAddress = "127.0.0.1"; }"#,
            "http://localhost:3000",
        ),
        (
            r#"{ listenAddress = "192.168.1.10"; }"#,
            "http://192.168.1.10:3000",
        ),
        (r#"{ listenAddress = "fd00::5"; }"#, "http://[fd00::5]:3000"),
        (
            r#"{ listenAddress = "0.0.0.0"; frontend.grafanaUrl = "http://lab.example.org:3000"; }"#,
            "http://lab.example.org:3000",
        ),
    ] {
        let module = module_with(user);
        assert_eq!(module["failedAssertions"], serde_json::json!([]), "{user}");
        assert_eq!(module["grafanaUrl"], url, "the page's links with {user}");
        assert_eq!(
            module["grafana"]["root_url"], url,
            "Grafana's root_url with {user}"
        );
    }

    let module = module_with(r#"{ listenAddress = "0.0.0.0"; }"#);
    let failed = module["failedAssertions"].as_array().unwrap();
    assert!(
        failed.len() == 1
            && failed[0]
                .as_str()
                .unwrap()
                .contains("Set services.dice-lab.frontend.grafanaUrl"),
        "a wildcard listen address with no grafanaUrl is not refused with what to set: {failed:?}"
    );
    assert_eq!(module["grafana"]["http_addr"], "0.0.0.0");
    assert_eq!(module["frontendListen"], "0.0.0.0:8400");
}

/// On NixOS Alloy runs the directory nix/alloy.nix names for it: the shared pipelines and the
/// journal source, not the launcher's file source.
#[test]
fn alloy_on_nixos_reads_the_journal() {
    assert_eq!(
        module_with("{ }")["alloyFiles"],
        serde_json::json!(["traces.alloy", "logs.alloy", "logs-journal.alloy"])
    );
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
        "tempo -config.file=${tempoConfig} -config.expand-env=true -config.verify=true",
        "loki -config.file=${../observability/loki.json} -config.expand-env=true -verify-config",
        "promtool check config ${../observability/prometheus.json}",
        "alloy fmt",
        "alloy validate ${alloy.up}",
        "alloy validate ${alloy.nixos}",
    ] {
        assert!(
            check.contains(command),
            "the check does not run `{command}`"
        );
    }
}

/// The backends of [`FLAKE_HARNESS`]: each stand-in package, as `(name in pkgs, output, the
/// programs in its bin)`. As in nixpkgs 26.05, `prometheus` holds the server and its `cli` output
/// holds `promtool` (pkgs/by-name/pr/prometheus/package.nix: `outputs = [ "out" "doc" "cli" ]`,
/// `moveToOutput bin/promtool $cli`).
const STAND_IN_BACKENDS: &[(&str, &str, &[&str])] = &[
    ("grafana-alloy", "out", &["alloy"]),
    ("grafana-loki", "out", &["loki"]),
    ("tempo", "out", &["tempo"]),
    ("prometheus", "out", &["prometheus"]),
    ("prometheus", "cli", &["promtool"]),
    ("grafana", "out", &["grafana"]),
];

/// The flake's outputs for x86_64-linux, evaluated with [`STAND_IN_LIB`] and stand-in packages
/// whose outputs live under `ROOT`: what the backends' check runs and with which packages, the
/// dev shell's packages, and the Alloy directories of nix/alloy.nix. A derivation's PATH is the
/// `bin` of each package it is given, the output the package names (stdenv's `getDev` of a
/// package without a `dev` output): `prometheus` is its `out`, `prometheus.cli` its `cli`.
const FLAKE_HARNESS: &str = r#"
let
  lib = STAND_IN_LIB;
  package = pname: { inherit pname; name = "${pname}-1.0"; version = "1.0"; outPath = "ROOT/${pname}-out"; meta = { }; };
  pkgs = {
    inherit lib;
    stdenv = { hostPlatform = "x86_64-linux"; isLinux = true; isDarwin = false; };
    prometheus = package "prometheus" // {
      outputs = [ "out" "doc" "cli" ];
      cli = package "prometheus" // { outPath = "ROOT/prometheus-cli"; outputName = "cli"; };
    };
    runCommand = name: env: script: { inherit name env script; };
    writeText = name: text: builtins.toFile name text;
    mkShell = args: { inherit args; };
    linkFarm = name: entries: { inherit name entries; outPath = "ROOT/farm/${name}"; };
    testers.runNixOSTest = test: test;
  } // lib.genAttrs [
    "grafana-alloy" "grafana-loki" "tempo" "grafana" "clippy" "rustfmt" "rust-analyzer"
    "alejandra" "deadnix" "wrk" "chromium" "chromedriver" "docker-client" "curl"
  ] package;
  flake = import ./flake.nix;
  outputs = flake.outputs {
    self = { outPath = toString ./.; };
    nixpkgs = { inherit lib; legacyPackages.x86_64-linux = pkgs; };
  };
  check = outputs.checks.x86_64-linux.backend-configs;
in {
  inherit (check) script;
  path = map (p: p.outPath) check.env.nativeBuildInputs;
  devShell = map (p: p.outPath) outputs.devShells.x86_64-linux.default.args.packages;
  alloy = builtins.mapAttrs (_: farm: {
    directory = farm.outPath;
    files = map (entry: { inherit (entry) name; path = toString entry.path; }) farm.entries;
  }) (import ./nix/alloy.nix { inherit pkgs; });
}
"#;

/// Makes the stand-in backends under `root`: each program writes the path it was run by and its
/// arguments to `$LOG`, and succeeds.
fn stand_in_backends(root: &Path) {
    for (name, output, programs) in STAND_IN_BACKENDS {
        let bin = root.join(format!("{name}-{output}")).join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        for program in *programs {
            let path = bin.join(program);
            std::fs::write(&path, "#!/bin/sh\necho \"$0 $*\" >> \"$LOG\"\n").unwrap();
            let mut permissions = std::fs::metadata(&path).unwrap().permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
            std::fs::set_permissions(&path, permissions).unwrap();
        }
    }
}

/// The Alloy files `dice-lab up` runs with: those launcher/src/backends.rs writes out.
fn launcher_alloy_files() -> Vec<String> {
    let source = read(&repo().join("launcher/src/backends.rs"));
    let files: Vec<String> = source
        .split("include_str!(\"../../observability/alloy/")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_owned())
        .collect();
    assert!(files.len() >= 3, "{files:?}");
    files
}

/// `nix flake check`'s `backend-configs` runs, with the PATH its derivation gets, every backend's
/// own check of the lab's configuration: `promtool` included, which nixpkgs' `prometheus` keeps
/// in its `cli` output (a check given only `prometheus` dies with "promtool: command not found"
/// on every system), and `alloy validate` on each directory of Alloy files the lab runs, with
/// exactly the files each way into the lab loads. The dev shell, where the tests run `promtool`,
/// has it too.
#[test]
fn the_backends_check_reaches_every_tool_it_runs() {
    let scratch = fixtures::scratch_dir("nix-backend-configs");
    let root = scratch.path();
    stand_in_backends(root);
    let out = nix_eval(
        &FLAKE_HARNESS
            .replace("STAND_IN_LIB", STAND_IN_LIB)
            .replace("ROOT", &root.display().to_string()),
    );
    let script = out["script"].as_str().unwrap();
    let path: Vec<&str> = out["path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();

    // What stdenv gives every build besides its inputs, here the one command the script uses.
    let stdenv = root.join("stdenv");
    std::fs::create_dir_all(&stdenv).unwrap();
    let touch = ["/usr/bin/touch", "/bin/touch"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("touch");
    std::os::unix::fs::symlink(touch, stdenv.join("touch")).unwrap();
    let search_path: Vec<String> = path
        .iter()
        .map(|p| format!("{p}/bin"))
        .chain([stdenv.display().to_string()])
        .collect();
    let log = root.join("log");
    let tmp = root.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let bash = ["/bin/bash", "/usr/bin/bash"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("bash");
    let run = Command::new(bash)
        .args(["-eu", "-o", "pipefail", "-c", script])
        .env_clear()
        .env("PATH", search_path.join(":"))
        .env("TMPDIR", &tmp)
        .env("out", root.join("out"))
        .env("LOG", &log)
        .output()
        .expect("bash runs");
    assert!(
        run.status.success(),
        "the check fails with PATH={}:\n{}\nits script:\n{script}",
        search_path.join(":"),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(root.join("out").exists(), "the check makes no $out");
    let ran = std::fs::read_to_string(&log).unwrap();
    let root = root.display();
    for command in [
        format!("{root}/tempo-out/bin/tempo -config.file="),
        format!("{root}/grafana-loki-out/bin/loki -config.file="),
        format!("{root}/prometheus-cli/bin/promtool check config /nix/store/"),
        format!("{root}/grafana-alloy-out/bin/alloy fmt "),
    ] {
        assert!(
            ran.lines().any(|line| line.starts_with(&command)),
            "the check does not run `{command}...`; it ran:\n{ran}"
        );
    }

    // Each directory of Alloy files is validated as a whole, and holds what its way into the lab
    // loads: the launcher's files for `dice-lab up`, the journal source's on NixOS.
    let alloy = &out["alloy"];
    for (directory, expected) in [
        ("up", launcher_alloy_files()),
        (
            "nixos",
            ["traces.alloy", "logs.alloy", "logs-journal.alloy"]
                .map(String::from)
                .to_vec(),
        ),
    ] {
        let farm = &alloy[directory];
        let validate = format!(
            "{root}/grafana-alloy-out/bin/alloy validate {}",
            farm["directory"].as_str().unwrap()
        );
        assert!(
            ran.lines().any(|line| line == validate),
            "the check does not run `{validate}`; it ran:\n{ran}"
        );
        let files = farm["files"].as_array().unwrap();
        let names: Vec<&str> = files.iter().map(|f| f["name"].as_str().unwrap()).collect();
        assert_eq!(names, expected, "the Alloy directory `{directory}`");
        for file in files {
            let path = Path::new(file["path"].as_str().unwrap());
            assert!(
                path.is_file() && path.ends_with(file["name"].as_str().unwrap()),
                "{path:?}"
            );
        }
    }

    let dev_shell = out["devShell"].as_array().unwrap();
    assert!(
        dev_shell
            .iter()
            .any(|p| Path::new(p.as_str().unwrap()).join("bin/promtool").exists()),
        "the dev shell has no promtool on PATH: {dev_shell:?}"
    );
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
        // Grafana, as the anonymous visitor: the dashboards, and each data source's health.
        "{GRAFANA}/api/search?type=dash-db",
        "{GRAFANA}/api/datasources/uid/{uid}/health",
        "{GRAFANA}/api/datasources/proxy/uid/{uid}/api/echo",
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
        .args(["-c", &format!("{DRIVER_PYTHON}{CRASH_LOOP_PYTHON}")])
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

/// What the NixOS test driver gives a test script, for the stand-in machines below:
/// `run_script(script, machine)` runs it with `machine` and `subtest` as the driver's, and returns
/// the text of the `AssertionError` it failed with (or `None`) and its globals.
const DRIVER_PYTHON: &str = r#"
import contextlib

@contextlib.contextmanager
def subtest(name):
    yield

def run_script(script, machine):
    scope = {"machine": machine, "subtest": subtest, "retry": None, "start_all": None}
    try:
        exec(compile(script, "testScript", "exec"), scope)
    except AssertionError as failure:
        return str(failure), scope
    return None, scope
"#;

const CRASH_LOOP_PYTHON: &str = r#"
import sys
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

text, scope = run_script(script, Machine())
if text is None:
    sys.exit("the script passed with tempo crash-looping")
if not (text.startswith("tempo is activating (auto-restart) after 3 restarts") and JOURNAL in text):
    sys.exit(f"the failure does not name tempo and show its journal: {text}")

span = {"name": "roll"}
scope_spans = [{"scopeSpans": [{"spans": [span]}]}]
for shape in ({"batches": scope_spans}, {"trace": {"resourceSpans": scope_spans}}):
    assert scope["tempo_spans"](shape) == [span], shape
assert scope["tempo_spans"]({"trace": {}}) == []
"#;

/// The VM test's script, run against a stand-in machine whose services, backends and Grafana all
/// answer as they should, gets through every step: Grafana, asked with no credentials (as the
/// anonymous visitor), lists every dashboard of dashboards/ and finds every data source of
/// observability/grafana/datasources.json healthy (Tempo's, whose plugin has no backend health
/// check, through its `/api/echo`), and the roll shows up everywhere. With one data source
/// unhealthy, one dashboard not provisioned or Tempo unreachable through Grafana, the script fails
/// saying which, before it rolls.
#[test]
fn the_vm_test_checks_what_grafana_shows_the_anonymous_visitor() {
    let script = vm_test_script();
    let dashboards: Vec<Value> = repo::files("dashboards", "json")
        .iter()
        .map(|file| {
            let board: Value = serde_json::from_str(&read(file)).unwrap();
            serde_json::json!({"uid": board["uid"], "title": board["title"]})
        })
        .collect();
    assert_eq!(dashboards.len(), 4, "{dashboards:?}");
    let datasources = repo::json("observability/grafana/datasources.json")["datasources"].clone();
    let run = |scenario: &str| -> Value {
        let out = Command::new("python3")
            .args(["-c", &format!("{DRIVER_PYTHON}{STAND_IN_MACHINE_PYTHON}")])
            .arg(&script)
            .arg(scenario)
            .arg(Value::from(dashboards.clone()).to_string())
            .arg(datasources.to_string())
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };

    let healthy = run("healthy");
    assert_eq!(healthy["error"], Value::Null, "{healthy}");
    assert_eq!(healthy["rolled"], true, "{healthy}");
    assert_eq!(healthy["credentials"], serde_json::json!([]), "{healthy}");
    let asked = healthy["grafana"].as_array().unwrap();
    for path in [
        "/api/search?type=dash-db",
        "/api/datasources/proxy/uid/tempo/api/echo",
    ]
    .into_iter()
    .map(String::from)
    .chain(datasources.as_array().unwrap().iter().map(|source| {
        format!(
            "/api/datasources/uid/{}/health",
            source["uid"].as_str().unwrap()
        )
    })) {
        assert!(
            asked.iter().any(|p| p == path.as_str()),
            "the script does not ask Grafana for {path}: {asked:?}"
        );
    }

    for (scenario, says) in [
        (
            "loki-unhealthy",
            "data source loki (loki): its health check answered 400",
        ),
        (
            "loki-unhealthy",
            "dial tcp 127.0.0.1:3100: connect: connection refused",
        ),
        ("dashboard-missing", "dice-lab-dice"),
        (
            "tempo-unreachable",
            "data source tempo: Tempo's /api/echo through Grafana answered 502",
        ),
    ] {
        let failed = run(scenario);
        let error = failed["error"].as_str().unwrap_or_else(|| {
            panic!("the script passed with the stand-in's {scenario}: {failed}")
        });
        assert!(
            error.contains(says),
            "with {scenario}, the script fails without saying `{says}`: {error}"
        );
        assert_eq!(
            failed["rolled"], false,
            "with {scenario}, the script went on to roll"
        );
    }
}

/// A stand-in for the NixOS test driver's `machine` that answers the VM test's `curl`s as the lab
/// would, with a clock that moves only when the script sleeps; `sys.argv[2]` names what goes wrong
/// (or `healthy`), `sys.argv[3]` and `[4]` are the dashboards and data sources Grafana has.
/// Prints what happened as JSON: the script's error, whether it rolled, the Grafana paths it asked
/// and any of its requests to Grafana that carried credentials.
const STAND_IN_MACHINE_PYTHON: &str = r#"
import json, re, sys, time

script, scenario = sys.argv[1], sys.argv[2]
dashboards, datasources = json.loads(sys.argv[3]), json.loads(sys.argv[4])
clock = [0.0]
time.monotonic = lambda: clock[0]
time.sleep = lambda seconds: clock.__setitem__(0, clock[0] + seconds)

TIMES = 10
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
state = {"rolled": False, "grafana": [], "credentials": []}


def grafana(path):
    if path == "/api/search?type=dash-db":
        boards = dashboards[1:] if scenario == "dashboard-missing" else dashboards
        return 200, json.dumps([dict(board, type="dash-db") for board in boards])
    match = re.fullmatch(r"/api/datasources/uid/([^/]+)/health", path)
    if match:
        source = next((s for s in datasources if s["uid"] == match[1]), None)
        if source is None:
            return 404, '{"message":"Data source not found"}'
        if source["type"] == "tempo":
            return 501, '{"message":"Method not implemented","messageId":"plugin.notImplemented"}'
        if scenario == "loki-unhealthy" and source["type"] == "loki":
            return 400, json.dumps({"status": "ERROR", "message":
                "There was an error returned querying the Loki API.: Post \"http://127.0.0.1:3100/loki/api/v1/query\": "
                "dial tcp 127.0.0.1:3100: connect: connection refused"})
        return 200, '{"status":"OK","message":"Successfully queried the API."}'
    if path == "/api/datasources/proxy/uid/tempo/api/echo":
        return (502, "Bad Gateway") if scenario == "tempo-unreachable" else (200, "echo\n")
    return 404, '{"message":"Not found"}'


def lab(url):
    if "query=up%7Bjob" in url:
        return {"data": {"result": [{"value": [0, "1"]}]}}
    if "sum(dice_rolls_total)" in url:
        return {"data": {"result": [{"value": [0, str(TIMES if state["rolled"] else 0)]}]}}
    if "/api/roll-async?" in url:
        state["rolled"] = True
        return {"count": TIMES, "trace_id": TRACE}
    rolls = [{"name": "roll"}] * TIMES
    if url == f"http://127.0.0.1:3200/api/traces/{TRACE}":
        return {"batches": [{"scopeSpans": [{"spans": rolls}]}]}
    if url.startswith("http://127.0.0.1:3100/loki/api/v1/query_range?"):
        return {"data": {"result": [{"stream": {"service": service}, "values": [["1", "{}"]] * TIMES}
                                    for service in ("frontend", "dice-roller", "die-service")]}}
    if url == f"http://127.0.0.1:8400/api/traces/{TRACE}":
        return {"spans": rolls, "waiting_for": []}
    if url == f"http://127.0.0.1:8400/api/traces/{TRACE}/logs":
        return {"lines": [{"fields": {"roll_value": 3}}] * TIMES}
    raise AssertionError(f"the stand-in does not know {url}")


class Machine:
    def wait_for_unit(self, unit, timeout=900):
        pass
    def get_unit_info(self, unit):
        return {"ActiveState": "active", "SubState": "running", "NRestarts": "0"}
    def execute(self, command):
        if command.startswith("journalctl"):
            return (0, "")
        url = re.search(r"(http://\S+?)'?(?:\s|$)", command)[1]
        if url.startswith("http://127.0.0.1:3000"):
            if re.search(r"(^|\s)(-u|--user|-H|--header)\s|Authorization|@", command):
                state["credentials"].append(command)
            if " -w " in command:
                path = url[len("http://127.0.0.1:3000"):]
                state["grafana"].append(path)
                status, body = grafana(path)
                return (0, f"{body}\n{status}")
        return (0, "")
    def succeed(self, command):
        return json.dumps(lab(re.search(r"'(http://[^']+)'", command)[1]))
    def log(self, message):
        pass

error, _ = run_script(script, Machine())
print(json.dumps({"error": error, "rolled": state["rolled"], "grafana": state["grafana"],
                  "credentials": state["credentials"]}))
"#;

/// Alloy runs with the same flags under `dice-lab up` as under the NixOS module (its listen
/// address, and no usage report sent home).
#[test]
fn alloy_runs_with_the_modules_flags_under_dice_lab_up() {
    let module = read(&repo().join("nixos-modules/dice-lab.nix"));
    let alloy = module
        .split("services.alloy = {")
        .nth(1)
        .expect("the module configures Alloy");
    let flags_text = alloy
        .split("extraFlags = [")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .expect("Alloy's extraFlags");
    let flags: Vec<&str> = flags_text.split('"').skip(1).step_by(2).collect();
    assert!(!flags.is_empty());
    let state = tempfile::tempdir().unwrap();
    let component = dice_lab::backends::configure(
        parts::Part::Alloy,
        state.path(),
        std::path::PathBuf::from("alloy"),
    )
    .unwrap();
    for flag in flags {
        assert!(
            component.args.iter().any(|a| a == flag),
            "dice-lab up runs Alloy without {flag}: {:?}",
            component.args
        );
    }
}

/// `nix/tempo.nix` (the NixOS module's and the flake check's Tempo settings) gives each Tempo
/// version exactly what `dice-lab up` writes for it: Tempo 2's overlay for 2.x only.
#[test]
fn nix_and_dice_lab_up_give_each_tempo_the_same_settings() {
    for version in ["2.10.8", "3.0.2", "", "unstable-2026-01-01"] {
        let nix = nix_eval(&format!(
            "import ./nix/tempo.nix {{ lib = {STAND_IN_LIB}; }} \"{version}\""
        ));
        assert_eq!(
            nix,
            dice_lab::backends::tempo_settings(version),
            "Tempo {version:?}"
        );
    }
}
