//! [`PostgresConfig`]: the options of a `postgres` catalog file.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Options of a `postgres` catalog file.
///
/// ```toml
/// connector = "postgres"
/// host = "db.internal"
/// port = 5432
/// database = "sales"
/// user = "braid"
/// password = "${ENV:SALES_PG_PASSWORD}"
/// schemas = ["public"]            # default: every schema but the system ones
/// splits = 8                      # splits for a large table; default: the cluster's task slots
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    pub database: String,
    pub user: String,
    /// Never printed; use `${ENV:NAME}` to keep it out of the file.
    #[serde(default)]
    pub password: Option<SecretString>,
    /// TLS to PostgreSQL, as libpq's `sslmode`: `disable`, `prefer` (TLS when the server
    /// offers it), `require` (TLS, certificate not checked), `verify-full` (TLS, certificate
    /// checked against `sslrootcert` or the system's CAs, host name included).
    #[serde(default)]
    pub sslmode: SslMode,
    /// PEM CA certificates for `sslmode = "verify-full"`.
    #[serde(default)]
    pub sslrootcert: Option<std::path::PathBuf>,
    /// Connections per process (coordinator and each worker).
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// How long a read waits for a free connection when all `pool_size` are busy.
    #[serde(default = "default_pool_wait_timeout")]
    pub pool_wait_timeout_seconds: u64,
    /// Schemas to expose; default: all but `pg_catalog`, `information_schema`, `pg_toast*`.
    #[serde(default)]
    pub schemas: Option<Vec<String>>,
    /// Schemas to hide.
    #[serde(default)]
    pub exclude_schemas: Vec<String>,
    /// Splits per large table; default: the session's target partitions (the cluster's slots).
    #[serde(default)]
    pub splits: Option<usize>,
    /// A table with fewer estimated rows per split than this is read with fewer splits.
    #[serde(default = "default_min_rows_per_split")]
    pub min_rows_per_split: u64,
    /// How long table lists and column types are cached.
    #[serde(default = "default_metadata_cache_ttl")]
    pub metadata_cache_ttl_seconds: u64,
    /// PostgreSQL's `statement_timeout` for Braid's queries; 0 = none.
    #[serde(default)]
    pub statement_timeout_seconds: u64,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_seconds: u64,
    /// Columns of types Braid cannot map: left out (`ignore`, with a warning) or read as text.
    #[serde(default)]
    pub unsupported_types: UnsupportedTypes,
    /// Scale of unconstrained `numeric` columns, read as `decimal(38, scale)`: 0 to 38.
    #[serde(default = "default_numeric_scale", deserialize_with = "numeric_scale")]
    pub unconstrained_numeric_scale: i8,
    /// Push filters and limits into PostgreSQL; `false` reads whole tables (for comparisons).
    #[serde(default = "yes")]
    pub pushdown: bool,
    /// Push `=`, `<>` and `IN` on text columns even under a nondeterministic collation, where
    /// PostgreSQL's answer may differ from Braid's (Trino's
    /// `enable-predicate-pushdown-with-varchar-equality`).
    #[serde(default)]
    pub enable_varchar_equality_pushdown: bool,
    /// Push ranges, sorts and `min`/`max` on text columns even when their collation is not
    /// `C`, where PostgreSQL orders text differently from Braid (Trino's
    /// `enable-predicate-pushdown-with-varchar-inequality`).
    #[serde(default)]
    pub enable_varchar_inequality_pushdown: bool,
}

/// TLS to PostgreSQL (libpq's `sslmode` values).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    Disable,
    #[default]
    Prefer,
    Require,
    VerifyFull,
}

/// What happens to a column of an unsupported type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UnsupportedTypes {
    #[default]
    Ignore,
    Text,
}

fn default_port() -> u16 {
    5432
}
fn default_pool_size() -> usize {
    8
}
fn default_pool_wait_timeout() -> u64 {
    60
}
fn default_min_rows_per_split() -> u64 {
    100_000
}
fn default_metadata_cache_ttl() -> u64 {
    60
}
fn default_connect_timeout() -> u64 {
    10
}
fn default_numeric_scale() -> i8 {
    10
}
fn numeric_scale<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<i8, D::Error> {
    let scale = i64::deserialize(deserializer)?;
    match i8::try_from(scale) {
        Ok(scale @ 0..=38) => Ok(scale),
        _ => Err(serde::de::Error::custom(format!(
            "{scale} is not a decimal scale Braid can read: use 0 to 38"
        ))),
    }
}
fn yes() -> bool {
    true
}

impl PartialEq for PostgresConfig {
    fn eq(&self, other: &Self) -> bool {
        let password = |c: &Self| c.password.as_ref().map(|p| p.expose_secret().to_string());
        self.host == other.host
            && self.port == other.port
            && self.database == other.database
            && self.user == other.user
            && password(self) == password(other)
            && self.sslmode == other.sslmode
            && self.sslrootcert == other.sslrootcert
            && self.pool_size == other.pool_size
            && self.pool_wait_timeout_seconds == other.pool_wait_timeout_seconds
            && self.schemas == other.schemas
            && self.exclude_schemas == other.exclude_schemas
            && self.splits == other.splits
            && self.min_rows_per_split == other.min_rows_per_split
            && self.metadata_cache_ttl_seconds == other.metadata_cache_ttl_seconds
            && self.statement_timeout_seconds == other.statement_timeout_seconds
            && self.connect_timeout_seconds == other.connect_timeout_seconds
            && self.unsupported_types == other.unsupported_types
            && self.unconstrained_numeric_scale == other.unconstrained_numeric_scale
            && self.pushdown == other.pushdown
            && self.enable_varchar_equality_pushdown == other.enable_varchar_equality_pushdown
            && self.enable_varchar_inequality_pushdown == other.enable_varchar_inequality_pushdown
    }
}

impl PostgresConfig {
    /// `host:port`, for error messages.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Whether `schema` is exposed.
    pub fn shows_schema(&self, schema: &str) -> bool {
        let system = schema == "pg_catalog"
            || schema == "information_schema"
            || schema.starts_with("pg_toast")
            || schema.starts_with("pg_temp");
        let included = match &self.schemas {
            Some(list) => list.iter().any(|s| s == schema),
            None => !system,
        };
        included && !self.exclude_schemas.iter().any(|s| s == schema)
    }
}
