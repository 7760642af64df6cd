//! What Braid asks PostgreSQL to do: filters rendered as PostgreSQL SQL ([`render`]), with
//! identifiers and literals quoted so that no name or value can change the statement.
//!
//! Only expressions on an allow-list are rendered — comparisons, `AND`/`OR`/`NOT`, `IS [NOT]
//! NULL`, `IN` lists, `BETWEEN`, `LIKE` without an escape clause, `+ - *`, casts between
//! numeric, text, date and timestamp types, and the functions in [`FUNCTIONS`] — so a
//! function PostgreSQL lacks or computes differently is never sent; such filters stay in Braid.
//!
//! [`PostgresSubtreePushdown`] goes further: the largest subtree of a plan that reads only one
//! PostgreSQL catalog and holds a join, an aggregate or a limit runs as one query in PostgreSQL
//! (DataFusion's unparser writes it; the same allow-list decides what qualifies). The subtree
//! becomes a scan of that query's result, which accepts no filters: a filter above it stays in
//! Braid, so none can be lost (DESIGN.md §6).

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, Result, ScalarValue, TableReference};
use datafusion::datasource::{provider_as_source, source_as_provider};
use datafusion::logical_expr::{
    Between, BinaryExpr, Cast, Expr, JoinType, Like, LogicalPlan, Operator, Projection, TableScan,
};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};
use datafusion::sql::unparser::Unparser;
use datafusion::sql::unparser::dialect::PostgreSqlDialect;

use crate::pool::Pool;
use crate::provider::{PostgresQueryTable, PostgresTable};
use crate::types::PgKind;

/// Scalar functions PostgreSQL computes exactly as DataFusion does.
pub const FUNCTIONS: &[&str] = &["lower", "upper", "abs"];

/// `"name"`, with embedded quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `"schema"."table"`.
pub fn qualified(schema: &str, table: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(table))
}

/// `'text'`, with embedded quotes doubled (connections set `standard_conforming_strings`, so
/// a backslash is an ordinary character).
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `expr` as PostgreSQL SQL over the table's columns, or `None` if it cannot be sent.
pub fn render(expr: &Expr) -> Option<String> {
    Some(match expr {
        Expr::Column(column) => quote_ident(&column.name),
        Expr::Literal(value, _) => literal(value)?,
        Expr::Alias(alias) => render(&alias.expr)?,
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let op = match op {
                Operator::Eq => "=",
                Operator::NotEq => "<>",
                Operator::Lt => "<",
                Operator::LtEq => "<=",
                Operator::Gt => ">",
                Operator::GtEq => ">=",
                Operator::And => "AND",
                Operator::Or => "OR",
                Operator::Plus => "+",
                Operator::Minus => "-",
                Operator::Multiply => "*",
                _ => return None,
            };
            format!("({} {op} {})", render(left)?, render(right)?)
        }
        Expr::Not(inner) => format!("(NOT {})", render(inner)?),
        Expr::IsNull(inner) => format!("({} IS NULL)", render(inner)?),
        Expr::IsNotNull(inner) => format!("({} IS NOT NULL)", render(inner)?),
        Expr::IsTrue(inner) => format!("({} IS TRUE)", render(inner)?),
        Expr::IsFalse(inner) => format!("({} IS FALSE)", render(inner)?),
        Expr::Between(Between {
            expr,
            negated,
            low,
            high,
        }) => format!(
            "({} {}BETWEEN {} AND {})",
            render(expr)?,
            if *negated { "NOT " } else { "" },
            render(low)?,
            render(high)?
        ),
        Expr::InList(list) => {
            let items = list.list.iter().map(render).collect::<Option<Vec<_>>>()?;
            if items.is_empty() {
                return None;
            }
            format!(
                "({} {}IN ({}))",
                render(&list.expr)?,
                if list.negated { "NOT " } else { "" },
                items.join(", ")
            )
        }
        Expr::Like(Like {
            negated,
            expr,
            pattern,
            escape_char: None,
            case_insensitive,
        }) => {
            // PostgreSQL's LIKE treats a backslash as an escape; DataFusion's does not.
            if let Expr::Literal(ScalarValue::Utf8(Some(p)), _) = pattern.as_ref()
                && p.contains('\\')
            {
                return None;
            }
            format!(
                "({} {}{} {})",
                render(expr)?,
                if *negated { "NOT " } else { "" },
                if *case_insensitive { "ILIKE" } else { "LIKE" },
                render(pattern)?
            )
        }
        Expr::Cast(Cast { expr, data_type }) => {
            format!("CAST({} AS {})", render(expr)?, type_name(data_type)?)
        }
        Expr::ScalarFunction(function) if FUNCTIONS.contains(&function.name()) => {
            let args = function
                .args
                .iter()
                .map(render)
                .collect::<Option<Vec<_>>>()?;
            format!("{}({})", function.name(), args.join(", "))
        }
        _ => return None,
    })
}

/// The PostgreSQL type whose values decode as `data_type`.
pub fn pg_type(data_type: &DataType) -> Option<String> {
    match data_type {
        DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => Some("timestamptz".into()),
        DataType::Binary => Some("bytea".into()),
        other => type_name(other),
    }
}

/// The decoding of a column PostgreSQL returns as [`pg_type`]`(data_type)`.
fn kind_of(data_type: &DataType) -> Option<PgKind> {
    Some(match data_type {
        DataType::Boolean => PgKind::Bool,
        DataType::Int16 => PgKind::Int2,
        DataType::Int32 => PgKind::Int4,
        DataType::Int64 => PgKind::Int8,
        DataType::Float32 => PgKind::Float4,
        DataType::Float64 => PgKind::Float8,
        DataType::Decimal128(p, s) if *s >= 0 => PgKind::Numeric {
            precision: *p,
            scale: *s,
        },
        DataType::Utf8 => PgKind::Text,
        DataType::Date32 => PgKind::Date,
        DataType::Timestamp(TimeUnit::Microsecond, None) => PgKind::Timestamp,
        DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => PgKind::Timestamptz,
        DataType::Binary => PgKind::Bytea,
        _ => return None,
    })
}

fn type_name(data_type: &DataType) -> Option<String> {
    Some(match data_type {
        DataType::Boolean => "boolean".into(),
        DataType::Int16 => "smallint".into(),
        DataType::Int32 => "integer".into(),
        DataType::Int64 => "bigint".into(),
        DataType::Float32 => "real".into(),
        DataType::Float64 => "double precision".into(),
        DataType::Decimal128(p, s) if *s >= 0 => format!("numeric({p}, {s})"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text".into(),
        DataType::Date32 => "date".into(),
        DataType::Timestamp(TimeUnit::Microsecond, None) => "timestamp".into(),
        _ => return None,
    })
}

fn literal(value: &ScalarValue) -> Option<String> {
    if value.is_null() {
        return Some("NULL".into());
    }
    Some(match value {
        ScalarValue::Boolean(Some(b)) => b.to_string().to_uppercase(),
        ScalarValue::Int8(Some(v)) => v.to_string(),
        ScalarValue::Int16(Some(v)) => v.to_string(),
        ScalarValue::Int32(Some(v)) => v.to_string(),
        ScalarValue::Int64(Some(v)) => v.to_string(),
        ScalarValue::UInt8(Some(v)) => v.to_string(),
        ScalarValue::UInt16(Some(v)) => v.to_string(),
        ScalarValue::UInt32(Some(v)) => v.to_string(),
        ScalarValue::Float64(Some(v)) if v.is_finite() => format!("{v:?}::float8"),
        ScalarValue::Float32(Some(v)) if v.is_finite() => format!("{v:?}::float4"),
        ScalarValue::Decimal128(Some(v), p, s) => {
            format!("{}::numeric({p}, {s})", decimal_text(*v, *s))
        }
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => quote_literal(s),
        ScalarValue::Date32(Some(_)) => format!("DATE {}", quote_literal(&value.to_string())),
        _ => return None,
    })
}

/// An unscaled decimal as text: `12345`, scale 2 → `123.45`.
fn decimal_text(value: i128, scale: i8) -> String {
    if scale <= 0 {
        return format!("{value}{}", "0".repeat((-scale) as usize));
    }
    let digits = value.unsigned_abs().to_string();
    let scale = scale as usize;
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{}{int}.{frac}", if value < 0 { "-" } else { "" })
}

/// Aggregate functions PostgreSQL computes as DataFusion does (results are cast back to
/// DataFusion's types).
const AGGREGATES: &[&str] = &["count", "sum", "min", "max", "avg"];

/// Whether PostgreSQL can evaluate `expr` inside a pushed-down subtree.
fn can_push(expr: &Expr) -> bool {
    match expr {
        Expr::Alias(alias) => can_push(&alias.expr),
        Expr::AggregateFunction(aggregate) => {
            let params = &aggregate.params;
            AGGREGATES.contains(&aggregate.func.name())
                && params.filter.is_none()
                && params.order_by.is_empty()
                && params.args.iter().all(can_push)
        }
        // Everything else: the filter allow-list, which checks the whole expression.
        other => render(other).is_some(),
    }
}

/// The PostgreSQL catalog a whole subtree reads, if PostgreSQL can run all of it.
fn single_catalog(plan: &LogicalPlan) -> Option<Arc<Pool>> {
    let same = |a: Arc<Pool>, b: Arc<Pool>| Arc::ptr_eq(&a, &b).then_some(a);
    match plan {
        LogicalPlan::TableScan(scan) => {
            let provider = source_as_provider(&scan.source).ok()?;
            let table = provider.as_any().downcast_ref::<PostgresTable>()?;
            let pool = table.pool();
            (pool.config().pushdown && scan.filters.iter().all(can_push)).then(|| pool.clone())
        }
        LogicalPlan::Projection(p) => p
            .expr
            .iter()
            .all(can_push)
            .then(|| single_catalog(&p.input))?,
        LogicalPlan::Filter(f) => can_push(&f.predicate).then(|| single_catalog(&f.input))?,
        LogicalPlan::Aggregate(a) => (a.group_expr.iter().all(can_push)
            && a.aggr_expr.iter().all(can_push))
        .then(|| single_catalog(&a.input))?,
        LogicalPlan::Sort(s) => s
            .expr
            .iter()
            .all(|e| can_push(&e.expr))
            .then(|| single_catalog(&s.input))?,
        LogicalPlan::Limit(l) => single_catalog(&l.input),
        LogicalPlan::SubqueryAlias(a) => single_catalog(&a.input),
        LogicalPlan::Join(j) => {
            let supported = matches!(
                j.join_type,
                JoinType::Inner | JoinType::Left | JoinType::Right | JoinType::Full
            ) && j.on.iter().all(|(l, r)| can_push(l) && can_push(r))
                && j.filter.as_ref().is_none_or(can_push)
                && j.null_equality == datafusion::common::NullEquality::NullEqualsNothing;
            if !supported {
                return None;
            }
            same(single_catalog(&j.left)?, single_catalog(&j.right)?)
        }
        _ => None,
    }
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

/// Asks PostgreSQL to plan `sql` without running it.
async fn check_sql(pool: &Arc<Pool>, sql: &str) -> Result<(), String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    client
        .execute(&format!("EXPLAIN {sql}"), &[])
        .await
        .map(|_| ())
        .map_err(|e| crate::pool::describe(&e))
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
    if let Some(pool) = single_catalog(&plan)
        && worth_pushing(&plan)
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
    // rejects is not pushed, and the subtree runs in Braid instead.
    if let Some(Err(e)) = crate::provider::block_on(check_sql(&pool, &sql)) {
        tracing::debug!(catalog = %pool.catalog(), "not pushed, PostgreSQL rejects it ({e}): {sql}");
        return Ok(None);
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

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::{col, lit};

    #[test]
    fn identifiers_and_literals_cannot_escape_their_quotes() {
        assert_eq!(quote_ident("We\"ird Name"), "\"We\"\"ird Name\"");
        assert_eq!(quote_literal("it's \\ fine"), "'it''s \\ fine'");
        let filter = col("My Col").eq(lit("x'); DROP TABLE t; --"));
        assert_eq!(
            render(&filter).unwrap(),
            "(\"My Col\" = 'x''); DROP TABLE t; --')"
        );
    }

    #[test]
    fn only_allowed_expressions_are_rendered() {
        let filter = col("a")
            .gt(lit(5))
            .and(col("b").in_list(vec![lit("x"), lit("y")], false));
        assert_eq!(
            render(&filter).unwrap(),
            "((\"a\" > 5) AND (\"b\" IN ('x', 'y')))"
        );
        assert!(render(&(col("a") / lit(2))).is_none());
        assert!(render(&col("s").like(lit("a\\%"))).is_none());
        assert_eq!(
            render(&Expr::Literal(
                ScalarValue::Decimal128(Some(12345), 15, 2),
                None
            ))
            .unwrap(),
            "123.45::numeric(15, 2)"
        );
        assert_eq!(decimal_text(-5, 2), "-0.05");
        assert_eq!(
            render(&Expr::Literal(ScalarValue::Date32(Some(9131)), None)).unwrap(),
            "DATE '1995-01-01'"
        );
    }
}
