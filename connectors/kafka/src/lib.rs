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
//!
//! The broker side (metadata, splits by partition and offset range, the scan, inserts) and the
//! decoders come next; until then no `kafka` catalog can be configured.

mod columns;
mod description;
mod types;

pub use columns::InternalColumn;
pub use description::{
    DataFormat, FieldDescription, FieldGroup, TableDescription, load_descriptions,
};
pub use types::FieldType;

/// The connector kind, as written in catalog files.
pub const KIND: &str = "kafka";
