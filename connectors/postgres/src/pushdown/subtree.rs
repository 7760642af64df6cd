//! PostgreSQL's side of [`SubtreePushdown`] (the generic rule in `braid-optimizer-rules`):
//! which scans read a PostgreSQL catalog, what PostgreSQL computes as Braid does (the allow-list
//! of [`super::render`], with the collations of every table in the subtree), its dialect, and
//! the table that runs the pushed query ([`PostgresQueryTable`]). PostgreSQL checks each query
//! before it is used; its result types tell which columns are `char(n)`.

use std::sync::Arc;

use braid_optimizer_rules::subtree::{ExprRole, SubtreePushdown, SubtreeSource};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::{DFSchema, Result, TableReference};
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::{Expr, TableScan};
use datafusion::sql::unparser::dialect::{Dialect, PostgreSqlDialect};

use super::{PgColumns, RenderContext, kind_of, render};
use crate::pool::Pool;
use crate::provider::{PostgresQueryTable, PostgresTable};
use crate::types::PgKind;

/// The rule that runs single-catalog PostgreSQL subtrees (joins, aggregates, top-N) in
/// PostgreSQL; one instance serves every postgres catalog.
pub type PostgresSubtreePushdown = SubtreePushdown<PostgresSubtree>;

/// The rule, under its name.
pub fn subtree_pushdown() -> PostgresSubtreePushdown {
    SubtreePushdown::new(
        "braid_postgres_subtree_pushdown",
        PostgresSubtree {
            dialect: PostgreSqlDialect {},
        },
    )
}

/// Aggregate functions PostgreSQL computes as DataFusion does (results are cast back to
/// DataFusion's types).
const AGGREGATES: &[&str] = &["count", "sum", "min", "max", "avg"];

/// What [`SubtreePushdown`] needs to know of PostgreSQL.
pub struct PostgresSubtree {
    dialect: PostgreSqlDialect,
}

impl std::fmt::Debug for PostgresSubtree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PostgresSubtree")
    }
}

/// Whether PostgreSQL evaluates `expr` as Braid would.
fn can_push(expr: &Expr, ctx: RenderContext<'_>) -> bool {
    match expr {
        Expr::Alias(alias) => can_push(&alias.expr, ctx),
        Expr::AggregateFunction(aggregate) => {
            let params = &aggregate.params;
            let name = aggregate.func.name();
            // min/max order their input: text needs a collation that orders as Braid does.
            let orders = matches!(name, "min" | "max");
            AGGREGATES.contains(&name)
                && params.filter.is_none()
                && params.order_by.is_empty()
                && params.args.iter().all(|arg| {
                    can_push(arg, ctx) && (!orders || ctx.compares_like_braid(arg, true))
                })
        }
        // Everything else: the filter allow-list, which checks the whole expression.
        other => render(other, ctx).is_some(),
    }
}

impl SubtreeSource for PostgresSubtree {
    type Source = Arc<Pool>;
    type Facts = PgColumns;

    fn leaf(&self, scan: &TableScan) -> Option<(Arc<Pool>, TableReference, PgColumns)> {
        let provider = source_as_provider(&scan.source).ok()?;
        let table = provider.as_any().downcast_ref::<PostgresTable>()?;
        let pool = table.pool();
        if !pool.config().pushdown {
            return None;
        }
        let (schema, name) = table.remote_name();
        Some((
            pool.clone(),
            TableReference::partial(schema, name),
            table.columns(),
        ))
    }

    fn same_source(&self, a: &Arc<Pool>, b: &Arc<Pool>) -> bool {
        Arc::ptr_eq(a, b)
    }

    fn merge(&self, facts: &mut PgColumns, more: PgColumns) {
        facts.merge(more);
    }

    fn can_push(&self, expr: &Expr, role: ExprRole, schema: &DFSchema, facts: &PgColumns) -> bool {
        let ctx = RenderContext {
            schema,
            columns: facts,
        };
        can_push(expr, ctx)
            && match role {
                // Grouped and joined text must compare equal as in Braid.
                ExprRole::Key => ctx.compares_like_braid(expr, false),
                ExprRole::SortKey => ctx.compares_like_braid(expr, true),
                ExprRole::Value | ExprRole::Aggregate => true,
            }
    }

    fn dialect(&self) -> &dyn Dialect {
        &self.dialect
    }

    fn remote_table(
        &self,
        pool: &Arc<Pool>,
        sql: String,
        schema: SchemaRef,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        let Some(kinds) = schema
            .fields()
            .iter()
            .map(|f| match braid_connector_spi::char_length(f) {
                // Read as `char(n)` again, so that the scan's field is the subtree's.
                Some(length) => Some(PgKind::Bpchar {
                    length: u32::try_from(length).ok(),
                }),
                None => kind_of(f.data_type()),
            })
            .collect::<Option<Vec<PgKind>>>()
        else {
            return Ok(None);
        };
        // PostgreSQL checks the unparser's SQL before it is used: a statement it rejects is not
        // pushed, and the subtree runs in Braid instead. The rule does not wait for the check:
        // the first time it sees a statement it leaves the subtree in Braid, and the planner
        // optimizes again once `complete_rule_checks` has the answer.
        let types = match pool.described(&sql) {
            Some(Ok(types)) if types.len() == kinds.len() => types,
            Some(Ok(types)) => {
                tracing::debug!(catalog = %pool.catalog(), "not pushed, PostgreSQL returns {} columns, not {}: {sql}", types.len(), kinds.len());
                return Ok(None);
            }
            Some(Err(e)) => {
                tracing::debug!(catalog = %pool.catalog(), "not pushed, PostgreSQL rejects it ({e}): {sql}");
                return Ok(None);
            }
            None => return Ok(None),
        };
        let kinds = kinds
            .into_iter()
            .zip(&types)
            .map(|(kind, type_name)| PgKind::for_result_column(type_name, kind))
            .collect();
        Ok(Some(Arc::new(PostgresQueryTable::new(
            pool.clone(),
            sql,
            schema,
            kinds,
        ))))
    }
}
