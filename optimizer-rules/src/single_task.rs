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
    use std::sync::Arc;

    use datafusion::catalog::TableProvider;
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;

    use super::*;
    use crate::test_tables::Counted;

    fn context() -> SessionContext {
        let ctx = SessionContext::new();
        for (name, rows) in [("small", 10), ("big", 1000)] {
            ctx.register_table(name, Arc::new(Counted::new(rows, 1)))
                .expect("table");
        }
        let unknown = Counted::new(5, 1).schema();
        let unknown = MemTable::try_new(unknown, vec![vec![]]).expect("table");
        ctx.register_table("unknown", Arc::new(unknown))
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
