//! # braid-connector-memory
//!
//! Cluster-wide in-memory tables, like Trino's `memory` connector: `CREATE TABLE`, `CREATE TABLE
//! AS`, `INSERT INTO` and `DROP TABLE`, visible to every client and query of the cluster.
//!
//! - [`MemoryStore`] (`metadata.rs`) holds the tables, on the coordinator. A table is an
//!   append-only list of record batches, so a scan that remembers how many batches it saw reads
//!   the same rows however often a task is retried.
//! - [`MemoryConnector`] exposes the store as a DataFusion catalog ([`provider.rs`]); inserts go
//!   through a `DataSink` that checks the per-table size limit before anything is appended.
//! - [`MemoryScanExec`] (`exec.rs`) is the scan node: partition *i* asks the coordinator, over
//!   Arrow Flight (`do_get` with a [`FetchTicket`]), for every *n*-th batch starting at *i*. Task
//!   definitions carry only the ticket, never rows, so tables of any size stay far below the
//!   16 MiB gRPC limit.
//! - [`MemoryScanCodec`] (`codec.rs`) ships the scan node.
//!
//! See README.md for the design's limits.

mod codec;
mod config;
mod exec;
mod metadata;
mod provider;
mod split;

use std::sync::Arc;

use braid_connector_spi::{Capabilities, Connector, ScanCodec};
use datafusion::catalog::CatalogProvider;

pub use codec::MemoryScanCodec;
pub use config::MemoryConfig;
pub use exec::{FETCH_TYPE_URL, FetchTicket, MemoryScanExec};
pub use metadata::MemoryStore;
pub use provider::MemoryCatalog;

/// The connector kind, as written in catalog files.
pub const KIND: &str = "memory";

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

    /// The tables, for serving [`FetchTicket`]s on the coordinator.
    pub fn store(&self) -> &Arc<MemoryStore> {
        &self.store
    }
}

impl Connector for MemoryConnector {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn kind(&self) -> &'static str {
        KIND
    }

    fn catalog_name(&self) -> &str {
        self.store.catalog()
    }

    fn catalog_provider(&self) -> Arc<dyn CatalogProvider> {
        self.catalog.clone()
    }

    fn scan_codec(&self) -> Arc<dyn ScanCodec> {
        Arc::new(MemoryScanCodec)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            projection_pushdown: true,
            filter_pushdown: false,
            limit_pushdown: false,
            parallel_splits: true,
            writes: true,
        }
    }
}
