//! Tables for the rules' tests: in memory, and knowing their row counts (a `MemTable` does
//! not).

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::Int64Array;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::Statistics;
use datafusion::common::stats::Precision;
use datafusion::datasource::{MemTable, TableType};
use datafusion::error::Result;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

/// A table of `rows` rows that reports its row count.
#[derive(Debug)]
pub struct Counted(MemTable, usize);

impl Counted {
    /// Rows `0..rows` of one column `k`, in `partitions` partitions.
    pub fn new(rows: usize, partitions: usize) -> Self {
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]));
        let per = rows.div_ceil(partitions.max(1));
        let partitions = (0..partitions.max(1))
            .map(|p| {
                let range = (p * per).min(rows)..((p + 1) * per).min(rows);
                let values = Int64Array::from_iter_values(range.map(|v| v as i64));
                let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(values)]);
                vec![batch.expect("batch")]
            })
            .collect();
        Self(MemTable::try_new(schema, partitions).expect("table"), rows)
    }
}

#[async_trait]
impl TableProvider for Counted {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn schema(&self) -> SchemaRef {
        self.0.schema()
    }
    fn table_type(&self) -> TableType {
        TableType::Base
    }
    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.0.scan(state, projection, filters, limit).await
    }
    fn statistics(&self) -> Option<Statistics> {
        let mut statistics = Statistics::new_unknown(&self.schema());
        statistics.num_rows = Precision::Exact(self.1);
        Some(statistics)
    }
}
