//! `dice-lab`: the whole lab with one command.
//!
//! `dice-lab up` starts the three services and every observability backend it finds on `PATH`,
//! each with the project's own configuration in a state directory, waits until all are ready, and
//! prints where to find them; Ctrl-C stops everything in order. `dice-lab load` sends a mixed
//! stream of rolls, `dice-lab status` says what is up, `dice-lab trace TRACE_ID` prints a click's
//! trace and its log lines. The services run as child processes of this
//! same binary (`dice-lab serve SERVICE`), so `cargo run -p dice-lab -- up` builds all that is
//! needed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use dice_lab::{load, stack, trace};

#[derive(Parser)]
#[command(version, about = "Runs the dice-lab observability lab.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the services and every backend found on PATH (alloy, loki, tempo, prometheus,
    /// grafana), or the lab's store in place of alloy, tempo and loki unless all three are there;
    /// print their URLs; stop them all on Ctrl-C or SIGTERM.
    Up {
        /// Where configurations, data and each component's log file go.
        #[arg(long, env = "DICE_LAB_STATE_DIR", default_value = ".dice-lab")]
        state_dir: PathBuf,
        /// Start only the three services, even if backends are on PATH.
        #[arg(long)]
        services_only: bool,
    },
    /// Send mixed traffic (Roll Once and Roll Multiple, every die) to the frontend and summarise it.
    Load {
        /// The frontend's base URL.
        #[arg(long, env = "DICE_LAB_URL", default_value_t = parts::Part::Frontend.local_url())]
        url: String,
        /// Requests per second.
        #[arg(long, default_value_t = 10.0)]
        rate: f64,
        /// How long to send, e.g. 30s, 2m, 500ms.
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        duration: Duration,
    },
    /// Show which components answer.
    Status,
    /// Print a trace as a text waterfall with its summary and log lines, from the frontend.
    Trace {
        /// The trace id the page (or an API answer) showed: 32 hexadecimal digits.
        trace_id: String,
        /// The frontend's base URL.
        #[arg(long, env = "DICE_LAB_URL", default_value_t = parts::Part::Frontend.local_url())]
        url: String,
        /// How long to wait for spans and log lines still on their way, e.g. 10s.
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        wait: Duration,
    },
    /// Run one service, or the store, in this process (used by `up`).
    #[command(hide = true)]
    Serve {
        service: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async move {
        match cli.command {
            Command::Up {
                state_dir,
                services_only,
            } => stack::up(&state_dir, services_only).await,
            Command::Load {
                url,
                rate,
                duration,
            } => load::run(&url, rate, duration).await,
            Command::Status => stack::status().await,
            Command::Trace {
                trace_id,
                url,
                wait,
            } => trace::run(&url, &trace_id, wait).await,
            Command::Serve { service, args } => serve(&service, args).await,
        }
    })
}

/// One service, as its own binary would run it.
async fn serve(service: &str, args: Vec<String>) -> ExitCode {
    let argv = std::iter::once(service.to_owned()).chain(args);
    match parts::Part::from_name(service) {
        Some(parts::Part::DieService) => die_service::run(Parser::parse_from(argv)).await,
        Some(parts::Part::DiceRoller) => dice_roller::run(Parser::parse_from(argv)).await,
        Some(parts::Part::Frontend) => frontend::run(Parser::parse_from(argv)).await,
        Some(parts::Part::Store) => store::run(Parser::parse_from(argv)).await,
        _ => {
            eprintln!("dice-lab: no service named '{service}'");
            ExitCode::FAILURE
        }
    }
}

/// `500ms`, `30s`, `2m` or a number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration such as 30s, 2m or 500ms"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("'{text}': the unit must be ms, s, m or h")),
    };
    if !(seconds > 0.0 && seconds.is_finite()) {
        return Err(format!("'{text}' must be longer than zero"));
    }
    Ok(Duration::from_secs_f64(seconds))
}
