//! Joins that stay correct when Ballista runs each probe partition as a separate task, and
//! broadcast joins chosen by the sources' statistics.
//!
//! A hash join in `CollectLeft` mode builds the whole left side and probes one partition of the
//! right side per task; Ballista turns it into a broadcast: the build side is a stage every probe
//! task reads. Join types that emit unmatched *build* rows (`LEFT`, `FULL`, left semi, anti and
//! mark joins, see [`broadcast_safe`]) emit them when the last probe partition of the process is
//! done: with the probe side split across tasks no task is last, and the rows are lost or
//! duplicated. The same holds for a nested-loop join, which always collects its left side.
//!
//! - [`BroadcastJoins`] runs right after DataFusion's `JoinSelection`: it makes every join whose
//!   type is not safe for a broadcast partitioned again (whatever chose `CollectLeft`), and
//!   promotes a partitioned join to a broadcast when one side is small by its statistics and the
//!   join type with that side as build side is safe. Trino's session properties
//!   `join_distribution_type` and `join_max_broadcast_table_size` steer it.
//!   A plan of one partition (a small query, [`crate::single_task`]) keeps every join
//!   partitioned: with one partition on each side it does the same work, and a broadcast
//!   join's build side would be a stage of its own.
//! - [`SingleProbe`] runs last: a join that must collect its left side and is not safe with a
//!   split probe side (a nested-loop join, a null-aware anti join for `NOT IN`) gets its probe
//!   side as one partition, so one task sees every probe row.
//!
//! Upstream: Ballista 53's own promotion (`ballista.optimizer.broadcast_join_threshold_bytes`)
//! checks no join type; it was fixed after 53 (apache/datafusion-ballista#1900), and null-aware
//! anti joins have a further bug there (#2187). Braid keeps Ballista's promotion off.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::common::JoinType;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::config::ConfigOptions;
use datafusion::error::Result;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::ExecutionPlanProperties;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::joins::{HashJoinExec, NestedLoopJoinExec, PartitionMode};

use crate::properties::{DEFAULT_MAX_BROADCAST, JoinDistribution, QueryProperties};

/// DataFusion's physical optimizer rules with [`BroadcastJoins`] right after its join
/// selection, where it sees the join modes before the exchanges are placed around them.
/// [`SingleProbe`] goes after every other rule (`SessionStateBuilder::with_physical_optimizer_rule`).
pub fn physical_optimizer_rules() -> Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> {
    let mut rules = PhysicalOptimizer::new().rules;
    let at = rules
        .iter()
        .position(|rule| rule.name() == "join_selection")
        .map_or(0, |i| i + 1);
    rules.insert(at, Arc::new(BroadcastJoins));
    rules
}

/// Whether a join of `join_type` that collects its left side gives the right rows when its
/// right (probe) side is split across tasks: true when it never emits unmatched left rows.
pub fn broadcast_safe(join_type: JoinType) -> bool {
    matches!(
        join_type,
        JoinType::Inner
            | JoinType::Right
            | JoinType::RightSemi
            | JoinType::RightAnti
            | JoinType::RightMark
    )
}

/// Chooses between partitioned and broadcast hash joins, safely (see the module docs).
#[derive(Debug, Default)]
pub struct BroadcastJoins;

impl PhysicalOptimizerRule for BroadcastJoins {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let properties = QueryProperties::of(config);
        let limit = match properties.join_distribution_type {
            JoinDistribution::Partitioned => None,
            JoinDistribution::Broadcast => Some(usize::MAX),
            JoinDistribution::Automatic => Some(
                properties
                    .join_max_broadcast_table_size
                    .0
                    .unwrap_or(DEFAULT_MAX_BROADCAST),
            ),
        };
        let one_partition = config.execution.target_partitions <= 1;
        plan.transform_up(|node| {
            let Some(join) = node.as_any().downcast_ref::<HashJoinExec>() else {
                return Ok(Transformed::no(node));
            };
            // Null-aware anti joins need every probe row in one place: `SingleProbe` sees to it.
            if join.null_aware {
                return Ok(Transformed::no(node));
            }
            // DataFusion plans every join of a one-partition plan as `CollectLeft`.
            if one_partition {
                return match join.partition_mode() {
                    PartitionMode::CollectLeft => partitioned(join).map(Transformed::yes),
                    _ => Ok(Transformed::no(node)),
                };
            }
            // An unsafe join with one probe partition is right as it is (`SingleProbe` keeps it
            // that way); with several it is partitioned.
            let split_probe = join.right().output_partitioning().partition_count() > 1;
            match join.partition_mode() {
                PartitionMode::CollectLeft
                    if limit.is_none() || (split_probe && !broadcast_safe(*join.join_type())) =>
                {
                    partitioned(join).map(Transformed::yes)
                }
                PartitionMode::Partitioned => match limit.and_then(|l| broadcast(join, l)) {
                    Some(promoted) => promoted.map(Transformed::yes),
                    None => Ok(Transformed::no(node)),
                },
                _ => Ok(Transformed::no(node)),
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "braid_broadcast_joins"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

fn partitioned(join: &HashJoinExec) -> Result<Arc<dyn ExecutionPlan>> {
    Ok(Arc::new(
        join.builder()
            .with_partition_mode(PartitionMode::Partitioned)
            .build()?,
    ))
}

/// `join` as a broadcast join, its build side the smaller of the sides that may be one (under
/// `limit` bytes by estimate, and safe as build side); `None` if neither may.
fn broadcast(join: &HashJoinExec, limit: usize) -> Option<Result<Arc<dyn ExecutionPlan>>> {
    let join_type = *join.join_type();
    let left = broadcast_safe(join_type).then(|| estimated_bytes(join.left().as_ref()));
    let right = (join_type.supports_swap() && broadcast_safe(join_type.swap()))
        .then(|| estimated_bytes(join.right().as_ref()));
    // Under BROADCAST (limit = MAX) a side without statistics may still be built: the right
    // one, as Trino builds the right side.
    let fits = |size: Option<Option<usize>>| match size {
        Some(Some(bytes)) => bytes < limit,
        Some(None) => limit == usize::MAX,
        None => false,
    };
    let build_left = match (fits(left), fits(right)) {
        (false, false) => return None,
        (true, false) => true,
        (false, true) => false,
        (true, true) => match (left.flatten(), right.flatten()) {
            (Some(l), Some(r)) => l <= r,
            (Some(_), None) => true,
            _ => false,
        },
    };
    Some(if build_left {
        join.builder()
            .with_partition_mode(PartitionMode::CollectLeft)
            .build()
            .map(|j| Arc::new(j) as Arc<dyn ExecutionPlan>)
    } else {
        join.swap_inputs(PartitionMode::CollectLeft)
    })
}

/// A plan's output size by its statistics: the byte size when known, else the row count times
/// a row width estimated from the schema; `None` when neither is known.
pub fn estimated_bytes(plan: &dyn ExecutionPlan) -> Option<usize> {
    let stats = plan.partition_statistics(None).ok()?;
    if let Some(bytes) = stats.total_byte_size.get_value().filter(|b| **b > 0) {
        return Some(*bytes);
    }
    let rows = stats.num_rows.get_value()?;
    Some(rows.saturating_mul(row_width(&plan.schema())))
}

/// Bytes per row: fixed-width types their width, other types a guess of 32 bytes.
fn row_width(schema: &Schema) -> usize {
    schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Boolean => 1,
            other => other.primitive_width().unwrap_or(32),
        })
        .sum::<usize>()
        .max(1)
}

/// Gives every join that must see all probe rows in one task a single-partition probe side.
#[derive(Debug, Default)]
pub struct SingleProbe;

impl PhysicalOptimizerRule for SingleProbe {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let needs_one_probe = if let Some(join) = node.as_any().downcast_ref::<HashJoinExec>() {
                *join.partition_mode() == PartitionMode::CollectLeft
                    && (join.null_aware || !broadcast_safe(*join.join_type()))
            } else if let Some(join) = node.as_any().downcast_ref::<NestedLoopJoinExec>() {
                !broadcast_safe(*join.join_type())
            } else {
                false
            };
            let children = node.children();
            let [left, right] = children.as_slice() else {
                return Ok(Transformed::no(node));
            };
            if !needs_one_probe || right.output_partitioning().partition_count() <= 1 {
                return Ok(Transformed::no(node));
            }
            let probe: Arc<dyn ExecutionPlan> =
                Arc::new(CoalescePartitionsExec::new(Arc::clone(right)));
            let left = Arc::clone(left);
            node.with_new_children(vec![left, probe])
                .map(Transformed::yes)
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "braid_single_probe"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::Field;
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::catalog::MemTable;
    use datafusion::common::tree_node::TreeNodeRecursion;
    use datafusion::execution::SessionStateBuilder;
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// A table of `rows` rows (x = 0, 1, ...) in three partitions.
    fn table(rows: i64) -> Arc<MemTable> {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, true)]));
        let part = |i: i64| {
            let values: Vec<i64> = (0..rows).filter(|v| v % 3 == i).collect();
            vec![
                RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(values))])
                    .expect("batch"),
            ]
        };
        Arc::new(MemTable::try_new(schema.clone(), vec![part(0), part(1), part(2)]).expect("table"))
    }

    fn context(distribution: &str) -> SessionContext {
        let mut config = SessionConfig::new()
            .with_target_partitions(3)
            .with_option_extension(QueryProperties::default());
        let options = config.options_mut();
        options.optimizer.hash_join_single_partition_threshold = 0;
        options.optimizer.hash_join_single_partition_threshold_rows = 0;
        options
            .set("braid.join_distribution_type", distribution)
            .expect("a join distribution");
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features()
            .with_physical_optimizer_rules(physical_optimizer_rules())
            .with_physical_optimizer_rule(Arc::new(SingleProbe))
            .build();
        let ctx = SessionContext::new_with_state(state);
        ctx.register_table("small", table(10)).expect("small");
        ctx.register_table("big", table(1000)).expect("big");
        ctx
    }

    /// The joins of `sql`'s physical plan: (name, join type, collects left, probe partitions).
    async fn joins(ctx: &SessionContext, sql: &str) -> Vec<(String, JoinType, bool, usize)> {
        let plan = ctx
            .sql(sql)
            .await
            .expect("plan")
            .create_physical_plan()
            .await
            .expect("physical plan");
        let mut found = Vec::new();
        plan.apply(|node| {
            let probe =
                |right: &Arc<dyn ExecutionPlan>| right.output_partitioning().partition_count();
            if let Some(join) = node.as_any().downcast_ref::<HashJoinExec>() {
                found.push((
                    "hash".to_string(),
                    *join.join_type(),
                    *join.partition_mode() == PartitionMode::CollectLeft,
                    probe(join.right()),
                ));
            } else if let Some(join) = node.as_any().downcast_ref::<NestedLoopJoinExec>() {
                found.push((
                    "nested loop".to_string(),
                    *join.join_type(),
                    true,
                    probe(join.right()),
                ));
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .expect("walk");
        found
    }

    #[tokio::test]
    async fn a_join_that_collects_its_left_side_is_safe_or_sees_all_probe_rows() {
        let queries = [
            "SELECT * FROM small LEFT JOIN big ON small.x = big.x",
            "SELECT * FROM big RIGHT JOIN small ON small.x = big.x",
            "SELECT * FROM small FULL JOIN big ON small.x = big.x",
            "SELECT * FROM small WHERE EXISTS (SELECT 1 FROM big WHERE big.x = small.x)",
            "SELECT * FROM small WHERE NOT EXISTS (SELECT 1 FROM big WHERE big.x = small.x)",
            "SELECT * FROM small WHERE x NOT IN (SELECT x FROM big)",
            "SELECT * FROM small LEFT JOIN big ON small.x < big.x",
            "SELECT * FROM small JOIN big ON small.x = big.x",
        ];
        for distribution in ["AUTOMATIC", "BROADCAST", "PARTITIONED"] {
            let ctx = context(distribution);
            for sql in queries {
                let joins = joins(&ctx, sql).await;
                assert!(!joins.is_empty(), "{sql}: a join");
                for (kind, join_type, collects, probe) in joins {
                    assert!(
                        !collects || broadcast_safe(join_type) || probe == 1,
                        "{distribution}: {sql}: a {kind} {join_type} join collects its left side \
                         with {probe} probe partitions"
                    );
                }
            }
        }
    }

    #[tokio::test]
    async fn small_sides_are_broadcast_by_statistics_and_only_as_allowed() {
        let inner = "SELECT * FROM big JOIN small ON small.x = big.x";
        let left = "SELECT * FROM big LEFT JOIN small ON small.x = big.x";
        let broadcast = |joins: Vec<(String, JoinType, bool, usize)>| joins[0].2;
        assert!(broadcast(joins(&context("AUTOMATIC"), inner).await));
        // big LEFT JOIN small: the small right side is built, as a right join.
        let swapped = joins(&context("AUTOMATIC"), left).await;
        assert_eq!((swapped[0].1, swapped[0].2), (JoinType::Right, true));
        assert!(!broadcast(joins(&context("PARTITIONED"), inner).await));

        // Over the size limit nothing is broadcast, unless BROADCAST says so.
        let ctx = context("AUTOMATIC");
        ctx.sql("SET braid.join_max_broadcast_table_size = '10B'")
            .await
            .expect("SET");
        assert!(!broadcast(joins(&ctx, inner).await));
        assert!(broadcast(joins(&context("BROADCAST"), inner).await));
    }

    #[tokio::test]
    async fn a_one_partition_plan_keeps_its_joins_partitioned() {
        for distribution in ["AUTOMATIC", "BROADCAST"] {
            let ctx = context(distribution);
            ctx.sql("SET datafusion.execution.target_partitions = 1")
                .await
                .expect("SET");
            for sql in [
                "SELECT * FROM big JOIN small ON small.x = big.x",
                "SELECT * FROM small LEFT JOIN big ON small.x = big.x",
            ] {
                let joins = joins(&ctx, sql).await;
                assert!(!joins.is_empty(), "{sql}: a join");
                for (kind, join_type, collects, _) in joins {
                    assert!(
                        !collects,
                        "{distribution}: {sql}: a {kind} {join_type} join collects its left side"
                    );
                }
            }
        }
    }
}
