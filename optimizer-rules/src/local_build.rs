//! Small broadcast build sides run inside the tasks of their join.
//!
//! Ballista writes the build side of every broadcast hash join (`CollectLeft`) as a stage of
//! its own, which every task of the join reads back, and each stage costs a schedule, task
//! starts and a shuffle. [`LocalBuildJoins`] wraps a broadcast join whose build side reads few
//! rows by its scans' statistics (at most `single_task_max_input_rows`, the bound under which
//! a whole query runs as one task) in a [`LocalBuildJoinExec`]: Ballista sees only its probe
//! side, cuts no stage for the build side, and each task of the join builds it in-process —
//! as datafusion-distributed does where one task suffices. In TPC-H Q2 and Q11 the nation,
//! region and supplier sides stop being stages.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Statistics, internal_err};
use datafusion::config::ConfigOptions;
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PlanProperties,
    displayable,
};

use crate::properties::QueryProperties;

/// Wraps broadcast joins with small build sides in [`LocalBuildJoinExec`] (see the module
/// docs).
#[derive(Debug, Default)]
pub struct LocalBuildJoins;

impl PhysicalOptimizerRule for LocalBuildJoins {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let limit = QueryProperties::of(config).single_task_max_input_rows;
        if limit == 0 {
            return Ok(plan);
        }
        // Bottom up: a join inside a small build side is wrapped first, and stays so.
        plan.transform_up(|node| {
            let Some(join) = node.as_any().downcast_ref::<HashJoinExec>() else {
                return Ok(Transformed::no(node));
            };
            if join.mode != PartitionMode::CollectLeft {
                return Ok(Transformed::no(node));
            }
            match input_rows(join.left()) {
                Some(rows) if rows <= limit => Ok(Transformed::yes(Arc::new(
                    LocalBuildJoinExec::try_new(node.clone(), rows)?,
                ))),
                _ => Ok(Transformed::no(node)),
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "local_build_joins"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// The rows the scans (the leaves) of `plan` read together by their statistics; `None` if
/// one does not know.
pub fn input_rows(plan: &Arc<dyn ExecutionPlan>) -> Option<usize> {
    let mut total = Some(0usize);
    // The closure never fails.
    let _ = plan.apply(|node| {
        if node.children().is_empty() {
            let rows = node
                .partition_statistics(None)
                .ok()
                .and_then(|s| s.num_rows.get_value().copied());
            total = total.zip(rows).map(|(sum, rows)| sum.saturating_add(rows));
            if total.is_none() {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    total
}

/// A broadcast hash join whose build side each task builds itself: to Ballista (and to later
/// rules) a node with one child, the join's probe side. The Braid codec carries the join with
/// its build side along.
#[derive(Debug)]
pub struct LocalBuildJoinExec {
    /// The `CollectLeft` join, probe side included.
    join: Arc<dyn ExecutionPlan>,
    /// What its build side's scans read, by their statistics.
    build_rows: usize,
}

impl LocalBuildJoinExec {
    pub fn try_new(join: Arc<dyn ExecutionPlan>, build_rows: usize) -> Result<Self> {
        if join.children().len() != 2 {
            return internal_err!("LocalBuildJoinExec wraps a join, not {}", join.name());
        }
        Ok(Self { join, build_rows })
    }

    /// The join with its probe side replaced by an empty stand-in of the same schema and
    /// partitions: what the codec encodes, since the probe side travels as the node's child.
    pub fn join_without_probe(&self) -> Result<Arc<dyn ExecutionPlan>> {
        let [build, probe] = self.sides();
        let partitions = probe.output_partitioning().partition_count();
        let stand_in = Arc::new(EmptyExec::new(probe.schema()).with_partitions(partitions));
        self.join
            .clone()
            .with_new_children(vec![build.clone(), stand_in])
    }

    /// The node again from [`LocalBuildJoinExec::join_without_probe`] and the probe side.
    pub fn with_probe(
        join: Arc<dyn ExecutionPlan>,
        probe: Arc<dyn ExecutionPlan>,
        build_rows: usize,
    ) -> Result<Self> {
        let Some(build) = join.children().first().map(|b| (*b).clone()) else {
            return internal_err!("LocalBuildJoinExec wraps a join, not {}", join.name());
        };
        Self::try_new(join.with_new_children(vec![build, probe])?, build_rows)
    }

    pub fn build_rows(&self) -> usize {
        self.build_rows
    }

    fn sides(&self) -> [&Arc<dyn ExecutionPlan>; 2] {
        let children = self.join.children();
        [children[0], children[1]]
    }
}

impl DisplayAs for LocalBuildJoinExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "LocalBuildJoinExec: build_rows={}, {}, build side in each task: ",
            self.build_rows,
            displayable(self.join.as_ref())
                .one_line()
                .to_string()
                .trim_end()
        )?;
        // The build side on one line, each node after its parent.
        let mut nodes = Vec::new();
        let _ = self.sides()[0].apply(|node| {
            nodes.push(displayable(node.as_ref()).one_line().to_string());
            Ok(TreeNodeRecursion::Continue)
        });
        write!(f, "[{}]", nodes.join(" <- ").replace('\n', ""))
    }
}

impl ExecutionPlan for LocalBuildJoinExec {
    fn name(&self) -> &str {
        "LocalBuildJoinExec"
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.join.properties()
    }

    /// Only the probe side: Ballista cuts no stage for the build side.
    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![self.sides()[1]]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let [probe] = <[_; 1]>::try_from(children).map_err(|_| {
            datafusion::error::DataFusionError::Internal(
                "LocalBuildJoinExec has one child, its probe side".into(),
            )
        })?;
        let build = self.sides()[0].clone();
        let join = self.join.clone().with_new_children(vec![build, probe])?;
        Ok(Arc::new(Self::try_new(join, self.build_rows)?))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.join.execute(partition, context)
    }

    fn partition_statistics(&self, partition: Option<usize>) -> Result<Statistics> {
        self.join.partition_statistics(partition)
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::physical_plan::collect;
    use datafusion::prelude::{SessionConfig, SessionContext};

    use super::*;
    use crate::test_tables::Counted;

    fn table(rows: usize) -> Arc<Counted> {
        Arc::new(Counted::new(rows, 2))
    }

    fn text(plan: &Arc<dyn ExecutionPlan>) -> String {
        displayable(plan.as_ref()).indent(true).to_string()
    }

    #[tokio::test]
    async fn a_small_build_side_is_built_in_each_task_with_the_same_rows() {
        let config = SessionConfig::new()
            .with_target_partitions(2)
            .with_option_extension(QueryProperties::default());
        let ctx = SessionContext::new_with_config(config);
        ctx.register_table("small", table(10)).expect("small");
        ctx.register_table("big", table(1000)).expect("big");
        let plan = ctx
            .sql("SELECT s.k, b.k FROM small s JOIN big b ON s.k = b.k")
            .await
            .expect("plan")
            .create_physical_plan()
            .await
            .expect("physical plan");
        let before = text(&plan);
        assert!(
            before.contains("mode=CollectLeft") && before.contains("CoalescePartitionsExec"),
            "{before}"
        );

        let options: ConfigOptions = ctx.state().config_options().as_ref().clone();
        let local = LocalBuildJoins
            .optimize(plan.clone(), &options)
            .expect("rule");
        let after = text(&local);
        assert!(
            after.contains("LocalBuildJoinExec: build_rows=10"),
            "{after}"
        );
        // Ballista sees only the probe side below the join.
        let mut wrapped = 0;
        local
            .apply(|node| {
                if let Some(join) = node.as_any().downcast_ref::<LocalBuildJoinExec>() {
                    assert_eq!(join.children().len(), 1, "{after}");
                    wrapped += 1;
                }
                Ok(TreeNodeRecursion::Continue)
            })
            .expect("walk");
        assert_eq!(wrapped, 1, "{after}");

        let rows = |batches: Vec<RecordBatch>| batches.iter().map(|b| b.num_rows()).sum::<usize>();
        let expected = rows(collect(plan, ctx.task_ctx()).await.expect("run"));
        let got = rows(collect(local, ctx.task_ctx()).await.expect("run local"));
        assert_eq!((expected, got), (10, 10));

        // Over the bound (here the big table as build side), the merge stays.
        let plan = ctx
            .sql("SELECT b.k FROM big b JOIN small s ON s.k = b.k")
            .await
            .expect("plan")
            .create_physical_plan()
            .await
            .expect("physical plan");
        let mut options = options;
        options
            .set("braid.single_task_max_input_rows", "5")
            .expect("property");
        let kept = text(&LocalBuildJoins.optimize(plan, &options).expect("rule"));
        assert!(!kept.contains("LocalBuildJoinExec"), "{kept}");
    }
}
