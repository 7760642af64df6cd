//! [`TableDescription`]: Trino's Kafka table description files, one JSON file per table in
//! `table_description_dir`:
//!
//! ```json
//! {
//!   "tableName": "orders", "schemaName": "sales", "topicName": "orders-v1",
//!   "key":     { "dataFormat": "raw", "fields": [{ "name": "id", "type": "BIGINT", "dataFormat": "LONG" }] },
//!   "message": { "dataFormat": "json", "fields": [
//!       { "name": "amount", "type": "DOUBLE", "mapping": "order/amount" },
//!       { "name": "at", "type": "TIMESTAMP", "mapping": "at", "dataFormat": "iso8601" } ] }
//! }
//! ```
//!
//! A file that does not parse, an unknown key, a type or format Braid does not know, or two
//! columns of one name is an error naming the file and what is wrong.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use braid_connector_spi::ConnectorError;
use serde::{Deserialize, Serialize};

use crate::columns::InternalColumn;
use crate::types::FieldType;

/// One table: a topic and how its keys and messages decode into columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TableDescription {
    pub table_name: String,
    /// The catalog's `default_schema` when absent.
    #[serde(default)]
    pub schema_name: Option<String>,
    pub topic_name: String,
    #[serde(default)]
    pub key: Option<FieldGroup>,
    #[serde(default)]
    pub message: Option<FieldGroup>,
}

/// How the key or the message of a record decodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FieldGroup {
    pub data_format: DataFormat,
    /// The Avro schema file, relative to the description's directory (`avro` only).
    #[serde(default)]
    pub data_schema: Option<String>,
    #[serde(default)]
    pub fields: Vec<FieldDescription>,
}

/// The decoders, as Trino names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataFormat {
    Raw,
    Csv,
    Json,
    Avro,
}

/// One column decoded from a key or a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FieldDescription {
    pub name: String,
    #[serde(
        rename = "type",
        deserialize_with = "field_type",
        serialize_with = "type_name"
    )]
    pub field_type: FieldType,
    /// Where the value is: a byte range (`raw`), a column index (`csv`), a path (`json`,
    /// `avro`).
    #[serde(default)]
    pub mapping: Option<String>,
    /// How the value is encoded: `LONG`, `INT`, ... (`raw`); `iso8601`,
    /// `milliseconds-since-epoch`, ... (`json` dates and times).
    #[serde(default)]
    pub data_format: Option<String>,
    /// The pattern of `custom-date-time`.
    #[serde(default)]
    pub format_hint: Option<String>,
    #[serde(default)]
    pub hidden: bool,
    #[serde(default)]
    pub comment: Option<String>,
}

fn type_name<S: serde::Serializer>(
    field_type: &FieldType,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(field_type)
}

fn field_type<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<FieldType, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(serde::de::Error::custom)
}

/// A table as the connector reads it: its description and the text of the Avro schema files
/// its key and message name. Travels in scan plans, so a worker decodes with exactly what the
/// coordinator planned with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DescribedTable {
    pub description: TableDescription,
    pub key_schema: Option<String>,
    pub message_schema: Option<String>,
}

impl DescribedTable {
    /// A topic with no description file: no fields, only the internal columns.
    pub fn undescribed(schema: &str, table: &str) -> Self {
        Self {
            description: TableDescription {
                table_name: table.to_string(),
                schema_name: Some(schema.to_string()),
                topic_name: table.to_string(),
                key: None,
                message: None,
            },
            key_schema: None,
            message_schema: None,
        }
    }

    /// The description in `file`, with the Avro schema files it names (relative to the
    /// file's directory); every decoder is built once so a bad mapping fails here.
    fn load(file: &Path, default_schema: &str) -> Result<Self, ConnectorError> {
        let error = |message: String| ConnectorError::Config {
            message: format!("{}: {message}", file.display()),
        };
        let text = std::fs::read_to_string(file).map_err(|e| error(e.to_string()))?;
        let description = TableDescription::parse(&text, file, default_schema)?;
        let dir = file.parent().unwrap_or(Path::new("."));
        let mut schemas = [None, None];
        for ((part, group), schema) in
            [("key", &description.key), ("message", &description.message)]
                .into_iter()
                .zip(&mut schemas)
        {
            let Some(group) = group else { continue };
            if let Some(name) = &group.data_schema {
                let path = dir.join(name);
                *schema =
                    Some(std::fs::read_to_string(&path).map_err(|e| {
                        error(format!("{part} 'dataSchema' {}: {e}", path.display()))
                    })?);
            }
            crate::decoder::RowDecoder::new(group, schema.as_deref())
                .map_err(|e| error(format!("{part}: {e}")))?;
        }
        let [key_schema, message_schema] = schemas;
        Ok(Self {
            description,
            key_schema,
            message_schema,
        })
    }
}

impl TableDescription {
    /// The description in `text`, from `file`, with `default_schema` where it names none.
    pub fn parse(text: &str, file: &Path, default_schema: &str) -> Result<Self, ConnectorError> {
        let error = |message: String| ConnectorError::Config {
            message: format!("{}: {message}", file.display()),
        };
        let mut description: TableDescription =
            serde_json::from_str(text).map_err(|e| error(e.to_string()))?;
        if description.schema_name.is_none() {
            description.schema_name = Some(default_schema.to_string());
        }
        description.check().map_err(error)?;
        Ok(description)
    }

    /// The schema the table is in.
    pub fn schema(&self) -> &str {
        self.schema_name.as_deref().unwrap_or_default()
    }

    /// The key's fields, then the message's.
    pub fn fields(&self) -> impl Iterator<Item = &FieldDescription> {
        [&self.key, &self.message]
            .into_iter()
            .flatten()
            .flat_map(|group| &group.fields)
    }

    fn check(&self) -> Result<(), String> {
        for (what, value) in [
            ("tableName", &self.table_name),
            ("topicName", &self.topic_name),
        ] {
            if value.trim().is_empty() {
                return Err(format!("'{what}' is empty"));
            }
        }
        let mut seen = BTreeMap::new();
        for field in self.fields() {
            let name = field.name.to_lowercase();
            if InternalColumn::named(&name).is_some() {
                return Err(format!(
                    "field '{}' has the name of an internal column: rename it",
                    field.name
                ));
            }
            if seen.insert(name, ()).is_some() {
                return Err(format!("two fields are named '{}'", field.name));
            }
        }
        for (part, group) in [("key", &self.key), ("message", &self.message)] {
            let Some(group) = group else { continue };
            if group.data_format == DataFormat::Avro && group.data_schema.is_none() {
                return Err(format!(
                    "'{part}' has dataFormat avro but no 'dataSchema' (the Avro schema file)"
                ));
            }
            for field in &group.fields {
                check_mapping(group.data_format, field)
                    .map_err(|e| format!("{part} field '{}': {e}", field.name))?;
            }
        }
        Ok(())
    }
}

/// Whether `field`'s mapping fits its decoder, as Trino requires it.
fn check_mapping(format: DataFormat, field: &FieldDescription) -> Result<(), String> {
    let mapping = field.mapping.as_deref();
    match format {
        DataFormat::Raw => {
            let Some(mapping) = mapping else {
                return Ok(()); // The whole key or message.
            };
            let (start, end) = match mapping.split_once(':') {
                Some((start, end)) => (start, Some(end)),
                None => (mapping, None),
            };
            let start: usize = start
                .trim()
                .parse()
                .map_err(|_| format!("mapping '{mapping}' is no byte range (start[:end])"))?;
            if let Some(end) = end {
                let end: usize = end
                    .trim()
                    .parse()
                    .map_err(|_| format!("mapping '{mapping}' is no byte range (start[:end])"))?;
                if end <= start {
                    return Err(format!("mapping '{mapping}' ends before it starts"));
                }
            }
            Ok(())
        }
        DataFormat::Csv => match mapping.map(|m| m.trim().parse::<usize>()) {
            Some(Ok(_)) => Ok(()),
            Some(Err(_)) => Err(format!(
                "mapping '{}' is no column index (0, 1, ...)",
                mapping.unwrap_or_default()
            )),
            None => Err("csv fields need a 'mapping': the column index".into()),
        },
        DataFormat::Json | DataFormat::Avro => match mapping {
            Some(path) if !path.trim().is_empty() => Ok(()),
            _ => Err("fields need a 'mapping': the path of the value (a/b/c)".into()),
        },
    }
}

/// Every `*.json` description in `dir`, in file-name order. Two files for one
/// `schema.table` are an error naming both.
pub fn load_descriptions(
    dir: &Path,
    default_schema: &str,
) -> Result<Vec<DescribedTable>, ConnectorError> {
    let config = |message: String| ConnectorError::Config { message };
    let entries = std::fs::read_dir(dir)
        .map_err(|e| config(format!("table_description_dir {}: {e}", dir.display())))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    let mut by_name: BTreeMap<(String, String), PathBuf> = BTreeMap::new();
    let mut tables = Vec::with_capacity(files.len());
    for file in files {
        let table = DescribedTable::load(&file, default_schema)?;
        let name = (
            table.description.schema().to_string(),
            table.description.table_name.clone(),
        );
        if let Some(first) = by_name.insert(name.clone(), file.clone()) {
            return Err(config(format!(
                "{} and {} both describe table '{}.{}'",
                first.display(),
                file.display(),
                name.0,
                name.1
            )));
        }
        tables.push(table);
    }
    Ok(tables)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<TableDescription, String> {
        TableDescription::parse(text, Path::new("etc/kafka/t.json"), "default")
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_trino_description_parses() {
        let description = parse(
            r#"{
              "tableName": "orders", "topicName": "orders-v1",
              "key": { "dataFormat": "raw", "fields": [
                { "name": "id", "type": "BIGINT", "dataFormat": "LONG", "mapping": "0:8" } ] },
              "message": { "dataFormat": "json", "fields": [
                { "name": "amount", "type": "DOUBLE", "mapping": "order/amount" },
                { "name": "at", "type": "TIMESTAMP", "mapping": "at", "dataFormat": "iso8601" },
                { "name": "note", "type": "VARCHAR(20)", "mapping": "note", "hidden": true,
                  "comment": "free text" } ] }
            }"#,
        )
        .expect("parse");
        assert_eq!(description.schema(), "default");
        assert_eq!(description.topic_name, "orders-v1");
        let names: Vec<_> = description.fields().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["id", "amount", "at", "note"]);
        let note = description.fields().last().expect("note");
        assert!(note.hidden);
        assert_eq!(note.field_type, FieldType::Varchar);
    }

    #[test]
    fn mistakes_name_the_file_and_the_field() {
        for (text, expected) in [
            (r#"{"tableName": "t"}"#, "missing field `topicName`"),
            (
                r#"{"tableName": "t", "topicName": "t", "mesage": {}}"#,
                "unknown field `mesage`",
            ),
            (
                r#"{"tableName": "t", "topicName": "t", "message": {"dataFormat": "protobuf"}}"#,
                "unknown variant `protobuf`",
            ),
            (
                r#"{"tableName": "t", "topicName": "t", "message": {"dataFormat": "json",
                   "fields": [{"name": "a", "type": "DECIMAL(3,1)", "mapping": "a"}]}}"#,
                "unsupported type 'DECIMAL(3,1)'",
            ),
            (
                r#"{"tableName": "t", "topicName": "t", "message": {"dataFormat": "csv",
                   "fields": [{"name": "a", "type": "BIGINT", "mapping": "first"}]}}"#,
                "message field 'a': mapping 'first' is no column index",
            ),
            (
                r#"{"tableName": "t", "topicName": "t", "message": {"dataFormat": "json",
                   "fields": [{"name": "a", "type": "BIGINT"}]}}"#,
                "message field 'a': fields need a 'mapping'",
            ),
            (
                r#"{"tableName": "t", "topicName": "t", "message": {"dataFormat": "avro"}}"#,
                "no 'dataSchema'",
            ),
            (
                r#"{"tableName": "t", "topicName": "t", "message": {"dataFormat": "json",
                   "fields": [{"name": "_key", "type": "BIGINT", "mapping": "k"}]}}"#,
                "field '_key' has the name of an internal column",
            ),
            (
                r#"{"tableName": "t", "topicName": "t",
                   "key": {"dataFormat": "raw", "fields": [{"name": "A", "type": "BIGINT"}]},
                   "message": {"dataFormat": "json", "fields": [{"name": "a", "type": "BIGINT", "mapping": "a"}]}}"#,
                "two fields are named 'a'",
            ),
            (
                r#"{"tableName": "t", "topicName": "t", "key": {"dataFormat": "raw",
                   "fields": [{"name": "a", "type": "BIGINT", "mapping": "8:4"}]}}"#,
                "key field 'a': mapping '8:4' ends before it starts",
            ),
        ] {
            let error = parse(text).expect_err(text);
            assert!(
                error.starts_with("etc/kafka/t.json: ") && error.contains(expected),
                "{error}"
            );
        }
    }

    #[test]
    fn a_directory_loads_in_order_and_duplicates_name_both_files() {
        let dir = tempfile::tempdir().expect("dir");
        let write = |name: &str, table: &str| {
            std::fs::write(
                dir.path().join(name),
                format!(r#"{{"tableName": "{table}", "schemaName": "s", "topicName": "{table}"}}"#),
            )
            .expect("write");
        };
        write("b.json", "second");
        write("a.json", "first");
        std::fs::write(dir.path().join("notes.txt"), "not a description").expect("write");
        let loaded = load_descriptions(dir.path(), "default").expect("load");
        let names: Vec<_> = loaded
            .iter()
            .map(|d| d.description.table_name.as_str())
            .collect();
        assert_eq!(names, ["first", "second"]);

        write("c.json", "first");
        let error = load_descriptions(dir.path(), "default")
            .expect_err("duplicate")
            .to_string();
        assert!(
            error.contains("a.json") && error.contains("c.json") && error.contains("'s.first'"),
            "{error}"
        );
        let missing = load_descriptions(&dir.path().join("nope"), "default")
            .expect_err("missing dir")
            .to_string();
        assert!(
            missing.contains("table_description_dir") && missing.contains("nope"),
            "{missing}"
        );
    }
}
