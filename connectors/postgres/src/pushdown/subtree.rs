//! [`PostgresSubtreePushdown`]: the largest subtree of a plan that reads only one PostgreSQL
//! catalog and holds a join, an aggregate or a limit runs as one query in PostgreSQL. DataFusion's
//! unparser writes it; the allow-list of [`super::render`] decides what qualifies, with the
//! input schema of each node and the collations of the columns of every table in the subtree.
//! The subtree becomes a scan of that query's result, which accepts no filters: a filter above
//! it stays in Braid, so none can be lost.

use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema, Result, TableReference};
use datafusion::datasource::{provider_as_source, source_as_provider};
use datafusion::logical_expr::{Expr, JoinType, LogicalPlan, Projection, TableScan};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};
use datafusion::sql::unparser::Unparser;
use datafusion::sql::unparser::dialect::PostgreSqlDialect;

use super::{PgColumns, RenderContext, kind_of, render};
use crate::pool::Pool;
use crate::provider::{PostgresQueryTable, PostgresTable};
use crate::types::PgKind;

/// Aggregate functions PostgreSQL computes as DataFusion does (results are cast back to
/// DataFusion's types).
const AGGREGATES: &[&str] = &["count", "sum", "min", "max", "avg"];

/// Whether PostgreSQL can evaluate `expr` inside a pushed-down subtree; `grouping` for a
/// `GROUP BY` key (grouped text must compare equal as in Braid).
fn can_push(expr: &Expr, ctx: RenderContext<'_>, grouping: bool) -> bool {
    if grouping && !ctx.compares_like_braid(expr, false) {
        return false;
    }
    match expr {
        Expr::Alias(alias) => can_push(&alias.expr, ctx, grouping),
        Expr::AggregateFunction(aggregate) => {
            let params = &aggregate.params;
            let name = aggregate.func.name();
            // min/max order their input: text needs a collation that orders as Braid does.
            let orders = matches!(name, "min" | "max");
            AGGREGATES.contains(&name)
                && params.filter.is_none()
                && params.order_by.is_empty()
                && params.args.iter().all(|arg| {
                    can_push(arg, ctx, false) && (!orders || ctx.compares_like_braid(arg, true))
                })
        }
        // Everything else: the filter allow-list, which checks the whole expression.
        other => render(other, ctx).is_some(),
    }
}

/// The PostgreSQL catalog a whole subtree reads, with the columns of its tables, if every node
/// is of a kind PostgreSQL can run.
fn single_catalog(plan: &LogicalPlan) -> Option<(Arc<Pool>, PgColumns)> {
    let merge = |(a, mut columns): (Arc<Pool>, PgColumns), (b, more): (Arc<Pool>, PgColumns)| {
        Arc::ptr_eq(&a, &b).then(|| {
            columns.merge(more);
            (a, columns)
        })
    };
    match plan {
        LogicalPlan::TableScan(scan) => {
            let provider = source_as_provider(&scan.source).ok()?;
            let table = provider.as_any().downcast_ref::<PostgresTable>()?;
            let pool = table.pool();
            pool.config()
                .pushdown
                .then(|| (pool.clone(), table.columns()))
        }
        LogicalPlan::Projection(Projection { input, .. })
        | LogicalPlan::Filter(datafusion::logical_expr::Filter { input, .. })
        | LogicalPlan::Aggregate(datafusion::logical_expr::Aggregate { input, .. })
        | LogicalPlan::Sort(datafusion::logical_expr::Sort { input, .. })
        | LogicalPlan::Limit(datafusion::logical_expr::Limit { input, .. })
        | LogicalPlan::SubqueryAlias(datafusion::logical_expr::SubqueryAlias { input, .. }) => {
            single_catalog(input)
        }
        LogicalPlan::Join(j) => {
            let supported = matches!(
                j.join_type,
                JoinType::Inner | JoinType::Left | JoinType::Right | JoinType::Full
            ) && j.null_equality
                == datafusion::common::NullEquality::NullEqualsNothing;
            if !supported {
                return None;
            }
            merge(single_catalog(&j.left)?, single_catalog(&j.right)?)
        }
        _ => None,
    }
}

/// Whether PostgreSQL computes every expression of the subtree as Braid would, each checked
/// against the schema it is evaluated on.
fn all_pushable(plan: &LogicalPlan, columns: &PgColumns) -> bool {
    fn context<'a>(schema: &'a DFSchema, columns: &'a PgColumns) -> RenderContext<'a> {
        RenderContext { schema, columns }
    }
    let on = |schema| context(schema, columns);
    let here = match plan {
        LogicalPlan::TableScan(scan) => {
            let Ok(schema) =
                DFSchema::try_from_qualified_schema(scan.table_name.clone(), &scan.source.schema())
            else {
                return false;
            };
            scan.filters.iter().all(|f| can_push(f, on(&schema), false))
        }
        LogicalPlan::Projection(p) => p
            .expr
            .iter()
            .all(|e| can_push(e, on(p.input.schema()), false)),
        LogicalPlan::Filter(f) => can_push(&f.predicate, on(f.input.schema()), false),
        LogicalPlan::Aggregate(a) => {
            let ctx = on(a.input.schema());
            a.group_expr.iter().all(|e| can_push(e, ctx, true))
                && a.aggr_expr.iter().all(|e| can_push(e, ctx, false))
        }
        LogicalPlan::Sort(s) => {
            let ctx = on(s.input.schema());
            s.expr
                .iter()
                .all(|e| can_push(&e.expr, ctx, false) && ctx.compares_like_braid(&e.expr, true))
        }
        LogicalPlan::Join(j) => {
            let left = on(j.left.schema());
            let right = on(j.right.schema());
            j.on.iter()
                .all(|(l, r)| can_push(l, left, true) && can_push(r, right, true))
                && j.filter
                    .as_ref()
                    .is_none_or(|f| can_push(f, on(&j.schema), false))
        }
        _ => true,
    };
    here && plan
        .inputs()
        .into_iter()
        .all(|input| all_pushable(input, columns))
}

/// Whether running the subtree in PostgreSQL saves work: it joins, aggregates or limits. A bare
/// scan stays a split read.
fn worth_pushing(plan: &LogicalPlan) -> bool {
    plan.exists(|node| {
        Ok(matches!(
            node,
            LogicalPlan::Join(_) | LogicalPlan::Aggregate(_) | LogicalPlan::Limit(_)
        ) || matches!(node, LogicalPlan::Sort(s) if s.fetch.is_some()))
    })
    .unwrap_or(false)
}

/// Runs the largest single-catalog subtrees of a plan in PostgreSQL (see the module docs).
#[derive(Debug, Default)]
pub struct PostgresSubtreePushdown;

impl OptimizerRule for PostgresSubtreePushdown {
    fn name(&self) -> &str {
        "braid_postgres_subtree_pushdown"
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        push_subtrees(plan)
    }
}

fn push_subtrees(plan: LogicalPlan) -> Result<Transformed<LogicalPlan>> {
    if let Some((pool, columns)) = single_catalog(&plan)
        && worth_pushing(&plan)
        && all_pushable(&plan, &columns)
    {
        match as_remote_query(&plan, pool) {
            Ok(Some(replacement)) => return Ok(Transformed::yes(replacement)),
            Ok(None) => {}
            Err(e) => tracing::debug!("not pushing a subtree to PostgreSQL: {e}"),
        }
    }
    plan.map_children(push_subtrees)
}

/// `plan` as a scan of one PostgreSQL query, under a projection that restores its column names
/// and qualifiers; `None` if an output type cannot come back from PostgreSQL.
fn as_remote_query(plan: &LogicalPlan, pool: Arc<Pool>) -> Result<Option<LogicalPlan>> {
    let mut fields = Vec::new();
    let mut kinds = Vec::new();
    for (i, (_, field)) in plan.schema().iter().enumerate() {
        let Some(kind) = kind_of(field.data_type()) else {
            return Ok(None);
        };
        kinds.push(kind);
        fields.push(Field::new(
            format!("c{i}"),
            field.data_type().clone(),
            field.is_nullable(),
        ));
    }
    if fields.is_empty() {
        return Ok(None);
    }
    // Scans name their tables as PostgreSQL knows them: "schema"."table".
    let mut scans = Vec::new();
    let remote = plan
        .clone()
        .transform_up(|node| match node {
            LogicalPlan::TableScan(mut scan) => {
                let provider = source_as_provider(&scan.source)?;
                if let Some(table) = provider.as_any().downcast_ref::<PostgresTable>() {
                    let names: Vec<String> = scan
                        .projected_schema
                        .fields()
                        .iter()
                        .map(|f| f.name().clone())
                        .collect();
                    scans.push((scan.table_name.clone(), names));
                    let (schema, name) = table.remote_name();
                    scan.table_name = TableReference::partial(schema, name);
                }
                Ok(Transformed::yes(LogicalPlan::TableScan(scan)))
            }
            other => Ok(Transformed::no(other)),
        })?
        .data;
    // The unparser writes an aggregate's SELECT list in its own order: a projection on top
    // fixes the order of the columns, which are renamed by position.
    let columns = plan
        .schema()
        .iter()
        .map(|(qualifier, field)| Expr::Column(Column::from((qualifier, field))))
        .collect();
    let remote = LogicalPlan::Projection(Projection::try_new(columns, Arc::new(remote))?);
    // When no two tables share a column name, columns need no qualifier, and without one they
    // also resolve inside the derived tables the unparser introduces.
    let mut seen = std::collections::HashSet::new();
    let unique = scans
        .iter()
        .flat_map(|(_, names)| names)
        .all(|name| seen.insert(name.clone()));
    let tables: Vec<TableReference> = scans.into_iter().map(|(table, _)| table).collect();
    let remote = if unique {
        remote
            .transform_up(|node| {
                node.map_expressions(|expr| {
                    expr.transform(|e| match e {
                        Expr::Column(c)
                            if c.relation.as_ref().is_some_and(|r| tables.contains(r)) =>
                        {
                            Ok(Transformed::yes(Expr::Column(Column::new_unqualified(
                                c.name,
                            ))))
                        }
                        other => Ok(Transformed::no(other)),
                    })
                })
            })?
            .data
    } else {
        remote
    };
    let sql = Unparser::new(&PostgreSqlDialect {})
        .plan_to_sql(&remote)?
        .to_string();
    // The unparser's SQL is checked by PostgreSQL before it is used: a statement PostgreSQL
    // rejects is not pushed, and the subtree runs in Braid instead. PostgreSQL's result types
    // also tell which text columns are char(n), whose padding is stripped on read.
    match crate::provider::block_on(pool.result_types(&sql)) {
        Some(Ok(types)) if types.len() == kinds.len() => {
            kinds = kinds
                .into_iter()
                .zip(&types)
                .map(|(kind, type_name)| PgKind::for_result_column(type_name, kind))
                .collect();
        }
        Some(Ok(types)) => {
            tracing::debug!(catalog = %pool.catalog(), "not pushed, PostgreSQL returns {} columns, not {}: {sql}", types.len(), kinds.len());
            return Ok(None);
        }
        Some(Err(e)) => {
            tracing::debug!(catalog = %pool.catalog(), "not pushed, PostgreSQL rejects it ({e}): {sql}");
            return Ok(None);
        }
        None => return Ok(None),
    }
    let table = PostgresQueryTable::new(pool, sql, Arc::new(Schema::new(fields)), kinds);
    let scan = TableScan::try_new(
        "braid_pushdown",
        provider_as_source(Arc::new(table)),
        None,
        vec![],
        None,
    )?;
    let columns = plan
        .schema()
        .iter()
        .enumerate()
        .map(|(i, (qualifier, field))| {
            Expr::Column(Column::new(Some("braid_pushdown"), format!("c{i}")))
                .alias_qualified(qualifier.cloned(), field.name())
        })
        .collect();
    let projection = Projection::try_new(columns, Arc::new(LogicalPlan::TableScan(scan)))?;
    Ok(Some(LogicalPlan::Projection(projection)))
}
