//! DataFusion's view of a `delta` catalog: [`DeltaCatalog`] → [`DeltaSchema`] →
//! [`DeltaLakeTable`]. A table's log is read each time a statement names it (so every
//! statement sees the latest commit) and the statement keeps that version; `scan` lists its
//! files with the filters as a kernel predicate (partitions and files skipped by the log's
//! statistics) and plans them into the `files` connector's splits.

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use braid_connector_files::{
    FileChunk, FilesScan, FilesScanHandle, Format, TableFormat, plan_splits,
};
use braid_connector_spi::{
    ComputedTable, ConnectorContext, ConnectorError, ListedCatalog, ScanEstimate, ScanExec,
    SchemaListing, Split, TableName, check_append, encode_schema,
};
use buoyant_kernel::table_features::ColumnMappingMode;
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::common::ColumnStatistics;
use datafusion::datasource::sink::DataSinkExec;
use datafusion::error::Result;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::ExecutionPlan;
use deltalake_core::DeltaTable;
use futures::TryStreamExt;
use object_store::path::Path;
use url::Url;

use crate::history::History;
use crate::metadata::Metadata;
use crate::predicate::to_kernel_predicate;
use crate::sink::DeltaSink;
use crate::stats::LogColumns;

/// What every level of the catalog shares.
#[derive(Debug)]
pub struct Shared {
    pub metadata: Arc<Metadata>,
    pub context: ConnectorContext,
}

/// A `delta` catalog; listings answer from [`Metadata`]'s memory.
pub type DeltaCatalog = ListedCatalog<Shared>;

impl SchemaListing for Shared {
    fn schema_names(&self) -> Vec<String> {
        self.metadata.schemas()
    }

    fn schema_provider(self: Arc<Self>, name: &str) -> Arc<dyn SchemaProvider> {
        Arc::new(DeltaSchema {
            shared: self,
            name: name.to_string(),
        })
    }
}

/// Trino's Delta Lake metadata tables (of those, Braid has `$history`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataKind {
    History,
}

const METADATA_TABLES: [(&str, MetadataKind); 1] = [("history", MetadataKind::History)];

/// One schema of a `delta` catalog.
#[derive(Debug)]
pub struct DeltaSchema {
    shared: Arc<Shared>,
    name: String,
}

#[async_trait]
impl SchemaProvider for DeltaSchema {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn table_names(&self) -> Vec<String> {
        self.shared.metadata.tables(&self.name)
    }

    /// `t`, `"t$history"`, or `t` at a version (the name the coordinator's rewrite of
    /// `FOR VERSION AS OF` / `FOR TIMESTAMP AS OF` gives it).
    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let metadata = &self.shared.metadata;
        let parsed = TableName::parse(name, &METADATA_TABLES, "Delta Lake").map_err(|reason| {
            ConnectorError::Source {
                catalog: metadata.catalog().to_string(),
                message: format!("table '{}.{name}': {reason}", self.name),
            }
        })?;
        let qualified = format!("{}.{}", self.name, parsed.table);
        if let Some(MetadataKind::History) = parsed.metadata_table {
            // The commit files are all it reads: the log is not replayed.
            let Some(url) = metadata.find(&self.name, parsed.table).await? else {
                return Ok(None);
            };
            return Ok(Some(ComputedTable::provider(History::new(
                metadata.clone(),
                qualified,
                url,
            ))));
        }
        let Some(table) = metadata
            .load(&self.name, parsed.table, parsed.version)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(Arc::new(DeltaLakeTable::new(
            self.shared.clone(),
            table,
            qualified,
            parsed.version.is_some(),
        )?)))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.table_names().iter().any(|t| t == name)
    }
}

/// One Delta table at one version.
#[derive(Debug)]
pub struct DeltaLakeTable {
    shared: Arc<Shared>,
    table: DeltaTable,
    /// `schema.table`.
    name: String,
    /// Read at a version named by the statement (not written to).
    historical: bool,
    /// The table's columns, in the log's order, strings and binaries as views.
    schema: SchemaRef,
    /// The table's columns as the log types them, which the writer takes.
    log_schema: SchemaRef,
    /// The data columns (in the files), then the partition columns: the files scan's order.
    file_schema: Schema,
    partition_schema: Schema,
    /// For each of the table's columns, its index in the files scan's order.
    scan_index: Vec<usize>,
}

impl DeltaLakeTable {
    fn new(
        shared: Arc<Shared>,
        table: DeltaTable,
        name: String,
        historical: bool,
    ) -> Result<Self, ConnectorError> {
        let metadata = &shared.metadata;
        let state = table
            .snapshot()
            .map_err(|e| metadata.error(&name, table.table_url(), e))?;
        let snapshot = state.snapshot();
        if let Some(mode @ (ColumnMappingMode::Name | ColumnMappingMode::Id)) =
            snapshot.table_properties().column_mapping_mode
        {
            return Err(metadata.message(
                &name,
                format!(
                    "uses the Delta table feature columnMapping (mode '{}'), which Braid does not read yet",
                    format!("{mode:?}").to_lowercase()
                ),
            ));
        }
        let log_schema = snapshot.arrow_schema();
        let partitions = snapshot.metadata().partition_columns().to_vec();
        // Strings and binaries in the files are read as views, as DataFusion reads Parquet:
        // decoding them so is cheaper, and the rest of the plan is faster on them.
        let schema = Arc::new(Schema::new_with_metadata(
            log_schema
                .fields()
                .iter()
                .map(|field| match field.data_type() {
                    _ if partitions.contains(field.name()) => field.clone(),
                    DataType::Utf8 | DataType::LargeUtf8 => {
                        Arc::new(field.as_ref().clone().with_data_type(DataType::Utf8View))
                    }
                    DataType::Binary | DataType::LargeBinary => {
                        Arc::new(field.as_ref().clone().with_data_type(DataType::BinaryView))
                    }
                    _ => field.clone(),
                })
                .collect::<Vec<_>>(),
            log_schema.metadata().clone(),
        ));
        let (data, partition): (Vec<_>, Vec<_>) = schema
            .fields()
            .iter()
            .cloned()
            .partition(|f| !partitions.contains(f.name()));
        // Partition values come in the log's `partitionColumns` order.
        let partition: Vec<_> = partitions
            .iter()
            .filter_map(|p| partition.iter().find(|f| f.name() == p).cloned())
            .collect();
        let order: Vec<&String> = data
            .iter()
            .chain(partition.iter())
            .map(|f| f.name())
            .collect();
        let scan_index = schema
            .fields()
            .iter()
            .map(|f| {
                order
                    .iter()
                    .position(|n| *n == f.name())
                    .unwrap_or_default()
            })
            .collect();
        Ok(Self {
            shared,
            name,
            historical,
            file_schema: Schema::new(data),
            partition_schema: Schema::new(partition),
            scan_index,
            schema,
            log_schema,
            table,
        })
    }

    /// The files of this version that `filters` may match, as the files scan reads them, with
    /// what the log's statistics say of them.
    async fn files(&self, filters: &[Expr]) -> Result<KeptFiles, ConnectorError> {
        let metadata = &self.shared.metadata;
        let url = self.table.table_url();
        let state = self
            .table
            .snapshot()
            .map_err(|e| metadata.error(&self.name, url, e))?;
        let predicate = to_kernel_predicate(filters, &self.schema).map(Arc::new);
        let log_store = self.table.log_store();
        let views = metadata
            .bounded(&self.name, url, async {
                state
                    .snapshot()
                    .file_views(log_store.as_ref(), predicate)
                    .try_collect::<Vec<_>>()
                    .await
            })
            .await
            .map_err(|e| metadata.error(&self.name, url, e))?;
        let root =
            Path::from_url_path(url.path()).map_err(|e| metadata.error(&self.name, url, e))?;
        let mut files = Vec::with_capacity(views.len());
        let mut rows = Some(0usize);
        let mut columns = LogColumns::new(&self.schema);
        for view in views {
            rows = rows.zip(view.num_records()).map(|(sum, n)| sum + n);
            columns.add(&self.schema, view.stats().as_deref());
            if view.deletion_vector_descriptor().is_some() {
                return Err(metadata.message(
                    &self.name,
                    format!(
                        "uses the Delta table feature deletionVectors (file '{}' has rows deleted by one), which Braid does not read yet",
                        view.path()
                    ),
                ));
            }
            // The raw partition values, as the log writes them (the deprecation points at
            // Arrow arrays, which hold them parsed; the files scan casts text).
            #[allow(deprecated)]
            let add = view.add_action();
            files.push(FileChunk {
                path: data_path(&root, &add.path)
                    .map_err(|message| metadata.message(&self.name, message))?,
                size: u64::try_from(add.size).unwrap_or_default(),
                modified_ms: add.modification_time,
                range: None,
                partition_values: self
                    .partition_schema
                    .fields()
                    .iter()
                    .map(|f| add.partition_values.get(f.name()).cloned().flatten())
                    .collect(),
            });
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(KeptFiles {
            files,
            rows,
            columns: columns.finish(),
        })
    }
}

/// The files a scan reads, and what the log's statistics say of them.
struct KeptFiles {
    files: Vec<FileChunk>,
    /// Their rows (`None` when a file has no count).
    rows: Option<usize>,
    /// Null counts and bounds of the table's columns over them.
    columns: Vec<ColumnStatistics>,
}

/// The object-store path of a data file the log names by `path` (relative to the table, or a
/// URL), percent-decoded.
fn data_path(root: &Path, path: &str) -> Result<String, String> {
    if let Ok(url) = Url::parse(path)
        && url.scheme().len() > 1
    {
        return Path::from_url_path(url.path())
            .map(|p| p.to_string())
            .map_err(|e| format!("data file '{path}': {e}"));
    }
    let mut full = root.clone();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        full = full.join(part);
    }
    Ok(full.to_string())
}

#[async_trait]
impl TableProvider for DeltaLakeTable {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // Filters skip files, row groups and rows; the plan still applies them.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    /// `INSERT INTO` (and the rows of `CREATE TABLE AS`): the coordinator writes Parquet files
    /// ([`DeltaSink`]) and commits them as one append.
    async fn insert_into(
        &self,
        _state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let metadata = &self.shared.metadata;
        check_append(
            metadata.catalog(),
            crate::KIND,
            &self.name,
            op,
            self.historical,
        )?;
        let sink = DeltaSink::new(
            metadata.clone(),
            self.table.clone(),
            self.name.clone(),
            self.log_schema.clone(),
        );
        Ok(Arc::new(DataSinkExec::new(input, Arc::new(sink), None)))
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let metadata = &self.shared.metadata;
        let KeptFiles {
            files,
            rows,
            columns,
        } = self.files(filters).await?;
        let file_count = files.len();
        let splits = plan_splits(
            files,
            state.config().target_partitions(),
            metadata.config().max_split_size,
            true,
        )
        .iter()
        .map(Split::encode)
        .collect::<Result<Vec<_>, _>>()?;
        // The statistics of the table's columns in the files scan's order.
        let mut scan_columns = vec![ColumnStatistics::new_unknown(); self.scan_index.len()];
        for (column, &at) in columns.into_iter().zip(&self.scan_index) {
            scan_columns[at] = column;
        }
        let projection = match projection {
            Some(indices) => indices.iter().map(|&i| self.scan_index[i]).collect(),
            None => self.scan_index.clone(),
        };
        let handle = FilesScanHandle {
            catalog: metadata.catalog().to_string(),
            table: self.name.clone(),
            location: self.table.table_url().to_string(),
            format: TableFormat {
                format: Format::Parquet,
                csv: Default::default(),
            },
            file_schema: encode_schema(&self.file_schema)?,
            partition_schema: encode_schema(&self.partition_schema)?,
            projection: Some(projection),
            filters: FilesScanHandle::encode_filters(filters),
            limit,
            files: file_count,
            estimate: ScanEstimate::rows(rows).limited(limit, splits.len()),
        };
        let source = FilesScan::new(handle, metadata.stores().clone())?
            .with_column_statistics(scan_columns, !filters.is_empty());
        let splits = self.shared.context.plan_splits(splits)?;
        Ok(Arc::new(ScanExec::new(source, splits)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_files_resolve_under_the_table() {
        let table = Url::parse("file:///data/sales/orders/").expect("url");
        let root = Path::from_url_path(table.path()).expect("path");
        assert_eq!(
            data_path(&root, "region=EU/part-0.parquet").expect("relative"),
            "data/sales/orders/region=EU/part-0.parquet"
        );
        assert_eq!(
            data_path(&root, "s3://b/other/x.parquet").expect("absolute"),
            "other/x.parquet"
        );
        // Decoded names are encoded as object_store keeps them.
        assert_eq!(
            data_path(&root, "city=São Paulo/p.parquet").expect("space"),
            Path::from("data/sales/orders/city=São Paulo/p.parquet").to_string()
        );
    }
}
