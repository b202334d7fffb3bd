//! The dice-lab frontend's page, written once for both sides of the wire.
//!
//! On the server (`cargo build` for the host) [`render`] turns the page's [`Initial`] state into
//! HTML for the first paint. In the browser (`wasm32`) `start` reads the same state from the
//! page and hydrates that HTML, so the buttons come alive without a second render. The page asks
//! the frontend's own `/api/*` routes for rolls; every answer carries the `trace_id` of the trace it
//! started, which the page shows (as a Grafana Explore link when a Grafana URL is set), and under
//! it the trace itself as a waterfall with its log lines, polled from `/api/traces/*` as they arrive.

mod stats;
pub mod trace_api;
mod trace_view;
pub mod watch;
pub mod waterfall;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sycamore::prelude::*;

pub use stats::Stats;
use trace_view::Panel;

/// A die as the die-service describes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Die {
    #[serde(rename = "type")]
    pub die_type: String,
    pub faces: Vec<i64>,
    pub error_rate: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// What the page starts with: the server fills it, the browser reads it back to hydrate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Initial {
    pub dice: Vec<Die>,
    /// The largest "Roll Multiple" the dice-roller accepts.
    pub max_times: u32,
    /// Base URL of Grafana, for links from trace ids to Explore.
    pub grafana_url: Option<String>,
    /// Why the dice could not be listed, when they could not.
    pub error: Option<String>,
}

/// The id of the `<script type="application/json">` element that carries [`Initial`].
pub const STATE_ELEMENT: &str = "initial-state";
/// The id of the element the app is rendered into and hydrated from.
pub const APP_ELEMENT: &str = "app";

/// The app's HTML for the first paint (server side).
pub fn render(initial: &Initial) -> String {
    let initial = initial.clone();
    sycamore::render_to_string(move || view! { App(initial=initial) })
}

/// Hydrates the server-rendered app (browser side); runs when the WASM module is initialised.
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen(start)]
pub fn start() {
    let document = web_sys::window()
        .and_then(|w| w.document())
        .expect("a browser document");
    let initial: Initial = document
        .get_element_by_id(STATE_ELEMENT)
        .and_then(|e| e.text_content())
        .and_then(|text| serde_json::from_str(&text).ok())
        .expect("the page carries its initial state");
    let root = document
        .get_element_by_id(APP_ELEMENT)
        .expect("the page has an app element");
    sycamore::hydrate_to(move || view! { App(initial=initial) }, &root);
}

/// Which button made a result.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Action {
    Once,
    Multiple,
}

/// The answer to the last interaction.
#[derive(Clone, Debug, PartialEq)]
struct Outcome {
    action: Action,
    die: String,
    /// Each roll's value, `None` for a failed roll.
    rolls: Vec<Option<i64>>,
    trace_id: Option<String>,
}

/// A failed interaction: a sentence and, when the request got that far, its trace.
#[derive(Clone, Debug, PartialEq)]
struct Problem {
    message: String,
    trace_id: Option<String>,
}

#[component(inline_props)]
fn App(initial: Initial) -> View {
    let Initial {
        dice,
        max_times,
        grafana_url,
        error,
    } = initial;
    let first = dice
        .iter()
        .find(|d| d.die_type == "fair")
        .or(dice.first())
        .map(|d| d.die_type.clone())
        .unwrap_or_default();
    let selected = create_signal(first);
    let times = create_signal("10".to_owned());
    let busy = create_signal(false);
    let outcome = create_signal(None::<Outcome>);
    let problem = create_signal(error.map(|message| Problem {
        message,
        trace_id: None,
    }));
    let times_valid = create_memo(move || parse_times(&times.get_clone(), max_times));
    let no_dice = dice.is_empty();
    let panel = Panel::new();

    let run = move |action: Action| {
        let die = selected.get_clone();
        let url = match action {
            Action::Once => format!("/api/roll?die={}", encode(&die)),
            Action::Multiple => match times_valid.get_clone() {
                Ok(n) => format!("/api/roll-async?die={}&times={n}", encode(&die)),
                Err(_) => return,
            },
        };
        busy.set(true);
        spawn(async move {
            let answer = outcome_of(action, &die, fetch_json(&url).await);
            // An interaction without a trace id leaves the last trace (and its result) in view.
            let trace_id = match &answer {
                Ok(result) => result.trace_id.clone(),
                Err(problem) => problem.trace_id.clone(),
            };
            if let Some(trace_id) = trace_id {
                panel.watch(trace_id);
            }
            match answer {
                Ok(result) => {
                    outcome.set(Some(result));
                    problem.set(None);
                }
                Err(error) => problem.set(Some(error)),
            }
            busy.set(false);
        });
    };

    let options = dice
        .iter()
        .map(|d| {
            let value = d.die_type.clone();
            let label = d.die_type.clone();
            view! { option(value=value) { (label) } }
        })
        .collect::<Vec<_>>();
    let described = dice.clone();
    let description = move || {
        let die = selected.get_clone();
        described
            .iter()
            .find(|d| d.die_type == die)
            .map(describe)
            .unwrap_or_default()
    };
    let chart_dice = dice.clone();
    let grafana = grafana_url.clone();
    let grafana_for_problem = grafana_url;

    view! {
        main(class="card") {
            header {
                h1 { "dice-lab" }
                p(class="tagline") { "Roll dice, then follow each roll through traces, metrics and logs." }
            }
            div(class="controls") {
                label(r#for="die") { "Die" }
                // `change` too: not every way of choosing an option fires `input`.
                select(id="die", bind:value=selected, disabled=no_dice,
                    on:change=move |event: web_sys::Event| {
                        if let Some(value) = selected_value(&event) {
                            selected.set(value);
                        }
                    }) { (options) }
                p(id="die-description", class="hint") { (description) }
                div(class="buttons") {
                    button(id="roll-once", r#type="button", disabled=move || busy.get() || no_dice,
                        on:click=move |_| run(Action::Once)) { "Roll Once" }
                    div(class="multiple") {
                        label(r#for="times", class="sr-only") { "Number of rolls" }
                        input(id="times", r#type="number", min="1", max=max_times.to_string(), step="1",
                            inputmode="numeric", bind:value=times)
                        button(id="roll-multiple", r#type="button",
                            disabled=move || busy.get() || no_dice || times_valid.with(Result::is_err),
                            on:click=move |_| run(Action::Multiple)) { "Roll Multiple" }
                    }
                }
                p(id="times-error", class="field-error") {
                    (move || times_valid.with(|t| t.clone().err().unwrap_or_default()))
                }
            }
            (move || match problem.get_clone() {
                Some(Problem { message, trace_id }) => {
                    let waterfall = trace_id
                        .clone()
                        .map(|id| trace_view::for_trace(panel, id))
                        .unwrap_or_default();
                    let link = trace_link(trace_id, grafana_for_problem.clone());
                    view! {
                        div(id="error", class="error", role="alert") {
                            p { (message) }
                            (link)
                        }
                        (waterfall)
                    }
                }
                None => view! {},
            })
            (move || match outcome.get_clone() {
                Some(result) => result_view(result, &chart_dice, grafana.clone(), panel),
                None => view! { p(id="empty", class="hint") { "Pick a die and roll." } },
            })
        }
    }
}

fn result_view(result: Outcome, dice: &[Die], grafana: Option<String>, panel: Panel) -> View {
    let stats = Stats::of(&result.rolls);
    let heading = match result.action {
        Action::Once => format!("Roll Once · {}", result.die),
        Action::Multiple => format!("Roll Multiple · {} × {}", result.die, result.rolls.len()),
    };
    let rolls = result
        .rolls
        .iter()
        .map(|roll| match roll {
            Some(value) => {
                let value = value.to_string();
                view! { li(class="roll") { (value) } }
            }
            None => view! { li(class="roll failed", title="this roll failed") { "✗" } },
        })
        .collect::<Vec<_>>();
    let chart = dice
        .iter()
        .find(|d| d.die_type == result.die)
        .map(|die| chart_view(&stats, die))
        .unwrap_or_default();
    let stat = |id: &'static str, label: &'static str, value: String| {
        view! { div(class="stat") { dt { (label) } dd(id=id) { (value) } } }
    };
    let waterfall = result
        .trace_id
        .clone()
        .map(|id| trace_view::for_trace(panel, id))
        .unwrap_or_default();
    let link = trace_link(result.trace_id, grafana);
    let summary = [
        stat("stat-count", "rolls", stats.count.to_string()),
        stat("stat-failed", "failed", stats.failed.to_string()),
        stat("stat-total", "total", stats.total.to_string()),
        stat(
            "stat-mean",
            "mean",
            stats.mean.map_or("–".into(), |m| format!("{m:.2}")),
        ),
        stat(
            "stat-min",
            "min",
            stats.min.map_or("–".into(), |m| m.to_string()),
        ),
        stat(
            "stat-max",
            "max",
            stats.max.map_or("–".into(), |m| m.to_string()),
        ),
    ]
    .into_iter()
    .collect::<Vec<_>>();
    view! {
        section(id="result", class="result") {
            h2 { (heading) }
            (link)
            ol(id="rolls", class="rolls") { (rolls) }
            dl(id="stats", class="stats") { (summary) }
            (chart)
            (waterfall)
        }
    }
}

/// Observed share of each face beside the die's expected share.
fn chart_view(stats: &Stats, die: &Die) -> View {
    let rows = stats
        .distribution(&die.faces)
        .into_iter()
        .map(|row| {
            let face = row.face.to_string();
            let observed = format!("width: {:.1}%", row.observed * 100.0);
            let expected = format!("width: {:.1}%", row.expected * 100.0);
            let numbers = format!(
                "{} · {:.0}% seen · {:.0}% expected",
                row.seen,
                row.observed * 100.0,
                row.expected * 100.0
            );
            view! {
                div(class="bar-row") {
                    span(class="face") { (face) }
                    div(class="bars") {
                        div(class="bar observed", style=observed) {}
                        div(class="bar expected", style=expected) {}
                    }
                    span(class="numbers") { (numbers) }
                }
            }
        })
        .collect::<Vec<_>>();
    view! {
        figure(id="chart", class="chart") {
            figcaption {
                span(class="key observed") { "observed" } " "
                span(class="key expected") { "expected" }
            }
            (rows)
        }
    }
}

/// The value of the `<select>` an event came from.
fn selected_value(event: &web_sys::Event) -> Option<String> {
    use wasm_bindgen::JsCast as _;
    let select = event
        .target()?
        .dyn_into::<web_sys::HtmlSelectElement>()
        .ok()?;
    Some(select.value())
}

/// "trace 4bf9…" as a link to Grafana Explore when Grafana is known.
fn trace_link(trace_id: Option<String>, grafana: Option<String>) -> View {
    let Some(trace_id) = trace_id else {
        return view! {};
    };
    let shown = trace_id.clone();
    match grafana {
        Some(base) => {
            let href = explore_url(&base, &trace_id);
            view! {
                p(class="trace") { "trace " a(id="trace-id", href=href, target="_blank", rel="noopener") { (shown) } }
            }
        }
        None => view! { p(class="trace") { "trace " code(id="trace-id") { (shown) } } },
    }
}

/// Grafana Explore showing one trace from the `tempo` data source.
pub fn explore_url(base: &str, trace_id: &str) -> String {
    let panes = format!(
        r#"{{"trace":{{"datasource":"tempo","queries":[{{"refId":"A","datasource":{{"type":"tempo","uid":"tempo"}},"queryType":"traceql","query":"{trace_id}"}}],"range":{{"from":"now-1h","to":"now"}}}}}}"#
    );
    format!(
        "{}/explore?schemaVersion=1&panes={}",
        base.trim_end_matches('/'),
        encode(&panes)
    )
}

fn describe(die: &Die) -> String {
    let faces: Vec<String> = die.faces.iter().map(i64::to_string).collect();
    let failing = if die.error_rate > 0.0 {
        format!("; {:.0}% of rolls fail", die.error_rate * 100.0)
    } else {
        String::new()
    };
    match &die.description {
        Some(text) => format!("{text} Faces {}{failing}.", faces.join(", ")),
        None => format!("Faces {}{failing}.", faces.join(", ")),
    }
}

/// The number of rolls typed in, or the sentence that says what is wrong with it.
fn parse_times(text: &str, max: u32) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("Enter a whole number from 1 to {max}.")),
    }
}

/// Turns an `/api` answer into a result or a problem.
fn outcome_of(
    action: Action,
    die: &str,
    answer: Result<(u16, Value), String>,
) -> Result<Outcome, Problem> {
    let (status, body) = answer.map_err(|message| Problem {
        message,
        trace_id: None,
    })?;
    let trace_id = body["trace_id"].as_str().map(str::to_owned);
    let rolls = match (status, action) {
        (200, Action::Once) => body["roll"].as_i64().map(|v| vec![Some(v)]),
        (200, Action::Multiple) => body["rolls"]
            .as_array()
            .map(|rolls| rolls.iter().map(Value::as_i64).collect()),
        // A single roll that failed is a result: the die did what its error rate says.
        (500, Action::Once) if body["error"] == format!("die '{die}' failed") => Some(vec![None]),
        _ => None,
    };
    match rolls {
        Some(rolls) => Ok(Outcome {
            action,
            die: die.to_owned(),
            rolls,
            trace_id,
        }),
        None => Err(Problem {
            message: match body["error"].as_str() {
                Some(error) => format!("The dice-roller could not roll ({status}): {error}"),
                None => format!("The frontend answered {status} with no explanation."),
            },
            trace_id,
        }),
    }
}

/// Percent-encodes everything but unreserved characters, for a URL query value.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Runs a request in the browser; on the server no button is ever pressed.
#[cfg(target_arch = "wasm32")]
fn spawn(task: impl std::future::Future<Output = ()> + 'static) {
    wasm_bindgen_futures::spawn_local(task);
}

#[cfg(not(target_arch = "wasm32"))]
fn spawn(task: impl std::future::Future<Output = ()> + 'static) {
    drop(task);
}

/// GETs a same-origin URL and reads its JSON body.
#[cfg(target_arch = "wasm32")]
async fn fetch_json(url: &str) -> Result<(u16, Value), String> {
    use wasm_bindgen::JsCast as _;
    use wasm_bindgen_futures::JsFuture;

    let unreachable = |_| "The frontend cannot be reached. Is it still running?".to_owned();
    let window = web_sys::window().ok_or("no window")?;
    let response: web_sys::Response = JsFuture::from(window.fetch_with_str(url))
        .await
        .map_err(unreachable)?
        .dyn_into()
        .map_err(|_| "the fetch answer is not a Response".to_owned())?;
    let status = response.status();
    let text = JsFuture::from(response.text().map_err(unreachable)?)
        .await
        .map_err(unreachable)?
        .as_string()
        .unwrap_or_default();
    let body = serde_json::from_str(&text)
        .map_err(|_| format!("The frontend answered {status} with something that is not JSON."))?;
    Ok((status, body))
}

#[cfg(not(target_arch = "wasm32"))]
async fn fetch_json(_url: &str) -> Result<(u16, Value), String> {
    Err("requests are made in the browser".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn initial() -> Initial {
        Initial {
            dice: vec![Die {
                die_type: "fair".into(),
                faces: vec![1, 2, 3, 4, 5, 6],
                error_rate: 0.0,
                description: Some("A fair die.".into()),
            }],
            max_times: 100,
            grafana_url: None,
            error: None,
        }
    }

    #[test]
    fn the_first_paint_has_the_controls_and_the_dice() {
        let html = render(&initial());
        for needle in [
            "id=\"die\"",
            "<option value=\"fair\"",
            "Roll Once",
            "Roll Multiple",
            "id=\"times\"",
            "A fair die.",
        ] {
            assert!(html.contains(needle), "{needle} missing from {html}");
        }
    }

    #[test]
    fn a_listing_error_is_shown_in_the_first_paint() {
        let mut state = initial();
        state.dice.clear();
        state.error = Some("The die-service is unreachable.".into());
        let html = render(&state);
        assert!(html.contains("The die-service is unreachable."), "{html}");
    }

    #[test]
    fn times_are_checked_in_the_page() {
        assert_eq!(parse_times("10", 100), Ok(10));
        assert_eq!(
            parse_times("0", 100),
            Err("Enter a whole number from 1 to 100.".into())
        );
        assert!(parse_times("101", 100).is_err());
        assert!(parse_times("2.5", 100).is_err());
    }

    #[test]
    fn answers_become_results_or_problems() {
        let once = outcome_of(
            Action::Once,
            "fair",
            Ok((
                200,
                serde_json::json!({"die": "fair", "roll": 4, "trace_id": "ab"}),
            )),
        )
        .unwrap();
        assert_eq!(once.rolls, vec![Some(4)]);
        assert_eq!(once.trace_id.as_deref(), Some("ab"));
        let failed = outcome_of(
            Action::Once,
            "x",
            Ok((500, serde_json::json!({"error": "die 'x' failed"}))),
        )
        .unwrap();
        assert_eq!(failed.rolls, vec![None]);
        let many = outcome_of(
            Action::Multiple,
            "x",
            Ok((200, serde_json::json!({"rolls": [1, null, 3]}))),
        )
        .unwrap();
        assert_eq!(many.rolls, vec![Some(1), None, Some(3)]);
        let down = outcome_of(Action::Once, "x", Ok((503, serde_json::json!({"error": "die-service is unreachable at http://x", "trace_id": "cd"})))).unwrap_err();
        assert_eq!(
            down.message,
            "The dice-roller could not roll (503): die-service is unreachable at http://x"
        );
        assert_eq!(down.trace_id.as_deref(), Some("cd"));
    }

    #[test]
    fn explore_links_name_the_trace() {
        let url = explore_url("http://localhost:3000/", "abc123");
        assert!(
            url.starts_with("http://localhost:3000/explore?schemaVersion=1&panes=%7B"),
            "{url}"
        );
        assert!(url.contains("abc123"));
    }
}
