//! `EXPLAIN` (logical, physical and distributed plans) and `EXPLAIN ANALYZE` (the job's stages
//! with their operators' metrics).

use std::collections::BTreeMap;

use ballista_scheduler::planner::{DefaultDistributedPlanner, DistributedPlanner};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::{ExecutionPlan, displayable};
use datafusion::prelude::SessionContext;
use futures::StreamExt;

use super::{Engine, text_stream};
use crate::job::{StageSummary, job_operator_metrics, job_stages};
use crate::queries::Query;

impl Engine {
    pub(super) async fn explain(
        &self,
        ctx: SessionContext,
        plan: &LogicalPlan,
        single_task: Option<usize>,
    ) -> Result<SendableRecordBatchStream> {
        let state = ctx.state();
        let logical = state.optimize(plan)?;
        let physical = state.create_physical_plan(plan).await?;
        let distributed = match single_task {
            Some(rows) => format!(
                "Distributed plan (one task: its tables hold {rows} rows by their statistics, \
                 within single_task_max_input_rows):"
            ),
            None => "Distributed plan:".to_string(),
        };
        let mut text = format!(
            "Logical plan:\n{}\n\nPhysical plan (with the statistics' estimates):\n{}\n{distributed}\n",
            logical.display_indent(),
            displayable(physical.as_ref())
                .set_show_statistics(true)
                .indent(false)
        );
        let stages = DefaultDistributedPlanner::new()
            .plan_query_stages("explain", physical, state.config().options())
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        for stage in stages {
            let stage_id = stage.stage_id();
            text.push_str(&format!(
                "Stage {stage_id}:\n{}\n",
                displayable(stage.as_ref() as &dyn ExecutionPlan).indent(false)
            ));
        }
        Ok(text_stream(text))
    }

    pub(super) async fn explain_analyze(
        &self,
        ctx: SessionContext,
        plan: &LogicalPlan,
        query: &Query,
    ) -> Result<SendableRecordBatchStream> {
        let started = std::time::Instant::now();
        let (job_id, mut rows) = self.run(ctx, plan, query).await?;
        let mut result_rows = 0;
        while let Some(batch) = rows.next().await {
            result_rows += batch?.num_rows();
        }
        let stages = job_stages(&self.scheduler, &job_id).await;
        let operators = job_operator_metrics(&self.scheduler, &job_id).await;
        Ok(text_stream(render_analyze(
            &job_id,
            &stages,
            &operators,
            result_rows,
            started.elapsed(),
        )))
    }
}

fn render_analyze(
    job_id: &str,
    stages: &[StageSummary],
    operators: &BTreeMap<u32, Vec<String>>,
    rows: usize,
    elapsed: std::time::Duration,
) -> String {
    let mut text = format!(
        "Query {job_id}: {rows} rows in {:.3}s, {} stages\n",
        elapsed.as_secs_f64(),
        stages.len()
    );
    let mut stages: Vec<_> = stages.iter().collect();
    stages.sort_by_key(|s| s.stage_id.parse::<u32>().unwrap_or(u32::MAX));
    for stage in stages {
        let tasks: Vec<_> = stage.tasks.iter().flatten().collect();
        let durations: Vec<u64> = tasks.iter().map(|t| t.exec_duration).collect();
        text.push_str(&format!(
            "\nStage {} [{}]: tasks={}, task time total={}ms max={}ms, elapsed={}\n",
            stage.stage_id,
            stage.stage_status,
            tasks.len(),
            durations.iter().sum::<u64>(),
            durations.iter().max().copied().unwrap_or(0),
            stage.elapsed_compute.as_deref().unwrap_or("-"),
        ));
        let id = stage.stage_id.parse::<u32>().ok();
        for line in id.and_then(|id| operators.get(&id)).into_iter().flatten() {
            text.push_str(line);
            text.push('\n');
        }
    }
    text
}
