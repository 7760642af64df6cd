//! [`MemoryStore`]: the tables and views of one memory catalog, held by the coordinator.

use std::collections::BTreeMap;
use std::sync::Arc;

use braid_connector_spi::ConnectorError;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::TableProvider;
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

    /// The bytes of Arrow data the table holds.
    pub fn bytes(&self) -> usize {
        self.state.read().bytes
    }

    /// The batches at `positions`, which must be below a snapshot's batch count.
    pub fn batches_at(&self, positions: impl Iterator<Item = usize>) -> Vec<RecordBatch> {
        let state = self.state.read();
        positions
            .filter_map(|i| state.batches.get(i).cloned())
            .collect()
    }
}

/// A name in a schema: a table, or a view (DataFusion's `ViewTable`: its query, planned when
/// the view was created).
#[derive(Debug, Clone)]
enum Relation {
    Table(Arc<TableData>),
    View(Arc<dyn TableProvider>),
}

impl Relation {
    fn table(&self) -> Option<&Arc<TableData>> {
        match self {
            Relation::Table(data) => Some(data),
            Relation::View(_) => None,
        }
    }
}

/// The tables and views of one memory catalog, by schema and name.
#[derive(Debug)]
pub struct MemoryStore {
    catalog: String,
    max_table_bytes: usize,
    schemas: RwLock<BTreeMap<String, BTreeMap<String, Relation>>>,
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
                operation: format!("dropping schema '{schema}' while it has tables or views"),
            }),
            Some(_) => Ok(schemas.remove(schema).is_some()),
        }
    }

    /// The tables and views of `schema`.
    pub fn table_names(&self, schema: &str) -> Vec<String> {
        self.schemas
            .read()
            .get(schema)
            .map(|tables| tables.keys().cloned().collect())
            .unwrap_or_default()
    }

    pub fn table(&self, schema: &str, table: &str) -> Option<Arc<TableData>> {
        self.schemas
            .read()
            .get(schema)?
            .get(table)?
            .table()
            .cloned()
    }

    /// The view `schema.view`.
    pub fn view(&self, schema: &str, view: &str) -> Option<Arc<dyn TableProvider>> {
        match self.schemas.read().get(schema)?.get(view)? {
            Relation::View(view) => Some(view.clone()),
            Relation::Table(_) => None,
        }
    }

    /// Creates a view: `definition` is the provider DataFusion made of its query.
    pub fn create_view(
        &self,
        schema: &str,
        view: &str,
        definition: Arc<dyn TableProvider>,
    ) -> Result<(), ConnectorError> {
        self.insert(schema, view, Relation::View(definition))
    }

    /// Drops a table or view; `false` if there was none.
    pub fn drop_relation(&self, schema: &str, name: &str) -> bool {
        self.schemas
            .write()
            .get_mut(schema)
            .and_then(|relations| relations.remove(name))
            .is_some()
    }

    /// `ALTER TABLE|VIEW schema.name RENAME TO new_schema.new_name`, in one step: readers see
    /// the old name or the new one. A scan planned before the rename fails rather than read a
    /// table under a name it no longer has.
    pub fn rename(
        &self,
        (schema, name): (&str, &str),
        (new_schema, new_name): (&str, &str),
    ) -> Result<(), ConnectorError> {
        let mut schemas = self.schemas.write();
        let Some(target) = schemas.get(new_schema) else {
            return Err(ConnectorError::SchemaNotFound {
                catalog: self.catalog.clone(),
                schema: new_schema.to_string(),
            });
        };
        if target.contains_key(new_name) {
            return Err(ConnectorError::TableExists {
                catalog: self.catalog.clone(),
                schema: new_schema.to_string(),
                table: new_name.to_string(),
            });
        }
        let Some(relation) = schemas.get_mut(schema).and_then(|r| r.remove(name)) else {
            return Err(ConnectorError::TableNotFound {
                catalog: self.catalog.clone(),
                schema: schema.to_string(),
                table: name.to_string(),
            });
        };
        schemas
            .entry(new_schema.to_string())
            .or_default()
            .insert(new_name.to_string(), relation);
        Ok(())
    }

    /// Puts `relation` under a name no table or view has.
    fn insert(&self, schema: &str, name: &str, relation: Relation) -> Result<(), ConnectorError> {
        let mut schemas = self.schemas.write();
        let relations = schemas
            .get_mut(schema)
            .ok_or_else(|| ConnectorError::SchemaNotFound {
                catalog: self.catalog.clone(),
                schema: schema.to_string(),
            })?;
        if relations.contains_key(name) {
            return Err(ConnectorError::TableExists {
                catalog: self.catalog.clone(),
                schema: schema.to_string(),
                table: name.to_string(),
            });
        }
        relations.insert(name.to_string(), relation);
        Ok(())
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
                message: format!(
                    "table '{schema}.{table}' was dropped, renamed or replaced after the query \
                     was planned (a view that reads it must be created again)"
                ),
            })
    }

    /// Creates an empty table.
    pub fn create_table(
        &self,
        schema: &str,
        table: &str,
        columns: SchemaRef,
    ) -> Result<Arc<TableData>, ConnectorError> {
        let data = Arc::new(TableData {
            id: uuid::Uuid::new_v4().to_string(),
            schema: columns,
            state: RwLock::new(TableState::default()),
        });
        self.insert(schema, table, Relation::Table(data.clone()))?;
        Ok(data)
    }

    /// Appends `batches` to `data` all at once, or nothing if the table would grow past the
    /// limit or was dropped (or replaced) since the insert began.
    pub fn append(
        &self,
        schema: &str,
        table: &str,
        data: &TableData,
        batches: Vec<RecordBatch>,
    ) -> Result<usize, ConnectorError> {
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let bytes: usize = batches.iter().map(RecordBatch::get_array_memory_size).sum();
        // Held until the rows are in: a DROP waits for it, and one that came first is seen.
        let schemas = self.schemas.read();
        if schemas
            .get(schema)
            .and_then(|t| t.get(table)?.table())
            .map(|t| &t.id)
            != Some(&data.id)
        {
            return Err(self.dropped(schema, table));
        }
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

    /// Replaces the table `old_id` with a new one of `columns` holding `batches`, in one step:
    /// readers see the old table or the new one, never neither. An error, and no change, if
    /// the table was dropped or replaced meanwhile or the rows exceed the limit.
    pub fn replace_table(
        &self,
        schema: &str,
        table: &str,
        old_id: &str,
        columns: SchemaRef,
        batches: Vec<RecordBatch>,
    ) -> Result<usize, ConnectorError> {
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let bytes: usize = batches.iter().map(RecordBatch::get_array_memory_size).sum();
        if bytes > self.max_table_bytes {
            return Err(self.too_large(schema, table, bytes));
        }
        let mut schemas = self.schemas.write();
        let slot = schemas
            .get_mut(schema)
            .and_then(|tables| tables.get_mut(table))
            .filter(|t| t.table().is_some_and(|t| t.id == old_id))
            .ok_or_else(|| self.dropped(schema, table))?;
        *slot = Relation::Table(Arc::new(TableData {
            id: uuid::Uuid::new_v4().to_string(),
            schema: columns,
            state: RwLock::new(TableState {
                batches: batches.into_iter().filter(|b| b.num_rows() > 0).collect(),
                rows,
                bytes,
            }),
        }));
        Ok(rows)
    }

    fn dropped(&self, schema: &str, table: &str) -> ConnectorError {
        ConnectorError::Source {
            catalog: self.catalog.clone(),
            message: format!(
                "table '{schema}.{table}' was dropped or replaced while rows were written to it; nothing was written"
            ),
        }
    }

    /// Fails early when a write under way would bring a table to `total_bytes`.
    pub fn check_size(
        &self,
        schema: &str,
        table: &str,
        total_bytes: usize,
    ) -> Result<(), ConnectorError> {
        if total_bytes > self.max_table_bytes {
            return Err(self.too_large(schema, table, total_bytes));
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

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int32Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    fn batch(values: Vec<i32>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int32, true)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int32Array::from(values))]).expect("batch")
    }

    #[test]
    fn an_insert_into_a_dropped_table_fails() {
        let store = MemoryStore::new("memory".into(), 1 << 20);
        let data = store
            .create_table("default", "t", batch(vec![]).schema())
            .expect("create");
        assert!(store.drop_relation("default", "t"));
        let err = store
            .append("default", "t", &data, vec![batch(vec![1])])
            .expect_err("dropped")
            .to_string();
        assert!(err.contains("was dropped"), "{err}");
        // A new table of the same name is not the one the insert began with.
        store
            .create_table("default", "t", batch(vec![]).schema())
            .expect("create again");
        assert!(
            store
                .append("default", "t", &data, vec![batch(vec![1])])
                .is_err()
        );
        assert_eq!(store.table("default", "t").expect("t").snapshot(), (0, 0));
    }

    #[test]
    fn replace_swaps_the_whole_table_or_nothing() {
        let store = MemoryStore::new("memory".into(), 1 << 20);
        let old = store
            .create_table("default", "t", batch(vec![]).schema())
            .expect("create");
        store
            .append("default", "t", &old, vec![batch(vec![1, 2])])
            .expect("append");
        let new_columns = Arc::new(Schema::new(vec![Field::new("y", DataType::Int32, true)]));
        let rows = store
            .replace_table(
                "default",
                "t",
                &old.id,
                new_columns.clone(),
                vec![batch(vec![7])],
            )
            .expect("replace");
        assert_eq!(rows, 1);
        let now = store.table("default", "t").expect("t");
        assert_eq!(
            (now.schema.clone(), now.snapshot()),
            (new_columns.clone(), (1, 1))
        );
        // A second replace of the old table (a concurrent one) fails and changes nothing.
        assert!(
            store
                .replace_table("default", "t", &old.id, new_columns, vec![])
                .is_err()
        );
        assert_eq!(store.table("default", "t").expect("t").snapshot(), (1, 1));
    }
}
