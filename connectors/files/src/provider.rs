//! DataFusion's view of a `files` catalog: [`FilesCatalog`] → [`FilesSchema`] →
//! [`FilesTable`], whose `scan` takes the files the statement reads (partition directories
//! pruned by the filters on partition columns) and plans them into splits.

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use braid_connector_spi::{
    ConnectorContext, ConnectorError, ListedCatalog, ScanEstimate, ScanExec, SchemaListing, Split,
    encode_schema,
};
use datafusion::arrow::array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::common::cast::as_boolean_array;
use datafusion::common::{ColumnStatistics, DFSchema};
use datafusion::datasource::empty::EmptyTable;
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::ListingTable;
use datafusion::datasource::listing::helpers::expr_applicable_for_cols;
use datafusion::error::Result;
use datafusion::logical_expr::execution_props::ExecutionProps;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_expr::create_physical_expr;
use datafusion::physical_plan::ExecutionPlan;

use crate::config::{CsvOptions, Format, TableEntry};
use crate::exec::{FilesScan, FilesScanHandle, unqualified};
use crate::metadata::{Metadata, PartitionType, ResolvedTable, TableFile};
use crate::split::{FileChunk, plan_splits};

/// What every level of the catalog shares.
#[derive(Debug)]
pub struct Shared {
    pub metadata: Metadata,
    pub context: ConnectorContext,
}

/// A `files` catalog; listings answer from [`Metadata`]'s memory.
pub type FilesCatalog = ListedCatalog<Shared>;

impl SchemaListing for Shared {
    fn schema_names(&self) -> Vec<String> {
        self.metadata.schemas()
    }

    fn schema_provider(self: Arc<Self>, name: &str) -> Arc<dyn SchemaProvider> {
        Arc::new(FilesSchema {
            shared: self,
            name: name.to_string(),
        })
    }
}

/// One schema of a `files` catalog.
#[derive(Debug)]
pub struct FilesSchema {
    shared: Arc<Shared>,
    name: String,
}

#[async_trait]
impl SchemaProvider for FilesSchema {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn table_names(&self) -> Vec<String> {
        self.shared.metadata.tables(&self.name)
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let Some(table) = self.shared.metadata.resolve(&self.name, name).await? else {
            return Ok(None);
        };
        Ok(Some(Arc::new(FilesTable {
            shared: self.shared.clone(),
            schema: table.schema(),
            table,
        })))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.table_names().iter().any(|t| t == name)
    }

    /// `CREATE EXTERNAL TABLE ... STORED AS PARQUET|CSV LOCATION '...'`: DataFusion made a
    /// `ListingTable`; the catalog keeps where and how to read it, and resolves it as any other
    /// table.
    fn register_table(
        &self,
        name: String,
        table: Arc<dyn TableProvider>,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        let metadata = &self.shared.metadata;
        let unsupported = |operation: String| ConnectorError::Unsupported {
            catalog: metadata.catalog().to_string(),
            kind: crate::KIND,
            operation,
        };
        let Some(listing) = table.as_any().downcast_ref::<ListingTable>() else {
            return Err(unsupported("CREATE TABLE (use CREATE EXTERNAL TABLE)".into()).into());
        };
        let location = match listing.table_paths().as_slice() {
            [path] => path.as_str().to_string(),
            _ => return Err(unsupported("a table of several locations".into()).into()),
        };
        let format = listing.options().format.as_any();
        let (format, csv) = if format.is::<ParquetFormat>() {
            (Format::Parquet, None)
        } else if let Some(csv) = format.downcast_ref::<CsvFormat>() {
            let options = csv.options();
            let csv = CsvOptions {
                header: options.has_header.unwrap_or(true),
                delimiter: char::from(options.delimiter).to_string(),
            };
            (Format::Csv, Some(csv))
        } else {
            return Err(unsupported(format!(
                "STORED AS {} (only PARQUET and CSV)",
                listing
                    .options()
                    .file_extension
                    .trim_start_matches('.')
                    .to_uppercase()
            ))
            .into());
        };
        metadata.create_table(
            &self.name,
            &name,
            TableEntry {
                location,
                format: Some(format),
                csv,
            },
        )?;
        Ok(None)
    }

    /// `DROP TABLE` of a table `CREATE EXTERNAL TABLE` made; its files stay. DataFusion and
    /// the engine call it for a table that exists.
    fn deregister_table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        self.shared.metadata.drop_table(&self.name, name)?;
        // DataFusion only asks whether there was a table.
        Ok(Some(Arc::new(EmptyTable::new(Arc::new(Schema::empty())))))
    }
}

/// One table: a directory of Parquet or CSV files.
#[derive(Debug)]
pub struct FilesTable {
    shared: Arc<Shared>,
    table: ResolvedTable,
    schema: SchemaRef,
}

impl FilesTable {
    /// The files a scan with `filters` reads, in path order: the table's files whose partition
    /// values pass the filters on partition columns.
    fn files(&self, filters: &[Expr]) -> Result<Vec<&TableFile>> {
        let table = &self.table;
        let keep = partition_mask(table, filters)?;
        Ok(table
            .files
            .iter()
            .zip(keep)
            .filter_map(|(file, keep)| keep.then_some(file))
            .collect())
    }

    /// What the scan of `files` with `filters` reads, as the files' metadata tells before any
    /// is read: for Parquet the rows and each column's counts and bounds in the footers (exact
    /// without filters, else upper bounds), one per column of the table; for CSV the files'
    /// sizes, about the size of their rows.
    async fn estimate(
        &self,
        files: &[&TableFile],
        filters: &[Expr],
    ) -> Result<(ScanEstimate, Option<Vec<ColumnStatistics>>)> {
        if self.table.format.format == Format::Csv {
            let bytes = files.iter().map(|f| f.meta.size as usize).sum();
            return Ok((
                ScanEstimate {
                    bytes: Some(bytes),
                    ..ScanEstimate::default()
                },
                None,
            ));
        }
        let footers = self
            .shared
            .metadata
            .parquet_statistics(&self.table, files)
            .await?;
        // A partition column's values are in the paths, not the footers: left unknown.
        let columns = footers.column_statistics;
        let exact = filters.is_empty();
        let estimate = ScanEstimate {
            rows: footers.num_rows.get_value().copied(),
            bytes: None,
            exact,
        };
        Ok((estimate, Some(columns)))
    }
}

/// For each of `table`'s files, whether its partition values pass the filters that only
/// read partition columns (all pass when there are none).
fn partition_mask(table: &ResolvedTable, filters: &[Expr]) -> Result<Vec<bool>> {
    let names: Vec<&str> = table.partitions.iter().map(|(n, _)| n.as_str()).collect();
    let on_partitions = filters
        .iter()
        .filter(|f| !names.is_empty() && expr_applicable_for_cols(&names, f))
        .map(|f| unqualified(f.clone()))
        .collect::<Result<Vec<_>>>()?;
    let (Some(filter), false) = (conjunction(on_partitions), table.files.is_empty()) else {
        return Ok(vec![true; table.files.len()]);
    };
    let columns: Vec<ArrayRef> = table
        .partitions
        .iter()
        .enumerate()
        .map(|(i, (_, kind))| {
            let values = table.files.iter().map(|f| f.partition_values[i].as_str());
            match kind {
                PartitionType::Bigint => {
                    Arc::new(Int64Array::from_iter(values.map(|v| v.parse::<i64>().ok())))
                        as ArrayRef
                }
                PartitionType::Varchar => Arc::new(StringArray::from_iter_values(values)),
            }
        })
        .collect();
    let schema = Arc::new(Schema::new(table.partition_fields()));
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    let predicate = create_physical_expr(
        &filter,
        &DFSchema::try_from(schema.as_ref().clone())?,
        &ExecutionProps::new(),
    )?;
    let result = predicate.evaluate(&batch)?.into_array(batch.num_rows())?;
    let mask = as_boolean_array(&result)?;
    Ok((0..mask.len())
        .map(|i| mask.is_valid(i) && mask.value(i))
        .collect())
}

#[async_trait]
impl TableProvider for FilesTable {
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
        // Filters prune partitions, files, row groups and rows; the plan still applies them.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let metadata = &self.shared.metadata;
        let kept = self.files(filters)?;
        let (estimate, columns) = self.estimate(&kept, filters).await?;
        let files: Vec<FileChunk> = kept
            .iter()
            .map(|file| FileChunk {
                path: file.meta.location.to_string(),
                size: file.meta.size,
                modified_ms: file.meta.last_modified.timestamp_millis(),
                range: None,
                partition_values: file.partition_values.iter().cloned().map(Some).collect(),
            })
            .collect();
        let file_count = files.len();
        let splits = plan_splits(
            files,
            state.config().target_partitions(),
            metadata.config().max_split_size,
            self.table.format.format == Format::Parquet,
        )
        .iter()
        .map(Split::encode)
        .collect::<Result<Vec<_>, _>>()?;
        let handle = FilesScanHandle {
            catalog: metadata.catalog().to_string(),
            table: self.table.name.clone(),
            location: self.table.url.as_str().to_string(),
            format: self.table.format.clone(),
            file_schema: encode_schema(&self.table.file_schema)?,
            partition_schema: encode_schema(&Schema::new(self.table.partition_fields()))?,
            projection: projection.cloned(),
            filters: FilesScanHandle::encode_filters(filters),
            limit,
            files: file_count,
            estimate: estimate.limited(limit, splits.len()),
        };
        let mut source = FilesScan::new(handle, metadata.stores().clone())?;
        if let Some(columns) = columns {
            source = source.with_column_statistics(columns, !filters.is_empty());
        }
        let splits = self.shared.context.plan_splits(splits)?;
        Ok(Arc::new(ScanExec::new(source, splits)))
    }
}
