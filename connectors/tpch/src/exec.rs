//! [`TpchScanExec`]: partition *i* generates part *i+1* of *n* of one TPC-H table.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::stats::Precision;
use datafusion::common::{Statistics, internal_err};
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::coop::make_cooperative;
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use tpchgen::generators::{
    CustomerGenerator, LineItemGenerator, NationGenerator, OrderGenerator, PartGenerator,
    PartSuppGenerator, RegionGenerator, SupplierGenerator,
};

use crate::config::ColumnNaming;
use crate::metadata::TpchTableKind;
use crate::types::{self, Batches};

/// Generates one TPC-H table, `parts` partitions, only the projected columns.
#[derive(Debug, Clone)]
pub struct TpchScanExec {
    catalog: String,
    table: TpchTableKind,
    scale_factor: f64,
    naming: ColumnNaming,
    parts: usize,
    projection: Vec<usize>,
    limit: Option<usize>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl TpchScanExec {
    /// A scan of `table` at `scale_factor` in `parts` splits; `projection` indexes the full
    /// table schema (`None` reads every column).
    pub fn new(
        catalog: String,
        table: TpchTableKind,
        scale_factor: f64,
        naming: ColumnNaming,
        parts: usize,
        projection: Option<Vec<usize>>,
        limit: Option<usize>,
    ) -> Result<Self> {
        let full = table.schema(naming);
        let projection = projection.unwrap_or_else(|| (0..full.fields().len()).collect());
        if let Some(bad) = projection.iter().find(|&&i| i >= full.fields().len()) {
            return internal_err!("TPC-H {}: column index {bad} out of range", table.name());
        }
        let schema = Arc::new(full.project(&projection)?);
        let parts = parts.max(1);
        let properties = braid_connector_spi::scan_properties(schema.clone(), parts);
        Ok(Self {
            catalog,
            table,
            scale_factor,
            naming,
            parts,
            projection,
            limit,
            schema,
            properties,
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }

    pub fn catalog(&self) -> &str {
        &self.catalog
    }
    pub fn table(&self) -> TpchTableKind {
        self.table
    }
    pub fn scale_factor(&self) -> f64 {
        self.scale_factor
    }
    pub fn naming(&self) -> ColumnNaming {
        self.naming
    }
    pub fn parts(&self) -> usize {
        self.parts
    }
    pub fn projection(&self) -> &[usize] {
        &self.projection
    }
    pub fn limit(&self) -> Option<usize> {
        self.limit
    }

    fn generate(&self, partition: usize, batch_size: usize) -> Box<dyn BatchIter> {
        let (sf, part) = (self.scale_factor, partition as i32 + 1);
        let count = self.parts as i32;
        let types: Vec<_> = self.table.columns().iter().map(|(_, t)| *t).collect();
        let (projection, schema, limit) =
            (self.projection.clone(), self.schema.clone(), self.limit);
        macro_rules! batches {
            ($gen:expr, $row:path) => {
                Box::new(Batches::new(
                    $gen.into_iter(),
                    $row,
                    &types,
                    projection,
                    schema,
                    batch_size,
                    limit,
                ))
            };
        }
        match self.table {
            TpchTableKind::Nation => batches!(NationGenerator::new(sf, 1, 1), types::nation),
            TpchTableKind::Region => batches!(RegionGenerator::new(sf, 1, 1), types::region),
            TpchTableKind::Part => batches!(PartGenerator::new(sf, part, count), types::part),
            TpchTableKind::Supplier => {
                batches!(SupplierGenerator::new(sf, part, count), types::supplier)
            }
            TpchTableKind::PartSupp => {
                batches!(PartSuppGenerator::new(sf, part, count), types::partsupp)
            }
            TpchTableKind::Customer => {
                batches!(CustomerGenerator::new(sf, part, count), types::customer)
            }
            TpchTableKind::Orders => batches!(OrderGenerator::new(sf, part, count), types::orders),
            TpchTableKind::LineItem => {
                batches!(LineItemGenerator::new(sf, part, count), types::lineitem)
            }
        }
    }
}

trait BatchIter: Iterator<Item = Result<datafusion::arrow::record_batch::RecordBatch>> + Send {}
impl<T> BatchIter for T where
    T: Iterator<Item = Result<datafusion::arrow::record_batch::RecordBatch>> + Send
{
}

impl DisplayAs for TpchScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let columns: Vec<_> = self
            .schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        write!(
            f,
            "TpchScanExec: table={}.{}, scale_factor={}, splits={}, columns=[{}]",
            self.catalog,
            self.table.name(),
            self.scale_factor,
            self.parts,
            columns.join(", ")
        )?;
        if let Some(limit) = self.limit {
            write!(f, ", limit={limit}")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for TpchScanExec {
    fn name(&self) -> &str {
        "TpchScanExec"
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
            return internal_err!("TpchScanExec has no children");
        }
        // A fresh copy with its own metrics: Ballista rebuilds a stage's plan per task, and
        // shared metrics would count one task's rows in another's.
        Ok(Arc::new(Self {
            metrics: ExecutionPlanMetricsSet::new(),
            ..self.as_ref().clone()
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition >= self.parts {
            return internal_err!(
                "TpchScanExec: partition {partition} of a scan with {} splits",
                self.parts
            );
        }
        let batch_size = context.session_config().batch_size();
        let mut batches = self.generate(partition, batch_size);
        let baseline = BaselineMetrics::new(&self.metrics, partition);
        // Generation happens in `next()`: time it as this operator's compute.
        let metered = std::iter::from_fn(move || {
            let _timer = baseline.elapsed_compute().timer();
            let batch = batches.next();
            if let Some(Ok(batch)) = &batch {
                baseline.record_output(batch.num_rows());
            }
            batch
        });
        // Generation never waits: yield to the runtime now and then, so that a cancelled task
        // (Ballista aborts it between polls) stops and other tasks get their turn.
        Ok(make_cooperative(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            futures::stream::iter(metered),
        ))))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn partition_statistics(&self, partition: Option<usize>) -> Result<Statistics> {
        let total = self.table.row_count(self.scale_factor);
        let rows = match partition {
            None => total,
            Some(_) => total.div_ceil(self.parts),
        };
        let rows = self.limit.map_or(rows, |l| l.min(rows));
        let mut stats = Statistics::new_unknown(&self.schema);
        stats.num_rows = if self.table.row_count_is_exact() && partition.is_none() {
            Precision::Exact(rows)
        } else {
            Precision::Inexact(rows)
        };
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;
    use futures::TryStreamExt;

    async fn count_rows(
        table: TpchTableKind,
        parts: usize,
        projection: Option<Vec<usize>>,
    ) -> usize {
        let exec = TpchScanExec::new(
            "tpch".into(),
            table,
            0.01,
            ColumnNaming::Standard,
            parts,
            projection,
            None,
        )
        .expect("valid scan");
        let ctx = SessionContext::new().task_ctx();
        let mut rows = 0;
        for p in 0..exec.parts() {
            let batches: Vec<_> = exec
                .execute(p, ctx.clone())
                .expect("execute")
                .try_collect()
                .await
                .expect("generate");
            rows += batches.iter().map(|b| b.num_rows()).sum::<usize>();
        }
        rows
    }

    #[tokio::test]
    async fn every_table_generates_its_rows_in_any_split_count() {
        let expected = [
            (TpchTableKind::Customer, 1500),
            (TpchTableKind::LineItem, 60175),
            (TpchTableKind::Nation, 25),
            (TpchTableKind::Orders, 15000),
            (TpchTableKind::Part, 2000),
            (TpchTableKind::PartSupp, 8000),
            (TpchTableKind::Region, 5),
            (TpchTableKind::Supplier, 100),
        ];
        for (table, rows) in expected {
            let parts = crate::split::split_count(table, 0.01, 3);
            assert_eq!(
                count_rows(table, parts, None).await,
                rows,
                "{}",
                table.name()
            );
            assert_eq!(
                count_rows(table, 1, Some(vec![0])).await,
                rows,
                "{}",
                table.name()
            );
        }
    }
}
