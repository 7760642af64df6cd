//! `braid-scheduler`: the Braid coordinator process, with this build's connectors.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    braid_scheduler::main_with(&braid_catalogs::Factories::builtin()).await
}
