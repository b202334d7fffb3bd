//! The HTML document around the server-rendered app: styles, the initial state the browser
//! hydrates from, and the script that loads the WebAssembly.
//!
//! The styles include the trace waterfall's: every row has the same grid, so every bar's track is
//! as wide as the next and bars on different rows share one time axis; long traces get compact
//! rows and scroll inside their box, and on a phone the name column narrows instead of the page
//! growing sideways.

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
#error { border: 1px solid var(--bad); background: #fdf1f0; color: var(--bad); border-radius: 8px; padding: .5rem 1rem; margin: 1rem 0; }
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
.trace-panel { border-top: 1px solid var(--line); margin-top: 1rem; padding-top: .5rem; min-width: 0; }
.trace-panel h3 { font-size: 1rem; margin: .5rem 0 .4rem; }
.trace-status { background: #fff8e6; border: 1px solid #f0d9a6; color: #6b4e00; border-radius: 6px; padding: .4rem .7rem; margin: .25rem 0 .5rem; font-size: .9rem; overflow-wrap: anywhere; }
.trace-summary { font-weight: 600; margin: .25rem 0 .5rem; font-variant-numeric: tabular-nums; }
.span-rows { max-height: 30rem; overflow-y: auto; border: 1px solid var(--line); border-radius: 8px; font-size: .85rem; }
.span-axis, .span-row { display: grid; grid-template-columns: minmax(0, 14rem) minmax(3rem, 1fr) 7.5rem; gap: .5rem; align-items: center; padding: 0 .5rem; }
.span-axis { position: sticky; top: 0; z-index: 1; height: 1.5rem; background: #f6f8fc; color: var(--muted); font-size: .75rem; border-bottom: 1px solid var(--line); }
.span-axis .span-track { display: flex; justify-content: space-between; align-items: center; }
.span-axis .span-meta { justify-content: flex-end; }
.span-row { height: 1.75rem; cursor: pointer; border-bottom: 1px solid #f0f2f6; }
.span-row:hover, .span-row.highlight { background: #eef2ff; }
.span-row.selected { background: #e0e7ff; box-shadow: inset 3px 0 0 var(--accent); }
.span-rows.compact { font-size: .75rem; }
.span-rows.compact .span-row { height: 1.2rem; }
.span-name { display: flex; align-items: center; gap: .35rem; min-width: 0; overflow: hidden; white-space: nowrap; }
.span-label { overflow: hidden; text-overflow: ellipsis; min-width: 0; }
.span-kind { flex: none; color: var(--muted); font-size: .75em; border: 1px solid var(--line); border-radius: 4px; padding: 0 .25rem; }
.service-dot { flex: none; width: .6rem; height: .6rem; border-radius: 50%; }
.span-track { position: relative; align-self: stretch; min-width: 0; }
.span-bar { position: absolute; top: 25%; height: 50%; min-width: 2px; border-radius: 2px; }
.span-row.error { background: #fdf6f5; }
.span-row.error .span-label { color: var(--bad); font-weight: 600; }
.span-row.error .span-bar { outline: 2px solid var(--bad);
  background-image: repeating-linear-gradient(45deg, transparent 0 4px, rgba(255, 255, 255, .6) 4px 7px); }
.span-meta { display: flex; gap: .35rem; justify-content: flex-end; align-items: center; overflow: hidden; white-space: nowrap; font-variant-numeric: tabular-nums; }
.span-duration { color: var(--muted); flex-shrink: 0; }
.error-mark { color: var(--bad); font-weight: 700; }
.roll-value { background: #eef1f8; border-radius: 4px; padding: 0 .3rem; font-weight: 600; }
.roll-value::before { content: "= "; color: var(--muted); font-weight: 400; }
.span-details { margin: .6rem 0; border: 1px solid var(--line); border-left: 4px solid var(--accent); border-radius: 8px; padding: .5rem .75rem; font-size: .85rem; }
.details-head { display: flex; justify-content: space-between; align-items: center; gap: .5rem; }
.details-head h4 { margin: 0; font-size: .95rem; overflow-wrap: anywhere; }
.details-close { background: none; border: none; color: var(--muted); font-size: 1.2rem; line-height: 1; padding: 0 .4rem; }
.span-facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(9rem, 1fr)); gap: .25rem .75rem; margin: .5rem 0; }
.span-facts dt { color: var(--muted); font-size: .75rem; }
.span-facts dd { margin: 0; overflow-wrap: anywhere; }
.span-attributes { width: 100%; border-collapse: collapse; table-layout: fixed; }
.span-attributes th, .span-attributes td { text-align: left; vertical-align: top; padding: .2rem .4rem; border-top: 1px solid #f0f2f6; overflow-wrap: anywhere; }
.span-attributes thead th { color: var(--muted); font-size: .75rem; border-top: none; }
.span-attributes tbody th { width: 40%; font-weight: 500; font-family: ui-monospace, SFMono-Regular, Menlo, monospace; }
.trace-logs { list-style: none; margin: 0; padding: 0; max-height: 22rem; overflow-y: auto; font-size: .8rem; }
.log-line { display: flex; flex-wrap: wrap; gap: .15rem .5rem; padding: .25rem .5rem; border-bottom: 1px solid #f0f2f6; cursor: pointer; }
.log-line:hover, .log-line.highlight { background: #eef2ff; }
.log-time { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; color: var(--muted); }
.log-service { font-weight: 600; }
.log-level { align-self: center; font-size: .7rem; font-weight: 700; border-radius: 4px; padding: 0 .3rem; background: #eef1f8; color: var(--muted); }
.level-warn .log-level { background: #e8a317; color: #fff; }
.level-error .log-level { background: var(--bad); color: #fff; }
.log-message { overflow-wrap: anywhere; min-width: 0; }
.log-fields { flex-basis: 100%; color: var(--muted); font-size: .72rem; font-family: ui-monospace, SFMono-Regular, Menlo, monospace; overflow-wrap: anywhere; }
@media (max-width: 540px) {
  .card { margin: 0; border-radius: 0; padding: 1rem; }
  .stats { grid-template-columns: repeat(3, 1fr); }
  .bar-row { grid-template-columns: 2rem 1fr; }
  .numbers { grid-column: 2; }
  select { width: 100%; }
  .span-axis, .span-row { grid-template-columns: minmax(0, 6.5rem) minmax(2.5rem, 1fr) 6.5rem; gap: .3rem; padding: 0 .3rem; }
  .span-kind { display: none; }
}
"#;
