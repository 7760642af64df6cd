//! [`IcebergScanExec`]: the SPI's scan node over an [`IcebergScan`]. Partition *i* reads split
//! *i* — a few of the file scan tasks the coordinator planned, each a data file (or a byte range
//! of one) with its delete files — with iceberg's own Arrow reader, so position and equality
//! deletes are applied and the pushed predicate prunes row groups and rows.

use std::fmt;
use std::sync::Arc;

use braid_connector_spi::{
    CatalogStores, ConnectorError, FilePiece, ScanEstimate, ScanExec, ScanMetrics, ScanSource,
    Split, Splits, column_list, decode_schema, project_column_statistics,
};
use datafusion::arrow::array::{RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::ColumnStatistics;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;
use iceberg::Runtime;
use iceberg::arrow::ArrowReaderBuilder;
use iceberg::scan::FileScanTask;
use iceberg::spec::NameMapping;
use serde::{Deserialize, Serialize};

use crate::metadata::describe;
use crate::storage::file_io;

/// The scan node of an Iceberg table.
pub type IcebergScanExec = ScanExec<IcebergScan>;

/// An Iceberg scan as it travels: the table and snapshot the coordinator planned, the columns
/// read, and what `EXPLAIN` shows. The files are in the splits; the store's endpoint and keys
/// are the worker's own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IcebergScanHandle {
    pub catalog: String,
    /// `schema.table`.
    pub table: String,
    /// The snapshot read; `None` for a table without one (no rows).
    pub snapshot_id: Option<i64>,
    /// The scan's output columns (Arrow IPC stream header, base64).
    pub schema: String,
    /// The table's `schema.name-mapping.default` (JSON), for data files without field ids.
    pub name_mapping: Option<String>,
    /// Each split stops after this many rows.
    pub limit: Option<usize>,
    /// The Iceberg predicate the filters became, for `EXPLAIN`.
    pub predicate: Option<String>,
    /// Data and delete files the scan reads, for `EXPLAIN`.
    pub data_files: usize,
    pub delete_files: usize,
    /// The record counts of the data files, deletes not subtracted.
    #[serde(default)]
    pub estimate: ScanEstimate,
}

/// What one task reads: file scan tasks (delete files included).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IcebergSplit {
    pub tasks: Vec<FileScanTask>,
}

/// A file scan task as a piece [`braid_connector_spi::pack_files`] can cut: a Parquet data
/// file without deletes may be read in byte ranges (row groups by their middle); one with
/// deletes is read whole, since its deletes are by row position in the whole file.
#[derive(Debug, Clone)]
pub struct TaskPiece(pub FileScanTask);

impl FilePiece for TaskPiece {
    fn file_size(&self) -> u64 {
        self.0.file_size_in_bytes
    }

    fn bytes(&self) -> u64 {
        self.0.length
            + self
                .0
                .deletes
                .iter()
                .map(|d| d.file_size_in_bytes)
                .sum::<u64>()
    }

    fn splittable(&self) -> bool {
        self.0.deletes.is_empty()
            && self.0.start == 0
            && self.0.data_file_format == iceberg::spec::DataFileFormat::Parquet
    }

    fn with_range(&self, start: u64, end: u64) -> Self {
        let mut task = self.0.clone();
        task.start = start;
        task.length = end - start;
        task.record_count = None;
        TaskPiece(task)
    }
}

/// Reads an Iceberg table, one split per partition of the scan.
#[derive(Debug, Clone)]
pub struct IcebergScan {
    handle: IcebergScanHandle,
    schema: SchemaRef,
    name_mapping: Option<Arc<NameMapping>>,
    stores: Arc<CatalogStores>,
    /// What the coordinator read of the scan's columns in the manifests, for planning; not
    /// shipped.
    columns: Option<Vec<ColumnStatistics>>,
}

impl IcebergScan {
    /// The scan of `handle`, reading through this process's `stores` of its catalog.
    pub fn new(
        handle: IcebergScanHandle,
        stores: Arc<CatalogStores>,
    ) -> Result<Self, ConnectorError> {
        let codec = |reason: String| ConnectorError::Codec {
            kind: crate::KIND,
            reason: format!("table '{}': {reason}", handle.table),
        };
        if handle.catalog != stores.catalog() {
            return Err(codec(format!(
                "a scan of catalog '{}' reached the codec of catalog '{}'",
                handle.catalog,
                stores.catalog()
            )));
        }
        let schema = decode_schema(&handle.schema).map_err(|e| codec(e.to_string()))?;
        let name_mapping = handle
            .name_mapping
            .as_deref()
            .map(serde_json::from_str::<NameMapping>)
            .transpose()
            .map_err(|e| codec(format!("name mapping: {e}")))?
            .map(Arc::new);
        Ok(Self {
            handle,
            schema,
            name_mapping,
            stores,
            columns: None,
        })
    }

    /// This scan, its statistics giving the null counts and bounds of `table` (one per column
    /// of the table) for the columns it reads, `projection` of the table's; `filtered` when
    /// filters or deletes may skip rows they count. Ignored when the scan has a limit.
    pub fn with_column_statistics(
        mut self,
        table: &[ColumnStatistics],
        projection: Option<&[usize]>,
        filtered: bool,
    ) -> Self {
        if self.handle.limit.is_none() {
            self.columns = Some(project_column_statistics(
                table,
                projection,
                self.schema.fields().len(),
                filtered,
            ));
        }
        self
    }
}

impl ScanSource for IcebergScan {
    type Handle = IcebergScanHandle;

    fn name(&self) -> &'static str {
        "IcebergScanExec"
    }

    fn catalog(&self) -> &str {
        &self.handle.catalog
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn handle(&self) -> IcebergScanHandle {
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
            "catalog={}, table={}, snapshot={}, columns=[{}]",
            self.handle.catalog,
            self.handle.table,
            self.handle
                .snapshot_id
                .map_or("none".to_string(), |id| id.to_string()),
            column_list(&self.schema)
        )?;
        if let Some(predicate) = &self.handle.predicate {
            write!(f, ", predicate={predicate}")?;
        }
        if let Some(limit) = self.handle.limit {
            write!(f, ", limit={limit}")?;
        }
        write!(
            f,
            ", data_files={}, delete_files={}, splits={}",
            self.handle.data_files,
            self.handle.delete_files,
            splits.len()
        )
    }

    fn read(
        &self,
        split: &Split,
        context: Arc<TaskContext>,
        metrics: ScanMetrics,
    ) -> Result<SendableRecordBatchStream> {
        let split: IcebergSplit = split.decode()?;
        let mut tasks = split.tasks;
        for task in &mut tasks {
            task.name_mapping = self.name_mapping.clone();
        }
        metrics.counter("files_opened").add(tasks.len());
        metrics
            .counter("delete_files_opened")
            .add(tasks.iter().map(|t| t.deletes.len()).sum());
        let handle = self.handle.clone();
        let runtime = Runtime::try_current().map_err(|e| read_error(&handle, &e))?;
        let reader = ArrowReaderBuilder::new(file_io(self.stores.clone()), runtime)
            .with_batch_size(context.session_config().batch_size())
            .with_row_group_filtering_enabled(true)
            .with_row_selection_enabled(true)
            .build();
        let result = reader
            .read(futures::stream::iter(tasks.into_iter().map(Ok)).boxed())
            .map_err(|e| read_error(&handle, &e))?;
        let scan_metrics = result.metrics().clone();
        let schema = self.schema.clone();
        let baseline = metrics.baseline();
        let mut remaining = self.handle.limit.unwrap_or(usize::MAX);
        let rows = result
            .stream()
            .map(move |batch| {
                if remaining == 0 {
                    return Ok(None);
                }
                let batch = batch.map_err(|e| read_error(&handle, &e))?;
                // The plan's schema (the reader's may differ in field metadata).
                let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
                let batch = RecordBatch::try_new_with_options(
                    schema.clone(),
                    batch.columns().to_vec(),
                    &options,
                )?;
                let batch = batch.slice(0, batch.num_rows().min(remaining));
                remaining -= batch.num_rows();
                baseline.record_output(batch.num_rows());
                Ok(Some(batch))
            })
            // `None`: the limit is reached.
            .take_while(|batch| futures::future::ready(!matches!(batch, Ok(None))))
            .filter_map(|batch| futures::future::ready(batch.transpose()))
            .chain(
                futures::stream::once(async move {
                    metrics
                        .counter("bytes_scanned")
                        .add(scan_metrics.bytes_read() as usize);
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

/// A read failure named by its table (iceberg's message names the file).
fn read_error(handle: &IcebergScanHandle, e: &iceberg::Error) -> DataFusionError {
    DataFusionError::External(Box::new(ConnectorError::Source {
        catalog: handle.catalog.clone(),
        message: format!("table '{}': {}", handle.table, describe(e)),
    }))
}
