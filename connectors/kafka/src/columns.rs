//! [`InternalColumn`]: the columns every Kafka table has besides its description's fields,
//! with Trino's names and types.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Fields, TimeUnit};

/// A column Braid fills from the record itself rather than from its decoded key or message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum InternalColumn {
    /// The partition the record is in (`bigint`).
    PartitionId,
    /// The record's offset in its partition (`bigint`).
    PartitionOffset,
    /// The record's timestamp (`timestamp(3)`).
    Timestamp,
    /// The key as UTF-8 text (`varchar`), NULL for a record without a key.
    Key,
    /// The message as UTF-8 text (`varchar`).
    Message,
    /// The key's length in bytes (`bigint`).
    KeyLength,
    /// The message's length in bytes (`bigint`).
    MessageLength,
    /// Whether the key failed to decode (`boolean`).
    KeyCorrupt,
    /// Whether the message failed to decode (`boolean`).
    MessageCorrupt,
    /// The record's headers (`map(varchar, array(varbinary))`).
    Headers,
}

impl InternalColumn {
    /// Every internal column, in the order a table lists them.
    pub const ALL: [InternalColumn; 10] = [
        InternalColumn::PartitionId,
        InternalColumn::PartitionOffset,
        InternalColumn::Timestamp,
        InternalColumn::Key,
        InternalColumn::Message,
        InternalColumn::KeyLength,
        InternalColumn::MessageLength,
        InternalColumn::KeyCorrupt,
        InternalColumn::MessageCorrupt,
        InternalColumn::Headers,
    ];

    /// The column's name, as in Trino.
    pub fn name(self) -> &'static str {
        match self {
            InternalColumn::PartitionId => "_partition_id",
            InternalColumn::PartitionOffset => "_partition_offset",
            InternalColumn::Timestamp => "_timestamp",
            InternalColumn::Key => "_key",
            InternalColumn::Message => "_message",
            InternalColumn::KeyLength => "_key_length",
            InternalColumn::MessageLength => "_message_length",
            InternalColumn::KeyCorrupt => "_key_corrupt",
            InternalColumn::MessageCorrupt => "_message_corrupt",
            InternalColumn::Headers => "_headers",
        }
    }

    /// The internal column called `name` (lower case), if any.
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The column's Arrow type.
    pub fn data_type(self) -> DataType {
        match self {
            InternalColumn::PartitionId
            | InternalColumn::PartitionOffset
            | InternalColumn::KeyLength
            | InternalColumn::MessageLength => DataType::Int64,
            InternalColumn::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, None),
            InternalColumn::Key | InternalColumn::Message => DataType::Utf8,
            InternalColumn::KeyCorrupt | InternalColumn::MessageCorrupt => DataType::Boolean,
            InternalColumn::Headers => DataType::Map(
                Arc::new(Field::new(
                    "entries",
                    DataType::Struct(Fields::from(vec![
                        Field::new("key", DataType::Utf8, false),
                        Field::new(
                            "value",
                            DataType::List(Arc::new(Field::new_list_field(DataType::Binary, true))),
                            true,
                        ),
                    ])),
                    false,
                )),
                false,
            ),
        }
    }

    /// The column as an Arrow field. Every one may be NULL, as every column in Trino: a key
    /// or message may be missing, and an `INSERT` leaves internal columns NULL (Kafka sets
    /// them).
    pub fn field(self) -> Field {
        Field::new(self.name(), self.data_type(), true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_types_are_trinos() {
        let listed: Vec<_> = InternalColumn::ALL
            .iter()
            .map(|c| format!("{} {}", c.name(), c.data_type()))
            .collect();
        assert_eq!(
            listed[..9],
            [
                "_partition_id Int64",
                "_partition_offset Int64",
                "_timestamp Timestamp(ms)",
                "_key Utf8",
                "_message Utf8",
                "_key_length Int64",
                "_message_length Int64",
                "_key_corrupt Boolean",
                "_message_corrupt Boolean",
            ]
        );
        assert!(matches!(
            InternalColumn::Headers.data_type(),
            DataType::Map(..)
        ));
        for column in InternalColumn::ALL {
            assert_eq!(InternalColumn::named(column.name()), Some(column));
        }
        assert_eq!(InternalColumn::named("_segment_start"), None);
    }
}
