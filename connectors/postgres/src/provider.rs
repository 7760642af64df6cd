//! DataFusion's view of a `postgres` catalog: [`PostgresCatalog`] → [`PostgresSchema`] →
//! [`PostgresTable`], whose `scan` plans the splits and the SQL of each (projection, filters,
//! limit) without reading a row.

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use braid_connector_spi::{ConnectorError, ScanEstimate};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{CatalogProvider, SchemaProvider, Session, TableProvider};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Statistics};
use datafusion::error::Result;
use datafusion::logical_expr::{
    BinaryExpr, Expr, Operator, TableProviderFilterPushDown, TableType,
};
use datafusion::physical_plan::ExecutionPlan;

use crate::exec::PostgresScan;
use crate::metadata::{Metadata, TableMeta, with_column_estimates};
use crate::pool::Pool;
use crate::pushdown::{PgColumns, RenderContext, qualified, quote_ident, render};
use crate::split::plan_splits;

/// A `postgres` catalog. Its name listings come from [`Metadata`]'s memory, which
/// `Connector::refresh_listings` brings up to date: no call here waits on PostgreSQL.
#[derive(Debug)]
pub struct PostgresCatalog {
    pool: Arc<Pool>,
    metadata: Arc<Metadata>,
}

impl PostgresCatalog {
    pub fn new(pool: Arc<Pool>, metadata: Arc<Metadata>) -> Self {
        Self { pool, metadata }
    }
}

impl CatalogProvider for PostgresCatalog {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema_names(&self) -> Vec<String> {
        self.metadata.listed_schemas().unwrap_or_default()
    }

    /// Any schema the configuration exposes, unless a fresh listing lacks it; otherwise whether
    /// it exists shows when a table is resolved, so that an unreachable server is reported as
    /// such, not as a missing schema.
    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        if !self.pool.config().shows_schema(name) {
            return None;
        }
        if let Some(names) = self.metadata.fresh_schemas()
            && !names.iter().any(|n| n == name)
        {
            return None;
        }
        Some(Arc::new(PostgresSchema {
            pool: self.pool.clone(),
            metadata: self.metadata.clone(),
            name: name.to_string(),
        }))
    }
}

/// One PostgreSQL schema.
#[derive(Debug)]
pub struct PostgresSchema {
    pool: Arc<Pool>,
    metadata: Arc<Metadata>,
    name: String,
}

#[async_trait]
impl SchemaProvider for PostgresSchema {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn table_names(&self) -> Vec<String> {
        self.metadata.listed_tables(&self.name).unwrap_or_default()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let Some(meta) = self.metadata.table(&self.name, name).await? else {
            return Ok(None);
        };
        Ok(Some(Arc::new(PostgresTable {
            pool: self.pool.clone(),
            metadata: self.metadata.clone(),
            meta,
        })))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.table_names().iter().any(|t| t == name)
    }
}

/// One PostgreSQL table or view.
#[derive(Debug)]
pub struct PostgresTable {
    pool: Arc<Pool>,
    metadata: Arc<Metadata>,
    meta: Arc<TableMeta>,
}

impl PostgresTable {
    /// The catalog's connections.
    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    /// The rows a scan with `conditions` pushed filters and `limit` returns, by PostgreSQL's
    /// `reltuples` (unknown when the table was never analyzed) and, per filter, the default
    /// selectivity DataFusion gives a filter it cannot estimate (20%).
    fn row_estimate(&self, conditions: usize, limit: Option<usize>) -> Option<usize> {
        if self.meta.row_estimate == 0 {
            return None;
        }
        let rows = self.meta.row_estimate as f64 * 0.2f64.powi(conditions as i32);
        let rows = rows.ceil() as usize;
        Some(limit.map_or(rows, |l| l.min(rows)))
    }

    /// The table's name in PostgreSQL: `(schema, table)`.
    pub fn remote_name(&self) -> (&str, &str) {
        (&self.meta.schema, &self.meta.name)
    }

    /// What pushdown needs to know of the table's columns (their collations).
    pub fn columns(&self) -> PgColumns {
        PgColumns::of_table(&self.meta, self.pool.config())
    }

    /// Renders a filter on this table for PostgreSQL, or `None`.
    fn render_filter(&self, filter: &Expr) -> Option<String> {
        // Filters name columns by their table; the table's own schema has none: drop them.
        let filter = filter
            .clone()
            .transform(|e| match e {
                Expr::Column(c) if c.relation.is_some() => Ok(Transformed::yes(Expr::Column(
                    datafusion::common::Column::new_unqualified(c.name),
                ))),
                other => Ok(Transformed::no(other)),
            })
            .ok()?
            .data;
        let schema = DFSchema::try_from(self.meta.arrow_schema.as_ref().clone()).ok()?;
        let columns = self.columns();
        render(
            &filter,
            RenderContext {
                schema: &schema,
                columns: &columns,
            },
        )
    }
}

/// Whether one of `filters` pins the table's single-column primary `key` to one value
/// (`key = 42`), so that the scan returns at most one row.
fn pins_the_key(key: Option<&str>, filters: &[Expr]) -> bool {
    let Some(key) = key else {
        return false;
    };
    filters.iter().any(|filter| match filter {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Eq,
            right,
        }) => matches!(
            (left.as_ref(), right.as_ref()),
            (Expr::Column(column), Expr::Literal(..)) | (Expr::Literal(..), Expr::Column(column))
                if column.name == key
        ),
        _ => false,
    })
}

/// The result of a query PostgreSQL runs for a whole subtree of a plan (see
/// [`crate::pushdown::PostgresSubtreePushdown`]): columns `c0`, `c1`, ... of `sql`.
#[derive(Debug)]
pub struct PostgresQueryTable {
    pool: Arc<Pool>,
    /// The subtree as PostgreSQL SQL; its columns are renamed `c0`, `c1`, ...
    sql: String,
    schema: SchemaRef,
    kinds: Vec<crate::types::PgKind>,
}

impl PostgresQueryTable {
    pub fn new(
        pool: Arc<Pool>,
        sql: String,
        schema: SchemaRef,
        kinds: Vec<crate::types::PgKind>,
    ) -> Self {
        Self {
            pool,
            sql,
            schema,
            kinds,
        }
    }
}

#[async_trait]
impl TableProvider for PostgresQueryTable {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let indices: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        let columns = indices
            .iter()
            .map(|i| {
                let field = self.schema.field(*i);
                let pg_type =
                    crate::pushdown::pg_type(field.data_type()).unwrap_or_else(|| "text".into());
                format!("CAST({} AS {pg_type})", quote_ident(field.name()))
            })
            .collect::<Vec<_>>()
            .join(", ");
        let names = (0..self.schema.fields().len())
            .map(|i| quote_ident(&format!("c{i}")))
            .collect::<Vec<_>>()
            .join(", ");
        let mut sql = format!(
            "SELECT {columns} FROM ({}) AS braid_pushdown({names})",
            self.sql
        );
        if let Some(limit) = limit {
            sql.push_str(&format!(" LIMIT {limit}"));
        }
        let columns = indices
            .iter()
            .map(|&i| {
                let field = self.schema.field(i);
                (
                    field.name().clone(),
                    self.kinds[i].clone(),
                    field.is_nullable(),
                )
            })
            .collect();
        Ok(Arc::new(PostgresScan::exec(
            "pushed-down query".into(),
            vec![sql],
            columns,
            None,
            Vec::new(),
            self.pool.clone(),
        )?))
    }
}

#[async_trait]
impl TableProvider for PostgresTable {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> SchemaRef {
        self.meta.arrow_schema.clone()
    }

    fn table_type(&self) -> TableType {
        if self.meta.is_view {
            TableType::View
        } else {
            TableType::Base
        }
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        let pushdown = self.pool.config().pushdown;
        Ok(filters
            .iter()
            .map(|f| {
                if pushdown && self.render_filter(f).is_some() {
                    TableProviderFilterPushDown::Exact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let config = self.pool.config();
        let indices: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.meta.columns.len()).collect(),
        };
        let columns: Vec<_> = indices.iter().map(|i| &self.meta.columns[*i]).collect();
        let select = columns
            .iter()
            .map(|c| c.kind.select_expr(&quote_ident(&c.name), c.as_text))
            .collect::<Vec<_>>()
            .join(", ");
        let mut conditions = Vec::new();
        if config.pushdown {
            for filter in filters {
                match self.render_filter(filter) {
                    Some(sql) => conditions.push(sql),
                    None => {
                        return Err(ConnectorError::Source {
                            catalog: self.pool.catalog().to_string(),
                            message: format!("cannot push the filter {filter} into PostgreSQL"),
                        }
                        .into());
                    }
                }
            }
        }
        let limit = limit.filter(|_| config.pushdown);
        // A lookup by the key returns at most one row: one query reads it.
        let lookup = config.pushdown && pins_the_key(self.meta.integer_key.as_deref(), filters);
        let wanted = config.splits.unwrap_or(state.config().target_partitions());
        let splits = if limit.is_some() || lookup {
            vec![None]
        } else {
            plan_splits(
                &self.metadata,
                &self.meta,
                wanted,
                config.min_rows_per_split,
            )
            .await?
        };
        let relation = qualified(&self.meta.schema, &self.meta.name);
        let queries = splits
            .into_iter()
            .map(|split| {
                let mut sql = format!("SELECT {select} FROM {relation}");
                let mut all: Vec<String> = split.into_iter().collect();
                all.extend(conditions.iter().cloned());
                if !all.is_empty() {
                    sql.push_str(" WHERE ");
                    sql.push_str(&all.join(" AND "));
                }
                if let Some(limit) = limit {
                    sql.push_str(&format!(" LIMIT {limit}"));
                }
                sql
            })
            .collect();
        Ok(Arc::new(PostgresScan::exec(
            format!("{}.{}", self.meta.schema, self.meta.name),
            queries,
            columns
                .iter()
                .map(|c| (c.name.clone(), c.kind.clone(), c.nullable))
                .collect(),
            self.row_estimate(
                conditions.len(),
                if lookup {
                    Some(limit.map_or(1, |l| l.min(1)))
                } else {
                    limit
                },
            ),
            columns.iter().map(|c| c.estimate).collect(),
            self.pool.clone(),
        )?))
    }

    fn statistics(&self) -> Option<Statistics> {
        let estimate = ScanEstimate {
            rows: self.row_estimate(0, None),
            ..ScanEstimate::default()
        };
        Some(with_column_estimates(
            estimate.statistics(&self.meta.arrow_schema, None, 1),
            self.meta.columns.iter().map(|c| c.estimate),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::pins_the_key;
    use datafusion::prelude::{ident, lit};

    #[test]
    fn only_an_equality_of_the_key_with_a_value_pins_it() {
        let key = Some("Id");
        assert!(pins_the_key(key, &[ident("Id").eq(lit(7))]));
        assert!(pins_the_key(
            key,
            &[ident("v").gt(lit(1)), lit("O'Brien").eq(ident("Id"))]
        ));
        assert!(!pins_the_key(key, &[ident("Id").gt(lit(7))]));
        assert!(!pins_the_key(key, &[ident("id").eq(lit(7))]));
        assert!(!pins_the_key(key, &[ident("Id").eq(ident("v"))]));
        assert!(!pins_the_key(
            key,
            &[ident("Id").eq(lit(7)).or(ident("Id").eq(lit(8)))]
        ));
        assert!(!pins_the_key(None, &[ident("Id").eq(lit(7))]));
    }
}
