//! [`IcebergSink`]: `INSERT INTO` and the rows of `CREATE TABLE AS`. The engine runs the
//! statement's query as a job and streams its rows into the table's sink on the coordinator,
//! which writes Parquet data files with the table's partition spec and properties (iceberg's
//! writers) and commits them as one append. Nothing is visible until the commit; a failed
//! statement leaves the table as it was (its written files are unreferenced).

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use braid_connector_spi::ConnectorError;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::datasource::sink::DataSink;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::parquet::basic::{Compression, GzipLevel, ZstdLevel};
use datafusion::parquet::file::properties::{CdcOptions, WriterProperties};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType};
use futures::StreamExt;
use iceberg::arrow::{FieldMatchMode, RecordBatchPartitionSplitter};
use iceberg::spec::{DataFileFormat, TableProperties};
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

/// The Parquet writer properties of a table's data files: its `write.parquet.compression-codec`
/// (Iceberg's default `zstd`) and `write.parquet.compression-level`, and its content-defined
/// chunking. Workaround for apache/iceberg-rust#2659 (fixed by #2887, after 0.10.1): 0.10's
/// `ParquetWriterBuilder::from_table_properties` reads only the chunking keys, so files would be
/// written uncompressed. An error names the property.
fn parquet_properties(
    table: &HashMap<String, String>,
    properties: &TableProperties,
) -> Result<WriterProperties, String> {
    const CODEC: &str = "write.parquet.compression-codec";
    const LEVEL: &str = "write.parquet.compression-level";
    let level = table
        .get(LEVEL)
        .map(|level| level.parse::<i32>())
        .transpose()
        .map_err(|e| format!("'{LEVEL}': {e}"))?;
    let codec = table.get(CODEC).map_or("zstd", String::as_str);
    let invalid_level = |e: datafusion::parquet::errors::ParquetError| format!("'{LEVEL}': {e}");
    let compression = match codec.to_ascii_lowercase().as_str() {
        "zstd" => Compression::ZSTD(ZstdLevel::try_new(level.unwrap_or(3)).map_err(invalid_level)?),
        "gzip" => Compression::GZIP(
            GzipLevel::try_new(level.unwrap_or(6).max(0) as u32).map_err(invalid_level)?,
        ),
        "snappy" => Compression::SNAPPY,
        "lz4" => Compression::LZ4_RAW,
        "uncompressed" | "none" => Compression::UNCOMPRESSED,
        other => {
            return Err(format!(
                "'{CODEC}': '{other}' is not one of zstd, gzip, snappy, lz4, uncompressed"
            ));
        }
    };
    let chunking = properties.cdc_enabled.then_some(CdcOptions {
        min_chunk_size: properties.cdc_min_chunk_size,
        max_chunk_size: properties.cdc_max_chunk_size,
        norm_level: properties.cdc_norm_level,
    });
    Ok(WriterProperties::builder()
        .set_compression(compression)
        .set_content_defined_chunking(chunking)
        .build())
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
        let writer_properties =
            parquet_properties(metadata.properties(), &properties).map_err(|reason| {
                ConnectorError::InvalidOption {
                    catalog: self.metadata.catalog().to_string(),
                    key: format!("table '{}' property {reason}", self.name),
                    reason: "fix the table's property".into(),
                }
            })?;
        // DataFusion's rows carry no field ids: columns are matched by name.
        let parquet = ParquetWriterBuilder::new_with_match_mode(
            writer_properties,
            schema.clone(),
            FieldMatchMode::Name,
        );
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
