//! [`MemoryStore`]: the tables of one memory catalog, held by the coordinator.

use std::collections::BTreeMap;
use std::sync::Arc;

use braid_connector_spi::ConnectorError;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use parking_lot::RwLock;

/// The schema every memory catalog starts with.
pub const DEFAULT_SCHEMA: &str = "default";

/// One table: an append-only list of batches.
#[derive(Debug)]
pub struct TableData {
    /// Changes when a table is dropped and created again, so a scan never reads a newer table
    /// of the same name.
    pub id: String,
    pub schema: SchemaRef,
    state: RwLock<TableState>,
}

#[derive(Debug, Default)]
struct TableState {
    batches: Vec<RecordBatch>,
    rows: usize,
    bytes: usize,
}

impl TableData {
    /// `(batches, rows)` now: a scan reads exactly the first `batches` batches.
    pub fn snapshot(&self) -> (usize, usize) {
        let state = self.state.read();
        (state.batches.len(), state.rows)
    }

    /// The batches at `positions`, which must be below a snapshot's batch count.
    pub fn batches_at(&self, positions: impl Iterator<Item = usize>) -> Vec<RecordBatch> {
        let state = self.state.read();
        positions
            .filter_map(|i| state.batches.get(i).cloned())
            .collect()
    }
}

/// The tables of one memory catalog, by schema and name.
#[derive(Debug)]
pub struct MemoryStore {
    catalog: String,
    max_table_bytes: usize,
    schemas: RwLock<BTreeMap<String, BTreeMap<String, Arc<TableData>>>>,
}

impl MemoryStore {
    pub fn new(catalog: String, max_table_bytes: usize) -> Self {
        let schemas = BTreeMap::from([(DEFAULT_SCHEMA.to_string(), BTreeMap::new())]);
        Self {
            catalog,
            max_table_bytes,
            schemas: RwLock::new(schemas),
        }
    }

    pub fn catalog(&self) -> &str {
        &self.catalog
    }

    pub fn schema_names(&self) -> Vec<String> {
        self.schemas.read().keys().cloned().collect()
    }

    pub fn has_schema(&self, schema: &str) -> bool {
        self.schemas.read().contains_key(schema)
    }

    /// Creates a schema; creating one that exists is a no-op.
    pub fn create_schema(&self, schema: &str) {
        self.schemas.write().entry(schema.to_string()).or_default();
    }

    /// Drops an empty schema.
    pub fn drop_schema(&self, schema: &str) -> Result<bool, ConnectorError> {
        let mut schemas = self.schemas.write();
        match schemas.get(schema) {
            None => Ok(false),
            Some(tables) if !tables.is_empty() => Err(ConnectorError::Unsupported {
                catalog: self.catalog.clone(),
                kind: crate::KIND,
                operation: format!("dropping schema '{schema}' while it has tables"),
            }),
            Some(_) => Ok(schemas.remove(schema).is_some()),
        }
    }

    pub fn table_names(&self, schema: &str) -> Vec<String> {
        self.schemas
            .read()
            .get(schema)
            .map(|tables| tables.keys().cloned().collect())
            .unwrap_or_default()
    }

    pub fn table(&self, schema: &str, table: &str) -> Option<Arc<TableData>> {
        self.schemas.read().get(schema)?.get(table).cloned()
    }

    /// The table whose id is `id`, or an error if it was dropped since the scan was planned.
    pub fn table_by_id(
        &self,
        schema: &str,
        table: &str,
        id: &str,
    ) -> Result<Arc<TableData>, ConnectorError> {
        self.table(schema, table)
            .filter(|t| t.id == id)
            .ok_or_else(|| ConnectorError::Source {
                catalog: self.catalog.clone(),
                message: format!("table '{schema}.{table}' was dropped while a query read it"),
            })
    }

    /// Creates an empty table.
    pub fn create_table(
        &self,
        schema: &str,
        table: &str,
        columns: SchemaRef,
    ) -> Result<Arc<TableData>, ConnectorError> {
        let mut schemas = self.schemas.write();
        let tables = schemas
            .get_mut(schema)
            .ok_or_else(|| ConnectorError::SchemaNotFound {
                catalog: self.catalog.clone(),
                schema: schema.to_string(),
            })?;
        if tables.contains_key(table) {
            return Err(ConnectorError::TableExists {
                catalog: self.catalog.clone(),
                schema: schema.to_string(),
                table: table.to_string(),
            });
        }
        let data = Arc::new(TableData {
            id: uuid::Uuid::new_v4().to_string(),
            schema: columns,
            state: RwLock::new(TableState::default()),
        });
        tables.insert(table.to_string(), data.clone());
        Ok(data)
    }

    /// Drops a table; `false` if there was none.
    pub fn drop_table(&self, schema: &str, table: &str) -> bool {
        self.schemas
            .write()
            .get_mut(schema)
            .and_then(|tables| tables.remove(table))
            .is_some()
    }

    /// Appends `batches` to `data` all at once, or nothing if the table would grow past the limit.
    pub fn append(
        &self,
        schema: &str,
        table: &str,
        data: &TableData,
        batches: Vec<RecordBatch>,
    ) -> Result<usize, ConnectorError> {
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let bytes: usize = batches.iter().map(RecordBatch::get_array_memory_size).sum();
        let mut state = data.state.write();
        if state.bytes + bytes > self.max_table_bytes {
            return Err(self.too_large(schema, table, state.bytes + bytes));
        }
        state
            .batches
            .extend(batches.into_iter().filter(|b| b.num_rows() > 0));
        state.rows += rows;
        state.bytes += bytes;
        Ok(rows)
    }

    /// Fails early when an insert under way already exceeds the limit on its own.
    pub fn check_size(
        &self,
        schema: &str,
        table: &str,
        data: &TableData,
        pending_bytes: usize,
    ) -> Result<(), ConnectorError> {
        let total = data.state.read().bytes + pending_bytes;
        if total > self.max_table_bytes {
            return Err(self.too_large(schema, table, total));
        }
        Ok(())
    }

    fn too_large(&self, schema: &str, table: &str, bytes: usize) -> ConnectorError {
        ConnectorError::LimitExceeded {
            catalog: self.catalog.clone(),
            what: format!("table '{schema}.{table}' ({bytes} bytes)"),
            limit: format!("{} bytes", self.max_table_bytes),
            key: "max_table_bytes",
        }
    }
}
