//! # braid-executor
//!
//! A Braid worker: the Ballista 53 executor with Braid's pieces plugged in.
//!
//! - [`WorkerSettings`] (`settings.rs`): flags > `BRAID_EXECUTOR_*` env > `[executor]` in
//!   `braid.toml` > defaults.
//! - [`run_worker`]: loads the worker's own copy of the catalog files (credentials stay on the
//!   worker), installs the Braid codec, the full function registry and the worker's memory
//!   pool ([`braid_optimizer_rules::memory::WorkerMemory`]: every task runs in its query's
//!   sub-pool, `QueryRuntimes`), registers with the coordinator and runs tasks until shut
//!   down.
//! - [`shuffle`]: shuffles kept in memory ([`shuffle::ShuffleStore`], [`shuffle::MemoryEngine`]),
//!   on disk only past `shuffle_memory`.
//! - `status.rs`: the worker's Flight service — Ballista's, plus the action through which the
//!   coordinator reads the worker's memory per query. [`run_worker_with`] takes the connector kinds
//!   to know (tests add their own); [`main_with`] is the whole `braid-executor` program.

mod settings;
pub mod shuffle;
mod status;

use std::sync::Arc;

use ballista_core::RuntimeProducer;
use ballista_core::config::TaskSchedulingPolicy;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use braid_catalogs::{ConnectorRegistry, Factories, Role, bootstrap};
use braid_optimizer_rules::memory::{PoolPolicy, QueryMemoryLimit, WorkerMemory, parse_size};
use braid_optimizer_rules::properties::QueryProperties;
use datafusion::execution::disk_manager::{DiskManager, DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::prelude::SessionConfig;
use std::path::Path;

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
    let grace_period = std::time::Duration::from_secs(settings.shutdown_grace_period_seconds);
    let mut attempt = 1;
    loop {
        match drain_bounded(start_executor_process(config.clone()), grace_period).await {
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

/// Runs the worker of a cluster embedded in an interactive program (the `braid` REPL), where
/// Ctrl-C only cancels the running query: when the worker stops, it starts again on fresh
/// loopback ports and registers anew. Returns only when it cannot run.
///
/// Workaround for Ballista 53: its executor process always stops on Ctrl-C (`signal::ctrl_c()`
/// in `executor_process.rs`, no setting turns it off), and the flag it sets on the way out,
/// `executor_server::TERMINATING`, is a process-wide static that is never cleared, so a worker
/// started again in the same process would report itself terminating in every heartbeat and
/// never get a task. Without it the REPL test
/// `the_embedded_repl_keeps_its_worker_after_ctrl_c_and_pages_long_tables` hangs.
pub async fn run_embedded_worker(mut settings: WorkerSettings) -> Result<(), WorkerError> {
    loop {
        run_worker(settings.clone()).await?;
        ballista_executor::executor_server::TERMINATING
            .store(false, std::sync::atomic::Ordering::Release);
        // The stopped worker's ports may not be released yet.
        (settings.port, settings.grpc_port) = (free_port()?, free_port()?);
        tracing::info!(
            flight_port = settings.port,
            "the embedded worker stopped (Ctrl-C): starting it again"
        );
    }
}

/// A free loopback port: bound, then released for Ballista, which binds its ports itself.
pub fn free_port() -> Result<u16, WorkerError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|e| WorkerError::Settings(format!("no free loopback port: {e}")))
}

/// Runs Ballista's executor process, which on SIGTERM or Ctrl-C marks the worker terminating,
/// tells the coordinator (which hands its tasks to other workers at once) and waits for its
/// running tasks to drain before it returns.
///
/// Workaround for Ballista 53: that wait (`TasksDrainedFuture`, `ballista-executor`'s
/// executor.rs) returns `Pending` without registering a waker, so once a task was running
/// at the signal nothing polls it again and the process never exits. After the signal this
/// polls the process every 100 ms, so it returns when the tasks have drained, and gives up
/// waiting after `grace_period`. `worker_failure::a_terminated_worker_hands_back_its_tasks_and_exits`
/// fails without it.
async fn drain_bounded<F>(process: F, grace_period: std::time::Duration) -> F::Output
where
    F: std::future::Future<Output = ballista_core::error::Result<()>>,
{
    use tokio::signal::unix::{SignalKind, signal};
    let mut process = std::pin::pin!(process);
    // Ballista listens for the same signals; these listeners only tell when to start polling.
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return process.await;
    };
    tokio::select! {
        outcome = &mut process => return outcome,
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!(
        "stopping: the coordinator hands this worker's tasks to the others; running ones get {} s",
        grace_period.as_secs()
    );
    let deadline = tokio::time::Instant::now() + grace_period;
    loop {
        match tokio::time::timeout(std::time::Duration::from_millis(100), &mut process).await {
            Ok(outcome) => return outcome,
            Err(_) if tokio::time::Instant::now() < deadline => {}
            Err(_) => {
                tracing::warn!(
                    "tasks still running {} s after the stop signal: exiting without them",
                    grace_period.as_secs()
                );
                return Ok(());
            }
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

    let memory = Arc::new(worker_memory(settings)?);
    let work_dir = match &settings.work_dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("braid-worker-{}", settings.port)),
    };
    let spill_dir = settings
        .spill_dir
        .clone()
        .unwrap_or_else(|| work_dir.clone());
    for dir in [&work_dir, &spill_dir] {
        std::fs::create_dir_all(dir).map_err(|source| WorkerError::WorkDir {
            path: dir.display().to_string(),
            source,
        })?;
    }
    let max_spill = parse_size(&settings.max_spill_per_node)
        .map_err(|e| WorkerError::Settings(format!("max_spill_per_node: {e}")))?;
    let runtimes = QueryRuntimes::new(memory.clone(), &spill_dir, max_spill)?;
    let runtime_producer: RuntimeProducer = Arc::new(move |config| runtimes.for_task(config));
    let shuffle_budget = match &settings.shuffle_memory {
        Some(text) => {
            parse_size(text).map_err(|e| WorkerError::Settings(format!("shuffle_memory: {e}")))?
        }
        None => memory.limit() / 4,
    };
    let store = Arc::new(shuffle::ShuffleStore::new(settings.port, shuffle_budget));
    let engine = shuffle::MemoryEngine::new(store.clone(), memory.clone());
    let defaults = ExecutorProcessConfig::default();
    let flight = status::flight_server(
        memory,
        store,
        defaults.grpc_max_encoding_message_size as usize,
    );

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
        override_arrow_flight_service: Some(Arc::new(flight)),
        override_execution_engine: Some(Arc::new(engine)),
        override_config_producer: Some(Arc::new(bootstrap::session_config)),
        override_physical_codec: Some(Arc::new(registry.codec())),
        ..defaults
    })
}

/// The worker's memory pool from its settings.
fn worker_memory(settings: &WorkerSettings) -> Result<WorkerMemory, WorkerError> {
    let size = |name: &str, text: &str| {
        parse_size(text).map_err(|e| WorkerError::Settings(format!("{name}: {e}")))
    };
    let limit = match &settings.memory_limit {
        Some(text) => size("memory_limit", text)?,
        None => WorkerMemory::default_limit(),
    };
    let policy = PoolPolicy::parse(&settings.memory_pool)
        .map_err(|e| WorkerError::Settings(format!("memory_pool: {e}")))?;
    let reserved = match &settings.reserved_pool_size {
        Some(text) => size("reserved_pool_size", text)?,
        None => limit / 4,
    };
    let host = settings
        .external_host
        .as_deref()
        .unwrap_or(&settings.bind_host);
    let node = format!("{host}:{}", settings.port);
    Ok(WorkerMemory::new(node, limit, policy, reserved))
}

/// The runtimes of the worker's tasks: each task runs in its query's memory pool, spills into
/// the worker's spill directory (up to `max_spill_per_node`), or not at all when its session
/// says `spill_enabled = false`.
struct QueryRuntimes {
    memory: Arc<WorkerMemory>,
    spilling: Arc<RuntimeEnv>,
    not_spilling: Arc<RuntimeEnv>,
}

impl QueryRuntimes {
    fn new(
        memory: Arc<WorkerMemory>,
        spill_dir: &Path,
        max_spill: usize,
    ) -> Result<Self, WorkerError> {
        let build = |disk: DiskManagerBuilder| {
            RuntimeEnvBuilder::new()
                .with_disk_manager_builder(disk)
                .build_arc()
                .map_err(|e| WorkerError::Settings(e.to_string()))
        };
        Ok(Self {
            memory,
            spilling: build(
                DiskManager::builder()
                    .with_mode(DiskManagerMode::Directories(vec![spill_dir.to_path_buf()]))
                    .with_max_temp_directory_size(max_spill as u64),
            )?,
            not_spilling: build(DiskManager::builder().with_mode(DiskManagerMode::Disabled))?,
        })
    }

    /// The runtime of a task whose session config is `config`. Ballista asks for one per task
    /// (twice in push mode): the query's pool is found again, not made anew.
    fn for_task(&self, config: &SessionConfig) -> datafusion::error::Result<Arc<RuntimeEnv>> {
        let properties = QueryProperties::of(config.options());
        let limit = properties
            .query_max_memory_per_node
            .0
            .map(|bytes| QueryMemoryLimit {
                bytes,
                name: match properties.memory_limit_source.as_str() {
                    "" => "query_max_memory_per_node".to_string(),
                    source => source.to_string(),
                },
            });
        tracing::debug!(query = %properties.query_id, ?limit, "task runtime");
        let pool = self.memory.query_pool(&properties.query_id, limit);
        let base = match properties.spill_enabled {
            true => &self.spilling,
            false => &self.not_spilling,
        };
        RuntimeEnvBuilder::from_runtime_env(base)
            .with_memory_pool(pool.task_pool())
            .build_arc()
    }
}
