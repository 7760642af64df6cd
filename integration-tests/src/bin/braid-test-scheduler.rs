//! `braid-test-scheduler`: `braid-scheduler` with the test connector `numbers` added, the way
//! a deployment adds its own connector: one factory where the daemon starts.

use std::sync::Arc;

use braid_catalogs::Factories;
use braid_integration_tests::numbers::NumbersFactory;
use braid_scheduler::{Coordinator, CoordinatorFlags, CoordinatorSettings};
use clap::Parser;

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    flags: CoordinatorFlags,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info,datafusion=warn"))
        .init();
    let cli = Cli::parse();
    let factories = Factories::builtin().with(Arc::new(NumbersFactory));
    let result = async {
        let settings = CoordinatorSettings::resolve(&cli.flags)?;
        Coordinator::start_with(settings, &factories)
            .await?
            .wait()
            .await
    }
    .await;
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("braid-test-scheduler: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
