use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let settings = frontend::Settings::parse();
    telemetry::run_service(frontend::SERVICE, settings, frontend::build).await
}
