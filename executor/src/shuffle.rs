//! Shuffles kept in memory on the worker (Ballista 53 writes every shuffle to disk as LZ4
//! Arrow IPC files; upstream issue apache/datafusion-ballista#2318).
//!
//! - [`ShuffleStore`] (`store.rs`): a worker's shuffle outputs in memory, keyed as Ballista
//!   names their files, bounded by a budget (`shuffle_memory`, default a quarter of the
//!   worker's pool) that the worker's memory pool must also grant, and dropped a few seconds
//!   after the coordinator stops listing their job as running (it lists the running jobs each
//!   time it asks the worker for its status).
//! - [`MemoryEngine`]: the worker's Ballista execution engine. In each stage's plan it puts a
//!   [`MemoryShuffleWriterExec`] (`writer.rs`) in place of Ballista's shuffle writer and a
//!   [`MemoryShuffleReaderExec`] (`reader.rs`) in place of each shuffle reader. A task whose
//!   output does not fit writes Ballista's files instead, which Ballista's reader reads.
//! - [`serve`]: what the worker's Flight service answers from the store, so other workers
//!   and the coordinator fetch a held partition as they would fetch a file.
//!
//! Fault tolerance is Ballista's: a lost worker's outputs, in memory or on disk, are made
//! again by its stage's tasks on other workers.

mod reader;
mod store;
mod writer;

use std::fmt;
use std::sync::Arc;

use arrow_flight::FlightData;
use arrow_flight::encode::FlightDataEncoderBuilder;
use async_trait::async_trait;
use ballista_core::execution_plans::sort_shuffle::SortShuffleWriterExec;
use ballista_core::execution_plans::{ShuffleReaderExec, ShuffleWriterExec};
use ballista_core::serde::decode_protobuf;
use ballista_core::serde::protobuf::ShuffleWritePartition;
use ballista_core::serde::scheduler::Action as BallistaAction;
use ballista_core::utils::collect_plan_metrics;
use ballista_executor::execution_engine::{
    DefaultExecutionEngine, ExecutionEngine, QueryStageExecutor,
};
use braid_optimizer_rules::memory::WorkerMemory;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion::prelude::SessionConfig;
use futures::{Stream, StreamExt};
use tonic::Status;

pub use reader::MemoryShuffleReaderExec;
pub use store::{ShuffleKey, ShuffleStore, StoredPartition};
pub use writer::MemoryShuffleWriterExec;

/// The execution engine of a Braid worker: stages write into and read from the
/// [`ShuffleStore`]; with a budget of 0, Ballista's own engine (files only).
pub struct MemoryEngine {
    store: Arc<ShuffleStore>,
    memory: Arc<WorkerMemory>,
}

impl MemoryEngine {
    pub fn new(store: Arc<ShuffleStore>, memory: Arc<WorkerMemory>) -> Self {
        Self { store, memory }
    }
}

impl ExecutionEngine for MemoryEngine {
    fn create_query_stage_exec(
        &self,
        job_id: String,
        stage_id: usize,
        partition_id: usize,
        plan: Arc<dyn ExecutionPlan>,
        work_dir: &str,
        config: &SessionConfig,
    ) -> Result<Arc<dyn QueryStageExecutor>> {
        if !self.store.enabled() {
            return DefaultExecutionEngine::new().create_query_stage_exec(
                job_id,
                stage_id,
                partition_id,
                plan,
                work_dir,
                config,
            );
        }
        let plan = plan
            .transform_up(|node| {
                Ok(match node.as_any().downcast_ref::<ShuffleReaderExec>() {
                    Some(reader) => Transformed::yes(Arc::new(MemoryShuffleReaderExec::new(
                        reader,
                        work_dir,
                        self.store.clone(),
                    ))
                        as Arc<dyn ExecutionPlan>),
                    None => Transformed::no(node),
                })
            })?
            .data;
        let partitioning = if let Some(writer) = plan.as_any().downcast_ref::<ShuffleWriterExec>() {
            writer.shuffle_output_partitioning().cloned()
        } else if let Some(writer) = plan.as_any().downcast_ref::<SortShuffleWriterExec>() {
            Some(writer.shuffle_output_partitioning().clone())
        } else {
            return Err(DataFusionError::Internal(format!(
                "stage {stage_id} of job {job_id} does not start with a shuffle writer"
            )));
        };
        let input = plan
            .children()
            .first()
            .map(|c| (*c).clone())
            .ok_or_else(|| {
                DataFusionError::Internal(format!(
                    "the shuffle writer of stage {stage_id} has no input"
                ))
            })?;
        let writer = MemoryShuffleWriterExec::new(
            job_id,
            stage_id,
            input,
            partitioning,
            work_dir.to_string(),
            self.store.clone(),
            self.memory.clone(),
        )?;
        Ok(Arc::new(MemoryStage(Arc::new(writer))))
    }
}

/// One stage's task as the worker runs it.
#[derive(Debug)]
struct MemoryStage(Arc<MemoryShuffleWriterExec>);

impl fmt::Display for MemoryStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plan = datafusion::physical_plan::displayable(self.0.as_ref()).indent(false);
        write!(f, "MemoryStage:\n{plan}")
    }
}

#[async_trait]
impl QueryStageExecutor for MemoryStage {
    async fn execute_query_stage(
        &self,
        input_partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<Vec<ShuffleWritePartition>> {
        self.0.write(input_partition, context).await
    }

    fn collect_plan_metrics(&self) -> Vec<MetricsSet> {
        collect_plan_metrics(self.0.as_ref())
    }
}

/// The partition a Flight ticket or `IO_BLOCK_TRANSPORT` action body asks for, if the store
/// holds it; `None` leaves the request to Ballista's service (files).
pub fn held_partition(store: &ShuffleStore, request: &[u8]) -> Option<Arc<StoredPartition>> {
    match decode_protobuf(request).ok()? {
        BallistaAction::FetchPartition {
            job_id,
            stage_id,
            partition_id,
            file_id,
            ..
        } => store.get_key(&ShuffleKey {
            job_id,
            stage_id,
            partition_id,
            file_id,
        }),
    }
}

type Served<T> = std::pin::Pin<Box<dyn Stream<Item = std::result::Result<T, Status>> + Send>>;

/// `do_get` of a held partition: its batches as Flight data. They go uncompressed: between
/// workers on one network, LZ4 costs more time than it saves.
pub fn serve(partition: Arc<StoredPartition>) -> Served<FlightData> {
    let batches = futures::stream::iter(partition.batches.clone().into_iter().map(Ok));
    let encoded = FlightDataEncoderBuilder::new()
        .with_schema(partition.schema.clone())
        .build(batches)
        .map(|data| data.map_err(|e| Status::internal(format!("shuffle partition: {e}"))));
    Box::pin(encoded)
}

/// `IO_BLOCK_TRANSPORT` of a held partition: an Arrow IPC stream, as Ballista's block reader
/// reads a shuffle file, one block per batch.
pub fn serve_blocks(partition: Arc<StoredPartition>) -> Served<arrow_flight::Result> {
    let block = |writer: &mut StreamWriter<Vec<u8>>| arrow_flight::Result {
        body: std::mem::take(writer.get_mut()).into(),
    };
    let failed = |e: datafusion::arrow::error::ArrowError| {
        Status::internal(format!("shuffle partition: {e}"))
    };
    let writer = match StreamWriter::try_new(Vec::new(), &partition.schema) {
        Ok(writer) => writer,
        Err(e) => return Box::pin(futures::stream::once(async move { Err(failed(e)) })),
    };
    // State: the writer (None once finished) and the next batch.
    let blocks = futures::stream::unfold(
        (Some(writer), 0usize, true),
        move |(writer, next, first)| {
            let partition = partition.clone();
            async move {
                let mut writer = writer?;
                if first {
                    return Some((Ok(block(&mut writer)), (Some(writer), next, false)));
                }
                match partition.batches.get(next) {
                    Some(batch) => {
                        let item = writer
                            .write(batch)
                            .map(|()| block(&mut writer))
                            .map_err(failed);
                        let writer = item.is_ok().then_some(writer);
                        Some((item, (writer, next + 1, false)))
                    }
                    None => {
                        let item = writer.finish().map(|()| block(&mut writer)).map_err(failed);
                        Some((item, (None, next, false)))
                    }
                }
            }
        },
    );
    Box::pin(blocks)
}
