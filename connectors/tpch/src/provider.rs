//! The `tpch` catalog, its `tiny`/`sfN` schemas and the [`TpchTable`] provider.

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use braid_connector_spi::ConnectorError;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{CatalogProvider, SchemaProvider, Session, TableProvider};
use datafusion::common::Statistics;
use datafusion::datasource::TableType;
use datafusion::error::Result;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

use crate::config::{ColumnNaming, TpchConfig};
use crate::exec::TpchScan;
use crate::metadata::{TpchTableKind, scale_factor_of_schema};
use crate::split::split_count;

/// Schemas listed by `SHOW SCHEMAS`; any other `sfN` resolves too.
const LISTED_SCHEMAS: [&str; 5] = ["tiny", "sf1", "sf10", "sf100", "sf1000"];

/// The `tpch` catalog: every schema is a scale factor.
#[derive(Debug)]
pub struct TpchCatalog {
    name: String,
    config: TpchConfig,
}

impl TpchCatalog {
    pub fn new(name: String, config: TpchConfig) -> Self {
        Self { name, config }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl CatalogProvider for TpchCatalog {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema_names(&self) -> Vec<String> {
        LISTED_SCHEMAS.iter().map(|s| s.to_string()).collect()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        let scale_factor = scale_factor_of_schema(name)?;
        Some(Arc::new(TpchSchema {
            catalog: self.name.clone(),
            scale_factor,
            config: self.config.clone(),
        }))
    }
}

/// One scale factor of the `tpch` catalog.
#[derive(Debug)]
struct TpchSchema {
    catalog: String,
    scale_factor: f64,
    config: TpchConfig,
}

#[async_trait]
impl SchemaProvider for TpchSchema {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn table_names(&self) -> Vec<String> {
        TpchTableKind::ALL
            .iter()
            .map(|t| t.name().to_string())
            .collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        Ok(TpchTableKind::from_name(name).map(|table| {
            Arc::new(TpchTable::new(
                self.catalog.clone(),
                table,
                self.scale_factor,
                &self.config,
            )) as Arc<dyn TableProvider>
        }))
    }

    fn table_exist(&self, name: &str) -> bool {
        TpchTableKind::from_name(name).is_some()
    }

    fn register_table(
        &self,
        _name: String,
        _table: Arc<dyn TableProvider>,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        Err(self.read_only("CREATE TABLE"))
    }

    fn deregister_table(&self, _name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        Err(self.read_only("DROP TABLE"))
    }
}

impl TpchSchema {
    fn read_only(&self, operation: &str) -> datafusion::error::DataFusionError {
        ConnectorError::Unsupported {
            catalog: self.catalog.clone(),
            kind: crate::KIND,
            operation: operation.to_string(),
        }
        .into()
    }
}

/// A generated TPC-H table.
#[derive(Debug)]
pub struct TpchTable {
    catalog: String,
    table: TpchTableKind,
    scale_factor: f64,
    naming: ColumnNaming,
    splits: Option<usize>,
    schema: SchemaRef,
}

impl TpchTable {
    pub fn new(
        catalog: String,
        table: TpchTableKind,
        scale_factor: f64,
        config: &TpchConfig,
    ) -> Self {
        Self {
            catalog,
            table,
            scale_factor,
            naming: config.column_naming,
            splits: config.splits,
            schema: table.schema(config.column_naming),
        }
    }
}

#[async_trait]
impl TableProvider for TpchTable {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let wanted = self
            .splits
            .unwrap_or_else(|| state.config().target_partitions());
        let parts = split_count(self.table, self.scale_factor, wanted);
        Ok(Arc::new(TpchScan::exec(
            self.catalog.clone(),
            self.table,
            self.scale_factor,
            self.naming,
            parts,
            projection.cloned(),
            limit,
        )?))
    }

    fn statistics(&self) -> Option<Statistics> {
        Some(self.table.statistics(self.scale_factor))
    }
}
