//! [`Engine`]: plans each statement against the coordinator's catalogs and runs it, on the
//! coordinator (metadata, DDL, `SET`, `EXPLAIN`) or as a Ballista job on the workers.
//! [`Planner`] makes the planning state (catalogs and the connectors' rules); writes are in
//! `write.rs`, `EXPLAIN [ANALYZE]` in `explain.rs`, prepared statements' plans
//! ([`PreparedPlan`]) in `prepared.rs`.

mod explain;
mod hidden;
pub mod information_schema;
mod prepared;
mod write;

use std::collections::BTreeSet;
use std::sync::Arc;

use ballista_core::extension::{
    SessionConfigExt, ballista_aggregate_functions, ballista_scalar_functions,
    ballista_window_functions,
};
use braid_catalogs::ConnectorRegistry;
use braid_connector_spi::{Listing, LogicalRule, PhysicalRule};
use braid_optimizer_rules::joins::{self, SingleProbe};
use braid_optimizer_rules::local_build::LocalBuildJoins;
use braid_optimizer_rules::properties::QueryProperties;
use braid_optimizer_rules::single_task::input_rows;
use braid_optimizer_rules::topk::SpillingTopK;
use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::CatalogProviderList;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{
    ScalarValue, TableReference, not_impl_err, plan_datafusion_err, plan_err,
};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, SessionStateBuilder};
use datafusion::logical_expr::{
    CreateMemoryTable, DdlStatement, DmlStatement, LogicalPlan, Statement as PlanStatement, WriteOp,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::TryStreamExt;

use self::information_schema::{INFORMATION_SCHEMA, WithInformationSchema};
pub use self::prepared::PreparedPlan;
use crate::job::{ResultInbox, ResultsToCoordinator, Scheduler, live_executors, run_job};
use crate::queries::{Queries, Query, TrackedStream, over_cluster_limit, worker_failure};
use crate::session::Session;
use crate::system;
use crate::time_travel;
use crate::trino::{self, MetadataStatement};

/// A planned statement: what it returns and where it runs.
#[derive(Debug, Clone)]
pub enum Planned {
    /// Rows known at planning (`SHOW ...`).
    Rows(RecordBatch),
    /// `USE catalog.schema`.
    Use { catalog: String, schema: String },
    /// Runs on the coordinator: `SET`, DDL, `information_schema`, queries without tables.
    Local(LogicalPlan),
    /// Runs as a Ballista job.
    Distributed(LogicalPlan),
    /// `CREATE TABLE [AS SELECT]`: the table is created here, the rows come from a job.
    CreateTable(CreateMemoryTable),
    /// `INSERT INTO`: the rows come from a job and go to the table's sink here.
    Insert(DmlStatement),
    /// `EXPLAIN`: logical, physical and distributed plans.
    Explain(Arc<LogicalPlan>),
    /// `EXPLAIN ANALYZE`: runs the query, then reports each stage's metrics.
    ExplainAnalyze(Arc<LogicalPlan>),
    /// `CALL system.runtime.kill_query(query_id => '...', message => '...')`.
    KillQuery {
        query_id: String,
        message: Option<String>,
    },
    /// `ALTER TABLE|VIEW [IF EXISTS] from RENAME TO to`; `view` for `ALTER VIEW`.
    Rename {
        from: TableReference,
        to: TableReference,
        view: bool,
        if_exists: bool,
    },
}

impl Planned {
    /// The schema of the statement's result.
    pub fn schema(&self) -> SchemaRef {
        match self {
            Planned::Rows(batch) => batch.schema(),
            Planned::Use { .. } | Planned::KillQuery { .. } | Planned::Rename { .. } => {
                Arc::new(Schema::empty())
            }
            Planned::Local(plan) | Planned::Distributed(plan) => {
                Arc::new(plan.schema().as_arrow().clone())
            }
            Planned::CreateTable(_) | Planned::Insert(_) => rows_schema(),
            Planned::Explain(_) | Planned::ExplainAnalyze(_) => query_plan_schema(),
        }
    }

    /// Whether running the statement changes something (a table, the session) rather than
    /// returning rows: such statements run when executed, fetched or not.
    pub fn has_side_effects(&self) -> bool {
        match self {
            Planned::Use { .. }
            | Planned::CreateTable(_)
            | Planned::Insert(_)
            | Planned::KillQuery { .. }
            | Planned::Rename { .. } => true,
            Planned::Local(plan) => matches!(
                plan,
                LogicalPlan::Statement(_) | LogicalPlan::Ddl(_) | LogicalPlan::Dml(_)
            ),
            Planned::Rows(_)
            | Planned::Distributed(_)
            | Planned::Explain(_)
            | Planned::ExplainAnalyze(_) => false,
        }
    }

    /// Whether the statement changes its session: `USE`, `SET`, `RESET`.
    pub fn changes_session(&self) -> bool {
        match self {
            Planned::Use { .. } => true,
            Planned::Local(plan) => matches!(
                plan,
                LogicalPlan::Statement(
                    PlanStatement::SetVariable(_) | PlanStatement::ResetVariable(_)
                )
            ),
            _ => false,
        }
    }

    /// The plan the statement optimizes and runs: the query, or the rows a write writes.
    fn query(&self) -> Option<&LogicalPlan> {
        match self {
            Planned::Local(plan) | Planned::Distributed(plan) => Some(plan),
            Planned::CreateTable(create) => Some(create.input.as_ref()),
            Planned::Insert(insert) => Some(insert.input.as_ref()),
            Planned::Explain(plan) | Planned::ExplainAnalyze(plan) => Some(plan.as_ref()),
            Planned::Rows(_)
            | Planned::Use { .. }
            | Planned::KillQuery { .. }
            | Planned::Rename { .. } => None,
        }
    }

    /// The statement's `$1`, `$2`, ... parameters, with the types the planner inferred
    /// (`Null` where it could not tell).
    pub fn parameters(&self) -> Result<Vec<Field>> {
        let Some(plan) = self.query() else {
            return Ok(vec![]);
        };
        let types = plan.get_parameter_types()?;
        Ok((1..=types.len())
            .map(|i| {
                let name = format!("${i}");
                let data_type = types
                    .get(&name)
                    .cloned()
                    .flatten()
                    .unwrap_or(DataType::Null);
                Field::new(name, data_type, true)
            })
            .collect())
    }
}

fn rows_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(
        "rows",
        DataType::Int64,
        false,
    )]))
}

fn query_plan_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(
        "Query Plan",
        DataType::Utf8,
        false,
    )]))
}

/// What every planning session of the coordinator is made of: the catalogs (the connectors'
/// plus `system`) and the optimizer rules the connectors contribute.
#[derive(Clone)]
pub struct Planner {
    catalogs: Arc<dyn CatalogProviderList>,
    logical_rules: Vec<LogicalRule>,
    physical_rules: Vec<PhysicalRule>,
}

impl Planner {
    /// The planner of `registry`'s catalogs; `system` joins with [`Planner::add_system`].
    pub fn new(registry: &ConnectorRegistry) -> Self {
        let catalogs = Arc::new(WithInformationSchema::new(registry.catalog_list()));
        Self {
            catalogs,
            logical_rules: registry.logical_rules(),
            // After the connectors' rules: a TopK with a large LIMIT sorts (and spills) instead;
            // joins that need all probe rows in one task get them; small broadcast build
            // sides run inside their join's tasks.
            physical_rules: registry
                .physical_rules()
                .into_iter()
                .chain([
                    Arc::new(SpillingTopK) as PhysicalRule,
                    Arc::new(SingleProbe) as PhysicalRule,
                    Arc::new(LocalBuildJoins) as PhysicalRule,
                    Arc::new(ResultsToCoordinator) as PhysicalRule,
                ])
                .collect(),
        }
    }

    /// Adds the `system` catalog, whose runtime tables read the running coordinator (every
    /// clone of this planner sees it).
    pub fn add_system(&self, registry: &ConnectorRegistry, runtime: Arc<system::Runtime>) {
        self.catalogs.register_catalog(
            system::CATALOG.to_string(),
            system::catalog(registry, runtime),
        );
    }

    /// A planning state with `config`: Braid's catalogs (each with its `information_schema`),
    /// every function, DataFusion's optimizer plus the connectors' rules (pushdown).
    pub fn session_state(&self, mut config: SessionConfig) -> datafusion::execution::SessionState {
        // Each catalog has Braid's own `information_schema`; DataFusion's would shadow it.
        config.options_mut().catalog.information_schema = false;
        let mut builder = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features()
            .with_physical_optimizer_rules(joins::physical_optimizer_rules())
            .with_catalog_list(self.catalogs.clone())
            .with_scalar_functions(ballista_scalar_functions())
            .with_aggregate_functions(ballista_aggregate_functions())
            .with_window_functions(ballista_window_functions());
        for rule in &self.logical_rules {
            builder = builder.with_optimizer_rule(rule.clone());
        }
        for rule in &self.physical_rules {
            builder = builder.with_physical_optimizer_rule(rule.clone());
        }
        builder.build()
    }
}

/// Where the final tasks of a job send their rows: the coordinator's inbox, and the internal
/// port the workers reach it on.
pub struct ResultsRoute {
    pub inbox: Arc<ResultInbox>,
    pub endpoint: String,
}

/// Plans and runs statements for every session of the coordinator.
pub struct Engine {
    registry: ConnectorRegistry,
    planner: Planner,
    scheduler: Scheduler,
    queries: Arc<Queries>,
    results: ResultsRoute,
}

impl Engine {
    pub fn new(
        registry: ConnectorRegistry,
        planner: Planner,
        queries: Arc<Queries>,
        results: ResultsRoute,
    ) -> Self {
        Self {
            registry,
            planner,
            scheduler: queries.scheduler().clone(),
            queries,
            results,
        }
    }

    /// The coordinator's queries: where every statement is registered before it is planned.
    pub fn queries(&self) -> &Arc<Queries> {
        &self.queries
    }

    pub fn registry(&self) -> &ConnectorRegistry {
        &self.registry
    }

    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    /// A planning context for `session`: its settings, with target partitions sized to the
    /// cluster's task slots unless the session fixed them.
    pub async fn context(&self, session: &Session) -> SessionContext {
        let mut config = session.config();
        // Ballista's broadcast promotion checks no join type (fixed after 53, see
        // apache/datafusion-ballista#1900); Braid's `BroadcastJoins` chooses the joins.
        config = config.with_ballista_broadcast_join_threshold_bytes(0);
        if !session.fixed_partitions() {
            let slots = self.task_slots().await;
            if slots > 0 {
                config = config.with_target_partitions(slots);
            }
        }
        self.context_with(config)
    }

    /// A planning context with exactly `config`.
    pub fn context_with(&self, config: SessionConfig) -> SessionContext {
        SessionContext::new_with_state(self.planner.session_state(config))
    }

    /// Task slots of the live workers.
    pub async fn task_slots(&self) -> usize {
        self.live_workers().await.1
    }

    /// The live workers and their task slots.
    pub async fn live_workers(&self) -> (usize, usize) {
        let live = live_executors(&self.scheduler).await;
        let slots = live
            .iter()
            .map(|meta| meta.specification.task_slots as usize)
            .sum();
        (live.len(), slots)
    }

    /// Plans one statement whose `$n` placeholders take `params` (a prepared statement's bound
    /// row), cast to the types the planner inferred for them.
    pub async fn plan_with(
        &self,
        session: &Session,
        sql: &str,
        params: Option<&[ScalarValue]>,
    ) -> Result<Planned> {
        let ctx = self.context(session).await;
        let (plan, catalogs) = self.plan_statement(&ctx, sql).await?;
        match plan {
            Analyzed::Planned(planned) => Ok(planned),
            Analyzed::Query(plan) => self.bind_and_place(&ctx, plan, params, &catalogs).await,
        }
    }

    /// Binds `params` to a query's `$n` placeholders, decides where it runs, and has the
    /// connectors of the `catalogs` it reads complete their rules' checks.
    async fn bind_and_place(
        &self,
        ctx: &SessionContext,
        plan: LogicalPlan,
        params: Option<&[ScalarValue]>,
        catalogs: &BTreeSet<String>,
    ) -> Result<Planned> {
        let plan = match params {
            Some(values) => bind_parameters(plan, values)?,
            None => plan,
        };
        let planned = classify(plan)?;
        self.complete_rule_checks(ctx, &planned, catalogs).await;
        Ok(planned)
    }

    /// Plans one statement up to its logical plan (parameters unbound); the catalogs it reads.
    async fn plan_statement(
        &self,
        ctx: &SessionContext,
        sql: &str,
    ) -> Result<(Analyzed, BTreeSet<String>)> {
        let planned = |planned| Ok((Analyzed::Planned(planned), BTreeSet::new()));
        if let Some(statement) = trino::parse(sql)? {
            return planned(self.plan_metadata(ctx, statement).await?);
        }
        let alias = trino::session_alias(sql);
        let sql = alias.as_deref().unwrap_or(sql);
        let travelled = time_travel::rewrite(sql).map_err(DataFusionError::Plan)?;
        let sql = travelled.as_deref().unwrap_or(sql);
        let view_sql = trino::view_statement(sql);
        let (sql, renames_view) = match &view_sql {
            Some(edit) => (edit.sql.as_str(), edit.renames_view),
            None => (sql, false),
        };
        let state = ctx.state();
        let mut statement =
            state.sql_to_statement(sql, &state.config().options().sql_parser.dialect)?;
        if let Some((query_id, message)) = trino::kill_query_call(&statement)? {
            return planned(Planned::KillQuery { query_id, message });
        }
        let normalize = state
            .config()
            .options()
            .sql_parser
            .enable_ident_normalization;
        if let Some((from, to, if_exists)) = trino::rename_of(&statement, normalize)? {
            return planned(Planned::Rename {
                from,
                to,
                view: renames_view,
                if_exists,
            });
        }
        let mut catalogs = BTreeSet::new();
        let mut listed = BTreeSet::new();
        for reference in state.resolve_table_references(&statement)? {
            let resolved = trino::resolve(&state, reference);
            if resolved.schema.as_ref() == INFORMATION_SCHEMA {
                trino::check_exists(ctx, &resolved.catalog, Some(&resolved.schema))?;
                listed.insert(resolved.catalog.to_string());
            } else {
                self.check_schema(ctx, &resolved.catalog, &resolved.schema)
                    .await?;
            }
            catalogs.insert(resolved.catalog.to_string());
        }
        for catalog in &listed {
            self.refresh_all_listings(Some(catalog), Listing::All).await;
        }
        hidden::hide_columns(ctx, &mut statement).await?;
        let plan = state
            .statement_to_plan(statement)
            .await
            .map_err(trino_error)?;
        Ok((Analyzed::Query(plan), catalogs))
    }

    /// [`Engine::plan_with`] for a registered `query`: it is marked planned, or failed with
    /// the planning error.
    pub async fn plan_query(
        &self,
        query: &Query,
        session: &Session,
        sql: &str,
        params: Option<&[ScalarValue]>,
    ) -> Result<Planned> {
        planned_or_failed(query, self.plan_with(session, sql, params).await)
    }

    /// Brings what `catalog`'s synchronous listings return up to date for `listing`.
    pub async fn refresh_listings(&self, catalog: &str, listing: Listing<'_>) -> Result<()> {
        match self.registry.get(catalog) {
            Some(connector) => connector
                .refresh_listings(listing)
                .await
                .map_err(|e| DataFusionError::External(Box::new(e))),
            None => Ok(()),
        }
    }

    /// Lists `catalog`'s schemas, then checks that `schema` is one. A schema missing because
    /// the catalog could not be listed reports the listing's error, the one to fix; other
    /// listing errors are left for the table's resolution to report.
    pub(super) async fn check_schema(
        &self,
        ctx: &SessionContext,
        catalog: &str,
        schema: &str,
    ) -> Result<()> {
        let refreshed = self.refresh_listings(catalog, Listing::Schemas).await;
        trino::check_exists(ctx, catalog, Some(schema))
            .map_err(|missing| refreshed.err().unwrap_or(missing))
    }

    /// Brings `listing` of `catalog` (of every catalog if `None`) up to date, the catalogs at
    /// once. A catalog that cannot answer is logged and lists what it last knew.
    pub async fn refresh_all_listings(&self, catalog: Option<&str>, listing: Listing<'_>) {
        let refreshes = self
            .registry
            .iter()
            .filter(|(name, _)| catalog.is_none_or(|c| c == name.as_str()))
            .map(|(name, connector)| async move {
                if let Err(e) = connector.refresh_listings(listing).await {
                    tracing::warn!(catalog = %name, "listing the catalog failed: {e}");
                }
            });
        futures::future::join_all(refreshes).await;
    }

    /// Optimizes the statement's plan once so that the connectors' rules see it and ask their
    /// sources what they must (PostgreSQL checking a pushed-down subtree's SQL), then awaits
    /// the answers: the optimizations that follow (the job's, `EXPLAIN`'s) use them. The
    /// rules themselves never wait on the network.
    async fn complete_rule_checks(
        &self,
        ctx: &SessionContext,
        planned: &Planned,
        catalogs: &BTreeSet<String>,
    ) {
        let Some(plan) = planned.query() else {
            return;
        };
        let connectors: Vec<_> = catalogs
            .iter()
            .filter_map(|name| self.registry.get(name).map(|c| (name, c)))
            .filter(|(_, c)| !c.logical_rules().is_empty())
            .collect();
        if connectors.is_empty() {
            return;
        }
        // An error here is reported when the plan is optimized to run.
        let _ = ctx.state().optimize(plan);
        for (name, connector) in connectors {
            if let Err(e) = connector.complete_rule_checks().await {
                tracing::warn!(catalog = %name, "checking pushdown with the source failed: {e}");
            }
        }
    }

    async fn plan_metadata(
        &self,
        ctx: &SessionContext,
        statement: MetadataStatement,
    ) -> Result<Planned> {
        let defaults = ctx.state().config().options().catalog.clone();
        let batch = match statement {
            MetadataStatement::ShowCatalogs { like } => {
                trino::names_batch("Catalog", ctx.catalog_names(), like.as_deref())?
            }
            MetadataStatement::ShowSchemas { catalog, like } => {
                let catalog = catalog.map_or(defaults.default_catalog, normalize);
                trino::check_exists(ctx, &catalog, None)?;
                self.refresh_listings(&catalog, Listing::Schemas).await?;
                let mut names = ctx
                    .catalog(&catalog)
                    .map(|c| c.schema_names())
                    .unwrap_or_default();
                names.push(INFORMATION_SCHEMA.into());
                trino::names_batch("Schema", names, like.as_deref())?
            }
            MetadataStatement::ShowTables { schema, like } => {
                let (catalog, schema) = match schema {
                    None => (defaults.default_catalog, defaults.default_schema),
                    Some(name) => split_schema_name(&name, &defaults.default_catalog)?,
                };
                self.refresh_listings(&catalog, Listing::Tables { schema: &schema })
                    .await?;
                trino::check_exists(ctx, &catalog, Some(&schema))?;
                let provider = ctx.state().schema_for_ref(TableReference::full(
                    catalog.as_str(),
                    schema.as_str(),
                    "",
                ))?;
                trino::names_batch("Table", provider.table_names(), like.as_deref())?
            }
            MetadataStatement::ShowColumns { table } => trino::describe(ctx, &table).await?,
            MetadataStatement::ShowSession { like } => trino::show_session(ctx, like.as_deref())?,
            MetadataStatement::Use { target } => {
                let (catalog, schema) = split_schema_name(&target, &defaults.default_catalog)?;
                self.check_schema(ctx, &catalog, &schema).await?;
                return Ok(Planned::Use { catalog, schema });
            }
        };
        Ok(Planned::Rows(batch))
    }

    /// Runs a planned statement once its resource group lets it; the stream yields its result
    /// rows, and the query ends with the stream. `query.control` cancels it.
    pub async fn execute(
        &self,
        session: &Session,
        planned: Planned,
        query: &Arc<Query>,
    ) -> Result<SendableRecordBatchStream> {
        let permit = self.queries.admit(query).await?;
        match self.run_statement(session, planned, query).await {
            Ok(stream) => Ok(Box::pin(TrackedStream::new(
                stream,
                query.clone(),
                Some(permit),
            ))),
            Err(error) => Err(query.fail(error)),
        }
    }

    async fn run_statement(
        &self,
        session: &Session,
        planned: Planned,
        query: &Query,
    ) -> Result<SendableRecordBatchStream> {
        let ctx = self.context(session).await;
        match planned {
            Planned::KillQuery { query_id, message } => {
                self.queries
                    .kill(&query_id, message.as_deref(), &query.user)?;
                Ok(done_stream())
            }
            Planned::Rows(batch) => Ok(batches_stream(batch.schema(), vec![batch])),
            Planned::Use { catalog, schema } => {
                let mut config = session.config();
                config.options_mut().catalog.default_catalog = catalog;
                config.options_mut().catalog.default_schema = schema;
                session.update_config(config, false);
                Ok(done_stream())
            }
            Planned::Local(LogicalPlan::Ddl(DdlStatement::DropTable(drop))) => {
                self.drop_table(ctx, drop).await
            }
            Planned::Local(LogicalPlan::Ddl(DdlStatement::CreateView(create))) => {
                self.create_view(ctx, create).await
            }
            Planned::Rename {
                from,
                to,
                view,
                if_exists,
            } => self.rename(ctx, (from, to), view, if_exists).await,
            Planned::Local(LogicalPlan::Ddl(DdlStatement::CreateCatalogSchema(create)))
                if self.create_schema(&ctx, &create).await? =>
            {
                Ok(done_stream())
            }
            Planned::Local(plan) => {
                let is_set = matches!(
                    plan,
                    LogicalPlan::Statement(
                        PlanStatement::SetVariable(_) | PlanStatement::ResetVariable(_)
                    )
                );
                let fixes_partitions = sets_target_partitions(&plan);
                let stream = ctx
                    .execute_logical_plan(plan)
                    .await?
                    .execute_stream()
                    .await?;
                if is_set {
                    // SET / RESET changed the context's config: keep it for the session, but
                    // not the cluster-sized partition count the context was made with.
                    let mut config = ctx.copied_config();
                    if !fixes_partitions && !session.fixed_partitions() {
                        config =
                            config.with_target_partitions(session.config().target_partitions());
                    }
                    session.update_config(config, fixes_partitions);
                }
                Ok(stream)
            }
            Planned::Distributed(plan) => {
                let (ctx, _) = self.sized(ctx, session, &plan);
                Ok(self.run(ctx, &plan, query).await?.1)
            }
            Planned::CreateTable(create) => self.create_table(ctx, create, query).await,
            Planned::Insert(insert) => self.insert(ctx, insert, query).await,
            Planned::Explain(plan) => {
                let (ctx, single_task) = self.sized(ctx, session, &plan);
                self.explain(ctx, &plan, single_task).await
            }
            Planned::ExplainAnalyze(plan) => {
                let (ctx, _) = self.sized(ctx, session, &plan);
                self.explain_analyze(ctx, &plan, query).await
            }
        }
    }

    /// Runs a statement that returns no rows (DDL, `INSERT`, `SET`, `USE`) and returns its
    /// update count: the rows written, else 0. A query is refused: it has rows to fetch.
    pub async fn execute_update(
        &self,
        session: &Session,
        planned: Planned,
        query: &Arc<Query>,
    ) -> Result<i64> {
        let writes = matches!(planned, Planned::CreateTable(_) | Planned::Insert(_));
        if !planned.has_side_effects() {
            return plan_err!("the statement returns rows: run it as a query, not as an update");
        }
        let batches: Vec<RecordBatch> = self
            .execute(session, planned, query)
            .await?
            .try_collect()
            .await?;
        if !writes {
            return Ok(0);
        }
        Ok(batches.iter().map(written_rows).sum())
    }

    /// `ctx`, or a copy that plans `plan` in one partition when its tables hold at most
    /// `single_task_max_input_rows` rows by their statistics (then also those rows): Ballista
    /// runs such a plan as one task of one stage, with no shuffle. A session that fixed its
    /// partition count keeps it.
    fn sized(
        &self,
        ctx: SessionContext,
        session: &Session,
        plan: &LogicalPlan,
    ) -> (SessionContext, Option<usize>) {
        let config = ctx.copied_config();
        if session.fixed_partitions() || config.target_partitions() <= 1 {
            return (ctx, None);
        }
        let limit = QueryProperties::of(config.options()).single_task_max_input_rows;
        match input_rows(plan).filter(|rows| limit > 0 && *rows <= limit) {
            Some(rows) => (
                self.context_with(config.with_target_partitions(1)),
                Some(rows),
            ),
            None => (ctx, None),
        }
    }

    /// Runs `plan` as a job of `query`, which its workers know by `braid.query_id`.
    async fn run(
        &self,
        ctx: SessionContext,
        plan: &LogicalPlan,
        query: &Query,
    ) -> Result<(String, SendableRecordBatchStream)> {
        let mut config = ctx.copied_config();
        let options = config.options_mut();
        options.set("braid.query_id", &query.id)?;
        options.set("braid.result_endpoint", &self.results.endpoint)?;
        // The workers enforce the per-node limit: they get the effective one and its name.
        match query.max_memory_per_node() {
            Some(limit) => {
                options.set("braid.query_max_memory_per_node", &limit.bytes.to_string())?;
                options.set("braid.memory_limit_source", limit.name)?;
            }
            None => {
                options.set("braid.memory_limit_source", "")?;
            }
        }
        let ctx = self.context_with(config);
        let results = self.results.inbox.open(&query.id)?;
        let (limit, cluster) = (query.max_memory_per_node(), query.max_memory());
        // A worker's failure reads as Trino's error for it, whether the job fails before its
        // first row or while its rows stream.
        let named = move |error: DataFusionError| match &error {
            DataFusionError::Execution(message) => match worker_failure(message, limit) {
                Some(failure) => over_cluster_limit(failure, cluster).into_error(),
                None => error,
            },
            _ => error,
        };
        let (job_id, rows) = run_job(&self.scheduler, ctx, plan, &query.control, results, |_| {
            query.submitted()
        })
        .await
        .map_err(&named)?;
        let schema = rows.schema();
        let rows = rows.map_err(named);
        Ok((
            job_id,
            Box::pin(RecordBatchStreamAdapter::new(schema, rows)),
        ))
    }
}

/// `plan` with its `$n` placeholders replaced by `values`, each cast to its inferred type.
fn bind_parameters(plan: LogicalPlan, values: &[ScalarValue]) -> Result<LogicalPlan> {
    let types = plan.get_parameter_types()?;
    if types.len() != values.len() {
        return plan_err!(
            "the statement has {} parameters but {} values were bound",
            types.len(),
            values.len()
        );
    }
    let values = values
        .iter()
        .enumerate()
        .map(|(i, value)| match types.get(&format!("${}", i + 1)) {
            Some(Some(data_type)) if value.data_type() != *data_type => value
                .cast_to(data_type)
                .map_err(|e| plan_datafusion_err!("parameter {}: {e}", i + 1)),
            _ => Ok(value.clone()),
        })
        .collect::<Result<Vec<_>>>()?;
    plan.with_param_values(values)
}

/// The rows a batch of a write's result counts (its first column, `count`).
pub fn written_rows(batch: &RecordBatch) -> i64 {
    batch
        .columns()
        .first()
        .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
        .map_or(0, |counts| counts.iter().flatten().sum())
}

/// Marks `query` planned, or failed with the planning error.
fn planned_or_failed(query: &Query, planned: Result<Planned>) -> Result<Planned> {
    match planned {
        Ok(planned) => {
            query.planned();
            Ok(planned)
        }
        Err(error) => Err(query.fail(error)),
    }
}

/// A statement as [`Engine::plan_statement`] leaves it.
enum Analyzed {
    /// Planned to the end: metadata, `CALL`, `ALTER ... RENAME`.
    Planned(Planned),
    /// Its logical plan, `$n` parameters unbound.
    Query(LogicalPlan),
}

/// Where a logical plan runs.
fn classify(plan: LogicalPlan) -> Result<Planned> {
    Ok(match plan {
        LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(create)) => Planned::CreateTable(create),
        LogicalPlan::Ddl(
            DdlStatement::DropTable(_)
            | DdlStatement::CreateCatalogSchema(_)
            | DdlStatement::DropCatalogSchema(_)
            // DataFusion makes a `ListingTable` and registers it with the target schema; a
            // catalog that keeps such tables (files) accepts it, others refuse.
            | DdlStatement::CreateExternalTable(_)
            // A `ViewTable` of the query, registered with a catalog that keeps views.
            | DdlStatement::CreateView(_)
            | DdlStatement::DropView(_),
        ) => Planned::Local(plan),
        LogicalPlan::Ddl(other) => return not_impl_err!("{} is not supported", other.name()),
        LogicalPlan::Dml(dml) if matches!(dml.op, WriteOp::Insert(_)) => Planned::Insert(dml),
        LogicalPlan::Dml(dml) => return not_impl_err!("{} is not supported", dml.op),
        LogicalPlan::Statement(PlanStatement::SetVariable(_) | PlanStatement::ResetVariable(_)) => {
            Planned::Local(plan)
        }
        LogicalPlan::Statement(other) => return not_impl_err!("{} is not supported", other.name()),
        LogicalPlan::Explain(explain) => Planned::Explain(explain.plan),
        LogicalPlan::Analyze(analyze) => Planned::ExplainAnalyze(analyze.input),
        LogicalPlan::DescribeTable(_) => Planned::Local(plan),
        query if runs_on_coordinator(&query)? => Planned::Local(query),
        query => Planned::Distributed(query),
    })
}

/// Plans that read no table, or only `information_schema` and `system` tables (which live on
/// the coordinator and do not serialize), run locally.
fn runs_on_coordinator(plan: &LogicalPlan) -> Result<bool> {
    let mut scans = 0;
    let mut remote = 0;
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            scans += 1;
            let local = scan.table_name.schema() == Some(INFORMATION_SCHEMA)
                || scan.table_name.catalog() == Some(system::CATALOG);
            if !local {
                remote += 1;
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(scans == 0 || remote == 0)
}

fn sets_target_partitions(plan: &LogicalPlan) -> bool {
    matches!(plan, LogicalPlan::Statement(PlanStatement::SetVariable(set)) if set.variable.ends_with("target_partitions"))
}

/// Trino's wording for DataFusion's "table not found".
fn trino_error(error: DataFusionError) -> DataFusionError {
    let message = error.to_string();
    if let Some(rest) = message.strip_prefix("Error during planning: table '")
        && let Some(name) = rest.strip_suffix("' not found")
    {
        return DataFusionError::Plan(format!("Table '{name}' does not exist"));
    }
    error
}

/// `catalog.schema` or `schema` (in the current catalog); quoted parts keep their case.
fn split_schema_name(name: &str, default_catalog: &str) -> Result<(String, String)> {
    match TableReference::parse_str(name) {
        TableReference::Bare { table } => Ok((default_catalog.to_string(), table.to_string())),
        TableReference::Partial { schema, table } => Ok((schema.to_string(), table.to_string())),
        TableReference::Full { .. } => plan_err!("'{name}' is not a schema name (catalog.schema)"),
    }
}

/// One identifier, normalized as the SQL planner does.
fn normalize(ident: String) -> String {
    TableReference::parse_str(&ident).table().to_string()
}

/// A stream of batches already in memory.
pub fn batches_stream(schema: SchemaRef, batches: Vec<RecordBatch>) -> SendableRecordBatchStream {
    Box::pin(
        datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
            schema,
            futures::stream::iter(batches.into_iter().map(Ok)),
        ),
    )
}

/// A one-row, one-column result.
fn single_value_stream(
    schema: SchemaRef,
    value: datafusion::arrow::array::ArrayRef,
) -> SendableRecordBatchStream {
    match RecordBatch::try_new(schema.clone(), vec![value]) {
        Ok(batch) => batches_stream(schema, vec![batch]),
        Err(e) => Box::pin(
            datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
                schema,
                futures::stream::iter([Err(e.into())]),
            ),
        ),
    }
}

/// The empty result of a statement that returns nothing (DDL, `USE`, `CALL`).
fn done_stream() -> SendableRecordBatchStream {
    batches_stream(Arc::new(Schema::empty()), vec![])
}

fn rows_stream(rows: i64) -> SendableRecordBatchStream {
    single_value_stream(rows_schema(), Arc::new(Int64Array::from(vec![rows])))
}

fn text_stream(text: String) -> SendableRecordBatchStream {
    single_value_stream(query_plan_schema(), Arc::new(StringArray::from(vec![text])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_split_and_normalize() {
        assert_eq!(
            split_schema_name("TPCH.Tiny", "x").unwrap(),
            ("tpch".into(), "tiny".into())
        );
        assert_eq!(
            split_schema_name("tpch.\"sf0.1\"", "x").unwrap(),
            ("tpch".into(), "sf0.1".into())
        );
        assert_eq!(
            split_schema_name("tiny", "tpch").unwrap(),
            ("tpch".into(), "tiny".into())
        );
        assert!(split_schema_name("a.b.c", "x").is_err());
        assert_eq!(normalize("MEMORY".into()), "memory");
    }
}
