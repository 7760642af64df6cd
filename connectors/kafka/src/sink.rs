//! Inserts: `INSERT INTO kafka.schema.table ...` encodes each row's key fields and message
//! fields with the description's formats and mappings (the decoders' layouts, written) and
//! produces one record per row to the topic. The statement ends when the brokers acknowledged
//! every record (librdkafka's `acks = all` default), and reports the rows written; a record the
//! brokers refuse fails it with the topic and the brokers' error.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
    SchemaRef, Time32MillisecondType, TimeUnit, TimestampMillisecondType,
};
use datafusion::common::not_impl_err;
use datafusion::datasource::sink::{DataSink, DataSinkExec};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::broker::describe;
use crate::decoder::{RowDecoder, Value};
use crate::description::DescribedTable;
use crate::exec::ColumnRef;
use crate::provider::Shared;

/// Records waiting for their acknowledgement at most, per insert.
const IN_FLIGHT: usize = 10_000;

/// The plan that writes `input`'s rows to `table`'s topic.
pub fn insert(
    shared: Arc<Shared>,
    table: Arc<DescribedTable>,
    schema: SchemaRef,
    columns: Vec<ColumnRef>,
    input: Arc<dyn ExecutionPlan>,
    op: InsertOp,
) -> Result<Arc<dyn ExecutionPlan>> {
    let description = &table.description;
    let name = format!(
        "{}.{}.{}",
        shared.broker.catalog(),
        description.schema(),
        description.table_name
    );
    if op != InsertOp::Append {
        return not_impl_err!("{op} into Kafka table '{name}': a topic can only be appended to");
    }
    let codec = |group: &Option<crate::description::FieldGroup>, avro: Option<&str>, part| {
        group
            .as_ref()
            .filter(|g| !g.fields.is_empty())
            .map(|g| RowDecoder::new(g, avro))
            .transpose()
            .map_err(|e| DataFusionError::Plan(format!("table '{name}' {part}: {e}")))
    };
    let key = codec(&description.key, table.key_schema.as_deref(), "key")?;
    let message = codec(
        &description.message,
        table.message_schema.as_deref(),
        "message",
    )?;
    if message.is_none() {
        return Err(DataFusionError::Plan(format!(
            "table '{name}' has no message fields to write: INSERT needs a table description \
             with 'message' fields"
        )));
    }
    let sink = KafkaSink {
        shared,
        name,
        topic: description.topic_name.clone(),
        schema,
        columns,
        key,
        message,
    };
    Ok(Arc::new(DataSinkExec::new(input, Arc::new(sink), None)))
}

/// One record to produce: its key and its message.
type Record = (Option<Vec<u8>>, Option<Vec<u8>>);

struct KafkaSink {
    shared: Arc<Shared>,
    /// `catalog.schema.table`, for errors.
    name: String,
    topic: String,
    schema: SchemaRef,
    columns: Vec<ColumnRef>,
    key: Option<RowDecoder>,
    message: Option<RowDecoder>,
}

impl fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaSink")
            .field("table", &self.name)
            .field("topic", &self.topic)
            .finish()
    }
}

impl DisplayAs for KafkaSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KafkaSink: table={}, topic={}", self.name, self.topic)
    }
}

impl KafkaSink {
    fn error(&self, message: impl fmt::Display) -> DataFusionError {
        self.shared
            .broker
            .error(format!(
                "writing to topic '{}' of table '{}': {message}",
                self.topic, self.name
            ))
            .into()
    }

    /// Each row of `batch` as (key, message).
    fn encode(&self, batch: &RecordBatch) -> Result<Vec<Record>> {
        let mut key_arrays = Vec::new();
        let mut message_arrays = Vec::new();
        for (array, column) in batch.columns().iter().zip(&self.columns) {
            match column {
                ColumnRef::Key(_) => key_arrays.push(array),
                ColumnRef::Message(_) => message_arrays.push(array),
                ColumnRef::Internal(internal) if array.null_count() < array.len() => {
                    return Err(DataFusionError::Plan(format!(
                        "cannot write internal column '{}' of table '{}': Kafka sets it",
                        internal.name(),
                        self.name
                    )));
                }
                ColumnRef::Internal(_) => {}
            }
        }
        (0..batch.num_rows())
            .map(|row| {
                let encode = |codec: &Option<RowDecoder>, arrays: &[&ArrayRef], part: &str| {
                    let Some(codec) = codec else {
                        return Ok(None);
                    };
                    let values: Vec<Value<'_>> = arrays
                        .iter()
                        .map(|a| value_at(a, row))
                        .collect::<Result<_>>()?;
                    if part == "key" && values.iter().all(|v| *v == Value::Null) {
                        return Ok(None);
                    }
                    codec
                        .encode(&values)
                        .map(Some)
                        .map_err(|e| DataFusionError::Plan(format!("row {row}'s {part}: {e}")))
                };
                Ok((
                    encode(&self.key, &key_arrays, "key")?,
                    encode(&self.message, &message_arrays, "message")?,
                ))
            })
            .collect()
    }
}

/// Row `row` of `array` as a value an encoder takes.
fn value_at(array: &ArrayRef, row: usize) -> Result<Value<'_>> {
    if array.is_null(row) {
        return Ok(Value::Null);
    }
    Ok(match array.data_type() {
        DataType::Boolean => Value::Bool(
            array
                .as_any()
                .downcast_ref::<BooleanArray>()
                .is_some_and(|a| a.value(row)),
        ),
        DataType::Int8 => Value::Int(array.as_primitive::<Int8Type>().value(row).into()),
        DataType::Int16 => Value::Int(array.as_primitive::<Int16Type>().value(row).into()),
        DataType::Int32 => Value::Int(array.as_primitive::<Int32Type>().value(row).into()),
        DataType::Int64 => Value::Int(array.as_primitive::<Int64Type>().value(row)),
        DataType::Float32 => Value::Float(array.as_primitive::<Float32Type>().value(row).into()),
        DataType::Float64 => Value::Float(array.as_primitive::<Float64Type>().value(row)),
        DataType::Utf8 => Value::Text(
            array
                .as_any()
                .downcast_ref::<StringArray>()
                .map_or("", |a| a.value(row))
                .into(),
        ),
        DataType::Binary => Value::Bytes(
            array
                .as_any()
                .downcast_ref::<BinaryArray>()
                .map_or(&[][..], |a| a.value(row)),
        ),
        DataType::Date32 => Value::Date(array.as_primitive::<Date32Type>().value(row)),
        DataType::Time32(TimeUnit::Millisecond) => {
            Value::Time(array.as_primitive::<Time32MillisecondType>().value(row))
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            Value::Timestamp(array.as_primitive::<TimestampMillisecondType>().value(row))
        }
        other => {
            return Err(DataFusionError::Internal(format!(
                "a Kafka field of Arrow type {other}"
            )));
        }
    })
}

#[async_trait]
impl DataSink for KafkaSink {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    async fn write_all(
        &self,
        mut data: SendableRecordBatchStream,
        _context: &Arc<TaskContext>,
    ) -> Result<u64> {
        let config = self.shared.broker.config();
        let producer: FutureProducer = config
            .client_config()
            .create()
            .map_err(|e| self.error(format!("cannot make a producer: {e}")))?;
        let timeout = config.timeout();
        let mut pending = FuturesUnordered::new();
        let mut written = 0u64;
        let acknowledged = |result: Result<_, (rdkafka::error::KafkaError, _)>| match result {
            Ok(_) => Ok(()),
            Err((e, _)) => Err(self.error(describe(&e, timeout))),
        };
        while let Some(batch) = data.next().await {
            let batch = batch?;
            for (key, message) in self.encode(&batch)? {
                while pending.len() >= IN_FLIGHT {
                    if let Some(result) = pending.next().await {
                        acknowledged(result)?;
                    }
                }
                let (producer, topic) = (producer.clone(), self.topic.clone());
                pending.push(async move {
                    let mut record = FutureRecord::<Vec<u8>, Vec<u8>>::to(&topic);
                    if let Some(key) = &key {
                        record = record.key(key);
                    }
                    if let Some(message) = &message {
                        record = record.payload(message);
                    }
                    producer.send(record, timeout).await
                });
                written += 1;
            }
        }
        let acknowledged_all = async {
            while let Some(result) = pending.next().await {
                acknowledged(result)?;
            }
            Ok::<_, DataFusionError>(())
        }
        .await;
        // librdkafka's teardown waits on its threads: not on the runtime's.
        tokio::task::spawn_blocking(move || drop(producer));
        acknowledged_all.map(|()| written)
    }
}
