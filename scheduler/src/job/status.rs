//! Job progress and per-stage metrics, read from the scheduler in process: for the REPL's
//! progress line, `EXPLAIN ANALYZE` and the `system.runtime` tables.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ballista_core::serde::protobuf::operator_metric::Metric;
use ballista_core::serde::protobuf::scheduler_grpc_server::SchedulerGrpc;
use ballista_core::serde::protobuf::{GetJobMetricsParams, OperatorMetric, task_status};
use ballista_scheduler::api::get_routes;
use ballista_scheduler::cluster::JobState;
use ballista_scheduler::state::execution_graph::ExecutionGraph;
use ballista_scheduler::state::execution_stage::{ExecutionStage, TaskInfo};
use serde::Deserialize;
use tower::ServiceExt;

use super::Scheduler;

/// One stage of a job as the scheduler's REST API describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct StageSummary {
    pub stage_id: String,
    pub stage_status: String,
    pub input_rows: usize,
    pub output_rows: usize,
    pub elapsed_compute: Option<String>,
    #[serde(default)]
    pub stage_plan: Option<String>,
    #[serde(default)]
    pub tasks: Vec<Option<TaskSummary>>,
}

/// One task of a stage.
#[derive(Debug, Clone, Deserialize)]
pub struct TaskSummary {
    pub status: String,
    pub exec_duration: u64,
    pub input_rows: usize,
    pub output_rows: usize,
}

#[derive(Deserialize)]
struct StagesResponse {
    stages: Vec<StageSummary>,
}

/// The stages of a job, running or finished; empty if the scheduler no longer knows it.
/// Read through the scheduler's REST routes, in process.
pub async fn job_stages(scheduler: &Scheduler, job_id: &str) -> Vec<StageSummary> {
    let router = get_routes(Arc::new(scheduler.clone()));
    let Ok(request) = axum::http::Request::get(format!("/api/job/{job_id}/stages"))
        .body(axum::body::Body::empty())
    else {
        return vec![];
    };
    let Ok(response) = router.oneshot(request).await;
    if !response.status().is_success() {
        return vec![];
    }
    let Ok(bytes) = axum::body::to_bytes(response.into_body(), 64 * 1024 * 1024).await else {
        return vec![];
    };
    serde_json::from_slice::<StagesResponse>(&bytes)
        .map(|r| r.stages)
        .unwrap_or_default()
}

/// Per-operator metrics of a finished job's stages, rendered as indented plan lines:
/// `Stage 2 (4 tasks):` then `  AggregateExec: ..., output_rows=3, elapsed_compute=1.2ms`.
pub async fn job_operator_metrics(
    scheduler: &Scheduler,
    job_id: &str,
) -> BTreeMap<u32, Vec<String>> {
    let request = tonic::Request::new(GetJobMetricsParams {
        job_id: job_id.to_string(),
    });
    let Ok(response) = scheduler.get_job_metrics(request).await else {
        return BTreeMap::new();
    };
    response
        .into_inner()
        .stages
        .into_iter()
        .map(|stage| {
            let lines = stage
                .operators
                .iter()
                .map(|op| {
                    let indent = "  ".repeat(op.depth as usize + 1);
                    format!(
                        "{indent}{}{}",
                        op.operator_desc,
                        render_metrics(&op.metrics)
                    )
                })
                .collect();
            (stage.stage_id, lines)
        })
        .collect()
}

/// A job's compute time (its operators' `elapsed_compute`, summed over tasks) and scheduled
/// time (its tasks' run time); zero for a job the scheduler no longer knows.
pub async fn job_times(scheduler: &Scheduler, job_id: &str) -> (Duration, Duration) {
    let request = tonic::Request::new(GetJobMetricsParams {
        job_id: job_id.to_string(),
    });
    let compute_nanos: u64 = match scheduler.get_job_metrics(request).await {
        Ok(response) => response
            .into_inner()
            .stages
            .iter()
            .flat_map(|stage| &stage.operators)
            .flat_map(|op| &op.metrics)
            .filter_map(|m| match m.metric {
                Some(Metric::ElapseTime(nanos)) => Some(nanos),
                _ => None,
            })
            .sum(),
        Err(_) => 0,
    };
    let scheduled_millis: u64 = job_stages(scheduler, job_id)
        .await
        .iter()
        .flat_map(|stage| stage.tasks.iter().flatten())
        .map(|task| task.exec_duration)
        .sum();
    (
        Duration::from_nanos(compute_nanos),
        Duration::from_millis(scheduled_millis),
    )
}

/// The operator's metrics summed over its tasks.
fn render_metrics(metrics: &[OperatorMetric]) -> String {
    let (mut rows, mut nanos, mut spills, mut spilled_bytes) = (None, None, 0, 0);
    // Counters a connector defines (`rows_transferred`), summed by name.
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for metric in metrics.iter().filter_map(|m| m.metric.as_ref()) {
        match metric {
            Metric::OutputRows(n) => *rows.get_or_insert(0) += n,
            Metric::ElapseTime(n) => *nanos.get_or_insert(0) += n,
            Metric::SpillCount(n) => spills += n,
            Metric::SpilledBytes(n) => spilled_bytes += n,
            Metric::Count(count) => *counts.entry(count.name.as_str()).or_default() += count.value,
            _ => {}
        }
    }
    let mut parts = Vec::new();
    if let Some(rows) = rows {
        parts.push(format!("output_rows={rows}"));
    }
    if let Some(nanos) = nanos {
        parts.push(format!("elapsed_compute={:.3}ms", nanos as f64 / 1e6));
    }
    for (name, value) in counts {
        parts.push(format!("{name}={value}"));
    }
    if spills > 0 {
        parts.push(format!(
            "spill_count={spills}, spilled_bytes={spilled_bytes}"
        ));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(", metrics=[{}]", parts.join(", "))
    }
}

/// One task of a job as `system.runtime.tasks` shows it.
#[derive(Debug, Clone)]
pub struct TaskRow {
    pub stage_id: usize,
    pub partition_id: usize,
    /// The worker that runs or ran it.
    pub worker: Option<String>,
    /// `PLANNED`, `RUNNING`, `FINISHED` or `FAILED`.
    pub state: &'static str,
    /// Milliseconds since the epoch.
    pub started: Option<i64>,
    pub ended: Option<i64>,
    pub input_rows: Option<u64>,
    pub output_rows: Option<u64>,
    /// What a finished task wrote for the next stage (or the result): the bytes of its
    /// shuffle files, compressed Arrow IPC, as its worker reported them.
    pub output_bytes: Option<u64>,
}

/// The tasks of a job's running and finished stages: states, workers and times from the
/// execution graph (the live one while the job runs, the kept one after), rows from the
/// stage summaries.
pub async fn job_tasks(
    scheduler: &Scheduler,
    job_state: &dyn JobState,
    job_id: &str,
) -> Vec<TaskRow> {
    let running = scheduler.state.task_manager.get_running_job_cache();
    let mut rows = match running.get(job_id) {
        Some(cache) => graph_tasks(cache.execution_graph.read().await.as_ref()),
        None => match job_state.get_execution_graph(job_id).await {
            Ok(Some(graph)) => graph_tasks(graph.as_ref()),
            _ => vec![],
        },
    };
    let summaries = job_stages(scheduler, job_id).await;
    for row in &mut rows {
        let task = summaries
            .iter()
            .find(|s| s.stage_id == row.stage_id.to_string())
            .and_then(|s| s.tasks.get(row.partition_id))
            .and_then(Option::as_ref);
        if let Some(task) = task {
            row.input_rows = Some(task.input_rows as u64);
            row.output_rows = Some(task.output_rows as u64);
        }
    }
    rows
}

/// How many tasks a running job has in each state, and on how many workers: Trino's splits
/// and nodes. A stage not yet resolved counts the tasks its plan asks for as queued.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskCounts {
    pub total: u64,
    pub queued: u64,
    pub running: u64,
    pub completed: u64,
    pub workers: u64,
}

/// The [`TaskCounts`] of `job_id` while it runs; `None` once the scheduler no longer runs it.
pub async fn running_task_counts(scheduler: &Scheduler, job_id: &str) -> Option<TaskCounts> {
    let running = scheduler.state.task_manager.get_running_job_cache();
    let cache = running.get(job_id)?;
    let graph = cache.execution_graph.read().await;
    let tasks = graph_tasks(graph.as_ref());
    let unscheduled: usize = graph
        .stages()
        .values()
        .map(|stage| match stage {
            ExecutionStage::UnResolved(s) => s.plan.children().first().map_or(1, |input| {
                input.properties().output_partitioning().partition_count()
            }),
            ExecutionStage::Resolved(s) => s.partitions,
            _ => 0,
        })
        .sum();
    let count = |state: &str| tasks.iter().filter(|t| t.state == state).count() as u64;
    let (running, completed) = (count("RUNNING"), count("FINISHED"));
    let total = (tasks.len() + unscheduled) as u64;
    let workers: std::collections::HashSet<_> =
        tasks.iter().filter_map(|t| t.worker.as_ref()).collect();
    Some(TaskCounts {
        total,
        // A failed task is tried again: it is queued until then.
        queued: total - running - completed,
        running,
        completed,
        workers: workers.len() as u64,
    })
}

fn graph_tasks(graph: &dyn ExecutionGraph) -> Vec<TaskRow> {
    let mut rows = Vec::new();
    for (stage_id, stage) in graph.stages() {
        let infos: Vec<Option<&TaskInfo>> = match stage {
            ExecutionStage::Running(s) => s.task_infos.iter().map(Option::as_ref).collect(),
            ExecutionStage::Successful(s) => s.task_infos.iter().map(Some).collect(),
            ExecutionStage::Failed(s) => s.task_infos.iter().map(Option::as_ref).collect(),
            ExecutionStage::UnResolved(_) | ExecutionStage::Resolved(_) => continue,
        };
        for (partition_id, info) in infos.into_iter().enumerate() {
            let millis = |t: u128| (t > 0).then(|| i64::try_from(t).unwrap_or(i64::MAX));
            let (worker, state) = match info.map(|i| &i.task_status) {
                None => (None, "PLANNED"),
                Some(task_status::Status::Running(t)) => (Some(t.executor_id.clone()), "RUNNING"),
                Some(task_status::Status::Successful(t)) => {
                    (Some(t.executor_id.clone()), "FINISHED")
                }
                Some(task_status::Status::Failed(_)) => (None, "FAILED"),
            };
            rows.push(TaskRow {
                stage_id: *stage_id,
                partition_id,
                worker,
                state,
                // Ballista learns when execution began only once the task reports back: until
                // then a task started when it was handed to its worker (`scheduled_time`).
                started: info.and_then(|i| {
                    millis(i.start_exec_time)
                        .or(millis(i.launch_time))
                        .or(millis(i.scheduled_time))
                }),
                ended: info.and_then(|i| millis(i.end_exec_time)),
                input_rows: None,
                output_rows: None,
                output_bytes: match info.map(|i| &i.task_status) {
                    Some(task_status::Status::Successful(t)) => {
                        Some(t.partitions.iter().map(|p| p.num_bytes).sum())
                    }
                    _ => None,
                },
            });
        }
    }
    rows.sort_by_key(|r| (r.stage_id, r.partition_id));
    rows
}
