//! # braid-connector-memory
//!
//! Cluster-wide in-memory tables and views, like Trino's `memory` connector: `CREATE TABLE`,
//! `CREATE TABLE AS`, `INSERT INTO`, `DROP TABLE`, `CREATE [OR REPLACE] VIEW`, `DROP VIEW` and
//! `ALTER TABLE|VIEW ... RENAME TO`, visible to every client and query of the cluster.
//!
//! - [`MemoryStore`] (`metadata.rs`) holds the tables, on the coordinator. A table is an
//!   append-only list of record batches, so a scan that remembers how many batches it saw reads
//!   the same rows however often a task is retried.
//! - [`MemoryConnector`] exposes the store as a DataFusion catalog ([`provider.rs`]); inserts go
//!   through a `DataSink` that checks the per-table size limit before anything is appended.
//! - [`MemoryScanExec`] (`exec.rs`) is the scan node: partition *i* asks the coordinator's
//!   internal port, over Arrow Flight (`do_get` with a [`FetchTicket`]), for every *n*-th batch
//!   starting at *i*; [`MemoryFetch`], the catalog's `InternalService`, answers there. Task
//!   definitions carry only the ticket, never rows, so tables of any size stay far below the
//!   16 MiB gRPC limit.
//! - [`MemoryScanCodec`] (`codec.rs`) ships the scan node as its [`MemoryScanHandle`].
//!
//! See README.md for the design's limits.

mod codec;
mod config;
mod exec;
mod metadata;
mod provider;
mod split;

use std::sync::Arc;

use braid_connector_spi::{
    Capabilities, CatalogOptions, Connector, ConnectorContext, ConnectorError, ConnectorFactory,
    InternalService, Role, ScanCodec,
};
use datafusion::catalog::CatalogProvider;

pub use codec::MemoryScanCodec;
pub use config::MemoryConfig;
pub use exec::{FetchTicket, MemoryFetch, MemoryScan, MemoryScanExec, MemoryScanHandle};
pub use metadata::MemoryStore;
pub use provider::MemoryCatalog;

/// The connector kind, as written in catalog files.
pub const KIND: &str = "memory";

/// Makes `memory` catalogs. The coordinator's copy holds the tables; a worker's only decodes
/// scans, which fetch their rows from the coordinator's internal port.
#[derive(Debug, Default)]
pub struct MemoryFactory;

impl ConnectorFactory for MemoryFactory {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn create(
        &self,
        catalog: &str,
        options: CatalogOptions,
        context: &ConnectorContext,
    ) -> Result<Arc<dyn Connector>, ConnectorError> {
        let endpoint = match &context.role {
            Role::Coordinator { internal_endpoint } => Some(internal_endpoint.clone()),
            Role::Worker => None,
        };
        Ok(Arc::new(MemoryConnector::new(
            catalog,
            options.parse()?,
            endpoint,
        )))
    }
}

/// A `memory` catalog.
#[derive(Debug)]
pub struct MemoryConnector {
    store: Arc<MemoryStore>,
    catalog: Arc<MemoryCatalog>,
}

impl MemoryConnector {
    /// A memory catalog. `endpoint` is the coordinator's Flight address that workers fetch rows
    /// from (`http://host:port`); a worker's copy of the catalog only decodes scans and needs none.
    pub fn new(
        catalog_name: impl Into<String>,
        config: MemoryConfig,
        endpoint: Option<String>,
    ) -> Self {
        let store = Arc::new(MemoryStore::new(
            catalog_name.into(),
            config.max_table_bytes,
        ));
        let catalog = Arc::new(MemoryCatalog::new(store.clone(), endpoint));
        Self { store, catalog }
    }
}

#[async_trait::async_trait]
impl Connector for MemoryConnector {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn catalog_provider(&self) -> Arc<dyn CatalogProvider> {
        self.catalog.clone()
    }

    fn scan_codec(&self) -> Arc<dyn ScanCodec> {
        Arc::new(codec::codec(self.store.catalog()))
    }

    fn internal_service(&self) -> Option<Arc<dyn InternalService>> {
        Some(Arc::new(MemoryFetch::new(self.store.clone())))
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            projection_pushdown: true,
            filter_pushdown: false,
            limit_pushdown: false,
            parallel_splits: true,
            writes: true,
            views: true,
        }
    }

    async fn rename_table(
        &self,
        from: (&str, &str),
        to: (&str, &str),
    ) -> Result<bool, ConnectorError> {
        self.store.rename(from, to)?;
        Ok(true)
    }
}
