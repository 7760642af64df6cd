//! [`FilesScanExec`]: the SPI's scan node over a [`FilesScan`]. Partition *i* reads split *i*
//! (a few files, or byte ranges of them) with DataFusion's own Parquet or CSV reader, so the
//! pushed filters prune row groups (statistics, page index, bloom filters) and rows as they do
//! in DataFusion. Its metrics (`files_opened`, `bytes_scanned`, `row_groups_pruned`, ...) show
//! in `EXPLAIN ANALYZE`.

use std::fmt;
use std::sync::Arc;

use braid_connector_spi::{
    CatalogStores, ConnectorError, ScanEstimate, ScanExec, ScanMetrics, ScanSource, Split, Splits,
    column_list, decode_schema, project_column_statistics, store_url,
};
use datafusion::arrow::datatypes::{FieldRef, Schema, SchemaRef};
use datafusion::common::config::{CsvOptions as DfCsvOptions, TableParquetOptions};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, ColumnStatistics, DFSchema, ScalarValue};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{
    CsvSource, FileGroup, FileScanConfigBuilder, FileSource, ParquetSource,
};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::execution_props::ExecutionProps;
use datafusion::logical_expr::utils::conjunction;
use datafusion::physical_expr::create_physical_expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::MetricValue;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion_proto::bytes::Serializeable;
use futures::StreamExt;
use object_store::ObjectMeta;
use object_store::path::Path;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::config::Format;
use crate::metadata::TableFormat;
use crate::split::FilesSplit;

/// The scan node of a files table.
pub type FilesScanExec = ScanExec<FilesScan>;

/// A files scan as it travels: the table's location, format and schema as the coordinator
/// resolved them, the columns read, and the filters for pruning. The files are in the splits;
/// the store's endpoint and keys are the worker's own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FilesScanHandle {
    pub catalog: String,
    /// `schema.table`.
    pub table: String,
    /// The table's directory (or file).
    pub location: String,
    pub format: TableFormat,
    /// The files' merged schema, as an Arrow IPC stream header (base64).
    pub file_schema: String,
    /// The partition columns (typed, as their values are cast from text), as an Arrow IPC
    /// stream header (base64).
    pub partition_schema: String,
    /// Indices into the table's columns (files' then partition columns); `None` reads all.
    pub projection: Option<Vec<usize>>,
    /// The statement's filters on the table (DataFusion protobuf), used to prune row groups
    /// and rows; the plan still applies them.
    pub filters: Vec<Vec<u8>>,
    /// Each split stops after this many rows.
    pub limit: Option<usize>,
    /// How many files the scan reads, for `EXPLAIN`.
    pub files: usize,
    /// What the table's metadata says of the rows or bytes read (a Delta log's record counts,
    /// a CSV table's file sizes).
    #[serde(default)]
    pub estimate: ScanEstimate,
}

impl FilesScanHandle {
    /// The filters that travel, their columns unqualified (the worker knows one table):
    /// those DataFusion can serialize (others stay in the plan only).
    pub fn encode_filters(filters: &[Expr]) -> Vec<Vec<u8>> {
        filters
            .iter()
            .filter_map(|filter| unqualified(filter.clone()).ok()?.to_bytes().ok())
            .map(|bytes| bytes.to_vec())
            .collect()
    }
}

/// `expr` with its columns unqualified: it is about one table, whose schema has no qualifier.
pub(crate) fn unqualified(expr: Expr) -> Result<Expr> {
    expr.transform(|e| match e {
        Expr::Column(c) => Ok(Transformed::yes(Expr::Column(Column::new_unqualified(
            c.name,
        )))),
        other => Ok(Transformed::no(other)),
    })
    .map(|t| t.data)
}

/// Reads a files table, one split per partition of the scan.
#[derive(Debug, Clone)]
pub struct FilesScan {
    handle: FilesScanHandle,
    file_schema: SchemaRef,
    partition_fields: Vec<FieldRef>,
    /// The scan's output columns.
    schema: SchemaRef,
    stores: Arc<CatalogStores>,
    /// What the coordinator read of the scan's columns in the files' footers, for planning;
    /// not shipped (a worker plans nothing).
    columns: Option<Vec<ColumnStatistics>>,
}

impl FilesScan {
    /// The scan of `handle`, reading through this process's `stores` of its catalog.
    pub fn new(
        handle: FilesScanHandle,
        stores: Arc<CatalogStores>,
    ) -> Result<Self, ConnectorError> {
        if handle.catalog != stores.catalog() {
            return Err(ConnectorError::Codec {
                kind: crate::KIND,
                reason: format!(
                    "a scan of catalog '{}' reached the codec of catalog '{}'",
                    handle.catalog,
                    stores.catalog()
                ),
            });
        }
        let codec = |e: DataFusionError| ConnectorError::Codec {
            kind: crate::KIND,
            reason: format!("table '{}': {e}", handle.table),
        };
        let file_schema = decode_schema(&handle.file_schema).map_err(codec)?;
        let partition_fields: Vec<FieldRef> = decode_schema(&handle.partition_schema)
            .map_err(codec)?
            .fields()
            .iter()
            .cloned()
            .collect();
        let all: Vec<FieldRef> = file_schema
            .fields()
            .iter()
            .cloned()
            .chain(partition_fields.iter().cloned())
            .collect();
        let fields: Vec<FieldRef> = match &handle.projection {
            Some(indices) => indices
                .iter()
                .map(|&i| {
                    all.get(i).cloned().ok_or_else(|| {
                        codec(DataFusionError::Internal(format!(
                            "column {i} of a table of {} columns",
                            all.len()
                        )))
                    })
                })
                .collect::<Result<_, _>>()?,
            None => all,
        };
        Ok(Self {
            schema: Arc::new(Schema::new(fields)),
            file_schema,
            partition_fields,
            handle,
            stores,
            columns: None,
        })
    }

    /// This scan, its statistics giving the null counts and bounds the table's metadata knows
    /// of the files it reads: `table` has one per column of the table (the files' columns,
    /// then the partition columns); `filtered` when filters may skip some of those rows, which
    /// makes the counts upper bounds. Ignored when the scan has a limit.
    pub fn with_column_statistics(mut self, table: Vec<ColumnStatistics>, filtered: bool) -> Self {
        if self.handle.limit.is_none() {
            self.columns = Some(project_column_statistics(
                &table,
                self.handle.projection.as_deref(),
                self.schema.fields().len(),
                filtered,
            ));
        }
        self
    }

    pub fn handle_ref(&self) -> &FilesScanHandle {
        &self.handle
    }

    /// The DataFusion reader of `split`: one file group, this scan's columns and predicate.
    fn reader(&self, split: &FilesSplit, context: &TaskContext) -> Result<DataSourceExec> {
        let table_schema =
            TableSchema::new(self.file_schema.clone(), self.partition_fields.clone());
        let source: Arc<dyn FileSource> = match self.handle.format.format {
            Format::Parquet => {
                let options = TableParquetOptions {
                    global: context.session_config().options().execution.parquet.clone(),
                    ..TableParquetOptions::default()
                };
                let mut source =
                    ParquetSource::new(table_schema).with_table_parquet_options(options);
                if let Some(predicate) = self.predicate(context)? {
                    source = source.with_predicate(predicate);
                }
                Arc::new(source)
            }
            Format::Csv => {
                let csv = &self.handle.format.csv;
                let options = DfCsvOptions {
                    has_header: Some(csv.header),
                    delimiter: csv.delimiter_byte().unwrap_or(b','),
                    ..DfCsvOptions::default()
                };
                Arc::new(CsvSource::new(table_schema).with_csv_options(options))
            }
        };
        let files = split
            .chunks
            .iter()
            .map(|chunk| self.partitioned_file(chunk))
            .collect::<Result<Vec<_>>>()?;
        let location = Url::parse(&self.handle.location).map_err(|e| {
            DataFusionError::Internal(format!("location '{}': {e}", self.handle.location))
        })?;
        let config = FileScanConfigBuilder::new(store_url(&location)?, source)
            .with_file_group(FileGroup::new(files))
            .with_projection_indices(self.handle.projection.clone())?
            .with_limit(self.handle.limit)
            .with_batch_size(Some(context.session_config().batch_size()))
            .build();
        Ok(DataSourceExec::new(Arc::new(config)))
    }

    fn partitioned_file(&self, chunk: &crate::split::FileChunk) -> Result<PartitionedFile> {
        let object_meta = ObjectMeta {
            location: Path::parse(&chunk.path)
                .map_err(|e| DataFusionError::Internal(format!("path '{}': {e}", chunk.path)))?,
            last_modified: chrono::DateTime::from_timestamp_millis(chunk.modified_ms)
                .unwrap_or_default(),
            size: chunk.size,
            e_tag: None,
            version: None,
        };
        let mut file = PartitionedFile::new_from_meta(object_meta);
        file.partition_values = self
            .partition_fields
            .iter()
            .zip(&chunk.partition_values)
            .map(|(field, value)| match value {
                Some(text) => ScalarValue::try_from_string(text.clone(), field.data_type()),
                None => ScalarValue::try_from(field.data_type()),
            })
            .collect::<Result<_>>()?;
        if let Some((start, end)) = chunk.range {
            file = file.with_range(start as i64, end as i64);
        }
        Ok(file)
    }

    /// The pushed filters as one predicate over the table's columns; a filter the worker cannot
    /// rebuild is left to the plan's own filter.
    fn predicate(
        &self,
        context: &TaskContext,
    ) -> Result<Option<Arc<dyn datafusion::physical_expr::PhysicalExpr>>> {
        let filters: Vec<Expr> = self
            .handle
            .filters
            .iter()
            .filter_map(|bytes| Expr::from_bytes_with_registry(bytes, context).ok())
            .collect();
        let Some(filter) = conjunction(filters) else {
            return Ok(None);
        };
        let fields: Vec<FieldRef> = self
            .file_schema
            .fields()
            .iter()
            .cloned()
            .chain(self.partition_fields.iter().cloned())
            .collect();
        let schema = DFSchema::try_from(Schema::new(fields))?;
        match create_physical_expr(&filter, &schema, &ExecutionProps::new()) {
            Ok(predicate) => Ok(Some(predicate)),
            Err(e) => {
                tracing::debug!(table = %self.handle.table, "filter not used for pruning: {e}");
                Ok(None)
            }
        }
    }
}

impl ScanSource for FilesScan {
    type Handle = FilesScanHandle;

    fn name(&self) -> &'static str {
        "FilesScanExec"
    }

    fn catalog(&self) -> &str {
        &self.handle.catalog
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn handle(&self) -> FilesScanHandle {
        self.handle.clone()
    }

    fn estimate(&self) -> ScanEstimate {
        self.handle.estimate
    }

    fn column_statistics(&self) -> Option<&[ColumnStatistics]> {
        self.columns.as_deref()
    }

    fn fmt_details(&self, splits: &Splits, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "catalog={}, table={}, format={:?}, columns=[{}]",
            self.handle.catalog,
            self.handle.table,
            self.handle.format.format,
            column_list(&self.schema)
        )?;
        if !self.handle.filters.is_empty() {
            write!(f, ", pruning filters={}", self.handle.filters.len())?;
        }
        if let Some(limit) = self.handle.limit {
            write!(f, ", limit={limit}")?;
        }
        write!(f, ", files={}, splits={}", self.handle.files, splits.len())
    }

    fn read(
        &self,
        split: &Split,
        context: Arc<TaskContext>,
        metrics: ScanMetrics,
    ) -> Result<SendableRecordBatchStream> {
        let split: FilesSplit = split.decode()?;
        let files: std::collections::BTreeSet<&str> =
            split.chunks.iter().map(|c| c.path.as_str()).collect();
        metrics.counter("files_opened").add(files.len());
        let reader = Arc::new(self.reader(&split, &context)?);
        let runtime = self.stores.runtime_env(&context.runtime_env())?;
        let task = Arc::new(TaskContext::new(
            context.task_id(),
            context.session_id(),
            context.session_config().clone(),
            context.scalar_functions().clone(),
            context.aggregate_functions().clone(),
            context.window_functions().clone(),
            runtime,
        ));
        let handle = self.handle.clone();
        let baseline = metrics.baseline();
        let rows = reader
            .execute(0, task)?
            .map(move |batch| {
                let batch = batch.map_err(|e| read_error(&handle, e))?;
                baseline.record_output(batch.num_rows());
                Ok(batch)
            })
            .chain(
                futures::stream::once(async move {
                    report(&reader, &metrics);
                    None
                })
                .filter_map(futures::future::ready),
            );
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            rows,
        )))
    }
}

/// A read failure named by its table (DataFusion's message names the file).
fn read_error(handle: &FilesScanHandle, e: DataFusionError) -> DataFusionError {
    DataFusionError::External(Box::new(ConnectorError::Source {
        catalog: handle.catalog.clone(),
        message: format!("table '{}' at '{}': {e}", handle.table, handle.location),
    }))
}

/// Adds the reader's pruning and I/O metrics to the scan's.
fn report(reader: &DataSourceExec, metrics: &ScanMetrics) {
    let Some(set) = reader.metrics() else {
        return;
    };
    for metric in set.iter() {
        match metric.value() {
            MetricValue::Count { name, count } if name == "bytes_scanned" => {
                metrics.counter("bytes_scanned").add(count.value());
            }
            MetricValue::PruningMetrics {
                name,
                pruning_metrics,
            } => {
                let (pruned, matched) = match name.as_ref() {
                    "row_groups_pruned_statistics" => ("row_groups_pruned", "row_groups_matched"),
                    "page_index_rows_pruned" => {
                        ("page_index_rows_pruned", "page_index_rows_matched")
                    }
                    _ => continue,
                };
                metrics.counter(pruned).add(pruning_metrics.pruned());
                metrics.counter(matched).add(pruning_metrics.matched());
            }
            _ => {}
        }
    }
}
