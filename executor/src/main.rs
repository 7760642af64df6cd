//! `braid-executor`: a Braid worker process, with this build's connectors.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    braid_executor::main_with(&braid_catalogs::Factories::builtin()).await
}
