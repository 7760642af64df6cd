//! [`MemoryScanExec`]: the SPI's scan node over a [`MemoryScan`]; partition *i* fetches its
//! batches of a memory table from the coordinator's internal port over Arrow Flight, with a
//! [`FetchTicket`] for the catalog's [`MemoryFetch`] service.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use braid_connector_spi::{
    ConnectorError, InternalService, InternalTicket, ScanEstimate, ScanExec, ScanMetrics,
    ScanSource, Split, Splits, internal_do_get,
};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::metadata::MemoryStore;
use crate::split::batches_of_split;

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
    /// The ticket for the coordinator's internal port.
    pub fn to_internal_ticket(&self) -> Result<InternalTicket> {
        let request =
            serde_json::to_vec(self).map_err(|e| DataFusionError::External(Box::new(e)))?;
        Ok(InternalTicket::Service {
            catalog: self.catalog.clone(),
            request,
        })
    }

    fn decode(request: &[u8]) -> Result<Self> {
        serde_json::from_slice(request).map_err(|e| {
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

/// The coordinator's side of a memory catalog's scans: serves [`FetchTicket`]s from the store.
#[derive(Debug)]
pub struct MemoryFetch {
    store: Arc<MemoryStore>,
}

impl MemoryFetch {
    pub fn new(store: Arc<MemoryStore>) -> Self {
        Self { store }
    }
}

#[async_trait]
impl InternalService for MemoryFetch {
    async fn fetch(&self, request: &[u8]) -> Result<SendableRecordBatchStream> {
        let ticket = FetchTicket::decode(request)?;
        let (schema, batches) = ticket.read(&self.store)?;
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            schema,
            futures::stream::iter(batches.into_iter().map(Ok)),
        )))
    }
}

/// The scan node of a memory table.
pub type MemoryScanExec = ScanExec<MemoryScan>;

/// A memory-table scan as it travels: the table, its snapshot, the projection and where to
/// fetch the rows. The rows stay on the coordinator until a task fetches them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryScanHandle {
    pub catalog: String,
    pub schema: String,
    pub table: String,
    /// Changes when a table of the same name is created anew.
    pub table_id: String,
    /// The table's Arrow schema as an IPC message.
    pub columns: Vec<u8>,
    pub projection: Vec<usize>,
    /// The snapshot: the scan reads only the first `batch_count` batches.
    pub batch_count: usize,
    pub parts: usize,
    /// The coordinator's internal port, `http://host:port`.
    pub endpoint: String,
    /// The snapshot's rows.
    #[serde(default)]
    pub estimate: ScanEstimate,
}

/// Reads a memory table from the coordinator, `parts` partitions.
#[derive(Debug, Clone)]
pub struct MemoryScan {
    handle: MemoryScanHandle,
    schema: SchemaRef,
}

impl MemoryScan {
    pub fn new(handle: MemoryScanHandle) -> Result<Self, ConnectorError> {
        let columns = crate::codec::schema_from_ipc(&handle.columns)?;
        let schema = columns
            .project(&handle.projection)
            .map_err(|e| ConnectorError::Codec {
                kind: crate::KIND,
                reason: e.to_string(),
            })?;
        Ok(Self {
            handle,
            schema: Arc::new(schema),
        })
    }

    /// The scan node of `table` (columns `table_schema`, a snapshot of `(batches, rows)`) in
    /// `parts` splits; `projection` indexes the table's columns (`None`: all).
    #[allow(clippy::too_many_arguments)]
    pub fn exec(
        catalog: String,
        schema: String,
        table: String,
        table_id: String,
        table_schema: &SchemaRef,
        projection: Option<Vec<usize>>,
        (batch_count, rows): (usize, usize),
        parts: usize,
        endpoint: String,
    ) -> Result<MemoryScanExec> {
        let parts = parts.max(1);
        let projection = projection.unwrap_or_else(|| (0..table_schema.fields().len()).collect());
        let scan = Self::new(MemoryScanHandle {
            catalog,
            schema,
            table,
            table_id,
            columns: crate::codec::schema_to_ipc(table_schema)?,
            projection,
            batch_count,
            parts,
            endpoint,
            estimate: ScanEstimate {
                rows: Some(rows),
                bytes: None,
                exact: true,
            },
        })?;
        let splits = (0..parts)
            .map(|part| Split::encode(&part))
            .collect::<Result<_, _>>()?;
        Ok(ScanExec::new(scan, Splits::Inline(splits)))
    }

    fn ticket(&self, part: usize) -> FetchTicket {
        let h = &self.handle;
        FetchTicket {
            catalog: h.catalog.clone(),
            schema: h.schema.clone(),
            table: h.table.clone(),
            table_id: h.table_id.clone(),
            batch_count: h.batch_count,
            part,
            parts: h.parts,
            projection: h.projection.clone(),
        }
    }
}

impl ScanSource for MemoryScan {
    type Handle = MemoryScanHandle;

    fn name(&self) -> &'static str {
        "MemoryScanExec"
    }

    fn catalog(&self) -> &str {
        &self.handle.catalog
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn handle(&self) -> MemoryScanHandle {
        self.handle.clone()
    }

    fn estimate(&self) -> ScanEstimate {
        self.handle.estimate
    }

    fn fmt_details(&self, splits: &Splits, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let splits = splits.len();
        let columns: Vec<_> = self
            .schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        let h = &self.handle;
        write!(
            f,
            "table={}.{}.{}, splits={splits}, batches={}, columns=[{}]",
            h.catalog,
            h.schema,
            h.table,
            h.batch_count,
            columns.join(", ")
        )
    }

    fn read(
        &self,
        split: &Split,
        _context: Arc<TaskContext>,
        metrics: ScanMetrics,
    ) -> Result<SendableRecordBatchStream> {
        let ticket = self.ticket(split.decode()?).to_internal_ticket()?;
        let schema = self.schema.clone();
        let baseline = metrics.baseline();
        let endpoint = self.handle.endpoint.clone();
        let fetch = async move { internal_do_get(&endpoint, &ticket).await };
        let stream = futures::stream::once(fetch)
            .try_flatten()
            .map(move |batch| {
                // Flight may hand back a schema with other metadata; rows keep the scan's schema.
                let batch = batch?;
                baseline.record_output(batch.num_rows());
                let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
                RecordBatch::try_new_with_options(
                    schema.clone(),
                    batch.columns().to_vec(),
                    &options,
                )
                .map_err(Into::into)
            });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            stream,
        )))
    }
}
