//! [`SpillingTopK`]: a sort with a large `LIMIT` sorts (and spills) instead of keeping a heap.
//!
//! DataFusion runs `ORDER BY … LIMIT n` as a TopK: a heap of the best `n` rows, which cannot
//! spill. That is right for a small `n`; for `LIMIT 1 OFFSET 3000000` the heap holds three
//! million rows and the query fails when the heap outgrows the memory pool. Above
//! [`TOPK_MAX_ROWS`] rows, this rule turns the TopK back into a full sort, which spills, and
//! cuts its output with a limit: the same rows, in bounded memory.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::config::ConfigOptions;
use datafusion::error::Result;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::limit::{GlobalLimitExec, LocalLimitExec};
use datafusion::physical_plan::sorts::sort::SortExec;

/// The largest `LIMIT` (offset included) a sort keeps in a TopK heap.
pub const TOPK_MAX_ROWS: usize = 100_000;

/// Rewrites TopK sorts over [`TOPK_MAX_ROWS`] rows into spilling sorts under a limit.
#[derive(Debug, Default)]
pub struct SpillingTopK;

impl PhysicalOptimizerRule for SpillingTopK {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(sort) = node.as_any().downcast_ref::<SortExec>() else {
                return Ok(Transformed::no(node));
            };
            let Some(fetch) = sort.fetch().filter(|rows| *rows > TOPK_MAX_ROWS) else {
                return Ok(Transformed::no(node));
            };
            let full: Arc<dyn ExecutionPlan> = Arc::new(sort.with_fetch(None));
            let limited: Arc<dyn ExecutionPlan> = if sort.preserve_partitioning() {
                Arc::new(LocalLimitExec::new(full, fetch))
            } else {
                Arc::new(GlobalLimitExec::new(full, 0, Some(fetch)))
            };
            Ok(Transformed::yes(limited))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "spilling_topk"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::SessionContext;

    /// The physical plan of `sql` in `ctx`, after the rule.
    async fn planned(ctx: &SessionContext, sql: &str) -> Arc<dyn ExecutionPlan> {
        let plan = ctx
            .sql(sql)
            .await
            .expect("sql")
            .create_physical_plan()
            .await
            .expect("plan");
        SpillingTopK
            .optimize(plan, ctx.state().config_options())
            .expect("rule")
    }

    async fn plan_of(sql: &str) -> String {
        let ctx = SessionContext::new();
        ctx.sql("CREATE TABLE t AS SELECT v, v * 2 AS w FROM generate_series(1, 10) AS g(v)")
            .await
            .expect("table");
        let plan = planned(&ctx, sql).await;
        displayable(plan.as_ref()).indent(false).to_string()
    }

    #[tokio::test]
    async fn small_limits_keep_the_topk_and_large_ones_sort_fully() {
        let small = plan_of("SELECT v FROM t ORDER BY w DESC LIMIT 10").await;
        assert!(small.contains("SortExec: TopK(fetch=10)"), "{small}");
        let large = plan_of("SELECT v FROM t ORDER BY w DESC LIMIT 1 OFFSET 3000000").await;
        assert!(!large.contains("TopK"), "{large}");
        assert!(large.contains("LimitExec: fetch=3000001"), "{large}");
        assert!(large.contains("SortExec: expr=[w@1 DESC]"), "{large}");
    }

    #[tokio::test]
    async fn the_rewritten_plan_returns_the_same_rows() {
        let ctx = SessionContext::new();
        let sql = "SELECT v FROM generate_series(1, 300000) AS g(v) \
                   ORDER BY v DESC LIMIT 2 OFFSET 200000";
        let plan = planned(&ctx, sql).await;
        assert!(
            !displayable(plan.as_ref())
                .indent(false)
                .to_string()
                .contains("TopK")
        );
        let batches = datafusion::physical_plan::collect(plan, ctx.task_ctx())
            .await
            .expect("run");
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
            .expect("format")
            .to_string();
        assert!(
            text.contains("| 100000 |") && text.contains("| 99999  |"),
            "{text}"
        );
    }
}
