//! Fuzz-style: random query strings and paths against the real services (in this process, on real
//! sockets). Whatever arrives, the answer is JSON with a status the contract allows for a healthy
//! die-service, 500 only for a die that failed, and no label value comes from the input.

use std::sync::OnceLock;

use lab_tests::fixtures::{TEST_DICE, dice_file};
use lab_tests::http::{self, Target as _};
use lab_tests::in_process::{Running, dice_roller, die_service, roller_settings};
use proptest::prelude::*;
use serde_json::Value;

struct Services {
    runtime: tokio::runtime::Runtime,
    die_service: Running,
    roller: Running,
}

fn services() -> &'static Services {
    static SERVICES: OnceLock<Services> = OnceLock::new();
    SERVICES.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let (die_service, roller) = runtime.block_on(async {
            let dice = die_service(Some(dice_file(TEST_DICE).to_path_buf())).await;
            let roller = dice_roller(roller_settings(&dice.url())).await;
            (dice, roller)
        });
        Services {
            runtime,
            die_service,
            roller,
        }
    })
}

/// GETs `url` on the services' runtime; the answer must be JSON.
fn fetch(url: String) -> (u16, Value) {
    let answer = services()
        .runtime
        .block_on(http::send(reqwest::Method::GET, &url, None));
    (answer.status, answer.json())
}

/// Query pieces: known and unknown names, values that are sometimes right and often not.
fn query() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just("die".to_owned()),
        Just("times".to_owned()),
        Just("fetch".to_owned()),
        "[a-z%&=+]{0,6}",
    ];
    let value = prop_oneof![
        Just("fair".to_owned()),
        Just("half".to_owned()),
        Just("doomed".to_owned()),
        Just("each".to_owned()),
        (-5i64..150).prop_map(|n| n.to_string()),
        "\\PC{0,12}".prop_map(|s| percent_encoding::utf8_percent_encode(
            &s,
            percent_encoding::NON_ALPHANUMERIC
        )
        .to_string()),
        "[%0-9a-fA-FgG+&=;]{0,10}",
    ];
    prop::collection::vec((name, value), 0..5).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 300,
        // A failure prints its minimal input; nothing is written into the source tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_roller_answers_any_query_within_the_contract(
        route in prop_oneof![Just("/roll"), Just("/roll-async")],
        query in query(),
    ) {
        let (status, body) = fetch(format!("{}{route}?{query}", services().roller.url()));
        match status {
            200 => prop_assert!(body.get("die").is_some(), "{body}"),
            400 | 404 => prop_assert!(body["error"].is_string(), "{body}"),
            500 => {
                let error = body["error"].as_str().unwrap_or_default();
                prop_assert!(error.starts_with("die '") && error.ends_with("' failed"), "{error}");
            }
            other => prop_assert!(false, "{route}?{query} answered {other}: {body}"),
        }
    }

    #[test]
    fn the_die_service_answers_any_path_within_the_contract(segment in prop_oneof![Just(".".to_owned()), Just("..".to_owned()), "\\PC{0,40}"]) {
        let encoded = percent_encoding::utf8_percent_encode(&segment, percent_encoding::NON_ALPHANUMERIC);
        let (status, body) = fetch(format!("{}/dice/{encoded}", services().die_service.url()));
        match status {
            // `/dice/` is `/dice` with a trailing slash: the list. URLs read `.` (even as `%2E`)
            // as "this directory", so `/dice/.` is `/dice/` too.
            200 if segment.is_empty() || segment == "." => prop_assert!(body["dice"].is_array()),
            200 => prop_assert!(body["faces"].is_array()),
            404 => prop_assert!(body["error"].is_string()),
            other => prop_assert!(false, "/dice/{segment:?} answered {other}: {body}"),
        }
    }
}

#[test]
fn fuzzing_leaves_only_known_label_values() {
    // Traffic of its own, so this holds whatever order the tests run in.
    for q in [
        "die=%00%ff&times=3",
        "die=fair&times=2",
        "die=garbage&times=1",
        "die=x%22y",
    ] {
        fetch(format!("{}/roll-async?{q}", services().roller.url()));
    }
    let s = services();
    for sample in s.runtime.block_on(s.roller.metrics()) {
        if let Some(die) = sample.labels.get("die_type") {
            assert!(
                ["fair", "fixed", "doomed", "half"].contains(&die.as_str()),
                "{sample:?}"
            );
        }
    }
}
