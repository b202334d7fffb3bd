use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    die_service::run(die_service::Settings::parse()).await
}
