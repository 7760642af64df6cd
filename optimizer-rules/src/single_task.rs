//! Queries small enough for one task. A Ballista job pays for every stage it has: the stage is
//! scheduled, its tasks start, their output is shuffled through files and read back. When a
//! query's tables are small that costs more than reading them, so the coordinator plans such a
//! query with one partition ([`input_rows`] under `single_task_max_input_rows`): Ballista
//! then runs it as one stage of one task. [`crate::joins::BroadcastJoins`] keeps its joins
//! partitioned, since a broadcast join's build side would be a stage of its own.

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::{LogicalPlan, TableScan};

/// The rows the table scans of `plan` (subqueries included) read together by their tables'
/// statistics, each capped by the limit pushed into it; `None` if a table does not know.
pub fn input_rows(plan: &LogicalPlan) -> Option<usize> {
    let mut total = Some(0usize);
    // The closure never fails.
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            total = total
                .zip(scan_rows(scan))
                .map(|(sum, rows)| sum.saturating_add(rows));
            if total.is_none() {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    total
}

fn scan_rows(scan: &TableScan) -> Option<usize> {
    let statistics = source_as_provider(&scan.source).ok()?.statistics()?;
    let rows = *statistics.num_rows.get_value()?;
    Some(scan.fetch.map_or(rows, |fetch| rows.min(fetch)))
}

#[cfg(test)]
mod tests {
    use std::any::Any;
    use std::sync::Arc;

    use async_trait::async_trait;
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::catalog::{Session, TableProvider};
    use datafusion::common::Statistics;
    use datafusion::common::stats::Precision;
    use datafusion::datasource::{MemTable, TableType};
    use datafusion::error::Result;
    use datafusion::logical_expr::Expr;
    use datafusion::physical_plan::ExecutionPlan;
    use datafusion::prelude::SessionContext;

    use super::*;

    /// A table of `rows` rows that knows its row count (a `MemTable` does not).
    #[derive(Debug)]
    struct Counted(MemTable, usize);

    #[async_trait]
    impl TableProvider for Counted {
        fn as_any(&self) -> &dyn Any {
            self
        }
        fn schema(&self) -> SchemaRef {
            self.0.schema()
        }
        fn table_type(&self) -> TableType {
            TableType::Base
        }
        async fn scan(
            &self,
            state: &dyn Session,
            projection: Option<&Vec<usize>>,
            filters: &[Expr],
            limit: Option<usize>,
        ) -> Result<Arc<dyn ExecutionPlan>> {
            self.0.scan(state, projection, filters, limit).await
        }
        fn statistics(&self) -> Option<Statistics> {
            let mut statistics = Statistics::new_unknown(&self.schema());
            statistics.num_rows = Precision::Exact(self.1);
            Some(statistics)
        }
    }

    fn mem_table(rows: usize) -> MemTable {
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]));
        let values = Int64Array::from_iter_values(0..rows as i64);
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(values)]).expect("batch");
        MemTable::try_new(schema, vec![vec![batch]]).expect("table")
    }

    fn context() -> SessionContext {
        let ctx = SessionContext::new();
        for (name, rows) in [("small", 10), ("big", 1000)] {
            ctx.register_table(name, Arc::new(Counted(mem_table(rows), rows)))
                .expect("table");
        }
        ctx.register_table("unknown", Arc::new(mem_table(5)))
            .expect("table");
        ctx
    }

    async fn rows_of(ctx: &SessionContext, sql: &str) -> Option<usize> {
        let plan = ctx
            .sql(sql)
            .await
            .expect("plan")
            .into_optimized_plan()
            .expect("optimized");
        input_rows(&plan)
    }

    #[tokio::test]
    async fn the_rows_of_every_scan_count_subqueries_and_limits_included() {
        let ctx = context();
        assert_eq!(rows_of(&ctx, "SELECT * FROM small").await, Some(10));
        assert_eq!(
            rows_of(&ctx, "SELECT * FROM small JOIN big ON small.k = big.k").await,
            Some(1010)
        );
        assert_eq!(
            rows_of(
                &ctx,
                "SELECT * FROM small WHERE k > (SELECT avg(k) FROM big WHERE big.k > 3)"
            )
            .await,
            Some(1010)
        );
        // A limit pushed into the scan caps it.
        assert_eq!(rows_of(&ctx, "SELECT * FROM big LIMIT 5").await, Some(5));
        // No table: nothing read.
        assert_eq!(rows_of(&ctx, "SELECT 1").await, Some(0));
    }

    #[tokio::test]
    async fn a_table_without_a_row_count_makes_the_input_unknown() {
        let ctx = context();
        assert_eq!(
            rows_of(&ctx, "SELECT * FROM small JOIN unknown u ON small.k = u.k").await,
            None
        );
    }
}
