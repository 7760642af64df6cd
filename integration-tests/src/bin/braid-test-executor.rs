//! `braid-test-executor`: `braid-executor` with the test connector `numbers` added.

use std::sync::Arc;

use braid_catalogs::Factories;
use braid_executor::{WorkerFlags, WorkerSettings, run_worker_with};
use braid_integration_tests::numbers::NumbersFactory;
use clap::Parser;

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    flags: WorkerFlags,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info,datafusion=warn"))
        .init();
    let cli = Cli::parse();
    let factories = Factories::builtin().with(Arc::new(NumbersFactory));
    let result = match WorkerSettings::resolve(&cli.flags) {
        Ok(settings) => run_worker_with(settings, &factories).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("braid-test-executor: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
