//! # braid-connector-postgres
//!
//! PostgreSQL tables as a Braid catalog (`connector = "postgres"`), read in parallel:
//!
//! - [`PostgresConfig`] (`config.rs`): the catalog file's options; the password stays a
//!   `SecretString`.
//! - [`Pool`] (`pool.rs`): at most `pool_size` connections per process, opened on demand,
//!   over TLS as `sslmode` says (`tls.rs`).
//! - [`Metadata`] (`metadata.rs`): schemas, tables, column types (mapped in `types.rs`), row
//!   estimates and integer primary keys, cached for `metadata_cache_ttl_seconds`.
//! - [`PostgresCatalog`] → [`PostgresSchema`] → [`PostgresTable`] (`provider.rs`): `scan` plans
//!   the splits (`split.rs`) and one SELECT per split with the projection, the filters that
//!   render in PostgreSQL's SQL (`pushdown.rs`, an allow-list) and the limit.
//! - [`PostgresScanExec`] (`exec.rs`): partition *i* runs split *i* with binary `COPY` on its
//!   own connection; [`PostgresScanCodec`] (`codec.rs`) ships it without credentials.

mod codec;
mod config;
mod exec;
mod metadata;
mod pool;
mod provider;
pub mod pushdown;
mod split;
mod tls;
mod types;

use std::collections::BTreeMap;
use std::sync::Arc;

use braid_connector_spi::{Capabilities, Connector, ScanCodec};
use datafusion::catalog::CatalogProvider;

pub use codec::PostgresScanCodec;
pub use config::{PostgresConfig, SslMode, UnsupportedTypes};
pub use exec::PostgresScanExec;
pub use metadata::Metadata;
pub use pool::Pool;
pub use provider::{PostgresCatalog, PostgresQueryTable, PostgresSchema, PostgresTable};
pub use pushdown::PostgresSubtreePushdown;
pub use types::PgKind;

/// The connector kind, as written in catalog files.
pub const KIND: &str = "postgres";

/// A `postgres` catalog.
#[derive(Debug)]
pub struct PostgresConnector {
    name: String,
    pool: Arc<Pool>,
    catalog: Arc<PostgresCatalog>,
}

impl PostgresConnector {
    /// A catalog named `name`; connects only when first used.
    pub fn new(name: impl Into<String>, config: PostgresConfig) -> Self {
        let name = name.into();
        let pool = Arc::new(Pool::new(name.clone(), Arc::new(config)));
        let metadata = Arc::new(Metadata::new(pool.clone()));
        let catalog = Arc::new(PostgresCatalog::new(pool.clone(), metadata));
        Self {
            name,
            pool,
            catalog,
        }
    }

    /// The catalog's connections, for the process-wide scan codec.
    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }
}

impl Connector for PostgresConnector {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn kind(&self) -> &'static str {
        KIND
    }

    fn catalog_name(&self) -> &str {
        &self.name
    }

    fn catalog_provider(&self) -> Arc<dyn CatalogProvider> {
        self.catalog.clone()
    }

    fn scan_codec(&self) -> Arc<dyn ScanCodec> {
        Arc::new(PostgresScanCodec::new(BTreeMap::from([(
            self.name.clone(),
            self.pool.clone(),
        )])))
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            projection_pushdown: true,
            filter_pushdown: true,
            limit_pushdown: true,
            parallel_splits: true,
            writes: false,
        }
    }
}
