//! [`History`]: `"t$history"`, Trino's Delta Lake metadata table — one row per commit of the
//! table's log, newest first, read from the commit files when a statement scans it.

use std::sync::Arc;

use async_trait::async_trait;
use braid_connector_spi::{ConnectorError, RowSource};
use datafusion::arrow::array::Array;
use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Int64Builder, MapBuilder, RecordBatch, StringBuilder,
    TimestampMillisecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::error::Result;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use object_store::path::Path;
use serde_json::Value;
use url::Url;

use crate::metadata::{Metadata, log_path};

/// The commits read at most, newest first (a log is cleaned up after 30 days by default).
const MAX_COMMITS: usize = 10_000;

/// The `$history` table of one Delta table.
#[derive(Debug)]
pub struct History {
    metadata: Arc<Metadata>,
    /// `schema.table`.
    name: String,
    url: Url,
    schema: SchemaRef,
}

impl History {
    pub fn new(metadata: Arc<Metadata>, name: String, url: Url) -> Self {
        // `map(varchar, varchar)`, as the builder makes it.
        let parameters = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new())
            .finish()
            .data_type()
            .clone();
        let schema = Schema::new(vec![
            Field::new("version", DataType::Int64, false),
            Field::new(
                "timestamp",
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                true,
            ),
            Field::new("user_id", DataType::Utf8, true),
            Field::new("user_name", DataType::Utf8, true),
            Field::new("operation", DataType::Utf8, true),
            Field::new("operation_parameters", parameters, true),
            Field::new("client_version", DataType::Utf8, true),
            Field::new("read_version", DataType::Int64, true),
            Field::new("isolation_level", DataType::Utf8, true),
            Field::new("is_blind_append", DataType::Boolean, true),
        ]);
        Self {
            metadata,
            name,
            url,
            schema: Arc::new(schema),
        }
    }

    /// The `commitInfo` of each commit file, newest first, with its version.
    async fn commits(&self) -> Result<Vec<(i64, Option<Value>)>, ConnectorError> {
        let error = |e: &dyn std::fmt::Display| self.metadata.error(&self.name, &self.url, e);
        let store = self.metadata.stores().store(&self.url)?;
        let log = log_path(&self.url).map_err(|e| error(&e))?;
        let listed = self
            .metadata
            .bounded(&self.name, &self.url, async {
                Ok(store.list(Some(&log)).try_collect::<Vec<_>>().await?)
            })
            .await
            .map_err(|e| error(&e))?;
        let mut versions: Vec<(i64, Path)> = listed
            .into_iter()
            .filter_map(|meta| {
                let file = meta.location.filename()?;
                let version = file.strip_suffix(".json")?.parse().ok()?;
                Some((version, meta.location))
            })
            .collect();
        versions.sort_unstable_by_key(|(version, _)| std::cmp::Reverse(*version));
        versions.truncate(MAX_COMMITS);
        let reads = versions.into_iter().map(|(version, path)| {
            let store = store.clone();
            async move {
                let bytes = store.get(&path).await?.bytes().await?;
                Ok::<_, object_store::Error>((version, commit_info(&bytes)))
            }
        });
        self.metadata
            .bounded(&self.name, &self.url, async {
                Ok(futures::stream::iter(reads)
                    .buffered(8)
                    .try_collect::<Vec<_>>()
                    .await?)
            })
            .await
            .map_err(|e| error(&e))
    }

    fn batch(&self, commits: &[(i64, Option<Value>)]) -> Result<RecordBatch> {
        let mut version = Int64Builder::new();
        let mut timestamp = TimestampMillisecondBuilder::new().with_timezone("UTC");
        let mut user_id = StringBuilder::new();
        let mut user_name = StringBuilder::new();
        let mut operation = StringBuilder::new();
        let mut parameters = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        let mut client = StringBuilder::new();
        let mut read_version = Int64Builder::new();
        let mut isolation = StringBuilder::new();
        let mut blind = BooleanBuilder::new();
        let null = Value::Null;
        for (v, info) in commits {
            let field = |key: &str| info.as_ref().and_then(|i| i.get(key)).unwrap_or(&null);
            version.append_value(*v);
            timestamp.append_option(field("timestamp").as_i64());
            user_id.append_option(field("userId").as_str());
            user_name.append_option(field("userName").as_str());
            operation.append_option(field("operation").as_str());
            match field("operationParameters").as_object() {
                Some(map) => {
                    for (key, value) in map {
                        parameters.keys().append_value(key);
                        match value {
                            Value::String(text) => parameters.values().append_value(text),
                            Value::Null => parameters.values().append_null(),
                            other => parameters.values().append_value(other.to_string()),
                        }
                    }
                    parameters.append(true)?;
                }
                None => parameters.append(false)?,
            }
            client.append_option(field("engineInfo").as_str());
            read_version.append_option(field("readVersion").as_i64());
            isolation.append_option(field("isolationLevel").as_str());
            blind.append_option(field("isBlindAppend").as_bool());
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(version.finish()),
            Arc::new(timestamp.finish()),
            Arc::new(user_id.finish()),
            Arc::new(user_name.finish()),
            Arc::new(operation.finish()),
            Arc::new(parameters.finish()),
            Arc::new(client.finish()),
            Arc::new(read_version.finish()),
            Arc::new(isolation.finish()),
            Arc::new(blind.finish()),
        ];
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

/// The `commitInfo` action of a commit file (newline-delimited JSON actions), if it has one.
fn commit_info(bytes: &[u8]) -> Option<Value> {
    bytes
        .split(|b| *b == b'\n')
        .filter_map(|line| serde_json::from_slice::<Value>(line).ok())
        .find_map(|mut action| action.get_mut("commitInfo").map(Value::take))
}

#[async_trait]
impl RowSource for History {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    async fn rows(&self) -> Result<Vec<RecordBatch>> {
        Ok(vec![self.batch(&self.commits().await?)?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commit_info_of_a_commit_file_is_found() {
        let file = br#"{"protocol":{"minReaderVersion":1,"minWriterVersion":2}}
{"commitInfo":{"timestamp":1700000000000,"operation":"WRITE","operationParameters":{"mode":"Append"}}}
{"add":{"path":"a.parquet","size":1,"partitionValues":{},"modificationTime":0,"dataChange":true}}
"#;
        let info = commit_info(file).expect("commitInfo");
        assert_eq!(info["operation"], "WRITE");
        assert_eq!(commit_info(b"{\"add\":{}}\n"), None);
    }
}
