//! [`DeltaSink`]: `INSERT INTO` and the rows of `CREATE TABLE AS`. The engine runs the
//! statement's query as a job and streams its rows into the table's sink on the coordinator,
//! which writes Parquet files (deltalake's writer: one directory per partition, statistics in
//! each `add`) whenever about [`FLUSH_BYTES`] are buffered, and commits them all as one append
//! to the version the statement read. Nothing is visible until the commit; a failed statement
//! leaves the table as it was (its written files are unreferenced).

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{RecordBatch, RecordBatchOptions};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::datasource::sink::DataSink;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType};
use deltalake_core::DeltaTable;
use deltalake_core::kernel::Action;
use deltalake_core::kernel::transaction::CommitBuilder;
use deltalake_core::protocol::{DeltaOperation, SaveMode};
use deltalake_core::writer::{DeltaWriter, RecordBatchWriter};
use futures::StreamExt;

use crate::metadata::Metadata;

/// The bytes buffered before they are written out as files (about one file per partition).
pub const FLUSH_BYTES: usize = 128 << 20;

/// Writes rows into one Delta table and commits them.
pub struct DeltaSink {
    metadata: Arc<Metadata>,
    /// The table at the version the statement read (the commit goes on top of it, or retries
    /// on top of a newer one: appends do not conflict).
    table: DeltaTable,
    /// `schema.table`.
    name: String,
    schema: SchemaRef,
}

impl DeltaSink {
    pub fn new(
        metadata: Arc<Metadata>,
        table: DeltaTable,
        name: String,
        schema: SchemaRef,
    ) -> Self {
        Self {
            metadata,
            table,
            name,
            schema,
        }
    }

    fn error(&self, e: impl fmt::Display) -> DataFusionError {
        self.metadata
            .message(&self.name, format!("cannot be written: {e}"))
            .into()
    }
}

impl fmt::Debug for DeltaSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeltaSink")
            .field("catalog", &self.metadata.catalog())
            .field("table", &self.name)
            .finish()
    }
}

impl DisplayAs for DeltaSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DeltaSink: catalog={}, table={}",
            self.metadata.catalog(),
            self.name
        )
    }
}

#[async_trait]
impl DataSink for DeltaSink {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    async fn write_all(
        &self,
        mut data: SendableRecordBatchStream,
        _context: &Arc<TaskContext>,
    ) -> Result<u64> {
        let mut writer = RecordBatchWriter::for_table(&self.table).map_err(|e| self.error(e))?;
        let mut adds = Vec::new();
        let mut rows = 0u64;
        while let Some(batch) = data.next().await {
            let batch = batch?;
            if batch.num_rows() == 0 {
                continue;
            }
            rows += batch.num_rows() as u64;
            let batch = as_table(batch, &self.schema)?;
            writer.write(batch).await.map_err(|e| self.error(e))?;
            if writer.buffer_len() >= FLUSH_BYTES {
                adds.extend(writer.flush().await.map_err(|e| self.error(e))?);
            }
        }
        adds.extend(writer.flush().await.map_err(|e| self.error(e))?);
        if adds.is_empty() {
            return Ok(0);
        }
        let state = self.table.snapshot().map_err(|e| self.error(e))?;
        let partitions: Vec<String> = state.metadata().partition_columns().to_vec();
        let operation = DeltaOperation::Write {
            mode: SaveMode::Append,
            partition_by: (!partitions.is_empty()).then_some(partitions),
            predicate: None,
        };
        let url = self.table.table_url().clone();
        self.metadata
            .bounded(&self.name, &url, async {
                CommitBuilder::default()
                    .with_actions(adds.into_iter().map(Action::Add).collect())
                    .build(Some(state), self.table.log_store(), operation)
                    .await
                    .map(|_| ())
            })
            .await
            .map_err(|e| self.error(e))?;
        Ok(rows)
    }
}

/// `batch` with the table's column types: a query's rows may be typed otherwise (DataFusion
/// reads Parquet strings as `Utf8View`, which a table made from them stores as `string`, read
/// back as `Utf8`), and deltalake's writer takes only the table's own.
fn as_table(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    if batch.schema().fields() == schema.fields() {
        return Ok(batch);
    }
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| cast(column, field.data_type()))
        .collect::<Result<Vec<_>, _>>()?;
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &options,
    )?)
}
