//! Worker settings. Precedence: command-line flags, then `BRAID_EXECUTOR_*` environment
//! variables, then the `[executor]` table of `braid.toml`, then the defaults below.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::WorkerError;

/// Everything a worker can be configured with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSettings {
    /// The coordinator's scheduler address, `host:port`.
    pub scheduler: String,
    /// Address to listen on.
    pub bind_host: String,
    /// Host name the coordinator and other workers use to reach this worker.
    pub external_host: Option<String>,
    /// Arrow Flight port (shuffle data).
    pub port: u16,
    /// gRPC port (task launches).
    pub grpc_port: u16,
    /// Task slots; 0 means one per core.
    pub concurrent_tasks: usize,
    /// Where shuffle files go (and spills, unless `spill_dir` says otherwise).
    pub work_dir: Option<PathBuf>,
    /// Where spills go; default the work directory.
    pub spill_dir: Option<PathBuf>,
    /// The worker's copy of the catalog files.
    pub catalog_dir: Option<PathBuf>,
    /// The worker's memory pool, e.g. `8GB`; default 60% of the machine's memory.
    #[serde(default, deserialize_with = "size_text")]
    pub memory_limit: Option<String>,
    /// How the pool is shared: `fair`, `greedy` or `reserved` (Trino's general and reserved
    /// pools).
    pub memory_pool: String,
    /// Under `reserved`: the reserved slice, e.g. `1GB`; default a quarter of the pool.
    #[serde(default, deserialize_with = "size_text")]
    pub reserved_pool_size: Option<String>,
    /// Trino's `max-spill-per-node`: the most that spills may hold on the worker's disk.
    pub max_spill_per_node: String,
    /// The most shuffle output the worker keeps in memory (drawn from its pool) before
    /// writing shuffles to disk, e.g. `2GB`; `0` writes every shuffle to disk. Default a
    /// quarter of the pool.
    #[serde(default, deserialize_with = "size_text")]
    pub shuffle_memory: Option<String>,
    /// Seconds between heartbeats to the coordinator.
    pub heartbeat_interval_seconds: u64,
    /// After SIGTERM, how long the worker's running tasks may take to end before it exits
    /// (the coordinator has already handed them to other workers).
    pub shutdown_grace_period_seconds: u64,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            scheduler: "127.0.0.1:50050".into(),
            bind_host: "127.0.0.1".into(),
            external_host: None,
            port: 50051,
            grpc_port: 50052,
            concurrent_tasks: 0,
            work_dir: None,
            spill_dir: None,
            catalog_dir: Path::new("etc/catalog")
                .is_dir()
                .then(|| PathBuf::from("etc/catalog")),
            memory_limit: None,
            memory_pool: "fair".into(),
            reserved_pool_size: None,
            max_spill_per_node: "100GB".into(),
            shuffle_memory: None,
            heartbeat_interval_seconds: 5,
            shutdown_grace_period_seconds: 30,
        }
    }
}

/// A size setting, written as text (`"2GB"`) or as a number of bytes (`0`, which environment
/// variables always are).
fn size_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Text(String),
        Bytes(u64),
    }
    Ok(Option::<Size>::deserialize(d)?.map(|size| match size {
        Size::Text(text) => text,
        Size::Bytes(bytes) => bytes.to_string(),
    }))
}

/// Command-line flags of `braid-executor`.
#[derive(Debug, Clone, Default, Serialize, clap::Args)]
pub struct WorkerFlags {
    /// Settings file (default: ./braid.toml if present); its [executor] table applies.
    #[arg(long)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Coordinator scheduler address, host:port.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<String>,
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind_host: Option<String>,
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_host: Option<String>,
    /// Arrow Flight port.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// gRPC port.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc_port: Option<u16>,
    /// Task slots (0 = one per core).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrent_tasks: Option<usize>,
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub work_dir: Option<PathBuf>,
    /// Where spills go (default: the work directory).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spill_dir: Option<PathBuf>,
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalog_dir: Option<PathBuf>,
    /// Memory pool size, e.g. 8GB.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<String>,
    /// Memory pool policy: fair, greedy or reserved.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_pool: Option<String>,
    /// Reserved slice of the pool under the reserved policy, e.g. 1GB.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reserved_pool_size: Option<String>,
    /// The most spills may hold on disk, e.g. 100GB.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_spill_per_node: Option<String>,
    /// The most shuffle output kept in memory, e.g. 2GB (0 = always on disk).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shuffle_memory: Option<String>,
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat_interval_seconds: Option<u64>,
    /// Seconds running tasks may take to end after SIGTERM.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shutdown_grace_period_seconds: Option<u64>,
}

impl WorkerSettings {
    /// Defaults, overridden by `braid.toml`'s `[executor]`, `BRAID_EXECUTOR_*`, then `flags`.
    pub fn resolve(flags: &WorkerFlags) -> Result<Self, WorkerError> {
        braid_catalogs::bootstrap::layered_settings(
            WorkerSettings::default(),
            flags,
            flags.config.as_deref(),
            "executor",
        )
        .map_err(WorkerError::Settings)
    }

    /// The scheduler address split into host and port.
    pub fn scheduler_host_port(&self) -> Result<(String, u16), WorkerError> {
        let bad = || {
            WorkerError::Settings(format!(
                "scheduler address '{}' is not host:port",
                self.scheduler
            ))
        };
        let (host, port) = self.scheduler.rsplit_once(':').ok_or_else(bad)?;
        Ok((host.to_string(), port.parse().map_err(|_| bad())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_may_be_written_as_numbers_of_bytes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("braid.toml");
        std::fs::write(
            &file,
            "[executor]\nshuffle_memory = 0\nmemory_limit = \"512MB\"\n",
        )
        .expect("write braid.toml");
        let flags = WorkerFlags {
            config: Some(file),
            ..WorkerFlags::default()
        };
        let settings = WorkerSettings::resolve(&flags).expect("settings");
        assert_eq!(settings.shuffle_memory.as_deref(), Some("0"));
        assert_eq!(settings.memory_limit.as_deref(), Some("512MB"));
        assert_eq!(settings.reserved_pool_size, None);
    }
}
