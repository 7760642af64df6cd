//! `braid-executor`: a Braid worker process.

use braid_executor::{WorkerFlags, WorkerSettings, run_worker};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "braid-executor",
    version,
    about = "A Braid worker: runs query tasks and reads the sources"
)]
struct Cli {
    #[command(flatten)]
    flags: WorkerFlags,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,ballista=info,datafusion=warn".into()),
        )
        .init();
    let cli = Cli::parse();
    let result = match WorkerSettings::resolve(&cli.flags) {
        Ok(settings) => run_worker(settings).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("braid-executor: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
