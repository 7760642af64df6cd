//! [`SplitReader`]: reads one split, a partition's offsets [start, end), into record batches.
//!
//! The reader stops at the range's end, never at a count: Kafka's offsets have gaps
//! (compacted records, transaction markers, aborted records a `read_committed` client skips),
//! so it ends when a record at or past `end - 1` arrives, or when the partition's end is reached
//! and the brokers still hold `end` offsets. A partition that ends earlier, an offset that is
//! no longer held, or a topic that is gone is an error naming the topic and the partition,
//! never a silently short result.
//!
//! librdkafka hands every record of a fetched batch over with its own offset and drops the
//! records of a batch that lie before the offset asked for, so multi-record batches need nothing
//! special; records before `start` would be skipped here anyway.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use braid_connector_spi::{ConnectorError, ScanMetrics};
use datafusion::arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Int64Builder, ListBuilder, MapBuilder, MapFieldNames,
    StringBuilder, TimestampMillisecondBuilder,
};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::{DataFusionError, Result};
use datafusion::physical_plan::metrics::{BaselineMetrics, Count};
use futures::Stream;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use crate::broker::{describe, source_error};
use crate::columns::InternalColumn;
use crate::config::KafkaConfig;
use crate::decoder::{FieldColumns, RowDecoder, Value, fits};
use crate::description::FieldGroup;
use crate::exec::{ColumnRef, KafkaScanHandle};
use crate::split::{KafkaSplit, RecordStep};
use crate::types::FieldType;

/// Reads one split.
pub struct SplitReader {
    consumer: Option<Arc<StreamConsumer>>,
    catalog: String,
    servers: String,
    topic: String,
    split: KafkaSplit,
    timeout: Duration,
    /// Records still wanted (the scan's limit).
    wanted: usize,
    batch_size: usize,
    columns: RecordColumns,
    done: bool,
    messages_read: Count,
    baseline: BaselineMetrics,
}

impl SplitReader {
    /// A reader of `split`, its consumer assigned to the split's partition at its start.
    pub fn open(
        handle: &KafkaScanHandle,
        schema: SchemaRef,
        config: &KafkaConfig,
        split: KafkaSplit,
        batch_size: usize,
        metrics: &ScanMetrics,
    ) -> Result<Self> {
        let description = &handle.table.description;
        let mut reader = Self {
            consumer: None,
            catalog: handle.catalog.clone(),
            servers: config.nodes.servers(),
            topic: description.topic_name.clone(),
            split,
            timeout: config.timeout(),
            wanted: handle.limit.unwrap_or(usize::MAX),
            batch_size: batch_size.max(1),
            columns: RecordColumns::new(handle, schema)?,
            done: split.start >= split.end || handle.limit == Some(0),
            messages_read: metrics.counter("messages_read"),
            baseline: metrics.baseline(),
        };
        if reader.done {
            return Ok(reader);
        }
        let consumer: StreamConsumer = config
            .client_config()
            // A partition's end is an event: a range whose last offsets hold no record
            // (compaction, transaction markers) ends there.
            .set("enable.partition.eof", "true")
            // An offset no longer held is an error, not a jump to another offset.
            .set("auto.offset.reset", "error")
            .set("enable.auto.commit", "false")
            // librdkafka assigns partitions through a group handle; nothing joins the group
            // (no subscribe) and nothing is committed.
            .set("group.id", format!("braid-{}", reader.catalog))
            .create()
            .map_err(|e| reader.error(format!("cannot make a consumer: {e}")))?;
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(
                &reader.topic,
                reader.split.partition,
                Offset::Offset(reader.split.start),
            )
            .and_then(|()| consumer.assign(&assignment))
            .map_err(|e| reader.error(format!("cannot assign {}: {e}", reader.place())))?;
        reader.consumer = Some(Arc::new(consumer));
        Ok(reader)
    }

    /// The batches of the split.
    pub fn into_stream(self) -> impl Stream<Item = Result<RecordBatch>> + Send {
        futures::stream::try_unfold(self, |mut reader| async move {
            let batch = reader.next_batch().await?;
            Ok(batch.map(|batch| (batch, reader)))
        })
    }

    fn place(&self) -> String {
        format!(
            "partition {} of topic '{}'",
            self.split.partition, self.topic
        )
    }

    fn error(&self, message: impl std::fmt::Display) -> DataFusionError {
        source_error(&self.catalog, &self.servers, message).into()
    }

    /// The next batch, `None` once the split is read.
    async fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        if self.done && self.columns.rows == 0 {
            self.close();
            return Ok(None);
        }
        while !self.done && self.columns.rows < self.batch_size {
            self.next_record().await?;
        }
        let timer = self.baseline.elapsed_compute().timer();
        let batch = self.columns.finish()?;
        timer.done();
        self.baseline.record_output(batch.num_rows());
        if self.done {
            self.close();
        }
        Ok(Some(batch))
    }

    /// Reads one record into the columns, or notes that the split is done.
    async fn next_record(&mut self) -> Result<()> {
        let Some(consumer) = self.consumer.clone() else {
            self.done = true;
            return Ok(());
        };
        let received = tokio::time::timeout(self.timeout, consumer.recv()).await;
        match received {
            Ok(Ok(message)) => {
                let last = match self.split.step(message.offset()) {
                    RecordStep::Skip => return Ok(()),
                    RecordStep::Done => {
                        self.done = true;
                        return Ok(());
                    }
                    RecordStep::Take { last } => last,
                };
                self.messages_read.add(1);
                let timer = self.baseline.elapsed_compute().timer();
                self.columns.append(&message);
                timer.done();
                self.wanted -= 1;
                self.done = last || self.wanted == 0;
                Ok(())
            }
            Ok(Err(KafkaError::PartitionEOF(_))) => {
                // Nothing more now: the range is read if the brokers hold all of it.
                drop(received);
                let high = self.high_watermark(consumer).await?;
                if self.split.read_at_partition_end(high) {
                    self.done = true;
                    return Ok(());
                }
                Err(self.error(format!(
                    "{} ends at offset {high}, before offset {} that the query was planned to \
                     read up to: the topic was truncated or re-created since",
                    self.place(),
                    self.split.end
                )))
            }
            Ok(Err(e)) => {
                let gone = matches!(
                    e.rdkafka_error_code(),
                    Some(RDKafkaErrorCode::OffsetOutOfRange)
                );
                let message = if gone {
                    format!(
                        "{} no longer holds the offsets the query was planned to read \
                         ({}..{}): records were deleted since",
                        self.place(),
                        self.split.start,
                        self.split.end
                    )
                } else {
                    format!("reading {}: {}", self.place(), describe(&e, self.timeout))
                };
                Err(self.error(message))
            }
            Err(_) => {
                drop(received);
                let exists = self.topic_exists(consumer).await;
                let why = match exists {
                    Some(false) => "the topic was deleted since the query was planned".to_string(),
                    _ => format!("no record within {}s", self.timeout.as_secs()),
                };
                Err(self.error(format!(
                    "reading {} (offsets {}..{}): {why}",
                    self.place(),
                    self.split.start,
                    self.split.end
                )))
            }
        }
    }

    /// The partition's high watermark, asked on the blocking pool.
    async fn high_watermark(&self, consumer: Arc<StreamConsumer>) -> Result<i64> {
        let (topic, partition, timeout) = (self.topic.clone(), self.split.partition, self.timeout);
        let asked = tokio::task::spawn_blocking(move || {
            consumer.fetch_watermarks(&topic, partition, timeout)
        });
        match tokio::time::timeout(self.timeout + Duration::from_secs(5), asked).await {
            Ok(Ok(Ok((_, high)))) => Ok(high),
            Ok(Ok(Err(e))) => Err(self.error(format!(
                "reading the offsets of {}: {}",
                self.place(),
                describe(&e, self.timeout)
            ))),
            _ => Err(self.error(format!(
                "reading the offsets of {}: no answer within {}s",
                self.place(),
                self.timeout.as_secs()
            ))),
        }
    }

    /// Whether the brokers still have the topic (`None`: they did not say).
    async fn topic_exists(&self, consumer: Arc<StreamConsumer>) -> Option<bool> {
        let (topic, timeout) = (self.topic.clone(), self.timeout);
        let asked = tokio::task::spawn_blocking(move || {
            let metadata = consumer.fetch_metadata(Some(&topic), timeout).ok()?;
            let found = metadata.topics().iter().find(|t| t.name() == topic)?;
            Some(found.error().is_none() && !found.partitions().is_empty())
        });
        tokio::time::timeout(self.timeout, asked).await.ok()?.ok()?
    }

    /// Lets the consumer go; librdkafka's teardown waits on its threads, so not here.
    fn close(&mut self) {
        if let Some(consumer) = self.consumer.take() {
            tokio::task::spawn_blocking(move || drop(consumer));
        }
    }
}

impl Drop for SplitReader {
    fn drop(&mut self) {
        if let Some(consumer) = self.consumer.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => drop(runtime.spawn_blocking(move || drop(consumer))),
                Err(_) => drop(consumer),
            }
        }
    }
}

/// One group's decoding: the decoder, which decoded values are read, and their columns.
struct GroupColumns {
    decoder: RowDecoder,
    /// Indices of the read fields among the group's fields.
    picks: Vec<usize>,
    columns: FieldColumns,
    /// Every field's type, when the query reads whether the record is corrupt.
    check: Option<Vec<FieldType>>,
}

impl GroupColumns {
    fn new(
        group: &FieldGroup,
        schema: Option<&str>,
        picks: Vec<usize>,
        corrupt_wanted: bool,
    ) -> Result<Self, String> {
        let types: Vec<_> = picks.iter().map(|&i| group.fields[i].field_type).collect();
        Ok(Self {
            decoder: RowDecoder::new(group, schema)?,
            picks,
            columns: FieldColumns::new(&types),
            check: corrupt_wanted.then(|| group.fields.iter().map(|f| f.field_type).collect()),
        })
    }

    /// Decodes `bytes` (`None`: no key, or a tombstone) into the columns; whether it is
    /// corrupt.
    fn append(&mut self, bytes: Option<&[u8]>) -> bool {
        let Some(bytes) = bytes else {
            self.columns.append_nulls();
            return false;
        };
        let mut values = Vec::with_capacity(self.picks.len());
        match self.decoder.decode(bytes, &mut values) {
            Ok(())
                if self
                    .check
                    .as_ref()
                    .is_some_and(|types| !fits(&values, types)) =>
            {
                self.columns.append_nulls();
                true
            }
            Ok(()) => {
                let picked = self
                    .picks
                    .iter()
                    .map(|&i| values.get(i).cloned().unwrap_or(Value::Null))
                    .collect();
                self.columns.append(picked).is_err()
            }
            Err(_) => {
                self.columns.append_nulls();
                true
            }
        }
    }
}

/// A batch's columns, built record by record.
struct RecordColumns {
    schema: SchemaRef,
    key: Option<GroupColumns>,
    message: Option<GroupColumns>,
    internal: Vec<(InternalColumn, InternalBuilder)>,
    /// Per output column: where its array comes from.
    outputs: Vec<Output>,
    rows: usize,
}

#[derive(Clone, Copy)]
enum Output {
    Key(usize),
    Message(usize),
    Internal(usize),
}

impl RecordColumns {
    fn new(handle: &KafkaScanHandle, schema: SchemaRef) -> Result<Self> {
        let table = &handle.table;
        let description = &table.description;
        let wants = |column| handle.columns.contains(&ColumnRef::Internal(column));
        let group = |group: &Option<FieldGroup>,
                     avro: Option<&str>,
                     picks: Vec<usize>,
                     corrupt_wanted: bool,
                     part: &str| {
            match group {
                Some(group) if !picks.is_empty() || corrupt_wanted => {
                    GroupColumns::new(group, avro, picks, corrupt_wanted)
                        .map(Some)
                        .map_err(|e| {
                            DataFusionError::from(ConnectorError::Config {
                                message: format!(
                                    "table '{}.{}' {part}: {e}",
                                    description.schema(),
                                    description.table_name
                                ),
                            })
                        })
                }
                _ => Ok(None),
            }
        };
        let mut outputs = Vec::new();
        let (mut key_picks, mut message_picks, mut internal) = (Vec::new(), Vec::new(), Vec::new());
        for column in &handle.columns {
            outputs.push(match *column {
                ColumnRef::Key(i) => {
                    key_picks.push(i);
                    Output::Key(key_picks.len() - 1)
                }
                ColumnRef::Message(i) => {
                    message_picks.push(i);
                    Output::Message(message_picks.len() - 1)
                }
                ColumnRef::Internal(column) => {
                    internal.push((column, InternalBuilder::new(column)));
                    Output::Internal(internal.len() - 1)
                }
            });
        }
        Ok(Self {
            schema,
            key: group(
                &description.key,
                table.key_schema.as_deref(),
                key_picks,
                wants(InternalColumn::KeyCorrupt),
                "key",
            )?,
            message: group(
                &description.message,
                table.message_schema.as_deref(),
                message_picks,
                wants(InternalColumn::MessageCorrupt),
                "message",
            )?,
            internal,
            outputs,
            rows: 0,
        })
    }

    fn append(&mut self, message: &BorrowedMessage<'_>) {
        let key_corrupt = self
            .key
            .as_mut()
            .is_some_and(|group| group.append(message.key()));
        let message_corrupt = self
            .message
            .as_mut()
            .is_some_and(|group| group.append(message.payload()));
        for (column, builder) in &mut self.internal {
            builder.append(*column, message, key_corrupt, message_corrupt);
        }
        self.rows += 1;
    }

    fn finish(&mut self) -> Result<RecordBatch> {
        let key = self
            .key
            .as_mut()
            .map(|g| g.columns.finish())
            .unwrap_or_default();
        let message = self
            .message
            .as_mut()
            .map(|g| g.columns.finish())
            .unwrap_or_default();
        let internal: Vec<ArrayRef> = self.internal.iter_mut().map(|(_, b)| b.finish()).collect();
        let arrays = self
            .outputs
            .iter()
            .map(|output| match *output {
                Output::Key(i) => key[i].clone(),
                Output::Message(i) => message[i].clone(),
                Output::Internal(i) => internal[i].clone(),
            })
            .collect();
        let options = datafusion::arrow::record_batch::RecordBatchOptions::new()
            .with_row_count(Some(self.rows));
        self.rows = 0;
        Ok(RecordBatch::try_new_with_options(
            self.schema.clone(),
            arrays,
            &options,
        )?)
    }
}

/// The builder of one internal column.
enum InternalBuilder {
    Int(Int64Builder),
    Timestamp(TimestampMillisecondBuilder),
    Text(StringBuilder),
    Bool(BooleanBuilder),
    Headers(Box<MapBuilder<StringBuilder, ListBuilder<BinaryBuilder>>>),
}

impl InternalBuilder {
    fn new(column: InternalColumn) -> Self {
        match column {
            InternalColumn::PartitionId
            | InternalColumn::PartitionOffset
            | InternalColumn::KeyLength
            | InternalColumn::MessageLength => InternalBuilder::Int(Int64Builder::new()),
            InternalColumn::Timestamp => {
                InternalBuilder::Timestamp(TimestampMillisecondBuilder::new())
            }
            InternalColumn::Key | InternalColumn::Message => {
                InternalBuilder::Text(StringBuilder::new())
            }
            InternalColumn::KeyCorrupt | InternalColumn::MessageCorrupt => {
                InternalBuilder::Bool(BooleanBuilder::new())
            }
            InternalColumn::Headers => InternalBuilder::Headers(Box::new(MapBuilder::new(
                Some(MapFieldNames {
                    entry: "entries".into(),
                    key: "key".into(),
                    value: "value".into(),
                }),
                StringBuilder::new(),
                ListBuilder::new(BinaryBuilder::new()),
            ))),
        }
    }

    fn append(
        &mut self,
        column: InternalColumn,
        message: &BorrowedMessage<'_>,
        key_corrupt: bool,
        message_corrupt: bool,
    ) {
        let length = |bytes: Option<&[u8]>| bytes.map(|b| b.len() as i64);
        fn text(bytes: Option<&[u8]>) -> Option<std::borrow::Cow<'_, str>> {
            bytes.map(String::from_utf8_lossy)
        }
        match (self, column) {
            (InternalBuilder::Int(b), InternalColumn::PartitionId) => {
                b.append_value(message.partition().into())
            }
            (InternalBuilder::Int(b), InternalColumn::PartitionOffset) => {
                b.append_value(message.offset())
            }
            (InternalBuilder::Int(b), InternalColumn::KeyLength) => {
                b.append_option(length(message.key()))
            }
            (InternalBuilder::Int(b), InternalColumn::MessageLength) => {
                b.append_option(length(message.payload()))
            }
            (InternalBuilder::Timestamp(b), _) => b.append_option(message.timestamp().to_millis()),
            (InternalBuilder::Text(b), InternalColumn::Key) => b.append_option(text(message.key())),
            (InternalBuilder::Text(b), _) => b.append_option(text(message.payload())),
            (InternalBuilder::Bool(b), InternalColumn::KeyCorrupt) => b.append_value(key_corrupt),
            (InternalBuilder::Bool(b), _) => b.append_value(message_corrupt),
            (InternalBuilder::Headers(b), _) => {
                // Kafka allows a header name more than once: its values are listed in order.
                let mut by_name: BTreeMap<&str, Vec<Option<&[u8]>>> = BTreeMap::new();
                if let Some(headers) = message.headers() {
                    for header in headers.iter() {
                        by_name.entry(header.key).or_default().push(header.value);
                    }
                }
                for (name, values) in by_name {
                    b.keys().append_value(name);
                    let list = b.values();
                    for value in values {
                        list.values().append_option(value);
                    }
                    list.append(true);
                }
                // Appending an entry of a map cannot fail once keys and values match.
                let _ = b.append(true);
            }
            (InternalBuilder::Int(b), _) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            InternalBuilder::Int(b) => Arc::new(b.finish()),
            InternalBuilder::Timestamp(b) => Arc::new(b.finish()),
            InternalBuilder::Text(b) => Arc::new(b.finish()),
            InternalBuilder::Bool(b) => Arc::new(b.finish()),
            InternalBuilder::Headers(b) => Arc::new(b.finish()),
        }
    }
}
