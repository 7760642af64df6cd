//! `braid-scheduler`: the Braid coordinator process.

use braid_scheduler::{Coordinator, CoordinatorFlags, CoordinatorSettings};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "braid-scheduler",
    version,
    about = "The Braid coordinator: plans queries and serves Flight SQL"
)]
struct Cli {
    #[command(flatten)]
    flags: CoordinatorFlags,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,datafusion=warn".into()),
        )
        .init();
    let cli = Cli::parse();
    let result = async {
        let settings = CoordinatorSettings::resolve(&cli.flags)?;
        Coordinator::start(settings).await?.wait().await
    }
    .await;
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("braid-scheduler: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
