{
  description = "dice-lab: learn distributed tracing, metrics and logs with three Rust services that roll dice";

  # A release branch, so that a workshop's attendees get the same backends as its instructor. The
  # configurations under observability/ are also kept valid for nixos-unstable's versions, for
  # hosts that import the module with their own nixpkgs (docs/nix.md lists both).
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";

  outputs = {
    self,
    nixpkgs,
  }: let
    inherit (nixpkgs) lib;
    systems = ["x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin"];
    forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});

    # The observability backends that `nix run` puts on the launcher's PATH, where the platform
    # has them; `dice-lab up` runs the lab with whichever are there.
    backends = pkgs:
      builtins.filter (lib.meta.availableOn pkgs.stdenv.hostPlatform)
      (with pkgs; [grafana-alloy grafana-loki tempo prometheus grafana]);

    # The backends with the command-line tools of theirs that the dev shell (the tests run
    # `promtool`) and the checks need: nixpkgs' prometheus keeps `promtool` in its `cli` output,
    # where nixpkgs' own Prometheus module reaches it (`cfg.package.cli`), so a list that names
    # `prometheus` alone does not put it on PATH. `nix run` needs only the servers.
    backendTools = pkgs:
      backends pkgs
      ++ lib.optional (builtins.elem pkgs.prometheus (backends pkgs)) pkgs.prometheus.cli;

    packagesFor = pkgs:
      import ./nix/packages.nix {
        inherit pkgs;
        backends = backends pkgs;
      };
  in {
    packages = forAllSystems packagesFor;

    apps = forAllSystems (pkgs: {
      default = {
        type = "app";
        program = lib.getExe (packagesFor pkgs).lab-up;
        meta.description = "Start dice-lab: the three services with Alloy, Loki, Tempo, Prometheus and Grafana";
      };
    });

    devShells = forAllSystems (pkgs: {
      default = pkgs.mkShell {
        inputsFrom = [(packagesFor pkgs).dice-lab];
        packages =
          (with pkgs; [clippy rustfmt rust-analyzer alejandra deadnix wrk])
          ++ backendTools pkgs
          ++ lib.optionals pkgs.stdenv.isLinux (with pkgs; [chromium chromedriver docker-client]);
      };
    });

    overlays.default = final: _prev: {
      dice-lab = import ./nix/lab.nix final;
    };

    nixosModules.default = import ./nixos-modules/dice-lab.nix;

    checks = forAllSystems (pkgs:
      {
        package = (packagesFor pkgs).default;
        # The backends' own verdict on the lab's configurations, with the versions this nixpkgs
        # carries: what the repository's tests can only check against the backends' sources.
        backend-configs = import ./nix/backend-configs.nix {
          inherit pkgs;
          backends = backendTools pkgs;
        };
        nix-lint = pkgs.runCommand "dice-lab-nix-lint" {nativeBuildInputs = [pkgs.alejandra pkgs.deadnix];} ''
          cd ${self}
          alejandra --check .
          deadnix --fail .
          touch $out
        '';
      }
      // lib.optionalAttrs pkgs.stdenv.isLinux {
        vm = import ./nix/vm-test.nix {
          inherit pkgs;
          module = self.nixosModules.default;
        };
      });

    formatter = forAllSystems (pkgs: pkgs.alejandra);
  };
}
