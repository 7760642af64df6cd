//! `numbers`: a connector written outside Braid's own crates, to show (and test) what a new
//! connector takes: this file, and its factory added where the daemons are started (the test
//! binaries `braid-test-scheduler` and `braid-test-executor`). Nothing in the scheduler, the
//! executor or the CLI names it.
//!
//! ```toml
//! connector = "numbers"
//! rows = 1000              # table default.numbers: one bigint column n = 0, 1, ..., rows - 1
//! splits = 4
//! split_padding_bytes = 0  # bytes of padding per split, to make split lists large
//! ```
//!
//! It ships a scan (the SPI's `ScanExec` over [`NumbersScan`], splits planned through the
//! coordinator's split store) and a rule ([`NumbersCount`]: `count(*)` of the whole table is
//! answered from the catalog file, without a scan).

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use arrow::array::Int64Array;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use async_trait::async_trait;
use braid_connector_spi::{
    Capabilities, CatalogOptions, Connector, ConnectorContext, ConnectorError, ConnectorFactory,
    LogicalRule, ScanCodec, ScanExec, ScanExecCodec, ScanMetrics, ScanSource, Split, Splits,
};
use datafusion::catalog::{
    CatalogProvider, MemoryCatalogProvider, MemorySchemaProvider, SchemaProvider, Session,
    TableProvider,
};
use datafusion::common::tree_node::Transformed;
use datafusion::datasource::{TableType, source_as_provider};
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{
    EmptyRelation, Expr, LogicalPlan, Projection, expr::AggregateFunction,
};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::lit;
use serde::{Deserialize, Serialize};

/// The connector kind.
pub const KIND: &str = "numbers";

/// Options of a `numbers` catalog file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumbersConfig {
    #[serde(default = "default_rows")]
    pub rows: u64,
    #[serde(default = "default_splits")]
    pub splits: u64,
    #[serde(default)]
    pub split_padding_bytes: usize,
}

fn default_rows() -> u64 {
    1000
}
fn default_splits() -> u64 {
    4
}

/// Makes `numbers` catalogs.
#[derive(Debug, Default)]
pub struct NumbersFactory;

impl ConnectorFactory for NumbersFactory {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn create(
        &self,
        catalog: &str,
        options: CatalogOptions,
        context: &ConnectorContext,
    ) -> Result<Arc<dyn Connector>, ConnectorError> {
        let config: NumbersConfig = options.parse()?;
        let table = Arc::new(NumbersTable {
            catalog: catalog.to_string(),
            config,
            context: context.clone(),
        });
        let schema = MemorySchemaProvider::new();
        schema
            .register_table("numbers".into(), table)
            .map_err(|e| ConnectorError::Config {
                message: e.to_string(),
            })?;
        let provider = MemoryCatalogProvider::new();
        provider
            .register_schema("default", Arc::new(schema))
            .map_err(|e| ConnectorError::Config {
                message: e.to_string(),
            })?;
        Ok(Arc::new(NumbersConnector {
            catalog: catalog.to_string(),
            provider: Arc::new(provider),
        }))
    }
}

#[derive(Debug)]
struct NumbersConnector {
    catalog: String,
    provider: Arc<MemoryCatalogProvider>,
}

impl Connector for NumbersConnector {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn catalog_provider(&self) -> Arc<dyn CatalogProvider> {
        self.provider.clone()
    }

    fn scan_codec(&self) -> Arc<dyn ScanCodec> {
        Arc::new(ScanExecCodec::new(
            self.catalog.clone(),
            |scan: NumbersScan| Ok(scan),
        ))
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            parallel_splits: true,
            ..Capabilities::default()
        }
    }

    fn logical_rules(&self) -> Vec<LogicalRule> {
        vec![Arc::new(NumbersCount)]
    }
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]))
}

/// The table `default.numbers`.
#[derive(Debug)]
struct NumbersTable {
    catalog: String,
    config: NumbersConfig,
    context: ConnectorContext,
}

/// One split: the numbers `start..end`, padded to make split lists large.
#[derive(Serialize, Deserialize)]
struct NumbersSplit {
    start: u64,
    end: u64,
    padding: String,
}

#[async_trait]
impl TableProvider for NumbersTable {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> SchemaRef {
        schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let (rows, splits) = (self.config.rows, self.config.splits.max(1));
        let per_split = rows.div_ceil(splits);
        let splits = (0..splits)
            .map(|i| {
                Split::encode(&NumbersSplit {
                    start: (i * per_split).min(rows),
                    end: ((i + 1) * per_split).min(rows),
                    padding: "x".repeat(self.config.split_padding_bytes),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let splits = self.context.plan_splits(splits)?;
        Ok(Arc::new(ScanExec::new(
            NumbersScan {
                catalog: self.catalog.clone(),
                with_n: projection.is_none_or(|p| !p.is_empty()),
            },
            splits,
        )))
    }
}

/// The scan's source: the catalog's name and whether `n` is read (a `count(*)` reads no
/// column); the numbers are in the splits.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NumbersScan {
    catalog: String,
    with_n: bool,
}

impl ScanSource for NumbersScan {
    type Handle = NumbersScan;

    fn name(&self) -> &'static str {
        "NumbersScanExec"
    }

    fn catalog(&self) -> &str {
        &self.catalog
    }

    fn schema(&self) -> SchemaRef {
        if self.with_n {
            schema()
        } else {
            Arc::new(Schema::empty())
        }
    }

    fn handle(&self) -> NumbersScan {
        self.clone()
    }

    fn fmt_details(&self, splits: &Splits, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let splits = splits.len();
        write!(f, "table={}.default.numbers, splits={splits}", self.catalog)
    }

    fn read(
        &self,
        split: &Split,
        _context: Arc<TaskContext>,
        metrics: ScanMetrics,
    ) -> Result<SendableRecordBatchStream> {
        let split: NumbersSplit = split.decode()?;
        let values: Vec<i64> = (split.start as i64..split.end as i64).collect();
        let rows = values.len();
        let columns = if self.with_n {
            vec![Arc::new(Int64Array::from(values)) as _]
        } else {
            vec![]
        };
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        let batch = RecordBatch::try_new_with_options(self.schema(), columns, &options)?;
        metrics.baseline().record_output(rows);
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema(),
            futures::stream::iter([Ok(batch)]),
        )))
    }
}

/// `SELECT count(*) FROM numbers` over the whole table is the catalog file's `rows`: no scan.
#[derive(Debug, Default)]
pub struct NumbersCount;

impl OptimizerRule for NumbersCount {
    fn name(&self) -> &str {
        "numbers_count_from_the_catalog"
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Aggregate(aggregate) = &plan else {
            return Ok(Transformed::no(plan));
        };
        let LogicalPlan::TableScan(scan) = aggregate.input.as_ref() else {
            return Ok(Transformed::no(plan));
        };
        let counts_rows = |e: &Expr| {
            let e = match e {
                Expr::Alias(alias) => alias.expr.as_ref(),
                other => other,
            };
            matches!(e, Expr::AggregateFunction(AggregateFunction { func, params })
                if func.name() == "count"
                    && params.filter.is_none()
                    && !params.distinct
                    && params.args.iter().all(|a| matches!(a, Expr::Literal(v, _) if !v.is_null())))
        };
        let rows = source_as_provider(&scan.source).ok().and_then(|p| {
            p.as_any()
                .downcast_ref::<NumbersTable>()
                .map(|t| t.config.rows)
        });
        let (Some(rows), [count]) = (rows, aggregate.aggr_expr.as_slice()) else {
            return Ok(Transformed::no(plan));
        };
        if !aggregate.group_expr.is_empty()
            || !scan.filters.is_empty()
            || scan.fetch.is_some()
            || !counts_rows(count)
        {
            return Ok(Transformed::no(plan));
        }
        let (qualifier, field) = aggregate.schema.qualified_field(0);
        let value = lit(rows as i64).alias_qualified(qualifier.cloned(), field.name());
        let one_row = LogicalPlan::EmptyRelation(EmptyRelation {
            produce_one_row: true,
            schema: Arc::new(datafusion::common::DFSchema::empty()),
        });
        Ok(Transformed::yes(LogicalPlan::Projection(
            Projection::try_new(vec![value], Arc::new(one_row))?,
        )))
    }
}
