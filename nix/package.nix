# The whole lab in one derivation: the three services, the `dice-lab` launcher, and (in the `ui`
# output) the browser half of the frontend, which `services/frontend/build.rs` compiles for
# wasm32 during the same build and embeds in the `frontend` binary.
#
# The nested wasm32 build runs inside the sandbox: it finds the vendored crates through the
# `.cargo/config.toml` that `cargoSetupHook` writes next to the source, and links with lld's
# `wasm-ld`, which the build script passes through as CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER.
# That lld must come from the LLVM the compiler itself was built with, not the top-level `lld`
# (which may be another LLVM release): callers build the lab through `nix/lab.nix`, which passes
# it. nixpkgs' rustc ships the standard library for wasm32-unknown-unknown.
{
  lib,
  rustPlatform,
  lld,
}: let
  workspace = lib.importTOML ../Cargo.toml;
in
  rustPlatform.buildRustPackage {
    pname = "dice-lab";
    inherit (workspace.workspace.package) version;

    src = lib.fileset.toSource {
      root = ../.;
      fileset = lib.fileset.unions [
        ../Cargo.toml
        ../Cargo.lock
        ../services
        ../launcher
        ../tests
        ../dice.json
        ../observability
        ../dashboards
      ];
    };

    cargoLock.lockFile = ../Cargo.lock;

    outputs = ["out" "ui"];

    nativeBuildInputs = [lld];
    env.CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER = "wasm-ld";

    cargoBuildFlags = ["-p" "die-service" "-p" "dice-roller" "-p" "frontend" "-p" "dice-lab"];

    # The suite needs Docker, Chromium and free ports; `cargo test` and the NixOS VM test run it.
    doCheck = false;

    postInstall = ''
      mkdir -p $ui/share/dice-lab/ui
      find target -path '*/build/frontend-*/out/*' \( -name '*.wasm' -o -name '*.js' \) \
        -exec cp {} $ui/share/dice-lab/ui/ \;
      test -n "$(ls $ui/share/dice-lab/ui)"
    '';

    meta = {
      description = "An observability lab: three Rust services that roll dice, traced end to end";
      homepage = workspace.workspace.package.repository;
      license = lib.licenses.mit;
      mainProgram = "dice-lab";
      platforms = lib.platforms.linux ++ lib.platforms.darwin;
    };
  }
