use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let settings = die_service::Settings::parse();
    telemetry::run_service(die_service::SERVICE, settings, die_service::build).await
}
