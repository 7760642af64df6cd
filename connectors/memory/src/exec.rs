//! [`MemoryScanExec`]: partition *i* fetches its batches of a memory table from the
//! coordinator over Arrow Flight, with a [`FetchTicket`].

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use arrow_flight::{FlightClient, Ticket};
use braid_connector_spi::ConnectorError;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::common::internal_err;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use prost::Message;
use serde::{Deserialize, Serialize};

use crate::metadata::MemoryStore;
use crate::split::batches_of_split;

/// The `type_url` of the `Any` message that wraps a [`FetchTicket`] in a Flight ticket.
pub const FETCH_TYPE_URL: &str = "type.braid/braid.memory.FetchTicket";

/// What one scan partition asks the coordinator for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FetchTicket {
    pub catalog: String,
    pub schema: String,
    pub table: String,
    pub table_id: String,
    /// The snapshot: the scan reads only the first `batch_count` batches.
    pub batch_count: usize,
    pub part: usize,
    pub parts: usize,
    pub projection: Vec<usize>,
}

impl FetchTicket {
    /// The Flight ticket bytes: an `Any` with [`FETCH_TYPE_URL`] and this ticket as JSON.
    pub fn to_flight_ticket(&self) -> Result<Ticket> {
        let value = serde_json::to_vec(self).map_err(|e| DataFusionError::External(Box::new(e)))?;
        let any = arrow_flight::sql::Any {
            type_url: FETCH_TYPE_URL.to_string(),
            value: value.into(),
        };
        Ok(Ticket::new(any.encode_to_vec()))
    }

    /// The ticket inside an `Any` whose `type_url` is [`FETCH_TYPE_URL`].
    pub fn from_any_value(value: &[u8]) -> Result<Self> {
        serde_json::from_slice(value).map_err(|e| {
            ConnectorError::Codec {
                kind: crate::KIND,
                reason: format!("bad fetch ticket: {e}"),
            }
            .into()
        })
    }

    /// The batches this ticket names, projected (served by the coordinator).
    pub fn read(&self, store: &MemoryStore) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let data = store.table_by_id(&self.schema, &self.table, &self.table_id)?;
        let schema = Arc::new(data.schema.project(&self.projection)?);
        let batches = data
            .batches_at(batches_of_split(self.batch_count, self.part, self.parts))
            .iter()
            .map(|b| b.project(&self.projection))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((schema, batches))
    }
}

/// Reads a memory table from the coordinator, `parts` partitions.
#[derive(Debug, Clone)]
pub struct MemoryScanExec {
    catalog: String,
    schema_name: String,
    table: String,
    table_id: String,
    table_schema: SchemaRef,
    projection: Vec<usize>,
    batch_count: usize,
    parts: usize,
    endpoint: String,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl MemoryScanExec {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        catalog: String,
        schema_name: String,
        table: String,
        table_id: String,
        table_schema: SchemaRef,
        projection: Option<Vec<usize>>,
        batch_count: usize,
        parts: usize,
        endpoint: String,
    ) -> Result<Self> {
        let projection = projection.unwrap_or_else(|| (0..table_schema.fields().len()).collect());
        let schema = Arc::new(table_schema.project(&projection)?);
        let parts = parts.max(1);
        let properties = braid_connector_spi::scan_properties(schema.clone(), parts);
        Ok(Self {
            catalog,
            schema_name,
            table,
            table_id,
            table_schema,
            projection,
            batch_count,
            parts,
            endpoint,
            schema,
            properties,
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }

    pub fn catalog(&self) -> &str {
        &self.catalog
    }
    pub fn schema_name(&self) -> &str {
        &self.schema_name
    }
    pub fn table(&self) -> &str {
        &self.table
    }
    pub fn table_id(&self) -> &str {
        &self.table_id
    }
    pub fn table_schema(&self) -> &SchemaRef {
        &self.table_schema
    }
    pub fn projection(&self) -> &[usize] {
        &self.projection
    }
    pub fn batch_count(&self) -> usize {
        self.batch_count
    }
    pub fn parts(&self) -> usize {
        self.parts
    }
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn ticket(&self, part: usize) -> FetchTicket {
        FetchTicket {
            catalog: self.catalog.clone(),
            schema: self.schema_name.clone(),
            table: self.table.clone(),
            table_id: self.table_id.clone(),
            batch_count: self.batch_count,
            part,
            parts: self.parts,
            projection: self.projection.clone(),
        }
    }
}

async fn fetch(
    endpoint: String,
    catalog: String,
    ticket: Ticket,
) -> Result<BoxStream<'static, Result<RecordBatch>>> {
    let source_error = move |message: String| -> DataFusionError {
        ConnectorError::Source {
            catalog: catalog.clone(),
            message,
        }
        .into()
    };
    let channel = tonic::transport::Endpoint::from_shared(endpoint.clone())
        .map_err(|e| source_error(format!("bad coordinator address '{endpoint}': {e}")))?
        .connect()
        .await
        .map_err(|e| source_error(format!("cannot reach the coordinator at {endpoint}: {e}")))?;
    let stream = FlightClient::new(channel)
        .do_get(ticket)
        .await
        .map_err(|e| source_error(format!("fetching rows from {endpoint}: {e}")))?;
    Ok(stream
        .map_err(move |e| source_error(format!("reading rows: {e}")))
        .boxed())
}

impl DisplayAs for MemoryScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let columns: Vec<_> = self
            .schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        write!(
            f,
            "MemoryScanExec: table={}.{}.{}, splits={}, batches={}, columns=[{}]",
            self.catalog,
            self.schema_name,
            self.table,
            self.parts,
            self.batch_count,
            columns.join(", ")
        )
    }
}

impl ExecutionPlan for MemoryScanExec {
    fn name(&self) -> &str {
        "MemoryScanExec"
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
            return internal_err!("MemoryScanExec has no children");
        }
        // A fresh copy with its own metrics: Ballista rebuilds a stage's plan per task, and
        // shared metrics would count one task's rows in another's.
        Ok(Arc::new(Self {
            metrics: ExecutionPlanMetricsSet::new(),
            ..self.as_ref().clone()
        }))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition >= self.parts {
            return internal_err!("MemoryScanExec: partition {partition} of {}", self.parts);
        }
        let ticket = self.ticket(partition).to_flight_ticket()?;
        let schema = self.schema.clone();
        let baseline = BaselineMetrics::new(&self.metrics, partition);
        let fut = fetch(self.endpoint.clone(), self.catalog.clone(), ticket);
        let stream = futures::stream::once(fut).try_flatten().map(move |batch| {
            // Flight may hand back a schema with other metadata; rows keep the scan's schema.
            let batch = batch?;
            baseline.record_output(batch.num_rows());
            let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
            RecordBatch::try_new_with_options(schema.clone(), batch.columns().to_vec(), &options)
                .map_err(Into::into)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            stream,
        )))
    }
}
