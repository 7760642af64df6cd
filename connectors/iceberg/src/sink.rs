//! [`IcebergSink`]: `INSERT INTO` and the rows of `CREATE TABLE AS`. The engine runs the
//! statement's query as a job and streams its rows into the table's sink on the coordinator,
//! which writes Parquet data files with the table's partition spec and properties (iceberg's
//! writers) and commits them as one append. Nothing is visible until the commit; a failed
//! statement leaves the table as it was (its written files are unreferenced).

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use braid_connector_spi::ConnectorError;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::datasource::sink::DataSink;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType};
use futures::StreamExt;
use iceberg::arrow::{FieldMatchMode, RecordBatchPartitionSplitter};
use iceberg::spec::DataFileFormat;
use iceberg::table::Table;
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use iceberg::writer::base_writer::data_file_writer::DataFileWriterBuilder;
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::file_writer::location_generator::{
    DefaultFileNameGenerator, DefaultLocationGenerator,
};
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::partitioning::PartitioningWriter;
use iceberg::writer::partitioning::fanout_writer::FanoutWriter;
use iceberg::writer::partitioning::unpartitioned_writer::UnpartitionedWriter;

use crate::metadata::Metadata;

/// Writes rows into one Iceberg table and commits them.
pub struct IcebergSink {
    metadata: Arc<Metadata>,
    /// The table as it was when the statement was planned (the commit checks it is current).
    table: Table,
    /// `schema.table`.
    name: String,
    schema: SchemaRef,
}

impl IcebergSink {
    pub fn new(metadata: Arc<Metadata>, table: Table, name: String, schema: SchemaRef) -> Self {
        Self {
            metadata,
            table,
            name,
            schema,
        }
    }

    fn error(&self, e: iceberg::Error) -> DataFusionError {
        self.metadata
            .error(&format!("write to table '{}'", self.name), e)
            .into()
    }
}

impl fmt::Debug for IcebergSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IcebergSink")
            .field("catalog", &self.metadata.catalog())
            .field("table", &self.name)
            .finish()
    }
}

impl DisplayAs for IcebergSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IcebergSink: catalog={}, table={}",
            self.metadata.catalog(),
            self.name
        )
    }
}

#[async_trait]
impl DataSink for IcebergSink {
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
        let metadata = self.table.metadata();
        let properties = metadata.table_properties().map_err(|e| self.error(e))?;
        let format = properties
            .write_format_default
            .parse::<DataFileFormat>()
            .map_err(|e| self.error(e))?;
        if format != DataFileFormat::Parquet {
            return Err(ConnectorError::Unsupported {
                catalog: self.metadata.catalog().to_string(),
                kind: crate::KIND,
                operation: format!("writing {format} data files (table '{}')", self.name),
            }
            .into());
        }
        let schema = metadata.current_schema().clone();
        // DataFusion's rows carry no field ids: columns are matched by name.
        let parquet = ParquetWriterBuilder::from_table_properties(&properties, schema.clone())
            .with_match_mode(FieldMatchMode::Name);
        let location = DefaultLocationGenerator::new(metadata).map_err(|e| self.error(e))?;
        let names = DefaultFileNameGenerator::new(
            format!("braid-{}", uuid::Uuid::now_v7()),
            None,
            DataFileFormat::Parquet,
        );
        let files = DataFileWriterBuilder::new(RollingFileWriterBuilder::new(
            parquet,
            properties.write_target_file_size_bytes,
            self.table.file_io().clone(),
            location,
            names,
        ));
        let spec = metadata.default_partition_spec().clone();
        let mut rows = 0u64;
        let written = if spec.is_unpartitioned() {
            let mut writer = UnpartitionedWriter::new(files);
            while let Some(batch) = data.next().await {
                let batch = batch?;
                rows += batch.num_rows() as u64;
                writer.write(batch).await.map_err(|e| self.error(e))?;
            }
            writer.close().await.map_err(|e| self.error(e))?
        } else {
            // The rows carry their partition (`project_with_partition` in the plan).
            let splitter = RecordBatchPartitionSplitter::try_new_with_precomputed_values(
                schema.clone(),
                spec.clone(),
            )
            .map_err(|e| self.error(e))?;
            let mut writer = FanoutWriter::new(files);
            while let Some(batch) = data.next().await {
                let batch = batch?;
                rows += batch.num_rows() as u64;
                for (key, part) in splitter.split(&batch).map_err(|e| self.error(e))? {
                    writer.write(key, part).await.map_err(|e| self.error(e))?;
                }
            }
            writer.close().await.map_err(|e| self.error(e))?
        };
        if written.is_empty() {
            return Ok(0);
        }
        let transaction = Transaction::new(&self.table);
        let transaction = transaction
            .fast_append()
            .add_data_files(written)
            .apply(transaction)
            .map_err(|e| self.error(e))?;
        let client = self.metadata.client().await?;
        self.metadata
            .round_trip(
                &format!("commit to table '{}'", self.name),
                transaction.commit(client.as_ref()),
            )
            .await?;
        Ok(rows)
    }
}
