# Each backend that nixpkgs builds for this platform checks the lab's configuration of it with its
# own parser: `tempo -config.verify` (strict, and it fails on warnings too), `loki -verify-config`,
# `promtool check config`, and `alloy fmt` on every Alloy file (its parser). Grafana has no such
# command; its provisioning is checked by the repository's tests.
{
  pkgs,
  backends,
}: let
  inherit (pkgs) lib;
  has = name: builtins.any (p: lib.getName p == name) backends;
in
  pkgs.runCommand "dice-lab-backend-configs" {nativeBuildInputs = backends;} ''
    export TEMPO_DATA_DIR=$TMPDIR/tempo LOKI_DATA_DIR=$TMPDIR/loki
    ${lib.optionalString (has "tempo") ''
      tempo -config.file=${../observability/tempo.json} -config.expand-env=true -config.verify
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
    ''}
    touch $out
  ''
