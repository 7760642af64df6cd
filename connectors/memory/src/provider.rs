//! The memory catalog as DataFusion sees it: [`MemoryCatalog`] → `MemorySchema` →
//! `MemoryTable` (or a view, kept as DataFusion's `ViewTable`), plus the `MemorySink` behind
//! `INSERT`.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use braid_connector_spi::ConnectorError;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{CatalogProvider, SchemaProvider, Session, TableProvider};
use datafusion::common::stats::Precision;
use datafusion::common::{Statistics, not_impl_err};
use datafusion::datasource::TableType;
use datafusion::datasource::sink::{DataSink, DataSinkExec};
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan};
use futures::StreamExt;

use crate::exec::MemoryScan;
use crate::metadata::{MemoryStore, TableData};
use crate::split::split_count;

/// A memory catalog backed by a [`MemoryStore`].
#[derive(Debug)]
pub struct MemoryCatalog {
    store: Arc<MemoryStore>,
    endpoint: Option<String>,
}

impl MemoryCatalog {
    pub fn new(store: Arc<MemoryStore>, endpoint: Option<String>) -> Self {
        Self { store, endpoint }
    }

    fn schema_provider(&self, name: &str) -> Arc<dyn SchemaProvider> {
        Arc::new(MemorySchema {
            store: self.store.clone(),
            schema: name.to_string(),
            endpoint: self.endpoint.clone(),
        })
    }
}

impl CatalogProvider for MemoryCatalog {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema_names(&self) -> Vec<String> {
        self.store.schema_names()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        self.store
            .has_schema(name)
            .then(|| self.schema_provider(name))
    }

    /// `CREATE SCHEMA`: the provider DataFusion passes is replaced by one backed by the store.
    fn register_schema(
        &self,
        name: &str,
        _schema: Arc<dyn SchemaProvider>,
    ) -> Result<Option<Arc<dyn SchemaProvider>>> {
        self.store.create_schema(name);
        Ok(None)
    }

    fn deregister_schema(
        &self,
        name: &str,
        _cascade: bool,
    ) -> Result<Option<Arc<dyn SchemaProvider>>> {
        let provider = self.schema_provider(name);
        Ok(self.store.drop_schema(name)?.then_some(provider))
    }
}

/// One schema of a memory catalog.
#[derive(Debug)]
struct MemorySchema {
    store: Arc<MemoryStore>,
    schema: String,
    endpoint: Option<String>,
}

#[async_trait]
impl SchemaProvider for MemorySchema {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn table_names(&self) -> Vec<String> {
        self.store.table_names(&self.schema)
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if let Some(view) = self.store.view(&self.schema, name) {
            return Ok(Some(view));
        }
        Ok(self.store.table(&self.schema, name).map(|data| {
            Arc::new(MemoryTable {
                store: self.store.clone(),
                schema: self.schema.clone(),
                name: name.to_string(),
                data,
                endpoint: self.endpoint.clone(),
            }) as Arc<dyn TableProvider>
        }))
    }

    /// `CREATE TABLE`: creates an empty table with the provider's columns; rows arrive
    /// through `INSERT` (`CREATE TABLE AS` is create + insert).
    fn register_table(
        &self,
        name: String,
        table: Arc<dyn TableProvider>,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        // `CREATE VIEW`: DataFusion's view, its query planned now, is kept as it is.
        if table.table_type() == TableType::View {
            self.store.create_view(&self.schema, &name, table)?;
        } else {
            self.store
                .create_table(&self.schema, &name, table.schema())?;
        }
        Ok(None)
    }

    fn deregister_table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if let Some(view) = self.store.view(&self.schema, name) {
            self.store.drop_relation(&self.schema, name);
            return Ok(Some(view));
        }
        let Some(data) = self.store.table(&self.schema, name) else {
            return Ok(None);
        };
        self.store.drop_relation(&self.schema, name);
        Ok(Some(Arc::new(MemoryTable {
            store: self.store.clone(),
            schema: self.schema.clone(),
            name: name.to_string(),
            data,
            endpoint: self.endpoint.clone(),
        })))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.store
            .table_names(&self.schema)
            .iter()
            .any(|t| t == name)
    }
}

/// A memory table.
#[derive(Debug)]
struct MemoryTable {
    store: Arc<MemoryStore>,
    schema: String,
    name: String,
    data: Arc<TableData>,
    endpoint: Option<String>,
}

#[async_trait]
impl TableProvider for MemoryTable {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> SchemaRef {
        self.data.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let Some(endpoint) = self.endpoint.clone() else {
            return Err(ConnectorError::Source {
                catalog: self.store.catalog().to_string(),
                message: "memory tables can only be planned on the coordinator".into(),
            }
            .into());
        };
        let snapshot = self.data.snapshot();
        let parts = split_count(snapshot.0, state.config().target_partitions());
        Ok(Arc::new(MemoryScan::exec(
            self.store.catalog().to_string(),
            self.schema.clone(),
            self.name.clone(),
            self.data.id.clone(),
            &self.data.schema,
            projection.cloned(),
            snapshot,
            parts,
            endpoint,
        )?))
    }

    fn statistics(&self) -> Option<Statistics> {
        let mut stats = Statistics::new_unknown(&self.data.schema);
        stats.num_rows = Precision::Exact(self.data.snapshot().1);
        Some(stats)
    }

    async fn insert_into(
        &self,
        _state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let mode = match insert_op {
            InsertOp::Append => WriteMode::Append,
            // `CREATE OR REPLACE TABLE ... AS` and `INSERT OVERWRITE`: a new table of the
            // input's columns replaces this one once all rows are in.
            InsertOp::Overwrite => WriteMode::Replace {
                columns: input.schema(),
            },
            InsertOp::Replace => {
                return not_impl_err!(
                    "{insert_op} into memory table '{}.{}.{}'; use INSERT INTO or CREATE OR REPLACE TABLE",
                    self.store.catalog(),
                    self.schema,
                    self.name
                );
            }
        };
        let sink = MemorySink {
            store: self.store.clone(),
            schema: self.schema.clone(),
            name: self.name.clone(),
            data: self.data.clone(),
            mode,
        };
        Ok(Arc::new(DataSinkExec::new(input, Arc::new(sink), None)))
    }
}

/// Appends an insert's rows to a memory table (or replaces the table) all at once when the
/// input is complete, so a failed or too large write leaves the table as it was.
#[derive(Debug)]
struct MemorySink {
    store: Arc<MemoryStore>,
    schema: String,
    name: String,
    data: Arc<TableData>,
    mode: WriteMode,
}

#[derive(Debug)]
enum WriteMode {
    Append,
    /// A new table with these columns takes the old one's place.
    Replace {
        columns: SchemaRef,
    },
}

impl MemorySink {
    /// The columns the written rows take.
    fn columns(&self) -> &SchemaRef {
        match &self.mode {
            WriteMode::Append => &self.data.schema,
            WriteMode::Replace { columns } => columns,
        }
    }
}

impl DisplayAs for MemorySink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "MemorySink: table={}.{}.{}",
            self.store.catalog(),
            self.schema,
            self.name
        )
    }
}

#[async_trait]
impl DataSink for MemorySink {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> &SchemaRef {
        self.columns()
    }

    async fn write_all(
        &self,
        mut data: SendableRecordBatchStream,
        _context: &Arc<TaskContext>,
    ) -> Result<u64> {
        let mut batches = Vec::new();
        let mut pending = 0;
        while let Some(batch) = data.next().await {
            let batch = batch?;
            // Take the table's own field names and nullability (the input may name columns
            // after a SELECT's expressions).
            let batch = RecordBatch::try_new(self.columns().clone(), batch.columns().to_vec())?;
            pending += batch.get_array_memory_size();
            let before = match self.mode {
                WriteMode::Append => self.data.bytes(),
                WriteMode::Replace { .. } => 0,
            };
            self.store
                .check_size(&self.schema, &self.name, before + pending)?;
            batches.push(batch);
        }
        let rows = match &self.mode {
            WriteMode::Append => {
                self.store
                    .append(&self.schema, &self.name, &self.data, batches)?
            }
            WriteMode::Replace { columns } => self.store.replace_table(
                &self.schema,
                &self.name,
                &self.data.id,
                columns.clone(),
                batches,
            )?,
        };
        Ok(rows as u64)
    }
}
