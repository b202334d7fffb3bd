use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let settings = dice_roller::Settings::parse();
    telemetry::run_service(dice_roller::SERVICE, settings, dice_roller::build).await
}
