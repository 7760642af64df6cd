//! [`MemoryShuffleWriterExec`]: writes one task's output into the worker's [`ShuffleStore`],
//! or into Ballista's shuffle files once the store or the memory pool has no room.

use std::any::Any;
use std::fmt;
use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::Arc;

use ballista_core::execution_plans::create_shuffle_path;
use ballista_core::serde::protobuf::ShuffleWritePartition;
use datafusion::arrow::compute::BatchCoalescer;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::CompressionType;
use datafusion::arrow::ipc::writer::{IpcWriteOptions, StreamWriter};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{exec_err, internal_err};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::memory_pool::MemoryReservation;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::metrics::{
    Count, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet, Time,
};
use datafusion::physical_plan::repartition::BatchPartitioner;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::StreamExt;

use braid_optimizer_rules::memory::WorkerMemory;

use super::store::{ShuffleKey, ShuffleStore, StoredPartition};

/// The root of a stage on a Braid worker, in place of Ballista's shuffle writers: it
/// repartitions its input as they would (by hash, or not at all) and keeps each output
/// partition in the [`ShuffleStore`]; when the store's budget or the worker's pool refuses
/// more, the task moves all it holds, and the rest of its output, into the files Ballista's
/// writer would have written (LZ4 Arrow IPC, same paths), which Ballista's readers read.
#[derive(Debug)]
pub struct MemoryShuffleWriterExec {
    job_id: String,
    stage_id: usize,
    input: Arc<dyn ExecutionPlan>,
    /// `None`: each input partition is one output partition.
    partitioning: Option<Partitioning>,
    work_dir: String,
    store: Arc<ShuffleStore>,
    /// The worker's memory pool, which what the store keeps is drawn from.
    memory: Arc<WorkerMemory>,
    metrics: ExecutionPlanMetricsSet,
}

impl MemoryShuffleWriterExec {
    pub fn new(
        job_id: String,
        stage_id: usize,
        input: Arc<dyn ExecutionPlan>,
        partitioning: Option<Partitioning>,
        work_dir: String,
        store: Arc<ShuffleStore>,
        memory: Arc<WorkerMemory>,
    ) -> Result<Self> {
        if let Some(other) = partitioning
            .as_ref()
            .filter(|p| !matches!(p, Partitioning::Hash(..)))
        {
            return exec_err!("a shuffle cannot repartition by {other}: only by hash");
        }
        Ok(Self {
            job_id,
            stage_id,
            input,
            partitioning,
            work_dir,
            store,
            memory,
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }

    /// Runs input partition `input_partition` and keeps its output; returns what Ballista's
    /// writer would report (the coordinator turns it into the next stage's locations).
    pub async fn write(
        &self,
        input_partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<Vec<ShuffleWritePartition>> {
        let metrics = WriteMetrics::new(input_partition, &self.metrics);
        let mut stream: SendableRecordBatchStream =
            self.input.execute(input_partition, context.clone())?;
        let outputs = match &self.partitioning {
            Some(Partitioning::Hash(exprs, count)) => Outputs::Hash(
                BatchPartitioner::new_hash_partitioner(
                    exprs.clone(),
                    *count,
                    metrics.repart_time.clone(),
                ),
                *count,
            ),
            _ => Outputs::Same,
        };
        let mut sink = Sink {
            job_id: self.job_id.clone(),
            stage_id: self.stage_id,
            input_partition,
            work_dir: self.work_dir.clone(),
            schema: stream.schema(),
            batch_size: context.session_config().batch_size(),
            store: self.store.clone(),
            reservation: self.memory.shuffle_reservation(),
            taken: 0,
            on_disk: false,
            parts: Vec::new(),
            metrics: metrics.clone(),
        };
        // Partitioning, copying and file writes run off the async threads, as in Ballista.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<RecordBatch>(2);
        let writer = tokio::task::spawn_blocking(move || {
            sink.start(&outputs)?;
            let mut outputs = outputs;
            while let Some(batch) = rx.blocking_recv() {
                sink.push(&mut outputs, batch)?;
            }
            Ok::<_, DataFusionError>(sink)
        });
        let mut failed = None;
        while let Some(batch) = stream.next().await {
            match batch {
                Ok(batch) => {
                    metrics.input_rows.add(batch.num_rows());
                    if tx.send(batch).await.is_err() {
                        break; // the writer failed: its error is below
                    }
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        drop(tx);
        let sink = writer.await.map_err(thread_failed)?;
        // A failed task keeps nothing: dropping its sink gives back what it took.
        if let Some(e) = failed {
            return Err(e);
        }
        tokio::task::spawn_blocking(move || sink?.finish())
            .await
            .map_err(thread_failed)?
    }
}

fn thread_failed(e: tokio::task::JoinError) -> DataFusionError {
    DataFusionError::Execution(format!("shuffle writer thread: {e}"))
}

/// How input batches map to output partitions.
enum Outputs {
    Hash(BatchPartitioner, usize),
    /// The input partition is the output partition.
    Same,
}

#[derive(Clone)]
struct WriteMetrics {
    write_time: Time,
    repart_time: Time,
    input_rows: Count,
    output_rows: Count,
}

impl WriteMetrics {
    /// The metrics Ballista's writers report, under the same names.
    fn new(partition: usize, metrics: &ExecutionPlanMetricsSet) -> Self {
        Self {
            write_time: MetricBuilder::new(metrics).subset_time("write_time", partition),
            repart_time: MetricBuilder::new(metrics).subset_time("repart_time", partition),
            input_rows: MetricBuilder::new(metrics).counter("input_rows", partition),
            output_rows: MetricBuilder::new(metrics).output_rows(partition),
        }
    }
}

/// One task's output partitions as they are written.
struct Sink {
    job_id: String,
    stage_id: usize,
    input_partition: usize,
    work_dir: String,
    schema: SchemaRef,
    batch_size: usize,
    store: Arc<ShuffleStore>,
    reservation: MemoryReservation,
    /// Bytes taken from the store's budget (and the reservation) for `parts`.
    taken: usize,
    on_disk: bool,
    parts: Vec<Part>,
    metrics: WriteMetrics,
}

struct Part {
    partition_id: usize,
    file_id: Option<u64>,
    coalescer: BatchCoalescer,
    batches: Vec<RecordBatch>,
    bytes: usize,
    rows: usize,
    written_batches: usize,
    file: Option<(PathBuf, StreamWriter<BufWriter<File>>)>,
}

impl Sink {
    fn start(&mut self, outputs: &Outputs) -> Result<()> {
        let (ids, file_ids): (Vec<usize>, bool) = match outputs {
            Outputs::Hash(_, count) => ((0..*count).collect(), true),
            Outputs::Same => (vec![self.input_partition], false),
        };
        self.parts = ids
            .into_iter()
            .map(|partition_id| Part {
                partition_id,
                file_id: file_ids.then_some(self.input_partition as u64),
                coalescer: BatchCoalescer::new(self.schema.clone(), self.batch_size),
                batches: Vec::new(),
                bytes: 0,
                rows: 0,
                written_batches: 0,
                file: None,
            })
            .collect();
        // The job's directory tells that this worker ran a task of it (as shuffle files do)
        // and is where Ballista removes the job's files from.
        let job_dir = PathBuf::from(&self.work_dir).join(&self.job_id);
        std::fs::create_dir_all(&job_dir).map_err(|e| {
            DataFusionError::Execution(format!("cannot create {}: {e}", job_dir.display()))
        })?;
        Ok(())
    }

    fn push(&mut self, outputs: &mut Outputs, batch: RecordBatch) -> Result<()> {
        match outputs {
            Outputs::Hash(partitioner, _) => {
                partitioner.partition(batch, |index, part| self.add(index, part))
            }
            Outputs::Same => self.add(0, batch),
        }
    }

    /// Adds `batch` to part `index`, keeping each batch its coalescer completes.
    fn add(&mut self, index: usize, batch: RecordBatch) -> Result<()> {
        let Some(part) = self.parts.get_mut(index) else {
            return internal_err!("shuffle output partition {index} out of range");
        };
        self.metrics.output_rows.add(batch.num_rows());
        part.coalescer.push_batch(batch)?;
        self.keep_completed(index)
    }

    fn keep_completed(&mut self, index: usize) -> Result<()> {
        while let Some(batch) = self.parts[index].coalescer.next_completed_batch() {
            self.keep(index, batch)?;
        }
        Ok(())
    }

    /// Keeps `batch` in memory if the store and the pool have room, else on disk.
    fn keep(&mut self, index: usize, batch: RecordBatch) -> Result<()> {
        let write_time = self.metrics.write_time.clone();
        let _timer = write_time.timer();
        self.parts[index].rows += batch.num_rows();
        if !self.on_disk {
            let bytes = batch.get_array_memory_size();
            if self.store.try_take(bytes) {
                if self.reservation.try_grow(bytes).is_ok() {
                    self.taken += bytes;
                    let part = &mut self.parts[index];
                    part.bytes += bytes;
                    part.batches.push(batch);
                    return Ok(());
                }
                self.store.give_back(bytes);
            }
            self.move_to_disk()?;
        }
        self.write_to_file(index, &batch)
    }

    /// From now on this task's output goes to files, what it held in memory first.
    fn move_to_disk(&mut self) -> Result<()> {
        tracing::debug!(
            job = %self.job_id,
            stage = self.stage_id,
            partition = self.input_partition,
            "shuffle store full: writing this task's output to disk"
        );
        self.on_disk = true;
        for index in 0..self.parts.len() {
            for batch in std::mem::take(&mut self.parts[index].batches) {
                self.write_to_file(index, &batch)?;
            }
            self.parts[index].bytes = 0;
        }
        self.store.give_back(self.taken);
        self.taken = 0;
        self.reservation.free();
        Ok(())
    }

    fn write_to_file(&mut self, index: usize, batch: &RecordBatch) -> Result<()> {
        let part = self.file_for(index)?;
        if let Some((_, writer)) = &mut part.file {
            writer.write(batch)?;
            part.written_batches += 1;
        }
        Ok(())
    }

    /// Part `index`, with its shuffle file open.
    fn file_for(&mut self, index: usize) -> Result<&mut Part> {
        let part = &mut self.parts[index];
        if part.file.is_none() {
            let path = create_shuffle_path(
                &self.work_dir,
                &self.job_id,
                self.stage_id,
                part.partition_id,
                part.file_id,
                false,
            )?;
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let options = IpcWriteOptions::default()
                .try_with_compression(Some(CompressionType::LZ4_FRAME))?;
            let file = BufWriter::new(File::create(&path)?);
            let writer = StreamWriter::try_new_with_options(file, &self.schema, options)?;
            part.file = Some((path, writer));
        }
        Ok(part)
    }

    /// Flushes every part and reports them: those held in memory go into the store.
    fn finish(mut self) -> Result<Vec<ShuffleWritePartition>> {
        for index in 0..self.parts.len() {
            self.parts[index].coalescer.finish_buffered_batch()?;
            self.keep_completed(index)?;
        }
        // Without repartitioning, the one output partition exists even when empty.
        let keep_empty = self.parts.len() == 1 && self.parts[0].file_id.is_none();
        if self.on_disk && keep_empty {
            self.file_for(0)?;
        }
        let mut reported = Vec::new();
        let mut stored = Vec::new();
        for part in std::mem::take(&mut self.parts) {
            let (num_batches, num_bytes) = match part.file {
                Some((path, mut writer)) => {
                    writer.finish()?;
                    drop(writer);
                    (part.written_batches, std::fs::metadata(&path)?.len())
                }
                None if self.on_disk => continue,
                None if part.rows == 0 && !keep_empty => continue,
                None => {
                    let key = ShuffleKey {
                        job_id: self.job_id.clone(),
                        stage_id: self.stage_id,
                        partition_id: part.partition_id,
                        file_id: part.file_id,
                    };
                    let held = StoredPartition::new(
                        self.schema.clone(),
                        part.batches,
                        part.bytes,
                        self.reservation.split(part.bytes),
                    );
                    let counts = (held.batches.len(), part.bytes as u64);
                    stored.push((key, held));
                    counts
                }
            };
            reported.push(ShuffleWritePartition {
                partition_id: part.partition_id as u64,
                num_batches: num_batches as u64,
                num_rows: part.rows as u64,
                num_bytes,
                file_id: part.file_id,
                is_sort_shuffle: false,
            });
        }
        self.taken = 0;
        self.store.commit(stored);
        Ok(reported)
    }
}

impl Drop for Sink {
    /// A task that failed gives back the room it took in the store.
    fn drop(&mut self) {
        self.store.give_back(self.taken);
    }
}

impl DisplayAs for MemoryShuffleWriterExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.partitioning {
            Some(partitioning) => write!(f, "MemoryShuffleWriterExec: partitioning={partitioning}"),
            None => write!(f, "MemoryShuffleWriterExec: partitioning=None"),
        }
    }
}

impl ExecutionPlan for MemoryShuffleWriterExec {
    fn name(&self) -> &str {
        "MemoryShuffleWriterExec"
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

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let [input] = <[_; 1]>::try_from(children)
            .map_err(|_| DataFusionError::Internal("a shuffle writer has one input".into()))?;
        Ok(Arc::new(Self::new(
            self.job_id.clone(),
            self.stage_id,
            input,
            self.partitioning.clone(),
            self.work_dir.clone(),
            self.store.clone(),
            self.memory.clone(),
        )?))
    }

    /// A stage's writer runs through [`MemoryShuffleWriterExec::write`], never as a stream.
    fn execute(
        &self,
        _partition: usize,
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        internal_err!("MemoryShuffleWriterExec runs as a query stage, not as a stream")
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}
