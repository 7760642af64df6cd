//! # braid-connector-tpch
//!
//! TPC-H tables generated on the fly by `tpchgen`, like Trino's `tpch` connector.
//!
//! - [`TpchConnector`] is the catalog: schemas `tiny` (scale factor 0.01) and `sfN` for any
//!   positive N (`sf1`, `sf10`, `"sf0.1"`), each with the eight TPC-H tables.
//! - [`TpchTable`] (`provider.rs`) is the `TableProvider`; its `scan()` plans splits and reads
//!   no rows.
//! - [`TpchScan`] (`exec.rs`) is the scan's source for the SPI's scan node ([`TpchScanExec`]):
//!   partition *i* generates part *i+1* of *n* of the table, only the projected columns.
//! - [`TpchScanCodec`] (`codec.rs`) ships the scan to workers as its [`TpchScanHandle`]
//!   `{table, scale factor, parts, projection, limit}`; the data is generated where it is read.
//!
//! Column names and types are in `metadata.rs`; see README.md for the configuration.

mod codec;
mod config;
mod exec;
mod metadata;
mod provider;
pub mod queries;
mod split;
mod types;

use std::sync::Arc;

use braid_connector_spi::{
    Capabilities, CatalogOptions, Connector, ConnectorContext, ConnectorError, ConnectorFactory,
    ScanCodec,
};
use datafusion::catalog::CatalogProvider;

pub use codec::TpchScanCodec;
pub use config::{ColumnNaming, TpchConfig};
pub use exec::{TpchScan, TpchScanExec, TpchScanHandle};
pub use metadata::{TpchTableKind, scale_factor_of_schema};
pub use provider::{TpchCatalog, TpchTable};

/// The connector kind, as written in catalog files.
pub const KIND: &str = "tpch";

/// Makes `tpch` catalogs.
#[derive(Debug, Default)]
pub struct TpchFactory;

impl ConnectorFactory for TpchFactory {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn create(
        &self,
        catalog: &str,
        options: CatalogOptions,
        _context: &ConnectorContext,
    ) -> Result<Arc<dyn Connector>, ConnectorError> {
        Ok(Arc::new(TpchConnector::new(catalog, options.parse()?)))
    }
}

/// A `tpch` catalog.
#[derive(Debug)]
pub struct TpchConnector {
    catalog: Arc<TpchCatalog>,
}

impl TpchConnector {
    /// A catalog named `catalog_name` with the given options.
    pub fn new(catalog_name: impl Into<String>, config: TpchConfig) -> Self {
        Self {
            catalog: Arc::new(TpchCatalog::new(catalog_name.into(), config)),
        }
    }
}

impl Connector for TpchConnector {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn catalog_provider(&self) -> Arc<dyn CatalogProvider> {
        self.catalog.clone()
    }

    fn scan_codec(&self) -> Arc<dyn ScanCodec> {
        Arc::new(codec::codec(self.catalog.name()))
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            projection_pushdown: true,
            filter_pushdown: false,
            limit_pushdown: true,
            parallel_splits: true,
            writes: false,
            views: false,
        }
    }
}
