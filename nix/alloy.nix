# The Alloy configurations the lab runs. Alloy reads every `*.alloy` file of the directory it is
# given (`alloy run DIR`), and the files only work together: the shared pipelines (traces.alloy,
# logs.alloy) need one source of the services' log lines. Each way into the lab has its own; this
# file names both, for the NixOS module that runs one and the check that validates each.
{pkgs}: let
  directory = name: files:
    pkgs.linkFarm name (map (file: {
        name = file;
        path = ../observability/alloy + "/${file}";
      })
      files);
in {
  # `dice-lab up` (the files launcher/src/backends.rs writes out): log lines from the files the
  # launcher writes.
  up = directory "dice-lab-alloy-up" ["traces.alloy" "logs.alloy" "logs-files.alloy"];
  # The NixOS module: log lines from the units' journal.
  nixos = directory "dice-lab-alloy" ["traces.alloy" "logs.alloy" "logs-journal.alloy"];
}
