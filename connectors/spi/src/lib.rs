//! # braid-connector-spi
//!
//! The contract between Braid and its connectors, modelled on Trino's SPI and mapped onto
//! DataFusion (see `docs/architecture.md`):
//!
//! - [`ConnectorFactory`]: one per connector kind, registered once (one line in
//!   `braid-catalogs`); it turns a catalog file's [`CatalogOptions`] into a [`Connector`].
//! - [`Connector`]: one configured catalog (`etc/catalog/<name>.toml`). It hands DataFusion a
//!   `CatalogProvider` for planning on the coordinator, a [`ScanCodec`] for shipping its scan
//!   nodes to workers, optimizer rules for the coordinator's planner, and optionally an
//!   [`InternalService`] that its scans call on the coordinator.
//! - [`ListedCatalog`] over a [`SchemaListing`]: the catalog level of a connector that lists its
//!   schemas from memory.
//! - [`ScanCodec`]: encodes one catalog's scan nodes into plain bytes (a table handle plus its
//!   splits) and rebuilds them on a worker with that catalog's settings. The Braid codec in
//!   `braid-catalogs` wraps the bytes in an envelope tagged with the kind and the catalog.
//! - [`ScanExec`] + [`ScanSource`] (`scan.rs`): the one scan node every connector uses; the
//!   connector supplies the table handle and how to read one split, [`ScanExecCodec`] ships it;
//!   [`ScanEstimate`] is the size the source's metadata gave at planning, as `Statistics`.
//! - [`Split`] / [`Splits`] (`split.rs`): one unit of parallel reading; partition *i* of a scan
//!   reads split *i*. Large split lists stay in the coordinator's [`SplitStore`] and tasks
//!   fetch their own split from its internal port.
//! - [`pack_files`] (`pack.rs`): the files of a scan cut into byte ranges and packed into
//!   splits, for the connectors that read files.
//! - [`Capabilities`]: what a connector pushes down and supports.
//! - [`scan_properties`]: the plan properties every scan node shares; [`column_list`]: a
//!   scan's columns as `EXPLAIN` shows them.
//! - [`ConnectorError`]: the typed errors a connector reports, each naming what the user must fix.
//! - [`StorageOptions`] / [`CatalogStores`] (`storage.rs`): the one object-storage shape of the
//!   connectors that read files (local disk, S3), resolved per catalog and per process.
//! - [`TableName`] / [`TableVersion`] (`table_name.rs`): `"t$history"` and `t@<version>`, the
//!   names of metadata tables and of a table at a version, for the connectors that have them.
//! - [`ComputedTable`] over a [`RowSource`] (`computed.rs`): a metadata or system table whose
//!   rows are computed on the coordinator when a statement scans it.
//! - [`ResultSinkExec`] (`results.rs`): the root of a job whose final tasks stream their rows
//!   to the coordinator's internal port as they make them.
//! - [`HIDDEN_COLUMN`]: marks a column left out of `SELECT *` (Trino's hidden columns).
//!
//! A connector never reaches Ballista: it is testable on a plain `SessionContext`.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::{Partitioning, PlanProperties};

mod catalog;
mod computed;
mod connector;
mod error;
mod pack;
mod results;
mod scan;
mod split;
mod storage;
mod table_name;

pub use catalog::{ListedCatalog, SchemaListing};
pub use computed::{ComputedTable, RowSource};
pub use connector::{
    CatalogOptions, CheckOptions, Connector, ConnectorContext, ConnectorFactory, InternalService,
    InternalTicket, Listing, LogicalRule, PhysicalRule, Role, ScanCodec,
};
pub use error::ConnectorError;
pub use pack::{FilePiece, MIN_RANGE, pack_files};
pub use results::{END_MARKER, RESULT_PATH, ResultSinkExec, ResultTarget, result_partition};
pub use scan::{
    ScanEstimate, ScanExec, ScanExecCodec, ScanMetrics, ScanSource, decode_schema, encode_schema,
    project_column_statistics,
};
pub use split::{
    INLINE_SPLITS_MAX_BYTES, INTERNAL_TIMEOUT, Split, SplitPlanner, SplitStore, Splits,
    internal_do_get,
};
pub use storage::{
    CatalogStores, StorageOptions, TableDirectories, location_url, percent_decode, store_url,
    subdirectory,
};
pub use table_name::{TableName, TableVersion};

/// The column names of `schema` as `EXPLAIN` lists a scan's columns: `a, b, c`.
pub fn column_list(schema: &datafusion::arrow::datatypes::Schema) -> String {
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    names.join(", ")
}

/// The Arrow field metadata key that marks a hidden column (Trino's): left out of `SELECT *`,
/// `t.*`, `DESCRIBE` and an `INSERT` without a column list, yet selectable by name (Kafka's
/// internal columns). The coordinator honours it before planning a statement.
pub const HIDDEN_COLUMN: &str = "braid.hidden";

/// `field` marked hidden.
pub fn hidden_field(
    field: datafusion::arrow::datatypes::Field,
) -> datafusion::arrow::datatypes::Field {
    field.with_metadata([(HIDDEN_COLUMN.to_string(), "true".to_string())].into())
}

/// Whether `field` is hidden.
pub fn is_hidden(field: &datafusion::arrow::datatypes::Field) -> bool {
    field
        .metadata()
        .get(HIDDEN_COLUMN)
        .is_some_and(|v| v == "true")
}

/// The Arrow field metadata key that marks a text column as SQL's `char(n)`, Trino's `char`;
/// its value is `n`. Arrow has no such type: the values are `Utf8` without their trailing
/// spaces (so they compare as `char` does), and the Trino protocol, `SHOW COLUMNS` and
/// `information_schema` name the type `char(n)` and pad the values to `n` as Trino does.
pub const CHAR_LENGTH: &str = "braid.char_length";

/// `field`, a text column, marked as `char(length)`.
pub fn char_field(
    field: datafusion::arrow::datatypes::Field,
    length: u32,
) -> datafusion::arrow::datatypes::Field {
    let mut metadata = field.metadata().clone();
    metadata.insert(CHAR_LENGTH.to_string(), length.to_string());
    field.with_metadata(metadata)
}

/// `n` when `field` is a text column marked as `char(n)`.
pub fn char_length(field: &datafusion::arrow::datatypes::Field) -> Option<usize> {
    use datafusion::arrow::datatypes::DataType;
    let text = matches!(
        field.data_type(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    );
    let length = field.metadata().get(CHAR_LENGTH)?.parse().ok()?;
    text.then_some(length)
}

/// Whether a connector that only appends may run `op` on `table` (`schema.table`): `INSERT INTO`
/// of the table as it is now, not `INSERT OVERWRITE`, nor a write to a past version.
pub fn check_append(
    catalog: &str,
    kind: &'static str,
    table: &str,
    op: datafusion::logical_expr::dml::InsertOp,
    historical: bool,
) -> Result<(), ConnectorError> {
    let unsupported = |operation: String| ConnectorError::Unsupported {
        catalog: catalog.to_string(),
        kind,
        operation,
    };
    if op != datafusion::logical_expr::dml::InsertOp::Append {
        return Err(unsupported(format!(
            "{op} (only INSERT INTO, which appends)"
        )));
    }
    if historical {
        return Err(unsupported(format!(
            "writing to '{table}' at a past version"
        )));
    }
    Ok(())
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
    /// Keeps views: `CREATE [OR REPLACE] VIEW` and `DROP VIEW`.
    pub views: bool,
}
