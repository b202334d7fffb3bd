//! The HTML document around the server-rendered app: styles, the initial state the browser
//! hydrates from, and the script that loads the WebAssembly.

use frontend_ui::{APP_ELEMENT, Initial, STATE_ELEMENT};

/// The whole page for `initial`.
pub fn document(initial: &Initial) -> String {
    let app = frontend_ui::render(initial);
    // `<` is escaped so no die description can close the script element early.
    let state = serde_json::to_string(initial)
        .expect("the initial state serialises")
        .replace('<', "\\u003c");
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dice-lab</title>
<link rel="modulepreload" href="/assets/frontend_ui.js">
<link rel="preload" href="/assets/frontend_ui_bg.wasm" as="fetch" type="application/wasm" crossorigin>
<style>{STYLE}</style>
</head>
<body>
<div id="{APP_ELEMENT}">{app}</div>
<script id="{STATE_ELEMENT}" type="application/json">{state}</script>
<script type="module">
import init from "/assets/frontend_ui.js";
init({{ module_or_path: "/assets/frontend_ui_bg.wasm" }}).then(() => {{
  window.diceLabInteractiveMs = performance.now();
  document.body.dataset.ready = "true";
}});
</script>
</body>
</html>
"#
    )
}

const STYLE: &str = r#"
:root { --ink: #1d2330; --muted: #5b6475; --line: #dde2ea; --accent: #3756d4; --bad: #c2362b;
  --seen: #3756d4; --expect: #b9c3d6; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); }
body { margin: 0; background: #f3f5f9; }
.card { max-width: 46rem; margin: 2rem auto; background: #fff; border-radius: 12px; padding: 1.5rem 1.75rem;
  box-shadow: 0 1px 3px rgba(20, 30, 60, .12); }
h1 { margin: 0; font-size: 1.6rem; letter-spacing: -.01em; }
h2 { font-size: 1.1rem; margin: 0 0 .25rem; }
.tagline, .hint { color: var(--muted); margin: .25rem 0 1rem; }
.controls label { font-weight: 600; display: block; margin-bottom: .25rem; }
select, input, button { font: inherit; border-radius: 8px; border: 1px solid var(--line); padding: .5rem .75rem; }
select { min-width: 12rem; }
.buttons { display: flex; flex-wrap: wrap; gap: .75rem; align-items: center; }
.multiple { display: flex; gap: .5rem; }
#times { width: 6rem; }
button { background: var(--accent); color: #fff; border-color: var(--accent); cursor: pointer; font-weight: 600; }
button:disabled { opacity: .5; cursor: default; }
.field-error { color: var(--bad); min-height: 1.25rem; margin: .5rem 0 0; font-size: .9rem; }
.error { border: 1px solid var(--bad); background: #fdf1f0; color: var(--bad); border-radius: 8px; padding: .5rem 1rem; margin: 1rem 0; }
.result { border-top: 1px solid var(--line); margin-top: 1rem; padding-top: 1rem; }
.trace { color: var(--muted); font-size: .9rem; margin: 0 0 .75rem; word-break: break-all; }
.rolls { display: flex; flex-wrap: wrap; gap: .4rem; list-style: none; padding: 0; margin: 0 0 1rem; }
.roll { min-width: 2.2rem; text-align: center; padding: .35rem .5rem; border-radius: 6px; background: #eef1f8; font-variant-numeric: tabular-nums; }
.roll.failed { background: #fdf1f0; color: var(--bad); font-weight: 700; }
.stats { display: grid; grid-template-columns: repeat(6, 1fr); gap: .5rem; margin: 0 0 1rem; }
.stat { background: #f6f8fc; border-radius: 8px; padding: .5rem; text-align: center; }
.stat dt { color: var(--muted); font-size: .8rem; }
.stat dd { margin: 0; font-size: 1.2rem; font-weight: 600; font-variant-numeric: tabular-nums; }
.chart { margin: 0; }
.chart figcaption { font-size: .85rem; color: var(--muted); margin-bottom: .5rem; }
.key::before { content: ""; display: inline-block; width: .8rem; height: .8rem; border-radius: 2px; margin-right: .3rem; vertical-align: -1px; }
.key.observed::before { background: var(--seen); } .key.expected::before { background: var(--expect); }
.bar-row { display: grid; grid-template-columns: 2.5rem 1fr 12rem; gap: .5rem; align-items: center; margin: .25rem 0; }
.face { text-align: right; font-variant-numeric: tabular-nums; font-weight: 600; }
.bars { display: grid; gap: 2px; }
.bar { height: .6rem; border-radius: 3px; min-width: 1px; }
.bar.observed { background: var(--seen); } .bar.expected { background: var(--expect); }
.numbers { color: var(--muted); font-size: .8rem; }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
@media (max-width: 540px) {
  .card { margin: 0; border-radius: 0; padding: 1rem; }
  .stats { grid-template-columns: repeat(3, 1fr); }
  .bar-row { grid-template-columns: 2rem 1fr; }
  .numbers { grid-column: 2; }
  select { width: 100%; }
}
"#;
