//! Coordinator settings. Precedence: command-line flags, then `BRAID_SCHEDULER_*` environment
//! variables, then the `[scheduler]` table of `braid.toml`, then the defaults below.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::CoordinatorError;

/// Everything a coordinator can be configured with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoordinatorSettings {
    /// Address to listen on.
    pub bind_host: String,
    /// Host name workers and clients use to reach the coordinator.
    pub external_host: String,
    /// Ballista scheduler port (workers register here; REST status under /api).
    pub port: u16,
    /// Arrow Flight SQL port (clients connect here).
    pub flight_sql_port: u16,
    /// The catalog files.
    pub catalog_dir: Option<PathBuf>,
    /// Seconds without a heartbeat after which a worker is declared dead and its tasks rerun.
    pub worker_timeout_seconds: u64,
}

impl Default for CoordinatorSettings {
    fn default() -> Self {
        Self {
            bind_host: "127.0.0.1".into(),
            external_host: "127.0.0.1".into(),
            port: 50050,
            flight_sql_port: 50060,
            catalog_dir: Path::new("etc/catalog")
                .is_dir()
                .then(|| PathBuf::from("etc/catalog")),
            worker_timeout_seconds: 20,
        }
    }
}

/// Command-line flags of `braid-scheduler`.
#[derive(Debug, Clone, Default, Serialize, clap::Args)]
pub struct CoordinatorFlags {
    /// Settings file (default: ./braid.toml if present); its [scheduler] table applies.
    #[arg(long)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind_host: Option<String>,
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_host: Option<String>,
    /// Scheduler port for workers.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Flight SQL port for clients.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flight_sql_port: Option<u16>,
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalog_dir: Option<PathBuf>,
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker_timeout_seconds: Option<u64>,
}

impl CoordinatorSettings {
    /// Defaults, overridden by `braid.toml`'s `[scheduler]`, `BRAID_SCHEDULER_*`, then `flags`.
    pub fn resolve(flags: &CoordinatorFlags) -> Result<Self, CoordinatorError> {
        braid_catalogs::bootstrap::layered_settings(
            CoordinatorSettings::default(),
            flags,
            flags.config.as_deref(),
            "scheduler",
        )
        .map_err(CoordinatorError::Settings)
    }
}
