//! # braid-connector-kafka
//!
//! Kafka topics as tables, on Trino's model (its table description files, internal column names
//! and decoders). Built in layers; this crate has the parts that need no broker yet:
//!
//! - [`TableDescription`] (`description.rs`): Trino's JSON table description files
//!   (`tableName`, `schemaName`, `topicName`, `key` / `message` with `dataFormat`, `dataSchema`
//!   and `fields`), loaded from `table_description_dir` with errors naming the file and field.
//! - [`FieldType`] (`types.rs`): the Trino type names a description uses, and their Arrow types.
//! - [`InternalColumn`] (`columns.rs`): `_partition_id`, `_partition_offset`, `_timestamp`,
//!   `_key`, `_message`, ... with Trino's names and types.
//! - [`decoder`]: [`decoder::RowDecoder`] turns a key or a message into one value per field
//!   (`raw`, `csv`, `json` with Trino's date and time formats), [`decoder::FieldColumns`]
//!   builds the Arrow columns; a record that does not decode is corrupt, with NULL fields, and
//!   never fails the query.
//!
//! The `avro` decoder and the broker side (metadata, splits by partition and offset
//! range, the scan, inserts) come next; until then no `kafka` catalog can be configured.

mod columns;
pub mod decoder;
mod description;
mod types;

pub use columns::InternalColumn;
pub use description::{
    DataFormat, FieldDescription, FieldGroup, TableDescription, load_descriptions,
};
pub use types::FieldType;

/// The connector kind, as written in catalog files.
pub const KIND: &str = "kafka";
