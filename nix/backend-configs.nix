# Each backend that nixpkgs builds for this platform checks the lab's configuration of it with its
# own parser: `tempo -config.verify=true` (strict: an unknown key fails; the flag takes a value),
# `loki -verify-config`, `promtool check config`, `alloy fmt` on every Alloy file (its parser) and `alloy validate` on
# each directory of them the lab runs. Grafana has no such command; its provisioning is checked by
# the repository's tests and the VM test.
{
  pkgs,
  # The backends and their command-line tools, as packages whose `bin` goes on PATH: `promtool` is
  # not in `prometheus` itself but in its `cli` output (flake.nix's `backendTools`).
  backends,
}: let
  inherit (pkgs) lib;
  has = name: builtins.any (p: lib.getName p == name) backends;
  alloy = import ./alloy.nix {inherit pkgs;};
  # The settings the module gives this Tempo (with Tempo 2's overlay for 2.x).
  tempo = lib.findFirst (p: lib.getName p == "tempo") null backends;
  tempoConfig = pkgs.writeText "tempo.json" (builtins.toJSON (import ./tempo.nix {inherit lib;} (lib.getVersion tempo)));
in
  pkgs.runCommand "dice-lab-backend-configs" {nativeBuildInputs = backends;} ''
    export TEMPO_DATA_DIR=$TMPDIR/tempo LOKI_DATA_DIR=$TMPDIR/loki
    ${lib.optionalString (has "tempo") ''
      tempo -config.file=${tempoConfig} -config.expand-env=true -config.verify=true
    ''}
    ${lib.optionalString (has "grafana-loki") ''
      loki -config.file=${../observability/loki.json} -config.expand-env=true -verify-config
    ''}
    ${lib.optionalString (has "prometheus") ''
      promtool check config ${../observability/prometheus.json}
    ''}
    ${lib.optionalString (has "grafana-alloy") ''
      for file in ${../observability/alloy}/*.alloy; do
        alloy fmt "$file" >/dev/null
      done
      # `alloy validate` (Alloy 1.9 and later) type-checks every component's arguments and resolves
      # every reference across the `*.alloy` files of a directory, as `alloy run` loads them,
      # without running anything. The files only validate together (each log source forwards to
      # the pipeline in logs.alloy), so it gets each directory the lab runs. It evaluates no
      # expressions, so `sys.env("DICE_LAB_LOG_DIR")` needs no value, and its default stability
      # level (generally available) admits every component the files use.
      alloy validate ${alloy.up}
      alloy validate ${alloy.nixos}
    ''}
    touch $out
  ''
