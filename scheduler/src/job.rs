//! Running a logical plan as a Ballista job and streaming its result back; job progress and
//! per-stage metrics for the REPL and `EXPLAIN ANALYZE`.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use ballista_core::client::BallistaClient;
use std::collections::BTreeMap;

use ballista_core::serde::protobuf::operator_metric::Metric;
use ballista_core::serde::protobuf::scheduler_grpc_server::SchedulerGrpc;
use ballista_core::serde::protobuf::{
    GetJobMetricsParams, OperatorMetric, PartitionLocation, SuccessfulJob, UpdateTaskStatusParams,
    executor_status, job_status,
};
use ballista_core::serde::scheduler::ExecutorMetadata;
use ballista_scheduler::api::get_routes;
use ballista_scheduler::scheduler_server::SchedulerServer;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::{exec_datafusion_err, internal_err};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use datafusion::prelude::SessionContext;
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};
use futures::{StreamExt, TryStreamExt};
use parking_lot::Mutex;
use serde::Deserialize;
use tower::ServiceExt;

/// The Ballista scheduler as Braid uses it.
pub type Scheduler = SchedulerServer<LogicalPlanNode, PhysicalPlanNode>;

const MAX_MESSAGE_SIZE: usize = 16 * 1024 * 1024;

/// A statement's handle on its Ballista job: cancelling it (a client's `CancelFlightInfo`, or a
/// client that went away) cancels the job on the cluster, before or after it was submitted.
#[derive(Debug)]
pub struct QueryControl {
    state: Mutex<ControlState>,
    cancelled: tokio::sync::watch::Sender<bool>,
}

#[derive(Debug, Default)]
struct ControlState {
    jobs: Vec<String>,
    finished: bool,
}

impl Default for QueryControl {
    fn default() -> Self {
        Self {
            state: Mutex::new(ControlState::default()),
            cancelled: tokio::sync::watch::Sender::new(false),
        }
    }
}

impl QueryControl {
    /// Whether [`QueryControl::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        *self.cancelled.borrow()
    }

    /// The statement's jobs so far (`INSERT` and `CREATE TABLE AS` run one, `EXPLAIN ANALYZE`
    /// one).
    pub fn jobs(&self) -> Vec<String> {
        self.state.lock().jobs.clone()
    }

    /// The statement ended (its jobs finished or failed): cancelling it now does nothing.
    pub fn finish(&self) {
        self.state.lock().finished = true;
    }

    /// Cancels the statement: its running job is cancelled on the cluster and a job not yet
    /// submitted never starts. Returns whether anything was still running.
    pub fn cancel(&self, scheduler: &Scheduler) -> bool {
        let jobs = {
            let state = self.state.lock();
            if state.finished {
                return false;
            }
            // Flagged under the lock: a job submitted before is in `jobs`, one submitted after
            // sees the flag in `submitted`. No job falls between the two.
            self.cancelled.send_replace(true);
            state.jobs.clone()
        };
        for job in jobs {
            cancel_job(scheduler, job);
        }
        true
    }

    fn submitted(&self, scheduler: &Scheduler, job: &str) {
        let cancelled = {
            let mut state = self.state.lock();
            state.jobs.push(job.to_string());
            self.is_cancelled()
        };
        if cancelled {
            cancel_job(scheduler, job.to_string());
        }
    }
}

fn cancel_job(scheduler: &Scheduler, job: String) {
    let scheduler = scheduler.clone();
    tokio::spawn(async move {
        tracing::info!(%job, "cancelling query");
        if let Err(e) = scheduler.cancel_job(job.clone()).await {
            tracing::warn!(%job, "cancelling failed: {e}");
        }
    });
}

/// Submits `plan` as a job and returns its id and result stream once the job has finished
/// (Ballista writes final-stage output on the workers; the coordinator streams it on,
/// partition after partition, never holding the whole result). `on_submit` sees the job id.
pub async fn run_job(
    scheduler: &Scheduler,
    ctx: SessionContext,
    plan: &LogicalPlan,
    control: &QueryControl,
    on_submit: impl FnOnce(&str),
) -> Result<(String, SendableRecordBatchStream)> {
    let cancelled_error = || DataFusionError::Execution("Query was cancelled".into());
    if control.is_cancelled() {
        return Err(cancelled_error());
    }
    let schema: SchemaRef = Arc::new(plan.schema().as_arrow().clone());
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let job_id = scheduler
        .submit_job("braid", Arc::new(ctx), plan, Some(tx))
        .await
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    on_submit(&job_id);
    control.submitted(scheduler, &job_id);
    let mut cancelled = control.cancelled.subscribe();
    let locations = loop {
        let status = tokio::select! {
            status = rx.recv() => status,
            // Ballista does not report a cancelled job to its subscriber: stop waiting here.
            _ = cancelled.wait_for(|c| *c) => return Err(cancelled_error()),
        };
        let Some(status) = status else {
            return Err(exec_datafusion_err!(
                "query {job_id} ended without a result"
            ));
        };
        match status.status {
            Some(job_status::Status::Successful(SuccessfulJob {
                partition_location, ..
            })) => {
                break partition_location;
            }
            Some(job_status::Status::Failed(failed)) => {
                return Err(DataFusionError::Execution(clean_job_error(
                    &job_id,
                    &failed.error,
                )));
            }
            _ => continue,
        }
    };
    let streams = locations
        .into_iter()
        .map(|location| futures::stream::once(fetch_partition(location)).try_flatten());
    let stream = futures::stream::iter(streams).flatten();
    Ok((
        job_id,
        Box::pin(RecordBatchStreamAdapter::new(schema, stream)),
    ))
}

/// Ballista reports failures with escaped debug formatting; unescape so the message reads.
fn clean_job_error(job_id: &str, error: &str) -> String {
    let message = error.trim().replace("\\\"", "\"").replace("\\n", "\n");
    format!("query {job_id} failed: {message}")
}

async fn fetch_partition(location: PartitionLocation) -> Result<SendableRecordBatchStream> {
    let executor = location
        .executor_meta
        .ok_or_else(|| exec_datafusion_err!("result partition without a worker"))?;
    let partition_id = location
        .partition_id
        .ok_or_else(|| exec_datafusion_err!("result partition without an id"))?;
    let mut client = BallistaClient::try_new(
        &executor.host,
        executor.port as u16,
        MAX_MESSAGE_SIZE,
        false,
        None,
        3,
        100,
    )
    .await
    .map_err(|e| {
        exec_datafusion_err!(
            "cannot reach worker {}:{} for query results: {e}",
            executor.host,
            executor.port
        )
    })?;
    client
        .fetch_partition(
            &executor.id,
            &partition_id.into(),
            location.file_id,
            location.is_sort_shuffle,
            true,
        )
        .await
        .map_err(|e| DataFusionError::External(Box::new(e)))
}

/// The workers whose last heartbeat says they are active.
pub async fn live_executors(scheduler: &Scheduler) -> Vec<ExecutorMetadata> {
    let manager = &scheduler.state.executor_manager;
    let Ok(executors) = manager.get_executors_state().await else {
        return vec![];
    };
    executors
        .into_iter()
        .map(|(meta, _, _)| meta)
        .filter(|meta| {
            manager.get_executor_hearbeat(&meta.id).is_some_and(|hb| {
                matches!(
                    hb.status.and_then(|s| s.status),
                    Some(executor_status::Status::Active(_))
                )
            })
        })
        .collect()
}

/// Keeps tasks moving after a worker is lost.
///
/// Ballista 53 resets the tasks of a lost worker to pending but does not ask for task slots
/// again (no `ReviveOffers` after `ExecutorLost`), so with push scheduling they would wait
/// forever. While jobs run, this nudges the scheduler every second with an empty task-status
/// update from a live worker, which Ballista answers by offering free slots to pending tasks.
pub fn spawn_revive_watchdog(scheduler: Scheduler) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tick.tick().await;
            if scheduler.running_job_number() == 0 {
                continue;
            }
            let Some(live) = live_executors(&scheduler).await.into_iter().next() else {
                continue;
            };
            let nudge = tonic::Request::new(UpdateTaskStatusParams {
                executor_id: live.id.clone(),
                task_status: vec![],
            });
            if let Err(e) = scheduler.update_task_status(nudge).await {
                tracing::debug!("reviving task offers failed: {e}");
            }
        }
    })
}

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

/// A plan that yields one given stream once: it feeds a finished job's rows to a sink
/// (`INSERT`, `CREATE TABLE AS`) on the coordinator.
pub struct OneShotExec {
    stream: Mutex<Option<SendableRecordBatchStream>>,
    properties: Arc<PlanProperties>,
}

impl OneShotExec {
    pub fn new(stream: SendableRecordBatchStream) -> Self {
        let properties = braid_connector_spi::scan_properties(stream.schema(), 1);
        Self {
            stream: Mutex::new(Some(stream)),
            properties,
        }
    }
}

impl fmt::Debug for OneShotExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OneShotExec")
    }
}

impl DisplayAs for OneShotExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OneShotExec")
    }
}

impl ExecutionPlan for OneShotExec {
    fn name(&self) -> &str {
        "OneShotExec"
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }
    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }
    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }
    fn execute(
        &self,
        partition: usize,
        _ctx: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        match (partition, self.stream.lock().take()) {
            (0, Some(stream)) => Ok(stream),
            _ => internal_err!("OneShotExec: the stream was already taken"),
        }
    }
}
