//! # braid-connector-postgres
//!
//! PostgreSQL tables as a Braid catalog (`connector = "postgres"`), read in parallel:
//!
//! - [`PostgresConfig`] (`config.rs`): the catalog file's options; the password stays a
//!   `SecretString`.
//! - [`Pool`] (`pool.rs`): at most `pool_size` connections per process, opened on demand,
//!   over TLS as `sslmode` says (`tls.rs`).
//! - [`Metadata`] (`metadata.rs`): schemas, tables, column types (mapped in `types.rs`), row
//!   estimates, each column's `pg_stats` ([`ColumnEstimate`]: distinct values and NULL
//!   fraction, for join estimates) and integer primary keys, cached for
//!   `metadata_cache_ttl_seconds`. DataFusion's
//!   synchronous listings read that cache; `refresh_listings` fills it before a statement
//!   lists, so no catalog call waits on PostgreSQL.
//! - [`PostgresCatalog`] → [`PostgresSchema`] → [`PostgresTable`] (`provider.rs`): `scan` plans
//!   the splits (`split.rs`) and one SELECT per split with the projection, the filters that
//!   render in PostgreSQL's SQL (`pushdown.rs`, an allow-list) and the limit.
//! - [`PostgresSubtree`] (`pushdown/subtree.rs`): runs single-catalog joins, aggregates and
//!   top-N in PostgreSQL once PostgreSQL has accepted the SQL; the check is asked for by the
//!   rule and answered by `complete_rule_checks` between two optimizations.
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

use std::sync::Arc;

use braid_connector_spi::{
    Capabilities, CatalogOptions, Connector, ConnectorContext, ConnectorError, ConnectorFactory,
    Listing, LogicalRule, ScanCodec,
};
use datafusion::catalog::CatalogProvider;

pub use codec::PostgresScanCodec;
pub use config::{PostgresConfig, SslMode, UnsupportedTypes};
pub use exec::{PostgresScan, PostgresScanExec, PostgresScanHandle};
pub use metadata::{ColumnEstimate, Metadata};
pub use pool::{Pool, describe as error_message};
pub use provider::{PostgresCatalog, PostgresQueryTable, PostgresSchema, PostgresTable};
pub use pushdown::{
    PostgresSubtree, PostgresSubtreePushdown, qualified, quote_ident, quote_literal,
    subtree_pushdown,
};
pub use types::PgKind;

/// The connector kind, as written in catalog files.
pub const KIND: &str = "postgres";

/// Makes `postgres` catalogs.
#[derive(Debug, Default)]
pub struct PostgresFactory;

impl ConnectorFactory for PostgresFactory {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn create(
        &self,
        catalog: &str,
        options: CatalogOptions,
        _context: &ConnectorContext,
    ) -> Result<Arc<dyn Connector>, ConnectorError> {
        Ok(Arc::new(PostgresConnector::new(catalog, options.parse()?)))
    }
}

/// A `postgres` catalog.
#[derive(Debug)]
pub struct PostgresConnector {
    pool: Arc<Pool>,
    metadata: Arc<Metadata>,
    catalog: Arc<PostgresCatalog>,
}

impl PostgresConnector {
    /// A catalog named `name`; connects only when first used.
    pub fn new(name: impl Into<String>, config: PostgresConfig) -> Self {
        let pool = Arc::new(Pool::new(name.into(), Arc::new(config)));
        let metadata = Arc::new(Metadata::new(pool.clone()));
        let catalog = Arc::new(PostgresCatalog::new(pool.clone(), metadata.clone()));
        Self {
            pool,
            metadata,
            catalog,
        }
    }
}

#[async_trait::async_trait]
impl Connector for PostgresConnector {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn catalog_provider(&self) -> Arc<dyn CatalogProvider> {
        self.catalog.clone()
    }

    fn scan_codec(&self) -> Arc<dyn ScanCodec> {
        Arc::new(codec::codec(self.pool.clone()))
    }

    /// Runs single-catalog subtrees (joins, aggregates, top-N) in PostgreSQL; one rule serves
    /// every postgres catalog.
    fn logical_rules(&self) -> Vec<LogicalRule> {
        vec![Arc::new(subtree_pushdown())]
    }

    async fn refresh_listings(&self, listing: Listing<'_>) -> Result<(), ConnectorError> {
        self.metadata.refresh(listing).await
    }

    async fn complete_rule_checks(&self) -> Result<bool, ConnectorError> {
        Ok(self.pool.describe_wanted().await)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            projection_pushdown: true,
            filter_pushdown: true,
            limit_pushdown: true,
            parallel_splits: true,
            writes: false,
            views: false,
        }
    }
}
