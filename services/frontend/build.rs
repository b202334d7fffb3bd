//! Builds the browser half of the UI as part of the normal build, so `cargo run` and `cargo test`
//! need no extra tool: the `ui` crate is compiled for `wasm32-unknown-unknown` by a nested cargo
//! (in its own target directory, so it does not wait on this build's lock), then the
//! `wasm-bindgen` library writes the JavaScript glue and the final `.wasm` into `OUT_DIR`, from
//! where `src/assets.rs` embeds them. The wasm build is always optimised for size. When the
//! toolchain lacks the `wasm32-unknown-unknown` target and rustup is there, the target is added
//! (once, with a warning), so a fresh clone builds with nothing but rustup's Rust.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace = manifest_dir.join("../..");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    for watched in ["ui/src", "ui/Cargo.toml"] {
        println!(
            "cargo:rerun-if-changed={}",
            manifest_dir.join(watched).display()
        );
    }
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("Cargo.lock").display()
    );

    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"))
        .join("frontend-ui");
    ensure_wasm_target();
    let wasm = build_wasm(&workspace, &target_dir);
    wasm_bindgen_cli_support::Bindgen::new()
        .input_path(&wasm)
        .web(true)
        .expect("the web target is supported")
        .typescript(false)
        .generate(&out_dir)
        .unwrap_or_else(|e| panic!("wasm-bindgen failed on {}: {e}", wasm.display()));
}

/// Adds the wasm32 target through rustup when this toolchain does not have it yet.
fn ensure_wasm_target() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|s| PathBuf::from(s.trim()));
    let installed =
        sysroot.is_some_and(|root| root.join("lib/rustlib/wasm32-unknown-unknown").is_dir());
    if installed {
        return;
    }
    println!(
        "cargo:warning=adding the wasm32-unknown-unknown target with rustup, for the frontend's UI"
    );
    let mut rustup = Command::new("rustup");
    rustup.args(["target", "add", "wasm32-unknown-unknown"]);
    if let Ok(toolchain) = std::env::var("RUSTUP_TOOLCHAIN") {
        rustup.args(["--toolchain", &toolchain]);
    }
    let added = rustup.status().is_ok_and(|s| s.success());
    assert!(
        added,
        "the frontend's UI needs the wasm32-unknown-unknown target: rustup target add wasm32-unknown-unknown"
    );
}

/// `cargo rustc --release --target wasm32-unknown-unknown -p frontend-ui --crate-type cdylib`,
/// with none of this build's own settings leaking in (rustflags for the host, the clippy wrapper,
/// a --target). Settings for the wasm32 target itself (`CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_*`,
/// such as the linker a Nix build chooses) are meant for this build and pass through. The crate type is given here, not in its manifest, so that host builds of the UI
/// crate stay a plain rlib with a hashed file name.
fn build_wasm(workspace: &Path, target_dir: &Path) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let inherited_setting = name.starts_with("CARGO_")
            && name != "CARGO_HOME"
            && name != "CARGO_MAKEFLAGS"
            && name != "CARGO_NET_OFFLINE"
            && !name.starts_with("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_");
        if inherited_setting
            || name.starts_with("RUSTC")
            || name == "RUSTFLAGS"
            || name == "RUSTDOCFLAGS"
        {
            command.env_remove(name.as_ref());
        }
    }
    let status = command
        .current_dir(workspace)
        .args([
            "rustc",
            "--release",
            "--locked",
            "-p",
            "frontend-ui",
            "--lib",
        ])
        .args(["--crate-type", "cdylib"])
        .args(["--target", "wasm32-unknown-unknown", "--target-dir"])
        .arg(target_dir)
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "s")
        .env("CARGO_PROFILE_RELEASE_LTO", "true")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1")
        .env("CARGO_PROFILE_RELEASE_PANIC", "abort")
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .status()
        .expect("cargo can be run from a build script");
    assert!(
        status.success(),
        "building the UI for wasm32 failed ({status}). Is the target installed? \
         rustup target add wasm32-unknown-unknown"
    );
    target_dir.join("wasm32-unknown-unknown/release/frontend_ui.wasm")
}
