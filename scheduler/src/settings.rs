//! Coordinator settings. Precedence: command-line flags, then `BRAID_SCHEDULER_*` environment
//! variables, then the `[scheduler]` table of `braid.toml`, then the defaults below.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use braid_optimizer_rules::memory::parse_size;
use braid_optimizer_rules::properties::parse_duration;

use crate::CoordinatorError;
use crate::queries::QueryLimits;

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
    /// Trino's HTTP client protocol (Trino's clients connect here; 8080 as Trino's).
    pub http_port: u16,
    /// The catalog files.
    pub catalog_dir: Option<PathBuf>,
    /// Seconds without a heartbeat after which a worker is declared dead and its tasks rerun.
    pub worker_timeout_seconds: u64,
    /// After SIGTERM, how long running queries may take to end before they are failed with
    /// `SERVER_SHUTTING_DOWN` (Trino's `shutdown.grace-period`, 2 minutes).
    pub shutdown_grace_period_seconds: u64,
    /// How long a statement of Trino's protocol may wait for its client to fetch a page before
    /// it is cancelled as `ABANDONED_QUERY` (Trino's `query.client.timeout`, 5 minutes).
    pub query_client_timeout_seconds: u64,
    /// Cluster-internal Flight port: workers fetch memory-table rows here. Like the scheduler
    /// port it carries no client authentication and belongs on the cluster's private network.
    pub internal_port: u16,
    /// How clients authenticate on the Flight SQL and Trino HTTP ports (on the HTTP port,
    /// passwords need TLS).
    pub auth: AuthMode,
    /// Users and bcrypt password hashes, `user:hash` per line (Trino's password-file format);
    /// required with `auth = "password"`.
    pub password_file: Option<PathBuf>,
    /// A bearer token unused for this long expires; the client must log in again.
    pub token_ttl_seconds: u64,
    /// PEM certificate chain: with `tls_key_file`, the Flight SQL and Trino HTTP ports speak
    /// TLS only.
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// Trino's query limits, written as in Trino: `query.max-run-time = "1h"`.
    pub query: QuerySettings,
    /// Trino's resource-groups JSON file; without it every query goes to the group `global`.
    pub resource_groups_file: Option<PathBuf>,
    /// Users who may end anyone's query with `kill_query` (others only their own).
    pub admin_users: Vec<String>,
}

/// The `query.*` settings: durations in Trino's notation (`30s`, `10m`, `1h`); unset means no
/// limit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuerySettings {
    /// The longest a query may take, from its submission (queued time included).
    #[serde(rename = "max-run-time", skip_serializing_if = "Option::is_none")]
    pub max_run_time: Option<String>,
    /// The longest a query may run, from the moment it leaves the queue.
    #[serde(rename = "max-execution-time", skip_serializing_if = "Option::is_none")]
    pub max_execution_time: Option<String>,
    /// The longest a query may wait to run.
    #[serde(rename = "max-queued-time", skip_serializing_if = "Option::is_none")]
    pub max_queued_time: Option<String>,
    /// The most memory a query may hold on one worker (its workers enforce it).
    #[serde(
        rename = "max-memory-per-node",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_memory_per_node: Option<String>,
    /// The most memory a query may hold on all workers together.
    #[serde(rename = "max-memory", skip_serializing_if = "Option::is_none")]
    pub max_memory: Option<String>,
}

impl QuerySettings {
    /// The limits, each checked: an error names the key and the value.
    pub fn limits(&self) -> Result<QueryLimits, CoordinatorError> {
        let parse = |value: &Option<String>, key: &str| {
            value
                .as_deref()
                .map(|text| {
                    parse_duration(text)
                        .map_err(|e| CoordinatorError::Settings(format!("query.{key}: {e}")))
                })
                .transpose()
        };
        let size = |value: &Option<String>, key: &str| {
            value
                .as_deref()
                .map(|text| {
                    parse_size(text)
                        .map_err(|e| CoordinatorError::Settings(format!("query.{key}: {e}")))
                })
                .transpose()
        };
        Ok(QueryLimits {
            max_run_time: parse(&self.max_run_time, "max-run-time")?,
            max_execution_time: parse(&self.max_execution_time, "max-execution-time")?,
            max_queued_time: parse(&self.max_queued_time, "max-queued-time")?,
            max_memory_per_node: size(&self.max_memory_per_node, "max-memory-per-node")?,
            max_memory: size(&self.max_memory, "max-memory")?,
        })
    }
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
            http_port: 8080,
            catalog_dir: Path::new("etc/catalog")
                .is_dir()
                .then(|| PathBuf::from("etc/catalog")),
            worker_timeout_seconds: 20,
            shutdown_grace_period_seconds: 120,
            query_client_timeout_seconds: 300,
            internal_port: 50070,
            auth: AuthMode::None,
            password_file: None,
            token_ttl_seconds: 3600,
            tls_cert_file: None,
            tls_key_file: None,
            query: QuerySettings::default(),
            resource_groups_file: None,
            admin_users: vec![],
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
    /// Trino HTTP protocol port for Trino's clients.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_port: Option<u16>,
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalog_dir: Option<PathBuf>,
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker_timeout_seconds: Option<u64>,
    /// Seconds running queries may take to end after SIGTERM.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shutdown_grace_period_seconds: Option<u64>,
    /// Seconds a Trino-protocol statement may go unfetched before it is abandoned.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_client_timeout_seconds: Option<u64>,
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
    /// Trino's resource-groups JSON file.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_groups_file: Option<PathBuf>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn query_limits_are_written_as_in_trino() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("braid.toml");
        std::fs::write(
            &file,
            "[scheduler]\nquery.max-run-time = \"90s\"\nquery.max-queued-time = \"5m\"\n\
             admin_users = [\"root\"]\n",
        )
        .expect("write");
        let flags = CoordinatorFlags {
            config: Some(file.clone()),
            ..Default::default()
        };
        let settings = CoordinatorSettings::resolve(&flags).expect("valid settings");
        let limits = settings.query.limits().expect("valid limits");
        assert_eq!(limits.max_run_time, Some(Duration::from_secs(90)));
        assert_eq!(limits.max_queued_time, Some(Duration::from_secs(300)));
        assert_eq!(limits.max_execution_time, None);
        assert_eq!(settings.admin_users, ["root"]);

        std::fs::write(&file, "[scheduler]\nquery.max-run-time = \"soon\"\n").expect("write");
        let settings = CoordinatorSettings::resolve(&flags).expect("a string");
        let err = settings
            .query
            .limits()
            .expect_err("not a duration")
            .to_string();
        assert!(
            err.contains("query.max-run-time") && err.contains("soon"),
            "{err}"
        );

        std::fs::write(&file, "[scheduler]\nquery.max-memry = \"1GB\"\n").expect("write");
        let err = CoordinatorSettings::resolve(&flags).expect_err("a typo");
        assert!(err.to_string().contains("max-memry"), "{err}");
    }
}
