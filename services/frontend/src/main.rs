use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    frontend::run(frontend::Settings::parse()).await
}
