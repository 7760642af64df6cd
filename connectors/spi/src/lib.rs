//! # braid-connector-spi
//!
//! The contract between Braid and its connectors, modelled on Trino's SPI and mapped onto
//! DataFusion (DESIGN.md §4):
//!
//! - [`Connector`]: one configured catalog (`etc/catalog/<name>.toml`). It hands DataFusion a
//!   [`CatalogProvider`] for planning on the coordinator and a [`ScanCodec`] for shipping its
//!   scan nodes to workers.
//! - [`ScanCodec`]: encodes the connector's physical scan nodes into plain bytes (a table handle
//!   plus its splits) and rebuilds them on a worker. The Braid codec in `braid-catalogs` wraps the
//!   bytes in an envelope tagged with [`Connector::kind`] and dispatches on that tag.
//! - [`Split`]: one unit of parallel reading. Partition *i* of a scan reads split *i*.
//! - [`Capabilities`]: what a connector pushes down and supports, for docs and `EXPLAIN`.
//! - [`scan_properties`]: the plan properties every scan node shares.
//! - [`ConnectorError`]: the typed errors a connector reports, each naming what the user must fix.
//!
//! A connector never reaches Ballista: it is testable on a plain `SessionContext`.

use std::fmt::Debug;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::CatalogProvider;
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::{ExecutionPlan, Partitioning, PlanProperties};

mod error;
pub use error::ConnectorError;

/// A configured catalog: the connector implementation plus its catalog file's settings.
pub trait Connector: Debug + Send + Sync {
    /// For downcasting to the concrete connector (the coordinator serves memory tables).
    fn as_any(&self) -> &dyn std::any::Any;

    /// The connector kind, as written in `connector = "..."` (`tpch`, `memory`, ...).
    fn kind(&self) -> &'static str;

    /// The catalog name (the catalog file's stem).
    fn catalog_name(&self) -> &str;

    /// The DataFusion catalog that resolves `schema.table` names in this catalog.
    fn catalog_provider(&self) -> Arc<dyn CatalogProvider>;

    /// The codec for this connector's scan nodes.
    fn scan_codec(&self) -> Arc<dyn ScanCodec>;

    /// What this connector supports.
    fn capabilities(&self) -> Capabilities;
}

/// Encodes and decodes the physical scan nodes of one connector kind.
///
/// A payload carries table handles and splits, never a connection or a secret: the worker
/// resolves those from its own catalog files, by catalog name.
pub trait ScanCodec: Debug + Send + Sync {
    /// Encodes `node` if it belongs to this connector; `Ok(None)` means "not mine".
    fn try_encode(&self, node: &dyn ExecutionPlan) -> Result<Option<Vec<u8>>, DataFusionError>;

    /// Rebuilds a node from a payload written by [`ScanCodec::try_encode`].
    fn try_decode(
        &self,
        payload: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn ExecutionPlan>, DataFusionError>;
}

/// One unit of parallel reading: partition `index` of `count` of a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Split {
    /// Zero-based position of this split.
    pub index: usize,
    /// How many splits the scan has.
    pub count: usize,
}

impl Split {
    /// All splits of a scan read in `count` parts.
    pub fn all(count: usize) -> impl Iterator<Item = Split> {
        (0..count).map(move |index| Split { index, count })
    }
}

/// The plan properties of a scan node reading `splits` splits: one partition per split,
/// bounded, rows emitted as they are read, no known order.
pub fn scan_properties(schema: SchemaRef, splits: usize) -> Arc<PlanProperties> {
    Arc::new(PlanProperties::new(
        EquivalenceProperties::new(schema),
        Partitioning::UnknownPartitioning(splits.max(1)),
        EmissionType::Incremental,
        Boundedness::Bounded,
    ))
}

/// The system's trusted CA certificates (PEM): `SSL_CERT_FILE`, else the usual Linux
/// locations. For TLS clients that trust what the machine trusts (the `braid` client, a
/// connector's `verify-full`).
pub fn system_ca_bundle() -> Option<std::path::PathBuf> {
    std::env::var_os("SSL_CERT_FILE")
        .map(std::path::PathBuf::from)
        .into_iter()
        .chain(
            [
                "/etc/ssl/certs/ca-certificates.crt",
                "/etc/pki/tls/certs/ca-bundle.crt",
                "/etc/ssl/cert.pem",
            ]
            .map(std::path::PathBuf::from),
        )
        .find(|p| p.is_file())
}

/// What a connector can do, shown in its README's capability matrix.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Reads only the projected columns.
    pub projection_pushdown: bool,
    /// Evaluates filters in the source.
    pub filter_pushdown: bool,
    /// Stops reading after LIMIT rows.
    pub limit_pushdown: bool,
    /// Reads one table as several splits in parallel.
    pub parallel_splits: bool,
    /// Supports `CREATE TABLE`, `CREATE TABLE AS`, `INSERT` and `DROP TABLE`.
    pub writes: bool,
}
