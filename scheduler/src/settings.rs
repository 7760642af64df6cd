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
    /// Cluster-internal Flight port: workers fetch memory-table rows here. Like the scheduler
    /// port it carries no client authentication and belongs on the cluster's private network.
    pub internal_port: u16,
    /// How clients authenticate on the Flight SQL port.
    pub auth: AuthMode,
    /// Users and bcrypt password hashes, `user:hash` per line (Trino's password-file format);
    /// required with `auth = "password"`.
    pub password_file: Option<PathBuf>,
    /// A bearer token unused for this long expires; the client must log in again.
    pub token_ttl_seconds: u64,
    /// PEM certificate chain: with `tls_key_file`, the Flight SQL port speaks TLS only.
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
}

/// How clients authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Anyone may connect; a Basic handshake still opens a session under the given user name.
    #[default]
    None,
    /// Basic credentials checked against `password_file`, then a bearer token.
    Password,
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
            internal_port: 50070,
            auth: AuthMode::None,
            password_file: None,
            token_ttl_seconds: 3600,
            tls_cert_file: None,
            tls_key_file: None,
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
    /// Cluster-internal Flight port for workers.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internal_port: Option<u16>,
    /// Client authentication on the Flight SQL port.
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthMode>,
    /// Password file (`user:bcrypt-hash` per line) for `--auth password`.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_ttl_seconds: Option<u64>,
    /// PEM certificate chain for TLS on the Flight SQL port.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key for TLS on the Flight SQL port.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key_file: Option<PathBuf>,
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
