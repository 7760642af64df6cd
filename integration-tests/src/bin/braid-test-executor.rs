//! `braid-test-executor`: `braid-executor` with the test connector `numbers` added.

use std::sync::Arc;

use braid_catalogs::Factories;
use braid_integration_tests::numbers::NumbersFactory;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    braid_executor::main_with(&Factories::builtin().with(Arc::new(NumbersFactory))).await
}
