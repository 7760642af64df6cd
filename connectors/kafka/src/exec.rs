//! [`KafkaScanExec`]: the SPI's scan node over a [`KafkaScan`]. Partition *i* reads split *i*
//! (one topic partition's offsets [start, end)) with its own consumer, assigned to the
//! partition directly (no consumer group, nothing committed), and decodes each record into
//! Arrow columns (`reader.rs`). The `messages_read` metric counts the records fetched.

use std::fmt;
use std::sync::Arc;

use braid_connector_spi::{
    ConnectorError, ScanEstimate, ScanExec, ScanMetrics, ScanSource, Split, Splits, column_list,
    hidden_field,
};
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use serde::{Deserialize, Serialize};

use crate::columns::InternalColumn;
use crate::config::KafkaConfig;
use crate::description::DescribedTable;
use crate::reader::SplitReader;
use crate::split::{KafkaSplit, ranges};

/// The scan node of a Kafka table.
pub type KafkaScanExec = ScanExec<KafkaScan>;

/// A column of a Kafka table: a field of the key or the message (by its index in the
/// description), or an internal column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ColumnRef {
    Key(usize),
    Message(usize),
    Internal(InternalColumn),
}

/// A Kafka scan as it travels: the table as the coordinator described it, the columns read
/// and the limit; the offsets are in the splits, the brokers' address and credentials are the
/// worker's own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KafkaScanHandle {
    pub catalog: String,
    pub table: DescribedTable,
    pub columns: Vec<ColumnRef>,
    /// Each split stops after this many records.
    pub limit: Option<usize>,
    /// The coordinator's `hide_internal_columns`: the scan's columns are the table's.
    pub hide_internal_columns: bool,
    /// The offsets planned: an upper bound of the records (compaction and transaction
    /// markers leave gaps).
    #[serde(default)]
    pub estimate: ScanEstimate,
}

/// Reads a Kafka table, one split per partition of the scan.
#[derive(Debug, Clone)]
pub struct KafkaScan {
    handle: KafkaScanHandle,
    schema: SchemaRef,
    config: Arc<KafkaConfig>,
}

impl KafkaScan {
    /// The scan of `handle` with this process's settings of its catalog.
    pub fn new(
        handle: KafkaScanHandle,
        catalog: &str,
        config: Arc<KafkaConfig>,
    ) -> Result<Self, ConnectorError> {
        if handle.catalog != catalog {
            return Err(ConnectorError::Codec {
                kind: crate::KIND,
                reason: format!(
                    "a scan of catalog '{}' reached the codec of catalog '{catalog}'",
                    handle.catalog
                ),
            });
        }
        let fields: Vec<Field> = handle
            .columns
            .iter()
            .map(|column| column_field(&handle.table, *column, handle.hide_internal_columns))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            schema: Arc::new(Schema::new(fields)),
            handle,
            config,
        })
    }

    pub fn handle_ref(&self) -> &KafkaScanHandle {
        &self.handle
    }
}

/// The Arrow field of `column` of `table`, marked hidden (Trino's hidden columns) when it is
/// a hidden field or, with `hide_internal`, an internal column; a table without fields shows
/// its `_message`, as Trino's default description does.
pub fn column_field(
    table: &DescribedTable,
    column: ColumnRef,
    hide_internal: bool,
) -> Result<Field, ConnectorError> {
    let description = &table.description;
    let undescribed = [&description.key, &description.message]
        .into_iter()
        .flatten()
        .all(|g| g.fields.is_empty());
    let (made, hidden) = match column {
        ColumnRef::Key(index) | ColumnRef::Message(index) => {
            let group = match column {
                ColumnRef::Key(_) => &description.key,
                _ => &description.message,
            };
            let f = group
                .as_ref()
                .and_then(|g| g.fields.get(index))
                .ok_or_else(|| ConnectorError::Codec {
                    kind: crate::KIND,
                    reason: format!(
                        "table '{}' has no field {index}: the coordinator and the worker disagree",
                        description.table_name
                    ),
                })?;
            (
                Field::new(&f.name, f.field_type.data_type(), true),
                f.hidden,
            )
        }
        ColumnRef::Internal(InternalColumn::Message) => (
            InternalColumn::Message.field(),
            hide_internal && !undescribed,
        ),
        ColumnRef::Internal(internal) => (internal.field(), hide_internal),
    };
    Ok(if hidden { hidden_field(made) } else { made })
}

impl ScanSource for KafkaScan {
    type Handle = KafkaScanHandle;

    fn name(&self) -> &'static str {
        "KafkaScanExec"
    }

    fn catalog(&self) -> &str {
        &self.handle.catalog
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn handle(&self) -> KafkaScanHandle {
        self.handle.clone()
    }

    fn estimate(&self) -> ScanEstimate {
        self.handle.estimate
    }

    fn fmt_details(&self, splits: &Splits, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let description = &self.handle.table.description;
        write!(
            f,
            "catalog={}, table={}.{}, topic={}, columns=[{}]",
            self.handle.catalog,
            description.schema(),
            description.table_name,
            description.topic_name,
            column_list(&self.schema)
        )?;
        if let Some(limit) = self.handle.limit {
            write!(f, ", limit={limit}")?;
        }
        write!(f, ", splits={}", splits.len())?;
        if let Splits::Inline(splits) = splits {
            let decoded: Vec<KafkaSplit> = splits.iter().filter_map(|s| s.decode().ok()).collect();
            let ranges: Vec<String> = ranges(&decoded).iter().map(ToString::to_string).collect();
            write!(f, ", offsets=[{}]", ranges.join(" "))?;
        }
        Ok(())
    }

    fn read(
        &self,
        split: &Split,
        context: Arc<TaskContext>,
        metrics: ScanMetrics,
    ) -> Result<SendableRecordBatchStream> {
        let split: KafkaSplit = split.decode()?;
        let reader = SplitReader::open(
            &self.handle,
            self.schema.clone(),
            &self.config,
            split,
            context.session_config().batch_size(),
            &metrics,
        )?;
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            reader.into_stream(),
        )))
    }
}
