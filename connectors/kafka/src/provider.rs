//! DataFusion's view of a `kafka` catalog: [`KafkaCatalog`] → [`KafkaSchema`] →
//! [`KafkaTable`], whose `scan` fixes the offsets each split reads (narrowed by the filters on
//! `_partition_id`, `_partition_offset` and `_timestamp`) without reading a record.

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use braid_connector_spi::{
    ConnectorContext, ConnectorError, ListedCatalog, ScanEstimate, ScanExec, SchemaListing, Split,
};
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::error::Result;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::ExecutionPlan;

use crate::broker::Broker;
use crate::columns::InternalColumn;
use crate::description::DescribedTable;
use crate::exec::{ColumnRef, KafkaScan, KafkaScanHandle, column_field};
use crate::metadata::Metadata;
use crate::pushdown::RecordFilter;
use crate::split::{OffsetRange, cut};

/// What every level of the catalog shares.
#[derive(Debug)]
pub struct Shared {
    pub broker: Arc<Broker>,
    pub metadata: Metadata,
    pub context: ConnectorContext,
}

/// A `kafka` catalog; listings answer from [`Metadata`]'s memory.
pub type KafkaCatalog = ListedCatalog<Shared>;

impl SchemaListing for Shared {
    fn schema_names(&self) -> Vec<String> {
        self.metadata.schemas()
    }

    fn schema_provider(self: Arc<Self>, name: &str) -> Arc<dyn SchemaProvider> {
        Arc::new(KafkaSchema {
            shared: self,
            name: name.to_string(),
        })
    }
}

/// One schema of a `kafka` catalog.
#[derive(Debug)]
pub struct KafkaSchema {
    shared: Arc<Shared>,
    name: String,
}

#[async_trait]
impl SchemaProvider for KafkaSchema {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn table_names(&self) -> Vec<String> {
        self.shared.metadata.tables(&self.name)
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let Some(table) = self.shared.metadata.table(&self.name, name).await? else {
            return Ok(None);
        };
        Ok(Some(Arc::new(KafkaTable::new(self.shared.clone(), table)?)))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.table_names().iter().any(|t| t == name)
    }
}

/// One Kafka table: a topic read through its description.
#[derive(Debug)]
pub struct KafkaTable {
    shared: Arc<Shared>,
    table: Arc<DescribedTable>,
    /// The table's columns, in the order of its schema.
    columns: Vec<ColumnRef>,
    schema: SchemaRef,
}

impl KafkaTable {
    pub fn new(shared: Arc<Shared>, table: Arc<DescribedTable>) -> Result<Self, ConnectorError> {
        let description = &table.description;
        let hide = shared.broker.config().hide_internal_columns;
        let field_count = |group: &Option<crate::description::FieldGroup>| {
            group.as_ref().map_or(0, |g| g.fields.len())
        };
        let columns: Vec<ColumnRef> = (0..field_count(&description.key))
            .map(ColumnRef::Key)
            .chain((0..field_count(&description.message)).map(ColumnRef::Message))
            .chain(InternalColumn::ALL.map(ColumnRef::Internal))
            .collect();
        let fields: Vec<Field> = columns
            .iter()
            .map(|&column| column_field(&table, column, hide))
            .collect::<Result<_, ConnectorError>>()?;
        Ok(Self {
            shared,
            table,
            columns,
            schema: Arc::new(Schema::new(fields)),
        })
    }

    fn topic(&self) -> &str {
        &self.table.description.topic_name
    }

    fn name(&self) -> String {
        let description = &self.table.description;
        format!(
            "{}.{}.{}",
            self.shared.broker.catalog(),
            description.schema(),
            description.table_name
        )
    }

    /// The offsets the filters allow, per partition, as the brokers hold them now.
    async fn plan_ranges(&self, filter: &RecordFilter) -> Result<Vec<OffsetRange>> {
        let broker = &self.shared.broker;
        let Some(partitions) = broker.partitions(self.topic()).await? else {
            return Err(broker
                .error(format!(
                    "topic '{}' of table '{}' does not exist",
                    self.topic(),
                    self.name()
                ))
                .into());
        };
        let partitions: Vec<i32> = partitions
            .into_iter()
            .filter(|&p| filter.allows_partition(p))
            .collect();
        let watermarks = broker.watermarks(self.topic(), &partitions).await?;
        let mut ranges: Vec<OffsetRange> = watermarks
            .iter()
            .map(|w| OffsetRange {
                partition: w.partition,
                start: filter.offsets.low.map_or(w.start, |low| low.max(w.start)),
                end: filter.offsets.high.map_or(w.end, |high| high.min(w.end)),
            })
            .collect();
        let times = filter.timestamps;
        for (bound, is_start) in [(times.low, true), (times.high, false)] {
            let Some(millis) = bound else { continue };
            let asked: Vec<OffsetRange> =
                ranges.iter().filter(|r| r.start < r.end).copied().collect();
            if asked.is_empty() {
                break;
            }
            let positions = broker
                .timestamp_positions(self.topic(), &asked, millis)
                .await?;
            for range in &mut ranges {
                if let Some(&position) = positions.get(&range.partition) {
                    if is_start {
                        range.start = range.start.max(position);
                    } else {
                        range.end = range.end.min(position);
                    }
                }
            }
        }
        ranges.retain(|r| r.start < r.end);
        Ok(ranges)
    }
}

#[async_trait]
impl TableProvider for KafkaTable {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    /// Filters on `_partition_id`, `_partition_offset` and `_timestamp` narrow the offsets
    /// read; DataFusion still applies them to the records read.
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|filter| {
                if RecordFilter::narrows(filter) {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let columns: Vec<ColumnRef> = match projection {
            Some(indices) => indices.iter().map(|&i| self.columns[i]).collect(),
            None => self.columns.clone(),
        };
        let ranges = self.plan_ranges(&RecordFilter::of(filters)).await?;
        let per_split = self.shared.broker.config().messages_per_split;
        let offsets: i64 = ranges.iter().map(|r| r.end - r.start).sum();
        let splits = cut(&ranges, per_split)
            .iter()
            .map(Split::encode)
            .collect::<Result<Vec<_>, _>>()?;
        let handle = KafkaScanHandle {
            catalog: self.shared.broker.catalog().to_string(),
            table: self.table.as_ref().clone(),
            columns,
            limit,
            hide_internal_columns: self.shared.broker.config().hide_internal_columns,
            estimate: ScanEstimate::rows(usize::try_from(offsets).ok())
                .limited(limit, splits.len()),
        };
        let scan = KafkaScan::new(
            handle,
            self.shared.broker.catalog(),
            self.shared.broker.config().clone(),
        )?;
        Ok(Arc::new(ScanExec::new(
            scan,
            self.shared.context.plan_splits(splits)?,
        )))
    }

    async fn insert_into(
        &self,
        _state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        crate::sink::insert(
            self.shared.clone(),
            self.table.clone(),
            self.schema.clone(),
            self.columns.clone(),
            input,
            insert_op,
        )
    }
}
