# Everything the flake builds for one platform: the lab, one package per program, the UI, and the
# `nix run` wrapper that starts `dice-lab up` with nixpkgs' observability backends on its PATH.
{
  pkgs,
  backends,
}: let
  lab = import ./lab.nix pkgs;

  # One program of the lab, on its own.
  program = name:
    pkgs.runCommand name {meta = lab.meta // {mainProgram = name;};} ''
      mkdir -p $out/bin
      ln -s ${lab}/bin/${name} $out/bin/${name}
    '';
in {
  default = pkgs.symlinkJoin {
    name = "dice-lab-${lab.version}";
    paths = [lab lab.ui];
    inherit (lab) meta;
  };
  dice-lab = lab;
  die-service = program "die-service";
  dice-roller = program "dice-roller";
  frontend = program "frontend";
  inherit (lab) ui;

  # `nix run`: `dice-lab up` unless other arguments are given (`nix run . -- load --rate 5`).
  lab-up = pkgs.writeShellApplication {
    name = "dice-lab-up";
    runtimeInputs = [lab] ++ backends;
    text = ''
      if [ "$#" -eq 0 ]; then
        set -- up
      fi
      exec dice-lab "$@"
    '';
  };
}
