//! [`ScanExec`]: the one scan node of every connector. A connector supplies a [`ScanSource`]
//! (the table handle: what to read, and how to read one split); the node does the rest the same
//! way for all of them: one partition per split, splits fetched from the coordinator when they
//! are kept there, a fresh copy with its own metrics per task, deterministic `EXPLAIN` text.
//! [`ScanExecCodec`] ships it: the handle and the splits, rebuilt on the worker with that
//! worker's own settings for the catalog.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::common::stats::Precision;
use datafusion::common::{ColumnStatistics, Statistics, internal_err};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::metrics::{
    BaselineMetrics, Count, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::TryStreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::split::{Split, Splits};
use crate::{ConnectorError, ScanCodec, scan_properties};

/// `schema` as text for a handle (an Arrow IPC stream header, base64).
pub fn encode_schema(schema: &Schema) -> Result<String> {
    let mut writer = StreamWriter::try_new(Vec::new(), schema)?;
    writer.finish()?;
    Ok(BASE64.encode(writer.into_inner()?))
}

/// A schema [`encode_schema`] wrote.
pub fn decode_schema(text: &str) -> Result<SchemaRef> {
    let bytes = BASE64
        .decode(text)
        .map_err(|e| DataFusionError::Internal(format!("a scan's schema: {e}")))?;
    Ok(StreamReader::try_new(std::io::Cursor::new(bytes), None)?.schema())
}

/// What one connector's scan reads, and how it reads one split.
pub trait ScanSource: fmt::Debug + Send + Sync + 'static {
    /// What travels in the plan: the table handle, from which the worker's codec rebuilds the
    /// source. Never a connection or a secret.
    type Handle: Serialize + DeserializeOwned;

    /// The node's name in plans (`TpchScanExec`).
    fn name(&self) -> &'static str;

    /// The catalog scanned; its codec claims the node by it.
    fn catalog(&self) -> &str;

    /// The columns the scan returns.
    fn schema(&self) -> SchemaRef;

    /// The handle to ship.
    fn handle(&self) -> Self::Handle;

    /// What `EXPLAIN` shows after the name: the table, the columns, what was pushed down (the
    /// splits are there to show when they say what is read, as a PostgreSQL split's SQL does).
    fn fmt_details(&self, splits: &Splits, f: &mut fmt::Formatter<'_>) -> fmt::Result;

    /// Reads one split; `metrics` counts the rows (and anything the connector adds).
    fn read(
        &self,
        split: &Split,
        context: Arc<TaskContext>,
        metrics: ScanMetrics,
    ) -> Result<SendableRecordBatchStream>;

    /// What the coordinator knew of the scan's size when it planned it (nothing by default).
    fn estimate(&self) -> ScanEstimate {
        ScanEstimate::default()
    }

    /// The null counts and bounds of the scan's columns as the source's metadata gave them
    /// when the coordinator planned the scan (none by default; see
    /// [`project_column_statistics`]). Kept on the coordinator: they do not travel.
    fn column_statistics(&self) -> Option<&[ColumnStatistics]> {
        None
    }

    /// Statistics of the whole scan (`None`) or of one partition, the scan having `splits`:
    /// by default those of [`ScanSource::estimate`] and [`ScanSource::column_statistics`].
    fn statistics(&self, partition: Option<usize>, splits: usize) -> Result<Statistics> {
        let mut statistics = self
            .estimate()
            .statistics(&self.schema(), partition, splits);
        if let Some(columns) = self.column_statistics() {
            statistics.column_statistics = match partition {
                None => columns.to_vec(),
                // A split holds some of the rows: its bounds and counts are the table's at most.
                Some(_) => columns.iter().cloned().map(|c| c.to_inexact()).collect(),
            };
        }
        Ok(statistics)
    }
}

/// A scan's [`ScanSource::column_statistics`] from `table`'s, one per column of the table:
/// those of the `projection` (all `width` columns without one), unknown past the end of
/// `table`; inexact when `filtered`, that is when filters or deletes may skip rows of the files
/// the statistics count.
pub fn project_column_statistics(
    table: &[ColumnStatistics],
    projection: Option<&[usize]>,
    width: usize,
    filtered: bool,
) -> Vec<ColumnStatistics> {
    let column = |i: usize| {
        let column = table
            .get(i)
            .cloned()
            .unwrap_or_else(ColumnStatistics::new_unknown);
        if filtered {
            column.to_inexact()
        } else {
            column
        }
    };
    match projection {
        Some(indices) => indices.iter().map(|&i| column(i)).collect(),
        None => (0..width).map(column).collect(),
    }
}

/// The size of a scan as the source's own metadata gives it when the coordinator plans the
/// scan — the record counts of the data files a filter kept, a topic's offsets, a relation's
/// `reltuples` — for join ordering and the broadcast decision. Travels in the scan's handle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ScanEstimate {
    /// Rows the scan returns.
    pub rows: Option<usize>,
    /// Bytes of those rows in memory.
    pub bytes: Option<usize>,
    /// Whether `rows` and `bytes` are exact rather than an estimate or an upper bound.
    pub exact: bool,
}

impl ScanEstimate {
    /// An estimate of `rows`, if the source knows them (an upper bound: deletes, filters and
    /// gaps are not counted).
    pub fn rows(rows: impl Into<Option<usize>>) -> Self {
        Self {
            rows: rows.into(),
            bytes: None,
            exact: false,
        }
    }

    /// The estimate of a scan whose `splits` splits each stop after `limit` rows.
    pub fn limited(self, limit: Option<usize>, splits: usize) -> Self {
        let (Some(limit), Some(rows)) = (limit, self.rows) else {
            return self;
        };
        let cap = limit.saturating_mul(splits.max(1));
        if rows <= cap {
            return self;
        }
        Self {
            rows: Some(cap),
            // The same share of the bytes.
            bytes: self
                .bytes
                .map(|bytes| (bytes as u128 * cap as u128 / rows as u128) as usize),
            exact: false,
        }
    }

    /// The statistics of the whole scan (`partition` `None`) or of one of its `splits`
    /// partitions, counted as an even share.
    pub fn statistics(
        &self,
        schema: &Schema,
        partition: Option<usize>,
        splits: usize,
    ) -> Statistics {
        let share = |n: usize| match partition {
            None => n,
            Some(_) => n.div_ceil(splits.max(1)),
        };
        let precision = |n: Option<usize>| match n.map(share) {
            Some(n) if self.exact && (partition.is_none() || splits <= 1) => Precision::Exact(n),
            Some(n) => Precision::Inexact(n),
            None => Precision::Absent,
        };
        Statistics {
            num_rows: precision(self.rows),
            total_byte_size: precision(self.bytes),
            column_statistics: Statistics::unknown_column(schema),
        }
    }
}

/// The metrics of one partition of a scan.
#[derive(Debug, Clone)]
pub struct ScanMetrics {
    set: ExecutionPlanMetricsSet,
    partition: usize,
}

impl ScanMetrics {
    /// Output rows and compute time, as every operator reports them.
    pub fn baseline(&self) -> BaselineMetrics {
        BaselineMetrics::new(&self.set, self.partition)
    }

    /// A counter of the connector's own (`rows_transferred`), shown by `EXPLAIN ANALYZE`.
    pub fn counter(&self, name: &'static str) -> Count {
        MetricBuilder::new(&self.set).counter(name, self.partition)
    }
}

/// The scan node: partition *i* reads split *i* of `splits` through `source`.
#[derive(Debug)]
pub struct ScanExec<S: ScanSource> {
    source: Arc<S>,
    splits: Splits,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl<S: ScanSource> ScanExec<S> {
    pub fn new(source: S, splits: Splits) -> Self {
        let properties = scan_properties(source.schema(), splits.len());
        Self {
            source: Arc::new(source),
            splits,
            properties,
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }

    pub fn source(&self) -> &S {
        &self.source
    }

    pub fn splits(&self) -> &Splits {
        &self.splits
    }
}

impl<S: ScanSource> DisplayAs for ScanExec<S> {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.source.name())?;
        self.source.fmt_details(&self.splits, f)?;
        if let Splits::Remote { .. } = self.splits {
            write!(f, ", split list kept on the coordinator")?;
        }
        Ok(())
    }
}

impl<S: ScanSource> ExecutionPlan for ScanExec<S> {
    fn name(&self) -> &str {
        self.source.name()
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
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !children.is_empty() {
            return internal_err!("{} has no children", self.source.name());
        }
        // A fresh copy with its own metrics: Ballista rebuilds a stage's plan per task, and
        // shared metrics would count one task's rows in another's.
        Ok(Arc::new(Self {
            source: self.source.clone(),
            splits: self.splits.clone(),
            properties: self.properties.clone(),
            metrics: ExecutionPlanMetricsSet::new(),
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition >= self.splits.len().max(1) {
            return internal_err!(
                "{}: partition {partition} of a scan with {} splits",
                self.source.name(),
                self.splits.len()
            );
        }
        let metrics = ScanMetrics {
            set: self.metrics.clone(),
            partition,
        };
        if let Splits::Inline(splits) = &self.splits {
            return match splits.get(partition) {
                Some(split) => self.source.read(split, context, metrics),
                // A scan with no split (an empty table) has one empty partition.
                None => Ok(Box::pin(RecordBatchStreamAdapter::new(
                    self.source.schema(),
                    futures::stream::empty(),
                ))),
            };
        }
        let (source, splits) = (self.source.clone(), self.splits.clone());
        let rows = futures::stream::once(async move {
            let split = splits.get(partition).await?;
            source.read(&split, context, metrics)
        })
        .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.source.schema(),
            rows,
        )))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn partition_statistics(&self, partition: Option<usize>) -> Result<Statistics> {
        self.source.statistics(partition, self.splits.len())
    }
}

/// Rebuilds a catalog's source from its handle on the worker (with the worker's own settings).
pub type Attach<S> =
    Arc<dyn Fn(<S as ScanSource>::Handle) -> Result<S, ConnectorError> + Send + Sync>;

/// The codec of one catalog's [`ScanExec`]s: the handle and the splits, as JSON.
pub struct ScanExecCodec<S: ScanSource> {
    catalog: String,
    attach: Attach<S>,
}

impl<S: ScanSource> ScanExecCodec<S> {
    /// The codec of `catalog`, rebuilding sources with `attach`.
    pub fn new(
        catalog: impl Into<String>,
        attach: impl Fn(S::Handle) -> Result<S, ConnectorError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            catalog: catalog.into(),
            attach: Arc::new(attach),
        }
    }
}

impl<S: ScanSource> fmt::Debug for ScanExecCodec<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScanExecCodec")
            .field("catalog", &self.catalog)
            .finish()
    }
}

#[derive(Serialize, serde::Deserialize)]
struct Payload<H> {
    handle: H,
    splits: Splits,
}

impl<S: ScanSource> ScanCodec for ScanExecCodec<S> {
    fn try_encode(&self, node: &dyn ExecutionPlan) -> Result<Option<Vec<u8>>> {
        let Some(scan) = node
            .as_any()
            .downcast_ref::<ScanExec<S>>()
            .filter(|scan| scan.source.catalog() == self.catalog)
        else {
            return Ok(None);
        };
        let payload = Payload {
            handle: scan.source.handle(),
            splits: scan.splits.clone(),
        };
        serde_json::to_vec(&payload)
            .map(Some)
            .map_err(|e| codec_error(scan.source.name(), e))
    }

    fn try_decode(&self, payload: &[u8], _ctx: &TaskContext) -> Result<Arc<dyn ExecutionPlan>> {
        let payload: Payload<S::Handle> =
            serde_json::from_slice(payload).map_err(|e| codec_error(&self.catalog, e))?;
        let source = (self.attach)(payload.handle)?;
        Ok(Arc::new(ScanExec::new(source, payload.splits)))
    }
}

fn codec_error(what: &str, e: serde_json::Error) -> DataFusionError {
    ConnectorError::Codec {
        kind: "scan",
        reason: format!("{what}: {e}"),
    }
    .into()
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::{DataType, Field};

    use super::*;

    fn schema() -> Schema {
        Schema::new(vec![Field::new("a", DataType::Int64, true)])
    }

    #[test]
    fn an_estimate_is_shared_by_the_partitions_and_capped_by_the_limit() {
        let estimate = ScanEstimate::rows(1000);
        let whole = estimate.statistics(&schema(), None, 3);
        assert_eq!(whole.num_rows, Precision::Inexact(1000));
        assert_eq!(whole.total_byte_size, Precision::Absent);
        let part = estimate.statistics(&schema(), Some(2), 3);
        assert_eq!(part.num_rows, Precision::Inexact(334));

        // Three splits of at most 10 rows each.
        let limited = estimate.limited(Some(10), 3);
        assert_eq!(limited.rows, Some(30));
        assert_eq!(estimate.limited(Some(500), 3), estimate);
        assert_eq!(estimate.limited(None, 3), estimate);

        let exact = ScanEstimate {
            rows: Some(100),
            bytes: Some(8000),
            exact: true,
        };
        let whole = exact.statistics(&schema(), None, 4);
        assert_eq!(whole.num_rows, Precision::Exact(100));
        assert_eq!(whole.total_byte_size, Precision::Exact(8000));
        // A share of an exact count is not exact; a limit keeps the bytes' share.
        let part = exact.statistics(&schema(), Some(0), 4);
        assert_eq!(part.num_rows, Precision::Inexact(25));
        let limited = exact.limited(Some(10), 2);
        assert_eq!(
            (limited.rows, limited.bytes, limited.exact),
            (Some(20), Some(1600), false)
        );
        // Unknown stays unknown.
        let unknown = ScanEstimate::default().statistics(&schema(), None, 1);
        assert_eq!(unknown.num_rows, Precision::Absent);
        assert_eq!(unknown.column_statistics.len(), 1);
    }
}
