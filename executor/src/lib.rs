//! # braid-executor
//!
//! A Braid worker: the Ballista 53 executor with Braid's pieces plugged in.
//!
//! - [`WorkerSettings`] (`settings.rs`): flags > `BRAID_EXECUTOR_*` env > `[executor]` in
//!   `braid.toml` > defaults.
//! - [`run_worker`]: loads the worker's own copy of the catalog files (credentials stay on the
//!   worker), installs the Braid codec, the full function registry and one bounded memory pool
//!   shared by all tasks ([`braid_optimizer_rules::memory::WorkerMemoryPool`]), registers with the
//!   coordinator and runs tasks until shut down. [`run_worker_with`] takes the connector kinds
//!   to know (tests add their own); [`main_with`] is the whole `braid-executor` program.

mod settings;

use std::sync::Arc;

use ballista_core::RuntimeProducer;
use ballista_core::config::TaskSchedulingPolicy;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use braid_catalogs::{ConnectorRegistry, Factories, Role, bootstrap};
use braid_optimizer_rules::memory::{WorkerMemoryPool, parse_size};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;

pub use settings::{WorkerFlags, WorkerSettings};

/// The `braid-executor` command line.
#[derive(Debug, clap::Parser)]
#[command(
    name = "braid-executor",
    version,
    about = "A Braid worker: runs query tasks and reads the sources"
)]
struct Cli {
    #[command(flatten)]
    flags: WorkerFlags,
}

/// The `braid-executor` program with the connector kinds of `factories`: parses the flags,
/// logs to stdout, runs until stopped, and reports failure on stderr and in the exit code.
pub async fn main_with(factories: &Factories) -> std::process::ExitCode {
    use clap::Parser;
    bootstrap::run_daemon(
        "braid-executor",
        "info,ballista=info,datafusion=warn",
        async {
            let cli = Cli::parse();
            run_worker_with(WorkerSettings::resolve(&cli.flags)?, factories).await
        },
    )
    .await
}

/// Why a worker could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("invalid worker setting: {0}")]
    Settings(String),
    #[error(transparent)]
    Catalog(#[from] braid_catalogs::CatalogError),
    #[error("cannot create work directory {path}: {source}")]
    WorkDir {
        path: String,
        source: std::io::Error,
    },
    #[error("worker failed: {0}")]
    Ballista(String),
}

/// Runs a worker with this build's connectors until it is shut down (SIGTERM, Ctrl-C, or the
/// coordinator's stop request).
pub async fn run_worker(settings: WorkerSettings) -> Result<(), WorkerError> {
    run_worker_with(settings, &Factories::builtin()).await
}

/// [`run_worker`] with the connector kinds of `factories`.
pub async fn run_worker_with(
    settings: WorkerSettings,
    factories: &Factories,
) -> Result<(), WorkerError> {
    let config = executor_config(&settings, factories)?;
    tracing::info!(
        scheduler = %settings.scheduler,
        flight_port = settings.port,
        work_dir = ?config.work_dir,
        "starting Braid worker"
    );
    let config = Arc::new(config);
    let mut attempt = 1;
    loop {
        match start_executor_process(config.clone()).await {
            Ok(()) => return Ok(()),
            // Ballista 53 registers before its own gRPC server listens (a TODO in its
            // executor_server::startup), and the scheduler's call back to it can then fail:
            // try again instead of giving up.
            Err(e) if attempt < REGISTRATION_ATTEMPTS && e.to_string().contains("registration") => {
                tracing::warn!("registering with the coordinator failed (attempt {attempt}): {e}");
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            Err(e) => return Err(WorkerError::Ballista(e.to_string())),
        }
    }
}

/// How often a worker tries to register before it gives up.
const REGISTRATION_ATTEMPTS: usize = 5;

/// The Ballista executor configuration for `settings`.
pub fn executor_config(
    settings: &WorkerSettings,
    factories: &Factories,
) -> Result<ExecutorProcessConfig, WorkerError> {
    let registry =
        ConnectorRegistry::load_with(settings.catalog_dir.as_deref(), &Role::Worker, factories)?;
    let (scheduler_host, scheduler_port) = settings.scheduler_host_port()?;

    let memory_limit = match &settings.memory_limit {
        Some(size) => parse_size(size).map_err(WorkerError::Settings)?,
        None => WorkerMemoryPool::default_limit(),
    };
    let pool = WorkerMemoryPool::new(memory_limit);

    let work_dir = match &settings.work_dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("braid-worker-{}", settings.port)),
    };
    std::fs::create_dir_all(&work_dir).map_err(|source| WorkerError::WorkDir {
        path: work_dir.display().to_string(),
        source,
    })?;
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(pool.pool())
        .with_temp_file_path(&work_dir)
        .build_arc()
        .map_err(|e| WorkerError::Settings(e.to_string()))?;
    // Ballista asks for a runtime per task; every task shares the worker's one pool and disk.
    let runtime_producer: RuntimeProducer = Arc::new(move |_| Ok(runtime.clone()));

    Ok(ExecutorProcessConfig {
        bind_host: settings.bind_host.clone(),
        external_host: settings.external_host.clone(),
        port: settings.port,
        grpc_port: settings.grpc_port,
        scheduler_host,
        scheduler_port,
        scheduler_connect_timeout_seconds: 30,
        concurrent_tasks: settings.concurrent_tasks,
        task_scheduling_policy: TaskSchedulingPolicy::PushStaged,
        work_dir: Some(work_dir.display().to_string()),
        executor_heartbeat_interval_seconds: settings.heartbeat_interval_seconds,
        print_thread_info: false,
        override_function_registry: Some(bootstrap::function_registry()),
        override_runtime_producer: Some(runtime_producer),
        override_config_producer: Some(Arc::new(bootstrap::session_config)),
        override_physical_codec: Some(Arc::new(registry.codec())),
        ..Default::default()
    })
}
