//! Prepared statements' plans ([`PreparedPlan`]): a query is parsed and analyzed once, when it
//! is prepared, and each execution binds its parameters to that plan rather than planning the
//! SQL again ([`Engine::plan_prepared`]).
//!
//! Reuse never makes a result stale: each execution scans every table as its catalog has it
//! then (an Iceberg table's current snapshot, a memory table's current rows). The SQL is
//! planned again, as on the first execution, when a table's columns changed or it is gone,
//! or when the session's settings changed since the statement was prepared (`USE` changes
//! what an unqualified name means). Statements other than queries (writes, DDL, `SET`,
//! `EXPLAIN`, metadata) are planned from their SQL on every execution.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::common::tree_node::{Transformed, TreeNodeRecursion};
use datafusion::common::{ScalarValue, TableReference};
use datafusion::datasource::provider_as_source;
use datafusion::error::Result;
use datafusion::logical_expr::{LogicalPlan, TableSource};
use datafusion::prelude::{SessionConfig, SessionContext};

use super::{Analyzed, Engine, Planned, classify, planned_or_failed};
use crate::queries::Query;
use crate::session::Session;

/// A statement prepared once for many executions.
#[derive(Debug)]
pub struct PreparedPlan {
    sql: String,
    /// The analyzed query, `$n` parameters unbound; `None` for statements that are planned
    /// from their SQL on each execution.
    query: Option<LogicalPlan>,
    /// The catalogs the query reads.
    catalogs: BTreeSet<String>,
    /// The session's settings the query was analyzed with.
    settings: Settings,
    schema: SchemaRef,
    parameters: Vec<Field>,
}

impl PreparedPlan {
    /// The statement's SQL, placeholders numbered.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The schema of the statement's result.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The statement's `$1`, `$2`, ... parameters, typed as the planner inferred them.
    pub fn parameters(&self) -> &[Field] {
        &self.parameters
    }

    /// A statement planned from its SQL on each execution, without parameters.
    #[cfg(test)]
    pub fn unplanned(sql: &str) -> Self {
        Self {
            sql: sql.to_string(),
            query: None,
            catalogs: BTreeSet::new(),
            settings: Settings(vec![]),
            schema: Arc::new(datafusion::arrow::datatypes::Schema::empty()),
            parameters: vec![],
        }
    }
}

/// A session's settings, as far as they change what a statement means.
#[derive(Debug, PartialEq)]
struct Settings(Vec<(String, Option<String>)>);

impl Settings {
    fn of(config: &SessionConfig) -> Self {
        Self(
            config
                .options()
                .entries()
                .into_iter()
                .map(|entry| (entry.key, entry.value))
                .collect(),
        )
    }
}

impl Engine {
    /// Prepares `sql` (placeholders numbered `$1`, `$2`, ...) in `session`.
    pub async fn prepare(&self, session: &Session, sql: &str) -> Result<PreparedPlan> {
        let ctx = self.context(session).await;
        let (analyzed, catalogs) = self.plan_statement(&ctx, sql).await?;
        let planned = match analyzed {
            Analyzed::Planned(planned) => planned,
            Analyzed::Query(plan) => classify(plan)?,
        };
        let schema = planned.schema();
        let parameters = planned.parameters()?;
        let is_query = matches!(planned, Planned::Distributed(_) | Planned::Local(_))
            && !planned.has_side_effects();
        let query = match planned.query() {
            Some(plan) if is_query => Some(without_tables(plan.clone())?),
            _ => None,
        };
        Ok(PreparedPlan {
            sql: sql.to_string(),
            query,
            catalogs,
            settings: Settings::of(&session.config()),
            schema,
            parameters,
        })
    }

    /// Plans one execution of `prepared` with the bound `params`: the prepared plan with the
    /// tables as their catalogs have them now, else (see the module's text) its SQL again.
    pub async fn plan_prepared(
        &self,
        session: &Session,
        prepared: &PreparedPlan,
        params: Option<&[ScalarValue]>,
    ) -> Result<Planned> {
        if let Some(query) = &prepared.query
            && Settings::of(&session.config()) == prepared.settings
        {
            let ctx = self.context(session).await;
            if let Some(plan) = with_current_tables(&ctx, query).await {
                return self
                    .bind_and_place(&ctx, plan, params, &prepared.catalogs)
                    .await;
            }
        }
        self.plan_with(session, &prepared.sql, params).await
    }

    /// [`Engine::plan_prepared`] for a registered `query`: it is marked planned, or failed
    /// with the planning error.
    pub async fn plan_prepared_query(
        &self,
        query: &Query,
        session: &Session,
        prepared: &PreparedPlan,
        params: Option<&[ScalarValue]>,
    ) -> Result<Planned> {
        planned_or_failed(query, self.plan_prepared(session, prepared, params).await)
    }
}

/// `plan` with each table scan's source reduced to the table's columns: an execution scans
/// the table its catalog holds then, so the prepared plan keeps no table (nor its rows) alive.
fn without_tables(plan: LogicalPlan) -> Result<LogicalPlan> {
    plan.transform_up_with_subqueries(|node| match node {
        LogicalPlan::TableScan(mut scan) => {
            scan.source = Arc::new(Columns(scan.source.schema()));
            Ok(Transformed::yes(LogicalPlan::TableScan(scan)))
        }
        other => Ok(Transformed::no(other)),
    })
    .map(|transformed| transformed.data)
}

/// A scanned table's columns, all a prepared plan keeps of it.
struct Columns(SchemaRef);

impl TableSource for Columns {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn schema(&self) -> SchemaRef {
        self.0.clone()
    }
}

/// `plan` with each table scan reading the table its catalog holds now; `None` when a table
/// is gone, cannot be looked up, or has other columns than when `plan` was made.
async fn with_current_tables(ctx: &SessionContext, plan: &LogicalPlan) -> Option<LogicalPlan> {
    let mut names = BTreeSet::new();
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            names.insert(scan.table_name.clone());
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .ok()?;
    let mut current: HashMap<TableReference, Arc<dyn TableProvider>> = HashMap::new();
    for name in names {
        let provider = ctx.table_provider(name.clone()).await.ok()?;
        current.insert(name, provider);
    }
    let mut unchanged = true;
    let plan = plan
        .clone()
        .transform_up_with_subqueries(|node| match node {
            LogicalPlan::TableScan(mut scan) => {
                match current.get(&scan.table_name) {
                    Some(provider) if provider.schema() == scan.source.schema() => {
                        scan.source = provider_as_source(provider.clone());
                    }
                    _ => unchanged = false,
                }
                Ok(Transformed::yes(LogicalPlan::TableScan(scan)))
            }
            other => Ok(Transformed::no(other)),
        })
        .ok()?
        .data;
    unchanged.then_some(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, RecordBatch};
    use datafusion::arrow::datatypes::{DataType, Schema};
    use datafusion::datasource::MemTable;

    use crate::engine::bind_parameters;

    fn table(columns: &[&str], rows: i64) -> Arc<MemTable> {
        let schema = Arc::new(Schema::new(
            columns
                .iter()
                .map(|c| Field::new(*c, DataType::Int64, true))
                .collect::<Vec<_>>(),
        ));
        let arrays = columns
            .iter()
            .map(|_| Arc::new(Int64Array::from_iter_values(0..rows)) as _)
            .collect();
        let batch = RecordBatch::try_new(schema.clone(), arrays).expect("batch");
        Arc::new(MemTable::try_new(schema, vec![vec![batch]]).expect("table"))
    }

    fn scanned_tables(plan: &LogicalPlan) -> Vec<Arc<dyn TableProvider>> {
        let mut sources = vec![];
        plan.apply_with_subqueries(|node| {
            if let LogicalPlan::TableScan(scan) = node {
                let source =
                    datafusion::datasource::source_as_provider(&scan.source).expect("a provider");
                sources.push(source);
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .expect("walk");
        sources
    }

    #[tokio::test]
    async fn executions_scan_the_tables_the_catalog_holds_now_or_plan_again() {
        let ctx = SessionContext::new();
        let first = table(&["id", "v"], 3);
        ctx.register_table("t", first.clone()).expect("register");
        let prepared = ctx
            .state()
            .create_logical_plan(
                "SELECT v FROM t WHERE id = $1 AND v IN (SELECT id FROM t WHERE v > 0)",
            )
            .await
            .expect("plan");
        let prepared = without_tables(prepared).expect("strip the tables");

        // The same table: the plan is used as it is.
        let same = with_current_tables(&ctx, &prepared)
            .await
            .expect("unchanged");
        for scanned in scanned_tables(&same) {
            let scanned: Arc<dyn TableProvider> = scanned;
            assert!(Arc::ptr_eq(
                &scanned,
                &(first.clone() as Arc<dyn TableProvider>)
            ));
        }

        // New rows, same columns: both scans (the subquery's too) read the new table.
        let second = table(&["id", "v"], 5);
        ctx.deregister_table("t").expect("deregister");
        ctx.register_table("t", second.clone()).expect("register");
        let fresh = with_current_tables(&ctx, &prepared)
            .await
            .expect("same columns");
        let scanned = scanned_tables(&fresh);
        assert_eq!(scanned.len(), 2);
        for scanned in scanned {
            assert!(Arc::ptr_eq(
                &scanned,
                &(second.clone() as Arc<dyn TableProvider>)
            ));
        }
        let bound = bind_parameters(fresh, &[ScalarValue::Int64(Some(4))]).expect("bind");
        let rows = ctx
            .execute_logical_plan(bound)
            .await
            .expect("plan")
            .collect()
            .await
            .expect("run");
        assert_eq!(rows.iter().map(RecordBatch::num_rows).sum::<usize>(), 1);

        // Other columns, or no table at all: the statement is planned again.
        ctx.deregister_table("t").expect("deregister");
        ctx.register_table("t", table(&["id", "v", "w"], 5))
            .expect("register");
        assert!(with_current_tables(&ctx, &prepared).await.is_none());
        ctx.deregister_table("t").expect("deregister");
        assert!(with_current_tables(&ctx, &prepared).await.is_none());
    }

    #[test]
    fn settings_tell_a_changed_default_schema() {
        let config = SessionConfig::new();
        assert_eq!(Settings::of(&config), Settings::of(&config.clone()));
        let used = config
            .clone()
            .with_default_catalog_and_schema("memory", "default");
        assert_ne!(Settings::of(&config), Settings::of(&used));
    }
}
