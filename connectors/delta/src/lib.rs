//! # braid-connector-delta
//!
//! Delta Lake tables, as Trino's Delta Lake connector shows them: `<location>/<schema>/<table>/`
//! is a table (a directory holding `_delta_log/`), and so is every `[tables."schema.table"]`
//! entry of the catalog file. deltalake reads the log; Braid plans the data files into splits
//! and the workers read them with DataFusion's Parquet reader.
//!
//! - [`DeltaConfig`] (`config.rs`): the catalog file's options.
//! - [`Metadata`] (`metadata.rs`): the listings, and the loading of a table at its latest
//!   version or at the version `FOR VERSION AS OF` / `FOR TIMESTAMP AS OF` names, every read
//!   of the log bounded.
//! - [`DeltaCatalog`] → [`DeltaSchema`] → [`DeltaLakeTable`] (`provider.rs`): `scan` lists the
//!   version's files with the filters turned into a kernel predicate (`predicate.rs`), so
//!   partitions and files are skipped by the log's statistics, and plans them into splits read
//!   by the `files` connector's scan node (a Delta table's data files are Parquet files).
//! - [`History`] (`history.rs`): `"t$history"`, one row per commit.
//! - [`DeltaSink`] (`sink.rs`): `INSERT INTO` and `CREATE TABLE AS` write Parquet files on the
//!   coordinator and commit them as one append.
//!
//! Deletion vectors and column mapping are refused with an error naming the table feature.
//! See README.md for the options and the limits.

mod config;
mod history;
mod metadata;
mod predicate;
mod provider;
mod sink;
mod stats;

use std::sync::Arc;

use braid_connector_files::{FilesScan, FilesScanCodec};
use braid_connector_spi::{
    Capabilities, CatalogOptions, Connector, ConnectorContext, ConnectorError, ConnectorFactory,
    Listing, ScanCodec,
};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::CatalogProvider;

pub use config::{DeltaConfig, TableEntry};
pub use history::History;
pub use metadata::Metadata;
pub use predicate::to_kernel_predicate;
pub use provider::{DeltaCatalog, DeltaLakeTable, DeltaSchema};
pub use sink::DeltaSink;

/// The connector kind, as written in catalog files.
pub const KIND: &str = "delta";

/// Makes `delta` catalogs.
#[derive(Debug, Default)]
pub struct DeltaFactory;

impl ConnectorFactory for DeltaFactory {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn create(
        &self,
        catalog: &str,
        options: CatalogOptions,
        context: &ConnectorContext,
    ) -> Result<Arc<dyn Connector>, ConnectorError> {
        let config: DeltaConfig = options.parse_checked(catalog)?;
        Ok(Arc::new(DeltaConnector::new(
            catalog,
            config,
            context.clone(),
        )?))
    }
}

/// A `delta` catalog.
#[derive(Debug)]
pub struct DeltaConnector {
    shared: Arc<provider::Shared>,
    catalog: Arc<DeltaCatalog>,
}

impl DeltaConnector {
    /// A catalog named `name`; nothing is read until a statement asks.
    pub fn new(
        name: &str,
        config: DeltaConfig,
        context: ConnectorContext,
    ) -> Result<Self, ConnectorError> {
        let shared = Arc::new(provider::Shared {
            metadata: Arc::new(Metadata::new(name, config)?),
            context,
        });
        Ok(Self {
            catalog: Arc::new(DeltaCatalog::new(shared.clone())),
            shared,
        })
    }
}

#[async_trait::async_trait]
impl Connector for DeltaConnector {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn catalog_provider(&self) -> Arc<dyn CatalogProvider> {
        self.catalog.clone()
    }

    /// A Delta scan is a files scan of the version's data files.
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
