{
  description = "dice-lab: learn distributed tracing, metrics and logs with three Rust services that roll dice";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

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
      };
    });

    devShells = forAllSystems (pkgs: {
      default = pkgs.mkShell {
        inputsFrom = [(packagesFor pkgs).dice-lab];
        packages =
          (with pkgs; [clippy rustfmt rust-analyzer alejandra deadnix wrk])
          ++ backends pkgs
          ++ lib.optionals pkgs.stdenv.isLinux (with pkgs; [chromium chromedriver docker-client]);
      };
    });

    overlays.default = final: _prev: {
      dice-lab = final.callPackage ./nix/package.nix {};
    };

    nixosModules.default = import ./nixos-modules/dice-lab.nix;

    checks = forAllSystems (pkgs:
      {
        package = (packagesFor pkgs).default;
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
