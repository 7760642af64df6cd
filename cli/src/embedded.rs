//! The embedded cluster: a coordinator and one worker in this process, on loopback ports,
//! used through Flight SQL exactly like a remote cluster.

use std::path::PathBuf;
use std::time::Duration;

use braid_executor::{WorkerFlags, WorkerSettings, free_port, run_embedded_worker};
use braid_scheduler::{Coordinator, CoordinatorSettings};

use crate::client::{BraidClient, ClientError};

/// A running embedded cluster; dropping it leaves the tasks to end with the process.
pub struct EmbeddedCluster {
    pub flight_sql_addr: String,
    _work_dir: tempfile::TempDir,
    _spill_dir: tempfile::TempDir,
}

/// The RAM-backed directory the embedded worker's shuffle files go to where the system has one:
/// shuffles then never touch a disk. Spills go to the temporary directory: they are what does
/// not fit in memory.
const SHUFFLE_ROOT: &str = "/dev/shm";

impl EmbeddedCluster {
    /// Starts a coordinator and one worker with the catalogs of `catalog_dir`.
    pub async fn start(catalog_dir: Option<PathBuf>) -> Result<Self, String> {
        let coordinator = Coordinator::start(CoordinatorSettings {
            port: 0,
            flight_sql_port: 0,
            http_port: 0,
            internal_port: 0,
            catalog_dir: catalog_dir.clone(),
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
        let mut work_dir = tempfile::Builder::new();
        work_dir.prefix("braid-embedded-");
        let work_dir = work_dir
            .tempdir_in(SHUFFLE_ROOT)
            .or_else(|_| work_dir.tempdir())
            .map_err(|e| format!("cannot create a work directory: {e}"))?;
        let spill_dir = tempfile::Builder::new()
            .prefix("braid-embedded-spill-")
            .tempdir()
            .map_err(|e| format!("cannot create a spill directory: {e}"))?;
        // `[executor]` of `./braid.toml` and `BRAID_EXECUTOR_*` apply (memory, shuffles), as
        // to a worker of its own; where it listens and keeps its files are the cluster's.
        let configured = WorkerSettings::resolve(&WorkerFlags::default())
            .map_err(|e| format!("embedded worker: {e}"))?;
        let worker = WorkerSettings {
            scheduler: coordinator.scheduler_addr.to_string(),
            port: free_port().map_err(|e| e.to_string())?,
            grpc_port: free_port().map_err(|e| e.to_string())?,
            work_dir: Some(work_dir.path().to_path_buf()),
            spill_dir: Some(spill_dir.path().to_path_buf()),
            catalog_dir,
            // After Ctrl-C the worker waits this long at most for the cancelled query's tasks
            // before it starts again.
            shutdown_grace_period_seconds: 5,
            ..configured
        };
        // Ballista's worker listens for SIGTERM, so the signal no longer ends the process by
        // itself: end it here, as it ends `braid --connect`.
        if let Ok(mut terminate) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::spawn(async move {
                terminate.recv().await;
                std::process::exit(143);
            });
        }
        tokio::spawn(async move {
            if let Err(e) = run_embedded_worker(worker).await {
                eprintln!("braid: embedded worker stopped: {e}");
            }
        });
        let flight_sql_addr = coordinator.flight_sql_addr.to_string();
        tokio::spawn(async move {
            if let Err(e) = coordinator.wait().await {
                eprintln!("braid: embedded coordinator stopped: {e}");
            }
        });
        let cluster = Self {
            flight_sql_addr,
            _work_dir: work_dir,
            _spill_dir: spill_dir,
        };
        let mut client = cluster.client().await.map_err(|e| e.to_string())?;
        client
            .wait_for_workers(1, Duration::from_secs(30))
            .await
            .map_err(|e| e.to_string())?;
        Ok(cluster)
    }

    pub async fn client(&self) -> Result<BraidClient, ClientError> {
        BraidClient::connect(&self.flight_sql_addr).await
    }
}
