//! # braid-connector-iceberg
//!
//! Iceberg tables, as Trino's Iceberg connector shows them: the namespaces of an Iceberg SQL
//! catalog (SQLite or PostgreSQL, the tables pyiceberg's `SqlCatalog` writes) or REST catalog
//! are schemas, their tables are tables. Both upstream DataFusion integrations read a whole
//! table in one partition; here the coordinator plans the file scan tasks and the workers read
//! them in parallel.
//!
//! - [`IcebergConfig`] (`config.rs`): the catalog file's options.
//! - [`Metadata`] (`metadata.rs`): the Iceberg catalog client (connected on first use, every
//!   round trip bounded) and the listings of namespaces and tables.
//! - [`IcebergCatalog`] → [`IcebergSchema`] → [`IcebergTable`] (`provider.rs`): a table is
//!   loaded each time a statement names it and pins one snapshot; `scan` turns the filters into
//!   an Iceberg predicate, plans the file scan tasks (manifests and partitions pruned, delete
//!   files attached) and packs them into splits, cutting large data files without deletes into
//!   byte ranges.
//! - [`IcebergScanExec`] (`exec.rs`): the SPI's scan node; a worker reads its split with
//!   iceberg's Arrow reader, which applies position and equality deletes and prunes row groups.
//! - [`MetadataTable`] and [`TableName`] (`system.rs`): `"t$snapshots"`, `"t$history"`,
//!   `"t$manifests"`, `"t$files"`, `"t$partitions"`, and a table at a snapshot or time.
//! - [`IcebergSink`] (`sink.rs`): `INSERT INTO` and `CREATE TABLE AS` write Parquet data files
//!   with the table's partition spec on the coordinator and commit them as one append.
//! - [`StoresStorage`] (`storage.rs`): iceberg's file I/O over the SPI's object stores, so
//!   local and S3 files are read with the catalog file's `[s3]` settings.
//! - `v0_catalog.rs`: the one upstream workaround (iceberg-rust#2068), for SQL catalogs written
//!   by pyiceberg.
//!
//! See README.md for the options and the limits.

mod config;
mod exec;
mod metadata;
mod provider;
mod sink;
mod stats;
mod storage;
mod system;
mod v0_catalog;

use std::sync::Arc;

use braid_connector_spi::{
    Capabilities, CatalogOptions, CatalogStores, Connector, ConnectorContext, ConnectorError,
    ConnectorFactory, Listing, ScanCodec, ScanExecCodec,
};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::CatalogProvider;

pub use config::{CatalogType, IcebergConfig};
pub use exec::{IcebergScan, IcebergScanExec, IcebergScanHandle, IcebergSplit};
pub use metadata::Metadata;
pub use provider::{IcebergCatalog, IcebergSchema, IcebergTable};
pub use sink::IcebergSink;
pub use storage::{StoresFactory, StoresStorage, file_io};
pub use system::{MetadataKind, MetadataTable, TableName, snapshot_at};

/// The connector kind, as written in catalog files.
pub const KIND: &str = "iceberg";

/// The codec of an iceberg catalog's scans.
pub type IcebergScanCodec = ScanExecCodec<IcebergScan>;

/// Makes `iceberg` catalogs.
#[derive(Debug, Default)]
pub struct IcebergFactory;

impl ConnectorFactory for IcebergFactory {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn create(
        &self,
        catalog: &str,
        options: CatalogOptions,
        context: &ConnectorContext,
    ) -> Result<Arc<dyn Connector>, ConnectorError> {
        let config: IcebergConfig = options.parse_checked(catalog)?;
        Ok(Arc::new(IcebergConnector::new(
            catalog,
            config,
            context.clone(),
        )))
    }
}

/// An `iceberg` catalog.
#[derive(Debug)]
pub struct IcebergConnector {
    shared: Arc<provider::Shared>,
    catalog: Arc<IcebergCatalog>,
}

impl IcebergConnector {
    /// A catalog named `name`; the Iceberg catalog is reached when a statement first asks.
    pub fn new(name: &str, config: IcebergConfig, context: ConnectorContext) -> Self {
        let stores = Arc::new(CatalogStores::new(name, config.s3.clone()));
        let shared = Arc::new(provider::Shared {
            metadata: Arc::new(Metadata::new(name, Arc::new(config), stores)),
            context,
        });
        Self {
            catalog: Arc::new(IcebergCatalog::new(shared.clone())),
            shared,
        }
    }
}

#[async_trait::async_trait]
impl Connector for IcebergConnector {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn catalog_provider(&self) -> Arc<dyn CatalogProvider> {
        self.catalog.clone()
    }

    fn scan_codec(&self) -> Arc<dyn ScanCodec> {
        let stores = self.shared.metadata.stores().clone();
        Arc::new(IcebergScanCodec::new(
            stores.catalog().to_string(),
            move |handle| IcebergScan::new(handle, stores.clone()),
        ))
    }

    async fn refresh_listings(&self, listing: Listing<'_>) -> Result<(), ConnectorError> {
        self.shared.metadata.refresh(listing).await
    }

    async fn create_schema(&self, schema: &str) -> Result<bool, ConnectorError> {
        self.shared.metadata.create_schema(schema).await?;
        Ok(true)
    }

    async fn create_table(
        &self,
        schema: &str,
        table: &str,
        columns: SchemaRef,
    ) -> Result<bool, ConnectorError> {
        self.shared
            .metadata
            .create_table(schema, table, &columns)
            .await?;
        Ok(true)
    }

    async fn drop_table(&self, schema: &str, table: &str) -> Result<bool, ConnectorError> {
        self.shared.metadata.drop_table(schema, table).await?;
        Ok(true)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            projection_pushdown: true,
            filter_pushdown: true,
            limit_pushdown: true,
            parallel_splits: true,
            writes: true,
            views: false,
        }
    }
}
