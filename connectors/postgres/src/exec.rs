//! [`PostgresScanExec`]: the SPI's scan node over a [`PostgresScan`]; partition *i* runs split
//! *i*'s SQL in PostgreSQL on its own pooled connection and reads the rows with binary `COPY
//! (SELECT ...) TO STDOUT`, decoding them straight into Arrow arrays. The `rows_transferred`
//! metric counts the rows PostgreSQL sent.

use std::fmt;
use std::sync::Arc;

use braid_connector_spi::{
    ConnectorError, ScanEstimate, ScanExec, ScanMetrics, ScanSource, Split, Splits,
};
use bytes::{Buf, BytesMut};
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::common::Statistics;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::metrics::{BaselineMetrics, Count};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::{Stream, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::metadata::{ColumnEstimate, with_column_estimates};
use crate::pool::{Pool, PooledClient, describe};
use crate::types::{ColumnBuilder, PgKind};

/// The signature that starts a binary COPY stream.
const COPY_SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// The scan node of a PostgreSQL table or pushed-down query.
pub type PostgresScanExec = ScanExec<PostgresScan>;

/// A PostgreSQL scan as it travels: the catalog, what is read (for EXPLAIN) and the columns
/// with their decoding. The SQL of each split is in the splits; the connection is the worker's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostgresScanHandle {
    pub catalog: String,
    /// What is read, for EXPLAIN: `schema.table`, or `pushed-down query`.
    pub relation: String,
    /// Name, decoding and nullability of each column.
    pub columns: Vec<(String, PgKind, bool)>,
    /// The rows the scan returns by PostgreSQL's statistics, when known: the planner's
    /// estimate for join order and broadcast joins.
    #[serde(default)]
    pub row_estimate: Option<usize>,
    /// `pg_stats` of each column, where known (empty: none known).
    #[serde(default)]
    pub column_estimates: Vec<Option<ColumnEstimate>>,
}

/// Reads PostgreSQL queries, one split (one SELECT) per partition.
#[derive(Debug, Clone)]
pub struct PostgresScan {
    handle: PostgresScanHandle,
    schema: SchemaRef,
    pool: Arc<Pool>,
}

impl PostgresScan {
    /// The scan of `handle` on this process's connections of its catalog.
    pub fn new(handle: PostgresScanHandle, pool: Arc<Pool>) -> Result<Self, ConnectorError> {
        if handle.catalog != pool.catalog() {
            return Err(ConnectorError::Codec {
                kind: crate::KIND,
                reason: format!(
                    "a scan of catalog '{}' reached the codec of catalog '{}'",
                    handle.catalog,
                    pool.catalog()
                ),
            });
        }
        let schema = Arc::new(Schema::new(
            handle
                .columns
                .iter()
                .map(|(name, kind, nullable)| kind.field(name, *nullable))
                .collect::<Vec<_>>(),
        ));
        Ok(Self {
            handle,
            schema,
            pool,
        })
    }

    /// The scan node reading `queries`, one per split, with these columns; `row_estimate` is
    /// how many rows they return together, `column_estimates` what `pg_stats` says of each
    /// column, if known.
    pub fn exec(
        relation: String,
        queries: Vec<String>,
        columns: Vec<(String, PgKind, bool)>,
        row_estimate: Option<usize>,
        column_estimates: Vec<Option<ColumnEstimate>>,
        pool: Arc<Pool>,
    ) -> Result<PostgresScanExec> {
        let handle = PostgresScanHandle {
            catalog: pool.catalog().to_string(),
            relation,
            columns,
            row_estimate,
            column_estimates,
        };
        let splits = queries
            .iter()
            .map(Split::encode)
            .collect::<Result<_, _>>()?;
        Ok(ScanExec::new(
            Self::new(handle, pool)?,
            Splits::Inline(splits),
        ))
    }
}

impl ScanSource for PostgresScan {
    type Handle = PostgresScanHandle;

    fn name(&self) -> &'static str {
        "PostgresScanExec"
    }

    fn catalog(&self) -> &str {
        &self.handle.catalog
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn handle(&self) -> PostgresScanHandle {
        self.handle.clone()
    }

    fn fmt_details(&self, splits: &Splits, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "catalog={}, relation={}, splits={}, sql=[",
            self.handle.catalog,
            self.handle.relation,
            splits.len()
        )?;
        if let Splits::Inline(splits) = splits {
            let queries: Vec<String> = splits
                .iter()
                .map(|s| s.decode::<String>().unwrap_or_else(|e| e.to_string()))
                .collect();
            write!(f, "{}", queries.join("; "))?;
        }
        write!(f, "]")
    }

    fn estimate(&self) -> ScanEstimate {
        ScanEstimate {
            rows: self.handle.row_estimate,
            ..ScanEstimate::default()
        }
    }

    fn statistics(&self, partition: Option<usize>, splits: usize) -> Result<Statistics> {
        Ok(with_column_estimates(
            self.estimate().statistics(&self.schema, partition, splits),
            self.handle.column_estimates.iter().copied(),
        ))
    }

    fn read(
        &self,
        split: &Split,
        context: Arc<TaskContext>,
        metrics: ScanMetrics,
    ) -> Result<SendableRecordBatchStream> {
        let reader = CopyReader {
            pool: self.pool.clone(),
            sql: split.decode()?,
            kinds: self
                .handle
                .columns
                .iter()
                .map(|(_, k, _)| k.clone())
                .collect(),
            schema: self.schema.clone(),
            batch_size: context.session_config().batch_size(),
            baseline: metrics.baseline(),
            transferred: metrics.counter("rows_transferred"),
        };
        let stream = futures::stream::once(reader.open()).try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            stream,
        )))
    }
}

struct CopyReader {
    pool: Arc<Pool>,
    sql: String,
    kinds: Vec<PgKind>,
    schema: SchemaRef,
    batch_size: usize,
    baseline: BaselineMetrics,
    transferred: Count,
}

/// Where a COPY stream is.
struct CopyState {
    reader: CopyReader,
    /// Keeps the connection out of the pool until the COPY ends; a COPY abandoned before its
    /// end is cancelled and its connection closed ([`PooledClient::set_running`]).
    client: PooledClient,
    input: std::pin::Pin<Box<tokio_postgres::CopyOutStream>>,
    buffer: BytesMut,
    header_read: bool,
    finished: bool,
    builders: Vec<ColumnBuilder>,
    rows: usize,
}

impl CopyReader {
    fn error(&self, what: &str, message: String) -> DataFusionError {
        self.pool
            .error(format!(
                "{what} PostgreSQL at {}: {message}",
                self.pool.config().address()
            ))
            .into()
    }

    async fn open(self) -> Result<impl Stream<Item = Result<RecordBatch>>> {
        let mut client = self.pool.get().await?;
        client.set_running(true);
        let copy = format!("COPY ({}) TO STDOUT (FORMAT binary)", self.sql);
        let input = client
            .copy_out(copy.as_str())
            .await
            .map_err(|e| self.error("query failed in", describe(&e)))?;
        let builders = self.kinds.iter().map(ColumnBuilder::new).collect();
        let state = CopyState {
            reader: self,
            client,
            input: Box::pin(input),
            buffer: BytesMut::new(),
            header_read: false,
            finished: false,
            builders,
            rows: 0,
        };
        Ok(futures::stream::try_unfold(state, |mut state| async move {
            match state.next_batch().await? {
                Some(batch) => Ok(Some((batch, state))),
                None => Ok(None),
            }
        }))
    }
}

impl CopyState {
    /// The next batch of up to `batch_size` rows, or `None` at the end.
    async fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        loop {
            self.decode_available()?;
            if self.rows >= self.reader.batch_size || (self.finished && self.rows > 0) {
                return self.flush().map(Some);
            }
            if self.finished {
                return Ok(None);
            }
            match self.input.next().await {
                Some(Ok(chunk)) => self.buffer.extend_from_slice(&chunk),
                Some(Err(e)) => {
                    return Err(self.reader.error("reading from", describe(&e)));
                }
                None => {
                    if !self.finished {
                        return Err(self
                            .reader
                            .error("reading from", "the COPY stream ended early".into()));
                    }
                }
            }
        }
    }

    /// Decodes every complete row in the buffer (up to a batch).
    fn decode_available(&mut self) -> Result<()> {
        if !self.header_read {
            if self.buffer.len() < COPY_SIGNATURE.len() + 8 {
                return Ok(());
            }
            if &self.buffer[..COPY_SIGNATURE.len()] != COPY_SIGNATURE {
                return Err(self
                    .reader
                    .error("unexpected data from", "not a binary COPY".into()));
            }
            let extension = u32::from_be_bytes(
                self.buffer[COPY_SIGNATURE.len() + 4..COPY_SIGNATURE.len() + 8]
                    .try_into()
                    .unwrap_or_default(),
            ) as usize;
            let header = COPY_SIGNATURE.len() + 8 + extension;
            if self.buffer.len() < header {
                return Ok(());
            }
            self.buffer.advance(header);
            self.header_read = true;
        }
        while !self.finished && self.rows < self.reader.batch_size {
            let Some(length) = row_length(&self.buffer) else {
                return Ok(());
            };
            let row = self.buffer.split_to(length);
            let fields = i16::from_be_bytes([row[0], row[1]]);
            if fields < 0 {
                self.finished = true;
                self.client.set_running(false);
                return Ok(());
            }
            if fields as usize != self.builders.len() {
                return Err(self.reader.error(
                    "unexpected data from",
                    format!("{fields} columns, expected {}", self.builders.len()),
                ));
            }
            let mut at = 2;
            for (index, builder) in self.builders.iter_mut().enumerate() {
                let len = i32::from_be_bytes([row[at], row[at + 1], row[at + 2], row[at + 3]]);
                at += 4;
                let value = if len < 0 {
                    None
                } else {
                    let value = &row[at..at + len as usize];
                    at += len as usize;
                    Some(value)
                };
                builder.append(value).map_err(|e| {
                    self.reader.error(
                        "cannot read a value from",
                        format!("column '{}': {e}", self.reader.schema.field(index).name()),
                    )
                })?;
            }
            self.rows += 1;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<RecordBatch> {
        let columns = self
            .builders
            .iter_mut()
            .map(ColumnBuilder::finish)
            .collect();
        let options = RecordBatchOptions::new().with_row_count(Some(self.rows));
        let batch =
            RecordBatch::try_new_with_options(self.reader.schema.clone(), columns, &options)?;
        self.reader.transferred.add(self.rows);
        self.reader.baseline.record_output(self.rows);
        self.rows = 0;
        Ok(batch)
    }
}

/// The byte length of the complete row (or end marker) at the start of `buffer`, if all of
/// it has arrived.
fn row_length(buffer: &[u8]) -> Option<usize> {
    let fields = i16::from_be_bytes(buffer.get(0..2)?.try_into().ok()?);
    if fields < 0 {
        return Some(2);
    }
    let mut at = 2;
    for _ in 0..fields {
        let len = i32::from_be_bytes(buffer.get(at..at + 4)?.try_into().ok()?);
        at += 4;
        if len > 0 {
            at += len as usize;
        }
    }
    (buffer.len() >= at).then_some(at)
}
