//! [`TpchScanExec`]: the SPI's scan node over a [`TpchScan`]; partition *i* generates part
//! *i+1* of *n* of one TPC-H table.

use std::fmt;
use std::sync::Arc;

use braid_connector_spi::{
    ConnectorError, ScanExec, ScanMetrics, ScanSource, Split, Splits, column_list,
};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::Statistics;
use datafusion::common::stats::Precision;
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::coop::make_cooperative;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use serde::{Deserialize, Serialize};
use tpchgen::generators::{
    CustomerGenerator, LineItemGenerator, NationGenerator, OrderGenerator, PartGenerator,
    PartSuppGenerator, RegionGenerator, SupplierGenerator,
};

use crate::config::ColumnNaming;
use crate::metadata::TpchTableKind;
use crate::types::{self, Batches};

/// The scan node of a TPC-H table.
pub type TpchScanExec = ScanExec<TpchScan>;

/// A TPC-H scan as it travels: table, scale factor, naming, parts, projection, limit. The data
/// is generated where it is read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TpchScanHandle {
    pub catalog: String,
    pub table: TpchTableKind,
    pub scale_factor: f64,
    pub naming: ColumnNaming,
    pub parts: usize,
    pub projection: Vec<usize>,
    pub limit: Option<usize>,
}

/// Generates one TPC-H table, `parts` partitions, only the projected columns.
#[derive(Debug, Clone)]
pub struct TpchScan {
    handle: TpchScanHandle,
    schema: SchemaRef,
}

impl TpchScan {
    /// The scan of a handle; its projection must index the table's columns.
    pub fn new(handle: TpchScanHandle) -> Result<Self, ConnectorError> {
        let invalid = |reason: String| ConnectorError::Codec {
            kind: crate::KIND,
            reason,
        };
        let full = handle.table.schema(handle.naming);
        if let Some(bad) = handle
            .projection
            .iter()
            .find(|&&i| i >= full.fields().len())
        {
            return Err(invalid(format!(
                "TPC-H {}: column index {bad} out of range",
                handle.table.name()
            )));
        }
        let schema = full
            .project(&handle.projection)
            .map_err(|e| invalid(e.to_string()))?;
        Ok(Self {
            handle,
            schema: Arc::new(schema),
        })
    }

    /// The scan node of `table` at `scale_factor` in `parts` splits; `projection` indexes the
    /// full table schema (`None` reads every column).
    pub fn exec(
        catalog: String,
        table: TpchTableKind,
        scale_factor: f64,
        naming: ColumnNaming,
        parts: usize,
        projection: Option<Vec<usize>>,
        limit: Option<usize>,
    ) -> Result<TpchScanExec> {
        let parts = parts.max(1);
        let projection =
            projection.unwrap_or_else(|| (0..table.schema(naming).fields().len()).collect());
        let scan = Self::new(TpchScanHandle {
            catalog,
            table,
            scale_factor,
            naming,
            parts,
            projection,
            limit,
        })?;
        // A split is the part number, 1-based as tpchgen counts.
        let splits = (1..=parts as i32)
            .map(|part| Split::encode(&part))
            .collect::<Result<_, _>>()?;
        Ok(ScanExec::new(scan, Splits::Inline(splits)))
    }

    fn generate(&self, part: i32, batch_size: usize) -> Box<dyn BatchIter> {
        let h = &self.handle;
        let (sf, count) = (h.scale_factor, h.parts as i32);
        let types: Vec<_> = h.table.columns().iter().map(|(_, t)| *t).collect();
        let (projection, schema, limit) = (h.projection.clone(), self.schema.clone(), h.limit);
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
        match h.table {
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

impl ScanSource for TpchScan {
    type Handle = TpchScanHandle;

    fn name(&self) -> &'static str {
        "TpchScanExec"
    }

    fn catalog(&self) -> &str {
        &self.handle.catalog
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn handle(&self) -> TpchScanHandle {
        self.handle.clone()
    }

    fn fmt_details(&self, splits: &Splits, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let splits = splits.len();
        write!(
            f,
            "table={}.{}, scale_factor={}, splits={splits}, columns=[{}]",
            self.handle.catalog,
            self.handle.table.name(),
            self.handle.scale_factor,
            column_list(&self.schema)
        )?;
        if let Some(limit) = self.handle.limit {
            write!(f, ", limit={limit}")?;
        }
        Ok(())
    }

    fn read(
        &self,
        split: &Split,
        context: Arc<TaskContext>,
        metrics: ScanMetrics,
    ) -> Result<SendableRecordBatchStream> {
        let part: i32 = split.decode()?;
        let batch_size = context.session_config().batch_size();
        let mut batches = self.generate(part, batch_size);
        let baseline = metrics.baseline();
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

    fn statistics(&self, partition: Option<usize>, splits: usize) -> Result<Statistics> {
        let h = &self.handle;
        let total = h.table.row_count(h.scale_factor);
        let rows = match partition {
            None => total,
            Some(_) => total.div_ceil(splits.max(1)),
        };
        let rows = h.limit.map_or(rows, |l| l.min(rows));
        let stats = h
            .table
            .statistics(h.scale_factor)
            .project(Some(&h.projection));
        if rows == total {
            return Ok(stats);
        }
        // A split or a limit: fewer rows, and no more distinct values than rows.
        let mut stats = stats.to_inexact();
        stats.num_rows = Precision::Inexact(rows);
        for column in &mut stats.column_statistics {
            column.distinct_count = column.distinct_count.map(|d| d.min(rows));
        }
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::common::ScalarValue;
    use datafusion::physical_plan::ExecutionPlan;
    use datafusion::prelude::SessionContext;
    use futures::TryStreamExt;

    async fn count_rows(
        table: TpchTableKind,
        parts: usize,
        projection: Option<Vec<usize>>,
    ) -> usize {
        let exec = TpchScan::exec(
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
        for p in 0..exec.splits().len() {
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

    /// The key statistics are what the generator really produces (checked at `tiny`): exact
    /// claims equal the data, estimated ones are within 10% and bound it.
    #[tokio::test]
    async fn key_statistics_match_the_generated_data() {
        use datafusion::arrow::array::{Array, Int64Array};
        use std::collections::HashSet;
        for table in TpchTableKind::ALL {
            let exec = TpchScan::exec(
                "tpch".into(),
                table,
                0.01,
                ColumnNaming::Standard,
                1,
                None,
                None,
            )
            .expect("valid scan");
            let batches: Vec<_> = exec
                .execute(0, SessionContext::new().task_ctx())
                .expect("execute")
                .try_collect()
                .await
                .expect("generate");
            let stats = table.statistics(0.01);
            for (i, field) in exec.schema().fields().iter().enumerate() {
                let claim = &stats.column_statistics[i];
                let Some(claimed) = claim.distinct_count.get_value().copied() else {
                    continue;
                };
                let values: HashSet<i64> = batches
                    .iter()
                    .flat_map(|b| {
                        let column = b.column(i).as_any().downcast_ref::<Int64Array>();
                        column.expect("a key is BIGINT").values().to_vec()
                    })
                    .collect();
                let (min, max) = (values.iter().min(), values.iter().max());
                let name = format!("{}.{}", table.name(), field.name());
                if claim.distinct_count.is_exact() == Some(true) {
                    assert_eq!(values.len(), claimed, "{name}");
                } else {
                    let (low, high) = (claimed * 9 / 10, claimed);
                    assert!(
                        (low..=high).contains(&values.len()),
                        "{name}: {} distinct, claimed {claimed}",
                        values.len()
                    );
                }
                if let (Some(low), Some(high)) =
                    (claim.min_value.get_value(), claim.max_value.get_value())
                {
                    assert!(low <= &ScalarValue::Int64(min.copied()), "{name}: min");
                    assert!(high >= &ScalarValue::Int64(max.copied()), "{name}: max");
                    if claim.max_value.is_exact() == Some(true) {
                        assert_eq!(high, &ScalarValue::Int64(max.copied()), "{name}: max");
                    }
                }
            }
        }
    }

    /// With the key statistics, a foreign-key join is estimated at the many side's rows.
    #[tokio::test]
    async fn a_foreign_key_join_is_estimated_at_the_many_side() {
        let ctx = SessionContext::new();
        ctx.register_catalog(
            "tpch",
            Arc::new(crate::TpchCatalog::new(
                "tpch".into(),
                crate::TpchConfig::default(),
            )),
        );
        let plan = ctx
            .sql("SELECT s_name, l_quantity FROM tpch.sf1.supplier JOIN tpch.sf1.lineitem ON s_suppkey = l_suppkey")
            .await
            .expect("plan")
            .create_physical_plan()
            .await
            .expect("physical plan");
        let rows = plan
            .partition_statistics(None)
            .expect("statistics")
            .num_rows;
        assert_eq!(rows, Precision::Inexact(6_000_000), "{rows:?}");
    }
}
