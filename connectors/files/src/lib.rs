//! # braid-connector-files
//!
//! Directories of Parquet or CSV files, on local disk or an S3-compatible store, as tables —
//! Trino's Hive connector without a metastore. `<location>/<schema>/<table>/` is a table, and
//! so is every `[tables."schema.table"]` entry of the catalog file; Hive-style `key=value`
//! directories under a table are its partition columns.
//!
//! - [`FilesConfig`] (`config.rs`): the catalog file's options.
//! - [`Metadata`] (`metadata.rs`): listings (kept in memory, refreshed before a statement lists
//!   them) and [`ResolvedTable`]s (merged file schema, typed partition columns).
//! - [`FilesCatalog`] → [`FilesSchema`] → [`FilesTable`] (`provider.rs`): `scan` lists the
//!   files a statement reads, partition directories pruned, and plans them into splits
//!   (`split.rs`: large Parquet files cut into byte ranges, small files packed, about one split
//!   per task slot).
//! - [`FilesScanExec`] (`exec.rs`): the SPI's scan node; a worker reads its split with
//!   DataFusion's Parquet or CSV reader, so filters prune row groups and rows as in DataFusion.
//!   [`FilesScanCodec`] ships it as its [`FilesScanHandle`].
//!
//! Object storage (local or S3, endpoint and keys) is the SPI's `StorageOptions`, read by each
//! process from its own catalog file. See README.md for the design's limits.

mod config;
mod exec;
mod metadata;
mod provider;
mod split;

use std::sync::Arc;

use braid_connector_spi::{
    Capabilities, CatalogOptions, CatalogStores, Connector, ConnectorContext, ConnectorError,
    ConnectorFactory, Listing, ScanCodec, ScanExecCodec,
};
use datafusion::catalog::CatalogProvider;

pub use config::{CsvOptions, FilesConfig, Format, TableEntry};
pub use exec::{FilesScan, FilesScanExec, FilesScanHandle};
pub use metadata::{Metadata, PartitionType, ResolvedTable, TableFormat};
pub use provider::{FilesCatalog, FilesSchema, FilesTable};
pub use split::{FileChunk, FilesSplit, plan_splits};

/// The connector kind, as written in catalog files.
pub const KIND: &str = "files";

/// The codec of a files catalog's scans.
pub type FilesScanCodec = ScanExecCodec<FilesScan>;

/// Makes `files` catalogs.
#[derive(Debug, Default)]
pub struct FilesFactory;

impl ConnectorFactory for FilesFactory {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn create(
        &self,
        catalog: &str,
        options: CatalogOptions,
        context: &ConnectorContext,
    ) -> Result<Arc<dyn Connector>, ConnectorError> {
        let config: FilesConfig = options.parse_checked(catalog)?;
        Ok(Arc::new(FilesConnector::new(
            catalog,
            config,
            context.clone(),
        )?))
    }
}

/// A `files` catalog.
#[derive(Debug)]
pub struct FilesConnector {
    shared: Arc<provider::Shared>,
    catalog: Arc<FilesCatalog>,
}

impl FilesConnector {
    /// A catalog named `name`; nothing is read until a statement asks.
    pub fn new(
        name: &str,
        config: FilesConfig,
        context: ConnectorContext,
    ) -> Result<Self, ConnectorError> {
        let stores = Arc::new(CatalogStores::new(name, config.s3.clone()));
        let shared = Arc::new(provider::Shared {
            metadata: Metadata::new(name, Arc::new(config), stores)?,
            context,
        });
        Ok(Self {
            catalog: Arc::new(FilesCatalog::new(shared.clone())),
            shared,
        })
    }
}

#[async_trait::async_trait]
impl Connector for FilesConnector {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn catalog_provider(&self) -> Arc<dyn CatalogProvider> {
        self.catalog.clone()
    }

    fn scan_codec(&self) -> Arc<dyn ScanCodec> {
        let stores = self.shared.metadata.stores().clone();
        Arc::new(FilesScanCodec::new(
            stores.catalog().to_string(),
            move |handle| FilesScan::new(handle, stores.clone()),
        ))
    }

    async fn refresh_listings(&self, listing: Listing<'_>) -> Result<(), ConnectorError> {
        self.shared.metadata.refresh(listing).await
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
