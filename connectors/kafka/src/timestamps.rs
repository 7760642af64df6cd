//! Where a `_timestamp` bound falls in a partition: the *position* before which every record
//! is older than the bound and from which every record is at least that old (Kafka's
//! `offsetsForTimes`, read as a position), assuming timestamps grow with offsets as Trino does.
//!
//! Broker workaround, kept here only: tansu 0.6 answers every `ListOffsets` by timestamp with
//! offset 0, whatever the timestamp (seen against `tansu broker --storage-engine memory://`;
//! no upstream report found as of 2026-11). Trusting it would read nothing or everything from
//! the wrong offset. So each answer is checked against the records around it (one record read
//! at the answer, one before it), and a wrong answer is replaced by a binary search that reads
//! single records. A correct broker costs two one-record reads per partition and bound.
//! `pushdown_reads_only_the_matching_records` (integration tests) fails without the check.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::split::OffsetRange;

/// Per partition, the position of `millis` within its offsets [start, end).
pub fn positions(
    consumer: &BaseConsumer,
    topic: &str,
    partitions: &[OffsetRange],
    millis: i64,
    timeout: Duration,
) -> Result<BTreeMap<i32, i64>, KafkaError> {
    let mut asked = TopicPartitionList::new();
    for w in partitions {
        asked.add_partition_offset(topic, w.partition, Offset::Offset(millis))?;
    }
    let answered = consumer.offsets_for_times(asked, timeout)?;
    let reader = Reader {
        consumer,
        topic,
        timeout,
    };
    let mut found = BTreeMap::new();
    for w in partitions {
        let claimed = answered
            .find_partition(topic, w.partition)
            .map(|e| match e.offset() {
                Offset::Offset(offset) => offset.clamp(w.start, w.end),
                // No record that late.
                _ => w.end,
            })
            .unwrap_or(w.end);
        let position = if reader.is_position(w, claimed, millis)? {
            claimed
        } else {
            tracing::debug!(
                topic,
                partition = w.partition,
                claimed,
                "the broker's offset for a timestamp is wrong; searching"
            );
            reader.search(w, millis)?
        };
        found.insert(w.partition, position);
    }
    Ok(found)
}

struct Reader<'a> {
    consumer: &'a BaseConsumer,
    topic: &'a str,
    timeout: Duration,
}

impl Reader<'_> {
    /// The first record at or after `offset` of the partition: (offset, timestamp), `None` at
    /// the partition's end.
    fn first_from(&self, partition: i32, offset: i64) -> Result<Option<(i64, i64)>, KafkaError> {
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(self.topic, partition, Offset::Offset(offset))?;
        self.consumer.assign(&assignment)?;
        let deadline = Instant::now() + self.timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.consumer.poll(left) {
                Some(Ok(message))
                    if message.partition() == partition && message.offset() >= offset =>
                {
                    let at = message.timestamp().to_millis().unwrap_or(i64::MIN);
                    return Ok(Some((message.offset(), at)));
                }
                Some(Ok(_)) => {}
                Some(Err(KafkaError::PartitionEOF(p))) if p == partition => return Ok(None),
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                Some(Err(e)) => return Err(e),
                None => break,
            }
        }
        Err(KafkaError::MessageConsumption(
            rdkafka::types::RDKafkaErrorCode::OperationTimedOut,
        ))
    }

    /// Whether `position` is where `millis` falls: the record there is at least that old, the
    /// one before it is older.
    fn is_position(&self, w: &OffsetRange, position: i64, millis: i64) -> Result<bool, KafkaError> {
        if position < w.end
            && let Some((_, at)) = self.first_from(w.partition, position)?
            && at < millis
        {
            return Ok(false);
        }
        if position > w.start
            && let Some((offset, at)) = self.first_from(w.partition, position - 1)?
            && offset < position
            && at >= millis
        {
            return Ok(false);
        }
        Ok(true)
    }

    /// The position of `millis` by binary search over the partition's records.
    fn search(&self, w: &OffsetRange, millis: i64) -> Result<i64, KafkaError> {
        let (mut low, mut high) = (w.start, w.end);
        while low < high {
            let middle = low + (high - low) / 2;
            match self.first_from(w.partition, middle)? {
                Some((offset, at)) if at < millis => low = offset + 1,
                _ => high = middle,
            }
        }
        Ok(low.min(w.end))
    }
}
