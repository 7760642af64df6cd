//! [`ComputedTable`]: a table whose rows are computed when a statement scans it, on the
//! coordinator — metadata tables (`"t$history"`, `"t$snapshots"`) and system tables
//! (`system.runtime.queries`). A [`RowSource`] says what the rows are; the table does the rest.

use std::any::Any;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::memory::MemorySourceConfig;
use datafusion::catalog::{Session, TableProvider};
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;

/// The rows of a computed table.
#[async_trait]
pub trait RowSource: Debug + Send + Sync + 'static {
    /// The table's schema; every batch of [`RowSource::rows`] has it.
    fn schema(&self) -> SchemaRef;

    /// The rows as of now.
    async fn rows(&self) -> Result<Vec<RecordBatch>>;
}

/// A table over a [`RowSource`]: a view whose rows are computed at each scan.
#[derive(Debug)]
pub struct ComputedTable<S>(pub S);

impl<S: RowSource> ComputedTable<S> {
    /// The table, ready to register or return from a schema.
    pub fn provider(source: S) -> Arc<dyn TableProvider> {
        Arc::new(Self(source))
    }
}

#[async_trait]
impl<S: RowSource> TableProvider for ComputedTable<S> {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> SchemaRef {
        self.0.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let rows = self.0.rows().await?;
        Ok(MemorySourceConfig::try_new_exec(
            &[rows],
            self.0.schema(),
            projection.cloned(),
        )?)
    }
}
