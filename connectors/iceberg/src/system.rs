//! Table names beyond a plain table, as Trino spells them: the metadata tables
//! `"t$snapshots"`, `"t$history"`, `"t$manifests"`, `"t$files"` and `"t$partitions"`
//! ([`MetadataTable`], computed on the coordinator from the table's metadata and manifests),
//! and a table at a version, `t@<snapshot id>` or `t@ts=<epoch ms>`, the names the
//! coordinator's rewrite of `FOR VERSION AS OF` / `FOR TIMESTAMP AS OF` gives a table.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use braid_connector_spi::{ConnectorError, RowSource, TableVersion};
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::error::Result;
use futures::TryStreamExt;
use iceberg::arrow::schema_to_arrow_schema;
use iceberg::spec::{Literal, PrimitiveLiteral, PrimitiveType, Type};
use iceberg::table::Table;

use crate::metadata::describe;

/// A table name as the Iceberg catalog's schema receives it.
pub type TableName<'a> = braid_connector_spi::TableName<'a, MetadataKind>;

/// The snapshot `version` is of `table` (named `name` in errors).
pub fn snapshot_at(
    version: TableVersion,
    table: &Table,
    name: &str,
    catalog: &str,
) -> Result<i64, ConnectorError> {
    let metadata = table.metadata();
    let found = match version {
        TableVersion::Version(id) => metadata.snapshot_by_id(id).map(|_| id),
        // The snapshot log is in commit order: the last entry at or before the time.
        TableVersion::Timestamp(ms) => metadata
            .history()
            .iter()
            .rev()
            .find(|entry| entry.timestamp_ms <= ms)
            .map(|entry| entry.snapshot_id),
    };
    found.ok_or_else(|| ConnectorError::Source {
        catalog: catalog.to_string(),
        message: format!("table '{name}' has no snapshot {}", version.describe()),
    })
}

/// Trino's Iceberg metadata tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataKind {
    Snapshots,
    History,
    Manifests,
    Files,
    Partitions,
}

impl MetadataKind {
    const ALL: [(&'static str, MetadataKind); 5] = [
        ("snapshots", MetadataKind::Snapshots),
        ("history", MetadataKind::History),
        ("manifests", MetadataKind::Manifests),
        ("files", MetadataKind::Files),
        ("partitions", MetadataKind::Partitions),
    ];

    /// `name` as an Iceberg schema receives it: `t`, `t$<kind>`, `t@<snapshot id>`,
    /// `t@ts=<ms>`.
    pub fn parse_name(name: &str) -> Result<TableName<'_>, String> {
        TableName::parse(name, &MetadataKind::ALL, "Iceberg")
    }
}

/// A metadata table of one Iceberg table: its rows are computed when a statement scans it,
/// from the snapshot the statement resolved.
#[derive(Debug)]
pub struct MetadataTable {
    kind: MetadataKind,
    table: Table,
    name: String,
    snapshot_id: Option<i64>,
    catalog: String,
    schema: SchemaRef,
}

impl MetadataTable {
    pub fn new(
        kind: MetadataKind,
        table: Table,
        name: String,
        snapshot_id: Option<i64>,
        catalog: &str,
    ) -> Result<Self, ConnectorError> {
        let iceberg_schema = |schema: iceberg::spec::Schema| {
            schema_to_arrow_schema(&schema).map_err(|e| ConnectorError::Source {
                catalog: catalog.to_string(),
                message: format!("table '{name}': {}", describe(&e)),
            })
        };
        let ts = || DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
        let schema = match kind {
            MetadataKind::Snapshots => iceberg_schema(table.inspect().snapshots().schema())?,
            MetadataKind::Manifests => iceberg_schema(table.inspect().manifests().schema())?,
            MetadataKind::History => Schema::new(vec![
                Field::new("made_current_at", ts(), false),
                Field::new("snapshot_id", DataType::Int64, false),
                Field::new("parent_id", DataType::Int64, true),
                Field::new("is_current_ancestor", DataType::Boolean, false),
            ]),
            MetadataKind::Files => Schema::new(vec![
                Field::new("content", DataType::Int32, false),
                Field::new("file_path", DataType::Utf8, false),
                Field::new("file_format", DataType::Utf8, false),
                Field::new("spec_id", DataType::Int32, false),
                Field::new("partition", DataType::Utf8, true),
                Field::new("record_count", DataType::Int64, false),
                Field::new("file_size_in_bytes", DataType::Int64, false),
            ]),
            MetadataKind::Partitions => Schema::new(vec![
                Field::new("partition", DataType::Utf8, true),
                Field::new("record_count", DataType::Int64, false),
                Field::new("file_count", DataType::Int64, false),
                Field::new("total_size", DataType::Int64, false),
            ]),
        };
        Ok(Self {
            kind,
            table,
            name,
            snapshot_id,
            catalog: catalog.to_string(),
            schema: Arc::new(schema),
        })
    }

    fn error(&self, e: iceberg::Error) -> ConnectorError {
        ConnectorError::Source {
            catalog: self.catalog.clone(),
            message: format!("table '{}': {}", self.name, describe(&e)),
        }
    }

    /// The rows of the metadata table, from the statement's snapshot.
    async fn compute(&self) -> Result<Vec<RecordBatch>> {
        let batches = match self.kind {
            MetadataKind::Snapshots | MetadataKind::Manifests => {
                let inspect = self.table.inspect();
                let stream = match self.kind {
                    MetadataKind::Snapshots => inspect.snapshots().scan().await,
                    _ => inspect.manifests().scan().await,
                };
                let stream = stream.map_err(|e| self.error(e))?;
                stream.try_collect().await.map_err(|e| self.error(e))?
            }
            MetadataKind::History => vec![self.history()?],
            MetadataKind::Files => vec![self.files().await?],
            MetadataKind::Partitions => vec![self.partitions().await?],
        };
        // The plan's schema (iceberg's batches carry field ids).
        batches
            .into_iter()
            .map(|b| {
                Ok(RecordBatch::try_new(
                    self.schema.clone(),
                    b.columns().to_vec(),
                )?)
            })
            .collect()
    }

    fn history(&self) -> Result<RecordBatch> {
        let metadata = self.table.metadata();
        let mut ancestors = std::collections::HashSet::new();
        let mut next = metadata.current_snapshot_id();
        while let Some(id) = next.filter(|id| ancestors.insert(*id)) {
            next = metadata
                .snapshot_by_id(id)
                .and_then(|s| s.parent_snapshot_id());
        }
        let log = metadata.history();
        let parent = |id: i64| {
            metadata
                .snapshot_by_id(id)
                .and_then(|s| s.parent_snapshot_id())
        };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(
                TimestampMillisecondArray::from_iter_values(log.iter().map(|e| e.timestamp_ms))
                    .with_timezone("UTC"),
            ),
            Arc::new(Int64Array::from_iter_values(
                log.iter().map(|e| e.snapshot_id),
            )),
            Arc::new(Int64Array::from_iter(
                log.iter().map(|e| parent(e.snapshot_id)),
            )),
            Arc::new(BooleanArray::from_iter(
                log.iter().map(|e| Some(ancestors.contains(&e.snapshot_id))),
            )),
        ];
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }

    /// The live data and delete files of the statement's snapshot, as (content, path,
    /// format, spec id, partition, records, bytes).
    async fn live_files(&self) -> Result<Vec<FileRow>> {
        let metadata = self.table.metadata();
        let Some(snapshot) = self.snapshot_id.and_then(|id| metadata.snapshot_by_id(id)) else {
            return Ok(Vec::new());
        };
        let list = self
            .table
            .manifest_list_reader(snapshot)
            .load()
            .await
            .map_err(|e| self.error(e))?;
        let mut rows = Vec::new();
        for manifest_file in list.entries() {
            let manifest = manifest_file
                .load_manifest(self.table.file_io())
                .await
                .map_err(|e| self.error(e))?;
            let spec_id = manifest_file.partition_spec_id;
            for entry in manifest.entries().iter().filter(|e| e.is_alive()) {
                let file = entry.data_file();
                rows.push(FileRow {
                    content: file.content_type() as i32,
                    path: file.file_path().to_string(),
                    format: file.file_format().to_string().to_uppercase(),
                    spec_id,
                    partition: self.partition_text(spec_id, file.partition()),
                    records: file.record_count() as i64,
                    bytes: file.file_size_in_bytes() as i64,
                });
            }
        }
        rows.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(rows)
    }

    /// A file's partition as Trino prints a row, `{region=EU, day=2024-01-01}`; `None` for an
    /// unpartitioned spec.
    fn partition_text(&self, spec_id: i32, values: &iceberg::spec::Struct) -> Option<String> {
        let metadata = self.table.metadata();
        let spec = metadata.partition_spec_by_id(spec_id)?;
        if spec.fields().is_empty() {
            return None;
        }
        let types = spec.partition_type(metadata.current_schema()).ok();
        let parts: Vec<String> = spec
            .fields()
            .iter()
            .zip(values.iter())
            .enumerate()
            .map(|(i, (field, value))| {
                let kind = types
                    .as_ref()
                    .and_then(|t| t.fields().get(i))
                    .and_then(|f| match f.field_type.as_ref() {
                        Type::Primitive(p) => Some(p.clone()),
                        _ => None,
                    });
                format!("{}={}", field.name, literal_text(value, kind.as_ref()))
            })
            .collect();
        Some(format!("{{{}}}", parts.join(", ")))
    }

    async fn files(&self) -> Result<RecordBatch> {
        let rows = self.live_files().await?;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.content))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.path))),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| &r.format),
            )),
            Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.spec_id))),
            Arc::new(StringArray::from_iter(
                rows.iter().map(|r| r.partition.as_deref()),
            )),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.records))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.bytes))),
        ];
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }

    /// Data files (not delete files) grouped by partition, as Trino's `$partitions`.
    async fn partitions(&self) -> Result<RecordBatch> {
        let mut groups: BTreeMap<Option<String>, (i64, i64, i64)> = BTreeMap::new();
        for row in self
            .live_files()
            .await?
            .into_iter()
            .filter(|r| r.content == 0)
        {
            let group = groups.entry(row.partition).or_default();
            group.0 += row.records;
            group.1 += 1;
            group.2 += row.bytes;
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter(groups.keys().map(|k| k.as_deref()))),
            Arc::new(Int64Array::from_iter_values(groups.values().map(|g| g.0))),
            Arc::new(Int64Array::from_iter_values(groups.values().map(|g| g.1))),
            Arc::new(Int64Array::from_iter_values(groups.values().map(|g| g.2))),
        ];
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

struct FileRow {
    content: i32,
    path: String,
    format: String,
    spec_id: i32,
    partition: Option<String>,
    records: i64,
    bytes: i64,
}

/// A partition value as text; dates and timestamps as dates and times.
fn literal_text(value: Option<&Literal>, kind: Option<&PrimitiveType>) -> String {
    let Some(Literal::Primitive(value)) = value else {
        return value.map_or("NULL".into(), |v| format!("{v:?}"));
    };
    match (value, kind) {
        (PrimitiveLiteral::Int(days), Some(PrimitiveType::Date)) => {
            chrono::NaiveDate::from_num_days_from_ce_opt(*days + 719_163)
                .map_or(days.to_string(), |d| d.to_string())
        }
        (
            PrimitiveLiteral::Long(us),
            Some(PrimitiveType::Timestamp | PrimitiveType::Timestamptz),
        ) => chrono::DateTime::from_timestamp_micros(*us)
            .map_or(us.to_string(), |t| t.naive_utc().to_string()),
        (PrimitiveLiteral::Boolean(v), _) => v.to_string(),
        (PrimitiveLiteral::Int(v), _) => v.to_string(),
        (PrimitiveLiteral::Long(v), _) => v.to_string(),
        (PrimitiveLiteral::Float(v), _) => v.to_string(),
        (PrimitiveLiteral::Double(v), _) => v.to_string(),
        (PrimitiveLiteral::String(v), _) => v.clone(),
        (PrimitiveLiteral::Int128(v), _) => v.to_string(),
        (PrimitiveLiteral::UInt128(v), _) => v.to_string(),
        (other, _) => format!("{other:?}"),
    }
}

#[async_trait]
impl RowSource for MetadataTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    async fn rows(&self) -> Result<Vec<RecordBatch>> {
        self.compute().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_tables_are_named_as_in_trino() {
        for (name, kind) in MetadataKind::ALL {
            let full = format!("orders${name}");
            let parsed = MetadataKind::parse_name(&full).expect(name);
            assert_eq!(
                (parsed.table, parsed.metadata_table),
                ("orders", Some(kind))
            );
        }
        let err = MetadataKind::parse_name("orders$nope").expect_err("unknown");
        assert!(
            err.contains("$snapshots, $history, $manifests, $files, $partitions"),
            "{err}"
        );
    }
}
