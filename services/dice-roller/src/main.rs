use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    dice_roller::run(dice_roller::Settings::parse()).await
}
