//! Writes: `CREATE TABLE [AS]` and `INSERT` run their query as a job and feed its rows to the
//! table's sink on the coordinator; `CREATE OR REPLACE` replaces the table in one step once all
//! rows are written. `DROP TABLE` asks the table's connector, then its schema, to drop it;
//! `CREATE SCHEMA` asks the catalog's connector. `CREATE [OR REPLACE] VIEW` registers
//! DataFusion's view with a catalog that keeps views; `ALTER TABLE|VIEW ... RENAME TO` asks the
//! catalog's connector.

use std::sync::Arc;

use datafusion::arrow::array::UInt64Array;
use datafusion::catalog::{MemTable, SchemaProvider, TableProvider};
use datafusion::common::{ResolvedTableReference, TableReference, not_impl_err, plan_err};
use datafusion::datasource::{TableType, source_as_provider};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{
    CreateCatalogSchema, CreateMemoryTable, CreateView, DdlStatement, DmlStatement, DropTable,
    LogicalPlan, WriteOp,
};
use datafusion::physical_plan::collect;
use datafusion::prelude::SessionContext;

use braid_connector_spi::Listing;

use super::{Engine, batches_stream, done_stream, rows_stream};
use crate::job::OneShotExec;
use crate::queries::Query;
use crate::trino;

impl Engine {
    pub(super) async fn create_table(
        &self,
        ctx: SessionContext,
        create: CreateMemoryTable,
        query: &Query,
    ) -> Result<SendableRecordBatchStream> {
        let state = ctx.state();
        let resolved = trino::resolve(&state, create.name.clone());
        let schema = state.schema_for_ref(create.name.clone())?;
        let columns = Arc::new(create.input.schema().as_arrow().clone());
        let no_rows =
            matches!(create.input.as_ref(), LogicalPlan::EmptyRelation(e) if !e.produce_one_row);
        let (table, op, created) = match schema.table(&resolved.table).await? {
            Some(_) if create.if_not_exists => return Ok(rows_stream(0)),
            Some(_) if !create.or_replace => return plan_err!("Table '{resolved}' already exists"),
            // CREATE OR REPLACE: the new table takes the old one's place only once all its
            // rows are written; a failed job leaves the old table as it was (as in Trino).
            Some(old) => (old, InsertOp::Overwrite, false),
            None => {
                let in_source = match self.registry.get(&resolved.catalog) {
                    Some(connector) => connector
                        .create_table(&resolved.schema, &resolved.table, columns.clone())
                        .await
                        .map_err(DataFusionError::from)?,
                    None => false,
                };
                if !in_source {
                    schema.register_table(
                        resolved.table.to_string(),
                        Arc::new(MemTable::try_new(columns.clone(), vec![vec![]])?),
                    )?;
                }
                if no_rows {
                    return Ok(rows_stream(0));
                }
                let Some(table) = schema.table(&resolved.table).await? else {
                    return plan_err!("Table '{resolved}' vanished while it was created");
                };
                (table, InsertOp::Append, true)
            }
        };
        let rows = if no_rows {
            batches_stream(columns, vec![])
        } else {
            self.run(ctx.clone(), &create.input, query)
                .await
                .map(|(_, rows)| rows)?
        };
        let result = write(&ctx, rows, table, op).await;
        if result.is_err() && created {
            // A failed CREATE TABLE AS leaves no table behind, as in Trino.
            let _ = self.drop(&resolved, schema.as_ref()).await;
        }
        result
    }

    /// `DROP TABLE [IF EXISTS]`. A catalog's refusal reaches the user as the catalog worded
    /// it (DataFusion's `SessionContext` reports any failure as "doesn't exist").
    pub(super) async fn drop_table(
        &self,
        ctx: SessionContext,
        drop: DropTable,
    ) -> Result<SendableRecordBatchStream> {
        let state = ctx.state();
        let resolved = trino::resolve(&state, drop.name.clone());
        // The statement names no table to plan, so its schema was not listed yet.
        if let Err(e) = self
            .check_schema(&ctx, &resolved.catalog, &resolved.schema)
            .await
        {
            return if drop.if_exists {
                Ok(done_stream())
            } else {
                Err(e)
            };
        }
        let schema = match state.schema_for_ref(drop.name.clone()) {
            Ok(schema) => match schema.table(&resolved.table).await? {
                Some(view) if view.table_type() == TableType::View => {
                    return plan_err!("'{resolved}' is a view, not a table: use DROP VIEW");
                }
                Some(_) => Some(schema),
                None => None,
            },
            _ => None,
        };
        let dropped = match schema {
            Some(schema) => self.drop(&resolved, schema.as_ref()).await?,
            None => false,
        };
        if !dropped && !drop.if_exists {
            return plan_err!("Table '{resolved}' does not exist");
        }
        Ok(done_stream())
    }

    /// `CREATE [OR REPLACE] VIEW`, in a catalog that keeps views. DataFusion plans the view's
    /// query now and registers it with the schema; a view replaces only a view.
    pub(super) async fn create_view(
        &self,
        ctx: SessionContext,
        create: CreateView,
    ) -> Result<SendableRecordBatchStream> {
        let state = ctx.state();
        let resolved = trino::resolve(&state, create.name.clone());
        self.check_schema(&ctx, &resolved.catalog, &resolved.schema)
            .await?;
        if !self
            .registry
            .get(&resolved.catalog)
            .is_some_and(|connector| connector.capabilities().views)
        {
            return not_impl_err!(
                "Catalog '{}' does not keep views; create '{}' in a memory catalog",
                resolved.catalog,
                resolved.table
            );
        }
        let schema = state.schema_for_ref(create.name.clone())?;
        if let Some(existing) = schema.table(&resolved.table).await? {
            if existing.table_type() != TableType::View {
                return plan_err!("'{resolved}' is a table, not a view");
            }
            if !create.or_replace {
                return plan_err!("View '{resolved}' already exists");
            }
        }
        ctx.execute_logical_plan(LogicalPlan::Ddl(DdlStatement::CreateView(create)))
            .await?
            .collect()
            .await?;
        Ok(done_stream())
    }

    /// `ALTER TABLE|VIEW [IF EXISTS] from RENAME TO to` (`view` for `ALTER VIEW`), within one
    /// catalog, by its connector.
    pub(super) async fn rename(
        &self,
        ctx: SessionContext,
        (from, to): (TableReference, TableReference),
        view: bool,
        if_exists: bool,
    ) -> Result<SendableRecordBatchStream> {
        let state = ctx.state();
        let (old, new) = (
            trino::resolve(&state, from.clone()),
            trino::resolve(&state, to),
        );
        let kind = if view { "View" } else { "Table" };
        if old.catalog != new.catalog {
            return not_impl_err!(
                "{kind} rename across catalogs is not supported ('{old}' to '{new}')"
            );
        }
        let existing = match self.check_schema(&ctx, &old.catalog, &old.schema).await {
            Ok(()) => state.schema_for_ref(from)?.table(&old.table).await?,
            Err(_) if if_exists => None,
            Err(e) => return Err(e),
        };
        match existing {
            None if if_exists => return Ok(done_stream()),
            None => return plan_err!("{kind} '{old}' does not exist"),
            Some(t) if view && t.table_type() != TableType::View => {
                return plan_err!("'{old}' is a table, not a view: use ALTER TABLE");
            }
            Some(t) if !view && t.table_type() == TableType::View => {
                return plan_err!("'{old}' is a view, not a table: use ALTER VIEW");
            }
            Some(_) => {}
        }
        self.check_schema(&ctx, &new.catalog, &new.schema).await?;
        let Some(connector) = self.registry.get(&old.catalog) else {
            return plan_err!("Catalog '{}' does not exist", old.catalog);
        };
        let renamed = connector
            .rename_table((&old.schema, &old.table), (&new.schema, &new.table))
            .await
            .map_err(DataFusionError::from)?;
        if !renamed {
            return not_impl_err!(
                "Catalog '{}' ({} connector) does not support renaming tables",
                old.catalog,
                connector.kind()
            );
        }
        Ok(done_stream())
    }

    /// `CREATE SCHEMA [IF NOT EXISTS] [catalog.]schema` in a catalog whose connector makes
    /// schemas in its source; `Ok(false)` leaves the statement to DataFusion.
    pub(super) async fn create_schema(
        &self,
        ctx: &SessionContext,
        create: &CreateCatalogSchema,
    ) -> Result<bool> {
        let options = ctx.copied_config();
        let (catalog, schema) = match create.schema_name.split_once('.') {
            Some((catalog, schema)) => (catalog.to_string(), schema.to_string()),
            None => (
                options.options().catalog.default_catalog.clone(),
                create.schema_name.clone(),
            ),
        };
        let Some(connector) = self.registry.get(&catalog) else {
            return Ok(false);
        };
        self.refresh_listings(&catalog, Listing::Schemas).await?;
        let exists = ctx
            .catalog(&catalog)
            .is_some_and(|c| c.schema_names().contains(&schema));
        if exists {
            return if create.if_not_exists {
                Ok(true)
            } else {
                plan_err!("Schema '{catalog}.{schema}' already exists")
            };
        }
        connector
            .create_schema(&schema)
            .await
            .map_err(DataFusionError::from)
    }

    /// Drops a table that exists, in its source when its connector keeps tables there, else
    /// from its schema; whether there was one.
    async fn drop(
        &self,
        resolved: &ResolvedTableReference,
        schema: &dyn SchemaProvider,
    ) -> Result<bool> {
        if let Some(connector) = self.registry.get(&resolved.catalog)
            && connector
                .drop_table(&resolved.schema, &resolved.table)
                .await
                .map_err(DataFusionError::from)?
        {
            return Ok(true);
        }
        Ok(schema.deregister_table(&resolved.table)?.is_some())
    }

    pub(super) async fn insert(
        &self,
        ctx: SessionContext,
        insert: DmlStatement,
        query: &Query,
    ) -> Result<SendableRecordBatchStream> {
        let WriteOp::Insert(op) = insert.op else {
            return not_impl_err!("{} is not supported", insert.op);
        };
        let table = source_as_provider(&insert.target)?;
        let (_, rows) = self.run(ctx.clone(), &insert.input, query).await?;
        write(&ctx, rows, table, op).await
    }
}

/// Feeds `rows` (a job's result) to `table`'s sink on the coordinator; one row with the count
/// of rows written.
async fn write(
    ctx: &SessionContext,
    rows: SendableRecordBatchStream,
    table: Arc<dyn TableProvider>,
    op: InsertOp,
) -> Result<SendableRecordBatchStream> {
    let sink = table
        .insert_into(&ctx.state(), Arc::new(OneShotExec::new(rows)), op)
        .await?;
    let counts = collect(sink, ctx.task_ctx()).await?;
    let written: u64 = counts
        .iter()
        .filter_map(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<UInt64Array>()
                .map(|a| a.values().iter().sum::<u64>())
        })
        .sum();
    Ok(rows_stream(written as i64))
}
