//! `braid-test-scheduler`: `braid-scheduler` with the test connector `numbers` added, the way
//! a deployment adds its own connector: one factory where the daemon starts.

use std::sync::Arc;

use braid_catalogs::Factories;
use braid_integration_tests::numbers::NumbersFactory;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    braid_scheduler::main_with(&Factories::builtin().with(Arc::new(NumbersFactory))).await
}
