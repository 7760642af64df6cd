//! Running a logical plan as a Ballista job and streaming its result back ([`run_job`], with
//! the final tasks' rows sent to the [`ResultInbox`] as they are made; [`OneShotExec`]); cancelling it (`control.rs`, [`QueryControl`]); its progress and metrics
//! (`status.rs`); and the workaround for lost workers (`revive.rs`).

mod control;
mod results;
mod revive;
mod status;

pub use control::{CancelOnDrop, QueryControl};
pub use results::{Delivery, ResultInbox, ResultReceiver, ResultsToCoordinator};
pub use revive::spawn_revive_watchdog;
pub use status::{
    StageSummary, TaskCounts, TaskRow, TaskSummary, job_operator_metrics, job_stages, job_tasks,
    job_times, running_task_counts,
};

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use std::collections::BTreeSet;

use ballista_core::serde::protobuf::{JobStatus, SuccessfulJob, executor_status, job_status};
use ballista_core::serde::scheduler::ExecutorMetadata;
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
use parking_lot::Mutex;
use tokio::sync::mpsc;

/// The Ballista scheduler as Braid uses it.
pub type Scheduler = SchedulerServer<LogicalPlanNode, PhysicalPlanNode>;

/// Submits `plan` as a job and returns its id and its result stream at once: the job's final
/// tasks send their rows to the coordinator as they make them (`results.rs`), so the first
/// batch comes before the job is over, and the stream ends when the job has succeeded with
/// every result partition received, or with the job's error. `on_submit` sees the job id.
pub async fn run_job(
    scheduler: &Scheduler,
    ctx: SessionContext,
    plan: &LogicalPlan,
    control: &QueryControl,
    results: (ResultReceiver, mpsc::Receiver<Delivery>),
    on_submit: impl FnOnce(&str),
) -> Result<(String, SendableRecordBatchStream)> {
    if control.is_cancelled() {
        return Err(control.cancelled_error());
    }
    let schema: SchemaRef = Arc::new(plan.schema().as_arrow().clone());
    let (receiver, deliveries) = results;
    let (tx, statuses) = mpsc::channel(64);
    let job_id = scheduler
        .submit_job("braid", Arc::new(ctx), plan, Some(tx))
        .await
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    on_submit(&job_id);
    control.submitted(scheduler, &job_id);
    tokio::spawn(watch_job(
        job_id.clone(),
        statuses,
        control.on_cancel(),
        receiver,
    ));
    let stream = futures::stream::unfold(Some(deliveries), |deliveries| async move {
        let mut deliveries = deliveries?;
        match deliveries.recv().await? {
            Delivery::Batch(batch) => Some((Ok(batch), Some(deliveries))),
            Delivery::Failed(error) => Some((Err(error), None)),
            Delivery::End => None,
        }
    });
    Ok((
        job_id,
        Box::pin(RecordBatchStreamAdapter::new(schema, stream)),
    ))
}

/// Waits for the outcome of job `job_id` and delivers it after its rows: the end once every
/// result partition was received, else the job's error.
async fn watch_job(
    job_id: String,
    mut statuses: mpsc::Receiver<JobStatus>,
    mut cancelled: tokio::sync::watch::Receiver<bool>,
    results: ResultReceiver,
) {
    let outcome = loop {
        let status = tokio::select! {
            status = statuses.recv() => status,
            // Ballista does not report a cancelled job to its subscriber: stop waiting here
            // (the query's stream ends with the cancellation's reason).
            _ = cancelled.wait_for(|c| *c) => {
                break Delivery::Failed(exec_datafusion_err!("query {job_id} was cancelled"));
            }
            () = results.closed() => return,
        };
        let Some(status) = status else {
            break Delivery::Failed(exec_datafusion_err!(
                "query {job_id} ended without a result"
            ));
        };
        match status.status {
            Some(job_status::Status::Successful(SuccessfulJob {
                partition_location, ..
            })) => {
                let expected: BTreeSet<usize> = partition_location
                    .iter()
                    .filter_map(|location| location.partition_id.as_ref())
                    .map(|id| id.partition_id as usize)
                    .collect();
                let missing = results.missing(&expected);
                break if missing.is_empty() {
                    Delivery::End
                } else {
                    Delivery::Failed(exec_datafusion_err!(
                        "query {job_id} finished but partitions {missing:?} of its results never reached the coordinator"
                    ))
                };
            }
            Some(job_status::Status::Failed(failed)) => {
                break Delivery::Failed(DataFusionError::Execution(clean_job_error(
                    &job_id,
                    &failed.error,
                )));
            }
            _ => continue,
        }
    };
    results.deliver(outcome).await;
}

/// Ballista reports failures with escaped debug formatting; unescape so the message reads.
fn clean_job_error(job_id: &str, error: &str) -> String {
    let message = error.trim().replace("\\\"", "\"").replace("\\n", "\n");
    format!("query {job_id} failed: {message}")
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
