//! Query results streamed from the final stage's tasks to the coordinator as they are made.
//!
//! Ballista writes the final stage's output to files on the workers and the coordinator fetches
//! them once the whole job is over: a client waits for the last task before its first row. The
//! coordinator instead puts a [`ResultSinkExec`] at the root of a job's plan; in each task of
//! the final stage it sends its partition's batches with `do_put` to the coordinator's internal
//! port, which hands them to the client as they come (bounded: a slow client holds the task
//! back, as Trino's output buffer does), and writes nothing for Ballista's own result files.
//!
//! A partition's stream ends with [`END_MARKER`]: one that ends without it (a task that failed
//! or a worker that died) is not complete, and the coordinator lets a retried task send it again
//! only if none of its rows has been handed on.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::{FlightData, FlightDescriptor};
use datafusion::common::exec_datafusion_err;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, MetricBuilder, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::{StreamExt, TryStreamExt};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::split::INTERNAL_TIMEOUT;

/// The first element of the descriptor path of a result partition's `do_put`.
pub const RESULT_PATH: &str = "braid.result";
/// The `app_metadata` of the message that closes a complete result partition.
pub const END_MARKER: &[u8] = b"braid.result.end";

/// Where a job's results go: the query they belong to and the coordinator's internal port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultTarget {
    pub query_id: String,
    /// `http://host:port` of the coordinator's internal Flight service.
    pub endpoint: String,
}

/// The partition a result `do_put` carries, from its descriptor path
/// `[RESULT_PATH, query id, partition]`.
pub fn result_partition(descriptor: &FlightDescriptor) -> Option<(String, usize)> {
    match descriptor.path.as_slice() {
        [tag, query_id, partition] if tag == RESULT_PATH => {
            Some((query_id.clone(), partition.parse().ok()?))
        }
        _ => None,
    }
}

/// The root of a job's plan when its results stream to the coordinator: sends each partition
/// of its input there and produces no rows itself.
#[derive(Debug)]
pub struct ResultSinkExec {
    input: Arc<dyn ExecutionPlan>,
    target: ResultTarget,
    metrics: ExecutionPlanMetricsSet,
}

impl ResultSinkExec {
    pub fn new(input: Arc<dyn ExecutionPlan>, target: ResultTarget) -> Self {
        Self {
            input,
            target,
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }

    pub fn target(&self) -> &ResultTarget {
        &self.target
    }
}

impl DisplayAs for ResultSinkExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResultSinkExec: to the coordinator")
    }
}

impl ExecutionPlan for ResultSinkExec {
    fn name(&self) -> &str {
        "ResultSinkExec"
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match (children.pop(), children.is_empty()) {
            (Some(input), true) => Ok(Arc::new(Self::new(input, self.target.clone()))),
            _ => Err(exec_datafusion_err!("ResultSinkExec has exactly one input")),
        }
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        let schema = input.schema();
        let sent_rows = MetricBuilder::new(&self.metrics).counter("sent_rows", partition);
        let target = self.target.clone();
        let send = futures::stream::once(async move {
            send_partition(&target, partition, input, move |rows| sent_rows.add(rows)).await
        })
        .filter_map(|sent| futures::future::ready(sent.err().map(Err)));
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, send)))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// Sends `input`, partition `partition` of the query of `target`, to the coordinator, then
/// [`END_MARKER`]; returns once the coordinator has taken all of it. An error of `input` is
/// returned as it is (the coordinator sees the stream end without the marker).
async fn send_partition(
    target: &ResultTarget,
    partition: usize,
    input: SendableRecordBatchStream,
    mut on_rows: impl FnMut(usize) + Send + 'static,
) -> Result<()> {
    let endpoint = &target.endpoint;
    let schema = input.schema();
    let input_error: Arc<Mutex<Option<DataFusionError>>> = Arc::default();
    let stash = input_error.clone();
    let batches = input
        .inspect_ok(move |batch| on_rows(batch.num_rows()))
        .map_err(move |e| {
            let message = e.to_string();
            *stash.lock() = Some(e);
            FlightError::ProtocolError(message)
        });
    let descriptor = FlightDescriptor::new_path(vec![
        RESULT_PATH.to_string(),
        target.query_id.clone(),
        partition.to_string(),
    ]);
    let end = FlightData {
        app_metadata: END_MARKER.to_vec().into(),
        ..Default::default()
    };
    // The schema goes first even for a partition without rows: it carries the descriptor.
    let data = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .with_flight_descriptor(Some(descriptor))
        .build(batches)
        .chain(futures::stream::once(futures::future::ready(Ok(end))));
    let connect = async {
        tonic::transport::Endpoint::from_shared(endpoint.clone())
            .map_err(|e| format!("bad coordinator address '{endpoint}': {e}"))?
            .connect_timeout(INTERNAL_TIMEOUT)
            .http2_keep_alive_interval(Duration::from_secs(20))
            .keep_alive_timeout(INTERNAL_TIMEOUT)
            .connect()
            .await
            .map_err(|e| format!("cannot reach the coordinator at {endpoint}: {e}"))
    };
    let channel = tokio::time::timeout(INTERNAL_TIMEOUT, connect)
        .await
        .map_err(|_| {
            format!(
                "the coordinator at {endpoint} did not answer within {}s",
                INTERNAL_TIMEOUT.as_secs()
            )
        })
        .and_then(|connected| connected)
        .map_err(|message| exec_datafusion_err!("sending results: {message}"))?;
    // The put lasts as long as the client takes to read the rows: no time limit on it, but
    // HTTP/2 keep-alives end it if the coordinator goes away.
    let sent = async {
        let mut client = arrow_flight::FlightClient::new(channel);
        let mut answers = client.do_put(data).await?;
        while answers.try_next().await?.is_some() {}
        Ok::<_, FlightError>(())
    }
    .await;
    if let Some(error) = input_error.lock().take() {
        return Err(error);
    }
    sent.map_err(|e| {
        exec_datafusion_err!(
            "sending partition {partition} of the results of query {} to the coordinator at {endpoint}: {e}",
            target.query_id
        )
    })
}
