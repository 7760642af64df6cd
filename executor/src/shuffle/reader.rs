//! [`MemoryShuffleReaderExec`]: Ballista's shuffle reader, reading first what this worker
//! holds in its [`ShuffleStore`].

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use ballista_core::execution_plans::ShuffleReaderExec;
use ballista_core::serde::scheduler::PartitionLocation;
use datafusion::common::Statistics;
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, MetricBuilder, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::StreamExt;

use super::store::ShuffleStore;

/// Reads a shuffle partition: the locations this worker holds in memory straight from the
/// store, the others (another worker's, or this worker's files) through Ballista's
/// [`ShuffleReaderExec`] — from disk, or over Flight from the worker that has them, whose
/// Flight service serves its store too. It stands in the stage's plan where the reader stood,
/// with no child, so the stage's metrics keep their shape.
#[derive(Debug)]
pub struct MemoryShuffleReaderExec {
    /// Ballista's reader, its work directory set.
    inner: ShuffleReaderExec,
    work_dir: String,
    store: Arc<ShuffleStore>,
    metrics: ExecutionPlanMetricsSet,
}

impl MemoryShuffleReaderExec {
    pub fn new(inner: &ShuffleReaderExec, work_dir: &str, store: Arc<ShuffleStore>) -> Self {
        Self {
            inner: inner.with_work_dir(work_dir.to_string()),
            work_dir: work_dir.to_string(),
            store,
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }

    fn locations(&self, partition: usize) -> &[PartitionLocation] {
        // A broadcast reader reads every location for each of its partitions.
        let index = if self.inner.broadcast { 0 } else { partition };
        self.inner.partition.get(index).map_or(&[], Vec::as_slice)
    }
}

impl DisplayAs for MemoryShuffleReaderExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Memory")?;
        self.inner.fmt_as(t, f)
    }
}

impl ExecutionPlan for MemoryShuffleReaderExec {
    fn name(&self) -> &str {
        "MemoryShuffleReaderExec"
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.inner.properties()
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
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let (held, elsewhere): (Vec<_>, Vec<_>) = self
            .locations(partition)
            .iter()
            .map(|location| (self.store.get(location), location))
            .partition(|(held, _)| held.is_some());
        if held.is_empty() {
            return self.inner.execute(partition, context);
        }
        let schema = self.inner.schema();
        let output_rows = MetricBuilder::new(&self.metrics).output_rows(partition);
        let held: Vec<_> = held.into_iter().filter_map(|(held, _)| held).collect();
        let from_memory = futures::stream::iter(
            held.into_iter().flat_map(|held| held.batches.clone()),
        )
        .map(move |batch| {
            output_rows.add(batch.num_rows());
            Ok(batch)
        });
        if elsewhere.is_empty() {
            return Ok(Box::pin(RecordBatchStreamAdapter::new(schema, from_memory)));
        }
        let rest: Vec<PartitionLocation> = elsewhere.into_iter().map(|(_, l)| l.clone()).collect();
        let rest = ShuffleReaderExec::try_new(
            self.inner.stage_id,
            vec![rest],
            schema.clone(),
            Partitioning::UnknownPartitioning(1),
        )?
        .with_work_dir(self.work_dir.clone())
        .execute(0, context)?;
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            schema,
            futures::stream::select(from_memory, rest),
        )))
    }

    fn partition_statistics(&self, partition: Option<usize>) -> Result<Statistics> {
        self.inner.partition_statistics(partition)
    }

    fn metrics(&self) -> Option<MetricsSet> {
        let mut metrics = self.inner.metrics().unwrap_or_default();
        for metric in self.metrics.clone_inner().iter() {
            metrics.push(metric.clone());
        }
        Some(metrics)
    }
}
