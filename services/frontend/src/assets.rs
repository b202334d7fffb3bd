//! The browser half of the UI, built by `build.rs` and embedded in the binary, so the frontend is
//! one file that needs no asset directory at run time.

/// The wasm-bindgen JavaScript glue (an ES module).
pub const JS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/frontend_ui.js"));
/// The UI compiled to WebAssembly.
pub const WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/frontend_ui_bg.wasm"));

/// The asset served at `/assets/{name}`, with its content type.
pub fn get(name: &str) -> Option<(&'static [u8], &'static str)> {
    match name {
        "frontend_ui.js" => Some((JS, "text/javascript; charset=utf-8")),
        "frontend_ui_bg.wasm" => Some((WASM, "application/wasm")),
        _ => None,
    }
}
