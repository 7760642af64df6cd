//! # braid-connector-tpch
//!
//! TPC-H tables generated on the fly by `tpchgen`, like Trino's `tpch` connector.
//!
//! - [`TpchConnector`] is the catalog: schemas `tiny` (scale factor 0.01) and `sfN` for any
//!   positive N (`sf1`, `sf10`, `"sf0.1"`), each with the eight TPC-H tables.
//! - [`TpchTable`] (`provider.rs`) is the `TableProvider`; its `scan()` plans splits and reads
//!   no rows.
//! - [`TpchScanExec`] (`exec.rs`) is the scan node: partition *i* generates part *i+1* of *n*
//!   of the table, only the projected columns.
//! - [`TpchScanCodec`] (`codec.rs`) ships the scan to workers as `{table, scale factor, parts,
//!   projection}`; the data is generated where it is read.
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

use braid_connector_spi::{Capabilities, Connector, ScanCodec};
use datafusion::catalog::CatalogProvider;

pub use codec::TpchScanCodec;
pub use config::{ColumnNaming, TpchConfig};
pub use exec::TpchScanExec;
pub use metadata::{TpchTableKind, scale_factor_of_schema};
pub use provider::{TpchCatalog, TpchTable};

/// The connector kind, as written in catalog files.
pub const KIND: &str = "tpch";

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
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn kind(&self) -> &'static str {
        KIND
    }

    fn catalog_name(&self) -> &str {
        self.catalog.name()
    }

    fn catalog_provider(&self) -> Arc<dyn CatalogProvider> {
        self.catalog.clone()
    }

    fn scan_codec(&self) -> Arc<dyn ScanCodec> {
        Arc::new(TpchScanCodec)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            projection_pushdown: true,
            filter_pushdown: false,
            limit_pushdown: true,
            parallel_splits: true,
            writes: false,
        }
    }
}
