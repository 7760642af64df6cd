//! DataFusion's view of an `iceberg` catalog: [`IcebergCatalog`] → [`IcebergSchema`] →
//! [`IcebergTable`]. A table is loaded from the Iceberg catalog each time a statement names it
//! (so every statement sees the latest commit) and pins one snapshot; its `scan` plans the file
//! scan tasks of that snapshot on the coordinator — partitions and manifests pruned by the
//! filters turned into an Iceberg predicate — and packs them into splits for the workers.

use std::any::Any;
use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use braid_connector_spi::{
    ComputedTable, ConnectorContext, ConnectorError, ListedCatalog, ScanEstimate, ScanExec,
    SchemaListing, Split, check_append, encode_schema, pack_files,
};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::common::Statistics;
use datafusion::common::stats::Precision;
use datafusion::datasource::sink::DataSinkExec;
use datafusion::error::Result;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::ExecutionPlan;
use futures::TryStreamExt;
use iceberg::arrow::schema_to_arrow_schema;
use iceberg::scan::FileScanTask;
use iceberg::spec::SchemaRef as IcebergSchemaRef;
use iceberg::table::Table;
use iceberg_datafusion::physical_plan::{convert_filters_to_predicate, project_with_partition};

use crate::exec::{IcebergScan, IcebergScanHandle, IcebergSplit, TaskPiece};
use crate::metadata::{Metadata, describe};
use crate::sink::IcebergSink;
use crate::system::{MetadataKind, MetadataTable, snapshot_at};

/// What every level of the catalog shares.
#[derive(Debug)]
pub struct Shared {
    pub metadata: Arc<Metadata>,
    pub context: ConnectorContext,
}

/// An `iceberg` catalog; listings answer from [`Metadata`]'s memory.
pub type IcebergCatalog = ListedCatalog<Shared>;

impl SchemaListing for Shared {
    fn schema_names(&self) -> Vec<String> {
        self.metadata.schemas()
    }

    fn schema_provider(self: Arc<Self>, name: &str) -> Arc<dyn SchemaProvider> {
        Arc::new(IcebergSchema {
            shared: self,
            name: name.to_string(),
        })
    }
}

/// One namespace of an Iceberg catalog.
#[derive(Debug)]
pub struct IcebergSchema {
    shared: Arc<Shared>,
    name: String,
}

#[async_trait]
impl SchemaProvider for IcebergSchema {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn table_names(&self) -> Vec<String> {
        self.shared.metadata.tables(&self.name)
    }

    /// `t`, a metadata table `t$snapshots` (Trino's names), or `t` at a version (the name the
    /// coordinator's rewrite of `FOR VERSION AS OF` / `FOR TIMESTAMP AS OF` gives it).
    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let metadata = &self.shared.metadata;
        let parsed = MetadataKind::parse_name(name).map_err(|reason| ConnectorError::Source {
            catalog: metadata.catalog().to_string(),
            message: format!("table '{}.{name}': {reason}", self.name),
        })?;
        let Some(table) = metadata.load(&self.name, parsed.table).await? else {
            return Ok(None);
        };
        let qualified = format!("{}.{}", self.name, parsed.table);
        let snapshot_id = parsed
            .version
            .map(|version| snapshot_at(version, &table, &qualified, metadata.catalog()))
            .transpose()?
            .or_else(|| table.metadata().current_snapshot_id());
        if let Some(kind) = parsed.metadata_table {
            return Ok(Some(ComputedTable::provider(MetadataTable::new(
                kind,
                table,
                qualified,
                snapshot_id,
                metadata.catalog(),
            )?)));
        }
        Ok(Some(Arc::new(IcebergTable::new(
            self.shared.clone(),
            table,
            qualified,
            snapshot_id,
            parsed.version.is_some(),
        )?)))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.table_names().iter().any(|t| t == name)
    }
}

/// One Iceberg table at one snapshot.
#[derive(Debug)]
pub struct IcebergTable {
    shared: Arc<Shared>,
    table: Table,
    /// `schema.table`.
    name: String,
    snapshot_id: Option<i64>,
    /// Read at a version named by the statement (not written to).
    historical: bool,
    /// The Iceberg schema read, and its Arrow form.
    iceberg_schema: IcebergSchemaRef,
    schema: SchemaRef,
}

impl IcebergTable {
    /// `table` at `snapshot_id`; with `historical`, its columns are those of that snapshot's
    /// schema (as in Trino), else the table's current ones.
    fn new(
        shared: Arc<Shared>,
        table: Table,
        name: String,
        snapshot_id: Option<i64>,
        historical: bool,
    ) -> Result<Self, ConnectorError> {
        let metadata = table.metadata();
        let schema = snapshot_id
            .filter(|_| historical)
            .and_then(|id| metadata.snapshot_by_id(id))
            .and_then(|snapshot| snapshot.schema_id())
            .and_then(|id| metadata.schema_by_id(id))
            .unwrap_or_else(|| metadata.current_schema())
            .clone();
        let arrow = schema_to_arrow_schema(&schema).map_err(|e| ConnectorError::Source {
            catalog: shared.metadata.catalog().to_string(),
            message: format!("table '{name}': unsupported schema: {}", describe(&e)),
        })?;
        Ok(Self {
            shared,
            table,
            name,
            snapshot_id,
            historical,
            iceberg_schema: schema,
            schema: Arc::new(arrow),
        })
    }

    /// The file scan tasks of a scan of `columns` under `filters`, ready to travel.
    async fn plan_files(
        &self,
        columns: Vec<String>,
        filters: &[Expr],
    ) -> Result<(Vec<FileScanTask>, Option<String>), ConnectorError> {
        let metadata = &self.shared.metadata;
        let predicate = convert_filters_to_predicate(filters);
        let mut builder = if columns.is_empty() {
            self.table.scan().select_empty()
        } else {
            self.table.scan().select(columns)
        };
        if let Some(predicate) = &predicate {
            builder = builder.with_filter(predicate.clone());
        }
        if let Some(id) = self.snapshot_id {
            builder = builder.snapshot_id(id);
        }
        let what = format!("plan a scan of table '{}'", self.name);
        let scan = builder.build().map_err(|e| metadata.error(&what, e))?;
        let mut tasks: Vec<FileScanTask> = metadata
            .round_trip(&what, async {
                scan.plan_files().await?.try_collect().await
            })
            .await?;
        for task in &mut tasks {
            // Not serializable; the reader reads partition columns from the data files, and
            // the name mapping travels once, in the handle.
            task.partition = None;
            task.partition_spec = None;
            task.name_mapping = None;
        }
        Ok((tasks, predicate.map(|p| p.to_string())))
    }
}

#[async_trait]
impl TableProvider for IcebergTable {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    /// The snapshot summary's `total-records` (the rows of its data files, deletes not
    /// subtracted), as the table's size before a scan is planned.
    fn statistics(&self) -> Option<Statistics> {
        let rows = match self.snapshot_id {
            Some(id) => self
                .table
                .metadata()
                .snapshot_by_id(id)?
                .summary()
                .additional_properties
                .get("total-records")?
                .parse::<usize>()
                .ok()?,
            None => 0,
        };
        let mut statistics = Statistics::new_unknown(&self.schema);
        statistics.num_rows = Precision::Inexact(rows);
        Some(statistics)
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // Filters prune manifests, files, row groups and rows; the plan still applies them.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    /// `INSERT INTO` (and the rows of `CREATE TABLE AS`): the coordinator writes the data files
    /// with the table's partition spec ([`IcebergSink`]) and commits them as one append.
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
        // The table as this statement resolved it: the commit fails, rather than overwrite,
        // if another writer committed since.
        let current = self.table.clone();
        let input = if current
            .metadata()
            .default_partition_spec()
            .is_unpartitioned()
        {
            input
        } else {
            // Each row's partition, for the sink to split by.
            project_with_partition(input, &current)?
        };
        let sink = IcebergSink::new(
            metadata.clone(),
            current,
            self.name.clone(),
            self.schema.clone(),
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
        let schema = match projection {
            Some(indices) => Arc::new(self.schema.project(indices)?),
            None => self.schema.clone(),
        };
        let columns = schema.fields().iter().map(|f| f.name().clone()).collect();
        let (tasks, predicate) = self.plan_files(columns, filters).await?;
        let data_files = tasks.len();
        // Known when every file's manifest entry gives its record count.
        let rows = tasks
            .iter()
            .map(|t| t.record_count.map(|n| n as usize))
            .sum::<Option<usize>>();
        let delete_files = tasks
            .iter()
            .flat_map(|t| t.deletes.iter().map(|d| d.file_path.as_str()))
            .collect::<BTreeSet<_>>()
            .len();
        let splits = pack_files(
            tasks.into_iter().map(TaskPiece).collect(),
            state.config().target_partitions(),
            metadata.config().max_split_size,
        )
        .into_iter()
        .map(|pieces| {
            Split::encode(&IcebergSplit {
                tasks: pieces.into_iter().map(|p| p.0).collect(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
        let handle = IcebergScanHandle {
            catalog: metadata.catalog().to_string(),
            table: self.name.clone(),
            snapshot_id: self.snapshot_id,
            schema: encode_schema(&schema)?,
            name_mapping: self
                .table
                .metadata()
                .properties()
                .get("schema.name-mapping.default")
                .cloned(),
            limit,
            predicate,
            data_files,
            delete_files,
            estimate: ScanEstimate::rows(rows).limited(limit, splits.len()),
        };
        let mut source = IcebergScan::new(handle, metadata.stores().clone())?;
        if let Some(id) = self.snapshot_id {
            let table = metadata
                .snapshot_columns(
                    &self.name,
                    &self.table,
                    id,
                    &self.iceberg_schema,
                    &self.schema,
                )
                .await?;
            // Filters and deletes may skip rows the manifests count.
            let filtered = !filters.is_empty() || delete_files > 0;
            source = source.with_column_statistics(&table, projection.map(Vec::as_slice), filtered);
        }
        let splits = self.shared.context.plan_splits(splits)?;
        Ok(Arc::new(ScanExec::new(source, splits)))
    }
}
