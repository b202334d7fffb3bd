//! The real Tempo and Loki (and Prometheus), run with the project's files as `dice-lab up` runs
//! them, against the real services: every claim the lab makes about its backends, checked on the
//! programs themselves.
//!
//! One lab per Tempo found (`tempo`, `tempo-3.0.2`, ...; see `lab_tests::real_backends`), and on
//! it, in order: the backends start and get ready ([`lab`]); a Roll Multiple reads back through
//! the frontend from Tempo and Loki, answers as the lab's store answers for the same spans and
//! lines, and the page draws it ([`read_back`]); Tempo's search finds a click within 5 s, and every
//! query the lab provisions in Grafana returns data ([`queries`]); every line they logged at warn
//! or error in all that is one docs/observability.md lists as known ([`noise`]); nothing is lost
//! when Tempo and Loki restart ([`restart`]).
//!
//! Alloy cannot run here, so the test plays its hops (`lab_tests::alloy`), from the Alloy files.
//! Without the programs the tests are reported as ignored, with how to get them, unless
//! `LAB_REQUIRE_BACKENDS=1` (CI sets it) makes that a failure.

mod lab;
mod noise;
mod queries;
mod read_back;
mod restart;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Instant;

use lab_tests::real_backends::{self, HOW_TO_GET, REQUIRE};
use libtest_mimic::{Arguments, Failed, Trial};

use crate::lab::Lab;

type Check = for<'a> fn(&'a mut Lab) -> Pin<Box<dyn Future<Output = ()> + 'a>>;

/// The checks, in the order they run on each lab.
const CHECKS: &[(&str, Check)] = &[
    ("backends_get_ready_with_the_projects_files", |lab| {
        Box::pin(lab::backends_get_ready_with_the_projects_files(lab))
    }),
    ("sync_rolls_save_no_time_in_the_concurrency_panel", |lab| {
        Box::pin(queries::sync_rolls_save_no_time_in_the_concurrency_panel(
            lab,
        ))
    }),
    (
        "a_roll_multiple_reads_back_from_tempo_and_loki_as_from_the_store",
        |lab| Box::pin(read_back::a_roll_multiple_reads_back_as_from_the_store(lab)),
    ),
    ("the_page_draws_the_waterfall_from_tempo_and_loki", |lab| {
        Box::pin(read_back::the_page_draws_the_waterfall(lab))
    }),
    ("tempo_search_finds_a_click_within_5_s", |lab| {
        Box::pin(queries::tempo_search_finds_a_click_within_5_s(lab))
    }),
    ("every_provisioned_query_returns_data", |lab| {
        Box::pin(queries::every_provisioned_query_returns_data(lab))
    }),
    ("every_warning_is_known_upstream_noise", |lab| {
        Box::pin(noise::every_warning_is_known_upstream_noise(lab))
    }),
    ("nothing_is_lost_when_tempo_and_loki_restart", |lab| {
        Box::pin(restart::nothing_is_lost_when_tempo_and_loki_restart(lab))
    }),
];

fn main() -> std::process::ExitCode {
    let mut args = Arguments::from_args();
    // The checks share one lab on the backends' fixed ports, in order.
    args.test_threads = Some(1);
    let programs = real_backends::programs();
    let required = std::env::var(REQUIRE).is_ok_and(|v| v == "1");
    if let Err(why) = &programs {
        if required {
            eprintln!("backends: {REQUIRE}=1 but {why}");
        } else {
            eprintln!(
                "backends: SKIPPED, not passed: {why}; {HOW_TO_GET}. Set {REQUIRE}=1 to make this an error."
            );
        }
    }
    let started = Instant::now();
    let tempos: Vec<PathBuf> = match &programs {
        Ok(p) => p.tempos.clone(),
        // One set of trials, to be reported as ignored or failed.
        Err(_) => vec![PathBuf::from("tempo")],
    };
    let mut trials = Vec::new();
    for tempo in tempos {
        let name = tempo
            .file_name()
            .map(|n| n.to_string_lossy().replace(['-', '.'], "_"))
            .unwrap_or_default();
        for (check, run) in CHECKS {
            let programs = programs.clone();
            let tempo = tempo.clone();
            let run = *run;
            let ignored = programs.is_err() && !required;
            trials.push(
                Trial::test(format!("{name}::{check}"), move || {
                    let programs = programs.map_err(|why| {
                        Failed::from(format!("the backends are required ({REQUIRE}=1) but {why}"))
                    })?;
                    let mut current = CURRENT.lock().unwrap_or_else(|p| p.into_inner());
                    // One lab at a time, on the backends' fixed ports: the first check of a Tempo
                    // stops the lab of the one before and starts its own.
                    if current.as_ref().is_none_or(|c| c.tempo != tempo) {
                        stop(current.take());
                        let runtime = tokio::runtime::Builder::new_multi_thread()
                            .enable_all()
                            .build()
                            .expect("a tokio runtime");
                        let lab = runtime.block_on(Lab::start(&programs, &tempo));
                        *current = Some(Current {
                            tempo,
                            runtime,
                            lab,
                        });
                    }
                    let Current { runtime, lab, .. } = current.as_mut().expect("started");
                    runtime.block_on(run(lab));
                    Ok(())
                })
                .with_ignored_flag(ignored),
            );
        }
    }
    let conclusion = libtest_mimic::run(&args, trials);
    stop(CURRENT.lock().unwrap_or_else(|p| p.into_inner()).take());
    eprintln!(
        "backends: suite took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    conclusion.exit_code()
}

/// The running lab, of one Tempo, with the runtime its relay, shipper and store run on.
struct Current {
    tempo: PathBuf,
    runtime: tokio::runtime::Runtime,
    lab: Lab,
}

static CURRENT: Mutex<Option<Current>> = Mutex::new(None);

/// Stops a lab inside its runtime (its services first, then the backends), then the runtime.
fn stop(current: Option<Current>) {
    if let Some(Current { runtime, lab, .. }) = current {
        runtime.block_on(async { drop(lab) });
    }
}
