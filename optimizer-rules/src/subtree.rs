//! [`SubtreePushdown`]: runs the largest subtree of a plan that reads only one source (one
//! database) and joins, aggregates or limits, as one query in that source. The generic part
//! lives here: finding the subtree, checking each node's expressions against the schema they
//! are evaluated on, writing the SQL with DataFusion's unparser in the source's dialect,
//! renaming columns by position and restoring names and qualifiers with a projection on top.
//! The connector supplies a [`SubtreeSource`]: which scans are its own, what its source computes
//! as Braid does, the dialect, and a table that runs the SQL.
//!
//! The subtree becomes a scan of that query's result, which accepts no filters: a filter above
//! it stays in Braid, so none can be lost.

use std::collections::HashSet;
use std::fmt::Debug;
use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema, NullEquality, Result, TableReference};
use datafusion::datasource::provider_as_source;
use datafusion::logical_expr::{
    Aggregate, Expr, Filter, JoinType, Limit, LogicalPlan, Projection, Sort, SubqueryAlias,
    TableScan,
};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};
use datafusion::sql::unparser::Unparser;
use datafusion::sql::unparser::dialect::Dialect;

/// Where an expression of a pushed subtree stands: each role asks something else of the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExprRole {
    /// A filter, a projected value or a join condition.
    Value,
    /// A `GROUP BY` or equi-join key: the source must compare it for equality as Braid does.
    Key,
    /// An aggregate (`count`, `min`, ...).
    Aggregate,
    /// A sort key: the source must order it as Braid does.
    SortKey,
}

/// What a connector tells [`SubtreePushdown`] about its source.
pub trait SubtreeSource: Debug + Send + Sync + 'static {
    /// One source: a subtree never spans two.
    type Source: Clone;
    /// What expression checks need to know of a subtree's tables (column collations, ...).
    type Facts;

    /// The source a table scan reads, its name there (`"schema"."table"`) and the facts of its
    /// columns; `None` for another connector's table or one whose catalog pushes nothing.
    fn leaf(&self, scan: &TableScan) -> Option<(Self::Source, TableReference, Self::Facts)>;

    /// Whether two scans read the same source.
    fn same_source(&self, a: &Self::Source, b: &Self::Source) -> bool;

    /// Adds another table's facts (a join).
    fn merge(&self, facts: &mut Self::Facts, more: Self::Facts);

    /// Whether the source computes `expr`, in `role`, as Braid would over `schema`.
    fn can_push(&self, expr: &Expr, role: ExprRole, schema: &DFSchema, facts: &Self::Facts)
    -> bool;

    /// The SQL dialect of the source.
    fn dialect(&self) -> &dyn Dialect;

    /// A table whose scan runs `sql` in `source`; its columns are `schema` (`c0`, `c1`, ...,
    /// of Braid's types). `None` when the source rejects the SQL or cannot return a type: the
    /// subtree then runs in Braid.
    fn remote_table(
        &self,
        source: &Self::Source,
        sql: String,
        schema: SchemaRef,
    ) -> Result<Option<Arc<dyn TableProvider>>>;
}

/// The rule, named `name`, for one connector's [`SubtreeSource`].
#[derive(Debug)]
pub struct SubtreePushdown<S> {
    name: &'static str,
    source: S,
}

impl<S: SubtreeSource> SubtreePushdown<S> {
    pub fn new(name: &'static str, source: S) -> Self {
        Self { name, source }
    }

    fn push_subtrees(&self, plan: LogicalPlan) -> Result<Transformed<LogicalPlan>> {
        if let Some((source, facts)) = self.single_source(&plan)
            && worth_pushing(&plan)
            && self.all_pushable(&plan, &facts)
        {
            match self.as_remote_query(&plan, &source) {
                Ok(Some(replacement)) => return Ok(Transformed::yes(replacement)),
                Ok(None) => {}
                Err(e) => tracing::debug!(rule = self.name, "not pushing a subtree: {e}"),
            }
        }
        plan.map_children(|child| self.push_subtrees(child))
    }

    /// The one source a whole subtree reads, with its tables' facts, if every node is of a kind
    /// a SQL source can run.
    fn single_source(&self, plan: &LogicalPlan) -> Option<(S::Source, S::Facts)> {
        match plan {
            LogicalPlan::TableScan(scan) => {
                let (source, _, facts) = self.source.leaf(scan)?;
                Some((source, facts))
            }
            LogicalPlan::Projection(Projection { input, .. })
            | LogicalPlan::Filter(Filter { input, .. })
            | LogicalPlan::Aggregate(Aggregate { input, .. })
            | LogicalPlan::Sort(Sort { input, .. })
            | LogicalPlan::Limit(Limit { input, .. })
            | LogicalPlan::SubqueryAlias(SubqueryAlias { input, .. }) => self.single_source(input),
            LogicalPlan::Join(join) => {
                let supported = matches!(
                    join.join_type,
                    JoinType::Inner | JoinType::Left | JoinType::Right | JoinType::Full
                ) && join.null_equality == NullEquality::NullEqualsNothing;
                if !supported {
                    return None;
                }
                let (left, mut facts) = self.single_source(&join.left)?;
                let (right, more) = self.single_source(&join.right)?;
                if !self.source.same_source(&left, &right) {
                    return None;
                }
                self.source.merge(&mut facts, more);
                Some((left, facts))
            }
            _ => None,
        }
    }

    /// Whether the source computes every expression of the subtree as Braid would, each checked
    /// against the schema it is evaluated on.
    fn all_pushable(&self, plan: &LogicalPlan, facts: &S::Facts) -> bool {
        let ok =
            |expr: &Expr, role, schema: &DFSchema| self.source.can_push(expr, role, schema, facts);
        let here = match plan {
            LogicalPlan::TableScan(scan) => {
                match DFSchema::try_from_qualified_schema(
                    scan.table_name.clone(),
                    &scan.source.schema(),
                ) {
                    Ok(schema) => scan.filters.iter().all(|f| ok(f, ExprRole::Value, &schema)),
                    Err(_) => false,
                }
            }
            LogicalPlan::Projection(p) => p
                .expr
                .iter()
                .all(|e| ok(e, ExprRole::Value, p.input.schema())),
            LogicalPlan::Filter(f) => ok(&f.predicate, ExprRole::Value, f.input.schema()),
            LogicalPlan::Aggregate(a) => {
                a.group_expr
                    .iter()
                    .all(|e| ok(e, ExprRole::Key, a.input.schema()))
                    && a.aggr_expr
                        .iter()
                        .all(|e| ok(e, ExprRole::Aggregate, a.input.schema()))
            }
            LogicalPlan::Sort(s) => s
                .expr
                .iter()
                .all(|e| ok(&e.expr, ExprRole::SortKey, s.input.schema())),
            LogicalPlan::Join(j) => {
                j.on.iter().all(|(l, r)| {
                    ok(l, ExprRole::Key, j.left.schema()) && ok(r, ExprRole::Key, j.right.schema())
                }) && j
                    .filter
                    .as_ref()
                    .is_none_or(|f| ok(f, ExprRole::Value, &j.schema))
            }
            _ => true,
        };
        here && plan
            .inputs()
            .into_iter()
            .all(|input| self.all_pushable(input, facts))
    }

    /// `plan` as a scan of one query of the source, under a projection that restores its column
    /// names and qualifiers; `None` if the source cannot run it.
    fn as_remote_query(
        &self,
        plan: &LogicalPlan,
        source: &S::Source,
    ) -> Result<Option<LogicalPlan>> {
        let fields: Vec<Field> = plan
            .schema()
            .iter()
            .enumerate()
            .map(|(i, (_, field))| {
                Field::new(
                    format!("c{i}"),
                    field.data_type().clone(),
                    field.is_nullable(),
                )
            })
            .collect();
        if fields.is_empty() {
            return Ok(None);
        }
        // Scans name their tables as the source knows them.
        let mut scans = Vec::new();
        let remote = plan
            .clone()
            .transform_up(|node| match node {
                LogicalPlan::TableScan(mut scan) => {
                    if let Some((_, remote_name, _)) = self.source.leaf(&scan) {
                        let names: Vec<String> = scan
                            .projected_schema
                            .fields()
                            .iter()
                            .map(|f| f.name().clone())
                            .collect();
                        scans.push((scan.table_name.clone(), names));
                        scan.table_name = remote_name;
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
        // When no two tables share a column name, columns need no qualifier, and without one
        // they also resolve inside the derived tables the unparser introduces.
        let mut seen = HashSet::new();
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
        let sql = Unparser::new(self.source.dialect())
            .plan_to_sql(&remote)?
            .to_string();
        let Some(table) = self
            .source
            .remote_table(source, sql, Arc::new(Schema::new(fields)))?
        else {
            return Ok(None);
        };
        let scan = TableScan::try_new(
            "braid_pushdown",
            provider_as_source(table),
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
}

/// Whether running the subtree in the source saves work: it joins, aggregates or limits. A bare
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

impl<S: SubtreeSource> OptimizerRule for SubtreePushdown<S> {
    fn name(&self) -> &str {
        self.name
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        self.push_subtrees(plan)
    }
}
