//! Running a logical plan as a Ballista job and streaming its result back ([`run_job`],
//! [`OneShotExec`]); cancelling it (`control.rs`, [`QueryControl`]); its progress and metrics
//! (`status.rs`); and the workaround for lost workers (`revive.rs`).

mod control;
mod revive;
mod status;

pub use control::QueryControl;
pub use revive::spawn_revive_watchdog;
pub use status::{
    StageSummary, TaskRow, TaskSummary, job_operator_metrics, job_stages, job_tasks, job_times,
};

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use ballista_core::client::BallistaClient;

use ballista_core::serde::protobuf::{
    PartitionLocation, SuccessfulJob, executor_status, job_status,
};
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
use futures::{StreamExt, TryStreamExt};
use parking_lot::Mutex;

/// The Ballista scheduler as Braid uses it.
pub type Scheduler = SchedulerServer<LogicalPlanNode, PhysicalPlanNode>;

const MAX_MESSAGE_SIZE: usize = 16 * 1024 * 1024;

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
    if control.is_cancelled() {
        return Err(control.cancelled_error());
    }
    let schema: SchemaRef = Arc::new(plan.schema().as_arrow().clone());
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let job_id = scheduler
        .submit_job("braid", Arc::new(ctx), plan, Some(tx))
        .await
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    on_submit(&job_id);
    control.submitted(scheduler, &job_id);
    let mut cancelled = control.on_cancel();
    let locations = loop {
        let status = tokio::select! {
            status = rx.recv() => status,
            // Ballista does not report a cancelled job to its subscriber: stop waiting here.
            _ = cancelled.wait_for(|c| *c) => return Err(control.cancelled_error()),
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
            // A job cancelled by a kill may report itself failed: the kill's reason is the
            // error to give.
            Some(job_status::Status::Failed(_)) if control.is_cancelled() => {
                return Err(control.cancelled_error());
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
