//! [`Metadata`]: what a `files` catalog holds. Schemas are the subdirectories of `location`,
//! tables theirs, plus the `[tables]` of the catalog file. Listings are kept in memory for
//! DataFusion's synchronous calls and refreshed before a statement lists them; a table is
//! resolved ([`ResolvedTable`]: its files' merged schema and its Hive-style `key=value`
//! partition columns) each time a statement names it, so new files are seen at once.

use std::collections::BTreeMap;
use std::sync::Arc;

use braid_connector_spi::{
    CatalogStores, ConnectorError, Listing, TableDirectories, location_url, percent_decode,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::Statistics;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::session_state::SessionState;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectMeta;
use object_store::path::Path;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::config::{CsvOptions, FilesConfig, Format, TableEntry};

/// The most tables `CREATE EXTERNAL TABLE` keeps in one catalog.
const MAX_CREATED_TABLES: usize = 10_000;

/// The most Parquet footers a scan's planning reads at once.
const FOOTER_READS: usize = 16;

/// The type of a partition column, inferred from its values as Hive-style paths write them:
/// `BIGINT` when every value is an integer, else `VARCHAR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PartitionType {
    Bigint,
    Varchar,
}

impl PartitionType {
    pub fn data_type(self) -> DataType {
        match self {
            PartitionType::Bigint => DataType::Int64,
            PartitionType::Varchar => DataType::Utf8,
        }
    }
}

/// Where a table's files are and how they are read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableFormat {
    pub format: Format,
    pub csv: CsvOptions,
}

impl TableFormat {
    /// The DataFusion format that reads (and infers the schema of) these files.
    pub fn file_format(&self) -> Arc<dyn FileFormat> {
        match self.format {
            Format::Parquet => Arc::new(ParquetFormat::default()),
            Format::Csv => Arc::new(
                CsvFormat::default()
                    .with_has_header(self.csv.header)
                    .with_delimiter(self.csv.delimiter_byte().unwrap_or(b',')),
            ),
        }
    }
}

/// A table as a statement sees it.
#[derive(Debug, Clone)]
pub struct ResolvedTable {
    /// `schema.table`.
    pub name: String,
    pub url: ListingTableUrl,
    pub format: TableFormat,
    /// The merged schema of the table's files (without partition columns).
    pub file_schema: SchemaRef,
    pub partitions: PartitionColumns,
    /// The table's non-empty files as listed when the statement named it, in path order: the
    /// scan reads from this list (no second listing), so its schema and files agree.
    pub files: Vec<TableFile>,
}

/// A table's partition columns: name and type, in path order.
pub type PartitionColumns = Vec<(String, PartitionType)>;

/// A data file of a table and its values of the partition columns, as its path writes them.
#[derive(Debug, Clone)]
pub struct TableFile {
    pub meta: ObjectMeta,
    pub partition_values: Vec<String>,
}

impl ResolvedTable {
    /// The partition columns as fields (never null, as a path always has a value).
    pub fn partition_fields(&self) -> Vec<Field> {
        self.partitions
            .iter()
            .map(|(name, kind)| Field::new(name, kind.data_type(), false))
            .collect()
    }

    /// The table's columns: its files' columns, then its partition columns.
    pub fn schema(&self) -> SchemaRef {
        let fields: Vec<Field> = self
            .file_schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .chain(self.partition_fields())
            .collect();
        Arc::new(Schema::new_with_metadata(
            fields,
            self.file_schema.metadata().clone(),
        ))
    }
}

/// The schemas and tables of one `files` catalog.
#[derive(Debug)]
pub struct Metadata {
    catalog: String,
    config: Arc<FilesConfig>,
    stores: Arc<CatalogStores>,
    /// Tables found under `location`, by schema, as last listed.
    found: TableDirectories,
    /// Tables made by `CREATE EXTERNAL TABLE`, by `schema.table`; kept on the coordinator
    /// until dropped or restarted (a scan carries all a worker needs).
    created: RwLock<BTreeMap<String, TableEntry>>,
    /// A session for listing and schema inference, reading through the catalog's stores.
    state: SessionState,
}

impl Metadata {
    pub fn new(
        catalog: &str,
        config: Arc<FilesConfig>,
        stores: Arc<CatalogStores>,
    ) -> Result<Self, ConnectorError> {
        let root = config.location.as_deref().map(location_url).transpose()?;
        let runtime = stores
            .runtime_env(&RuntimeEnv::default())
            .map_err(|e| source_error(catalog, e))?;
        let state = SessionStateBuilder::new().with_runtime_env(runtime).build();
        Ok(Self {
            catalog: catalog.to_string(),
            config,
            found: TableDirectories::new(stores.clone(), root),
            stores,
            created: RwLock::new(BTreeMap::new()),
            state,
        })
    }

    pub fn catalog(&self) -> &str {
        &self.catalog
    }

    pub fn config(&self) -> &FilesConfig {
        &self.config
    }

    pub fn stores(&self) -> &Arc<CatalogStores> {
        &self.stores
    }

    /// The schema names, as last listed, and those of the named tables.
    pub fn schemas(&self) -> Vec<String> {
        let mut names = self.found.schemas();
        names.extend(self.named().into_iter().map(|(schema, _)| schema));
        names.into_iter().collect()
    }

    /// The tables of `schema`, as last listed, and the named ones.
    pub fn tables(&self, schema: &str) -> Vec<String> {
        let mut names = self.found.tables(schema);
        names.extend(
            self.named()
                .into_iter()
                .filter(|(s, _)| s == schema)
                .map(|(_, t)| t),
        );
        names.into_iter().collect()
    }

    /// The `[tables]` of the catalog file and the created ones, as (schema, table).
    fn named(&self) -> Vec<(String, String)> {
        let created = self.created.read();
        self.config
            .tables
            .keys()
            .chain(created.keys())
            .filter_map(|name| name.split_once('.'))
            .map(|(schema, table)| (schema.to_string(), table.to_string()))
            .collect()
    }

    /// The `[tables]` entry or created table `schema.table`.
    fn entry(&self, name: &str) -> Option<TableEntry> {
        self.config
            .tables
            .get(name)
            .cloned()
            .or_else(|| self.created.read().get(name).cloned())
    }

    /// Adds `schema.table` (`CREATE EXTERNAL TABLE`).
    pub fn create_table(
        &self,
        schema: &str,
        table: &str,
        entry: TableEntry,
    ) -> Result<(), ConnectorError> {
        let name = format!("{schema}.{table}");
        let mut created = self.created.write();
        let exists = created.contains_key(&name)
            || self.config.tables.contains_key(&name)
            || self.found.contains(schema, table);
        if exists {
            return Err(ConnectorError::TableExists {
                catalog: self.catalog.clone(),
                schema: schema.to_string(),
                table: table.to_string(),
            });
        }
        if created.len() >= MAX_CREATED_TABLES {
            return Err(ConnectorError::Source {
                catalog: self.catalog.clone(),
                message: format!(
                    "{MAX_CREATED_TABLES} tables were created already: drop some, or name tables in the catalog file's [tables]"
                ),
            });
        }
        created.insert(name, entry);
        Ok(())
    }

    /// Drops `schema.table`, which exists: only a created table can be; one that the catalog
    /// file or `location` makes is refused.
    pub fn drop_table(&self, schema: &str, table: &str) -> Result<(), ConnectorError> {
        let name = format!("{schema}.{table}");
        if self.created.write().remove(&name).is_some() {
            return Ok(());
        }
        Err(ConnectorError::Unsupported {
            catalog: self.catalog.clone(),
            kind: crate::KIND,
            operation: format!(
                "DROP TABLE of '{name}', which its catalog file or location makes (remove the entry or the files)"
            ),
        })
    }

    /// Lists what `listing` needs from the store under `location`.
    pub async fn refresh(&self, listing: Listing<'_>) -> Result<(), ConnectorError> {
        self.found.refresh(listing).await
    }

    /// Where `schema.table` is and its format: a `[tables]` entry, else `location`'s
    /// `schema/table/` directory.
    fn locate(
        &self,
        schema: &str,
        table: &str,
    ) -> Result<Option<(Url, TableFormat)>, ConnectorError> {
        let default_csv = || self.config.csv.clone();
        if let Some(entry) = self.entry(&format!("{schema}.{table}")) {
            let url = match location_url(&entry.location) {
                // A single file keeps its name (no trailing slash).
                Ok(url) if !entry.location.ends_with('/') && has_extension(&entry.location) => {
                    let mut url = url;
                    let path = url.path().trim_end_matches('/').to_string();
                    url.set_path(&path);
                    url
                }
                other => other?,
            };
            let format = TableFormat {
                format: entry.format.unwrap_or(self.config.format),
                csv: entry.csv.clone().unwrap_or_else(default_csv),
            };
            return Ok(Some((url, format)));
        }
        Ok(self.found.table_url(schema, table).map(|url| {
            let format = TableFormat {
                format: self.config.format,
                csv: default_csv(),
            };
            (url, format)
        }))
    }

    /// `schema.table` with its files' schema and partition columns; `None` when there is no
    /// such directory or entry.
    pub async fn resolve(
        &self,
        schema: &str,
        table: &str,
    ) -> Result<Option<ResolvedTable>, ConnectorError> {
        let Some((url, format)) = self.locate(schema, table)? else {
            return Ok(None);
        };
        let name = format!("{schema}.{table}");
        let listing_url =
            ListingTableUrl::parse(url.as_str()).map_err(|e| self.table_error(&name, &url, e))?;
        let store = self.stores.store(&url)?;
        let extension = format.format.extension();
        let files: Vec<ObjectMeta> = listing_url
            .list_all_files(&self.state, store.as_ref(), extension)
            .await
            .map_err(|e| self.table_error(&name, &url, e))?
            .try_collect()
            .await
            .map_err(|e| self.table_error(&name, &url, e))?;
        if files.is_empty() {
            let known = self.entry(&name).is_some() || self.found.contains(schema, table);
            if known {
                return Err(ConnectorError::Source {
                    catalog: self.catalog.clone(),
                    message: format!("table '{name}' has no {extension} files under '{url}'"),
                });
            }
            return Ok(None);
        }
        let (partitions, mut files) = partition_columns(&listing_url, files)
            .map_err(|message| self.table_message(&name, message))?;
        // An empty file holds no rows, and no schema.
        files.retain(|f| f.meta.size > 0);
        files.sort_by(|a, b| a.meta.location.cmp(&b.meta.location));
        let non_empty: Vec<ObjectMeta> = files.iter().map(|f| f.meta.clone()).collect();
        let file_format = format.file_format();
        let file_schema = match file_format
            .infer_schema(&self.state, &store, &non_empty)
            .await
        {
            Ok(schema) => schema,
            // Name the file at fault: read them one by one.
            Err(e) => {
                for file in &non_empty {
                    if let Err(e) = file_format
                        .infer_schema(&self.state, &store, std::slice::from_ref(file))
                        .await
                    {
                        return Err(self.table_message(
                            &name,
                            format!("cannot read file '{}': {e}", file.location),
                        ));
                    }
                }
                return Err(self.table_error(&name, &url, e));
            }
        };
        if let Some(clash) = partitions
            .iter()
            .find(|(p, _)| file_schema.field_with_name(p).is_ok())
        {
            return Err(self.table_message(
                &name,
                format!(
                    "column '{}' is both in its files and a partition directory name",
                    clash.0
                ),
            ));
        }
        Ok(Some(ResolvedTable {
            name,
            url: listing_url,
            format,
            file_schema,
            partitions,
            files,
        }))
    }

    /// What the footers of `files` (Parquet files of `table`) say of their rows: the rows and
    /// each column's null count, summed, and its bounds, as inexact values (a footer may hold
    /// truncated ones). Read once per file: the catalog's footer cache keeps them, and the
    /// workers read the same files through their own.
    pub async fn parquet_statistics(
        &self,
        table: &ResolvedTable,
        files: &[&TableFile],
    ) -> Result<Statistics, ConnectorError> {
        let store = self.stores.store(table.url.as_ref())?;
        let format = ParquetFormat::default();
        // The reads are made before they are streamed: a stream holding the mapping closure
        // would make the caller's future not `Send` for every lifetime.
        let reads: Vec<_> = files
            .iter()
            .map(|file| {
                let (store, format, meta) = (store.clone(), &format, file.meta.clone());
                let schema = table.file_schema.clone();
                async move {
                    format
                        .infer_stats(&self.state, &store, schema, &meta)
                        .await
                        .map_err(|e| {
                            self.table_message(
                                &table.name,
                                format!("cannot read the footer of file '{}': {e}", meta.location),
                            )
                        })
                }
            })
            .collect();
        let per_file: Vec<Statistics> = futures::stream::iter(reads)
            .buffered(FOOTER_READS)
            .try_collect()
            .await?;
        let mut merged = Statistics::try_merge_iter(&per_file, &table.file_schema)
            .map_err(|e| self.table_message(&table.name, e.to_string()))?;
        for column in &mut merged.column_statistics {
            column.min_value = column.min_value.clone().to_inexact();
            column.max_value = column.max_value.clone().to_inexact();
        }
        Ok(merged)
    }

    fn table_error(&self, name: &str, url: &Url, e: impl std::fmt::Display) -> ConnectorError {
        self.table_message(name, format!("cannot list '{url}': {e}"))
    }

    fn table_message(&self, name: &str, message: String) -> ConnectorError {
        ConnectorError::Source {
            catalog: self.catalog.clone(),
            message: format!("table '{name}': {message}"),
        }
    }
}

fn has_extension(location: &str) -> bool {
    [Format::Parquet, Format::Csv]
        .iter()
        .any(|f| location.ends_with(f.extension()))
}

fn source_error(catalog: &str, e: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Source {
        catalog: catalog.to_string(),
        message: e.to_string(),
    }
}

/// The `key=value` directories between the table's directory and its files: the same keys, in
/// the same order, for every file, and each key's type from its values. Returns the columns and
/// the files with their (decoded) values.
fn partition_columns(
    table: &ListingTableUrl,
    files: Vec<ObjectMeta>,
) -> Result<(PartitionColumns, Vec<TableFile>), String> {
    let mut keys: Option<(Vec<String>, Path)> = None;
    let mut integers: Vec<bool> = Vec::new();
    let mut listed = Vec::with_capacity(files.len());
    for meta in files {
        let Some(parts) = table.strip_prefix(&meta.location) else {
            continue;
        };
        let parts: Vec<&str> = parts.collect();
        let (names, values): (Vec<String>, Vec<String>) = parts[..parts.len().saturating_sub(1)]
            .iter()
            .filter_map(|part| part.split_once('='))
            .map(|(key, value)| (percent_decode(key), percent_decode(value)))
            .unzip();
        match &keys {
            None => {
                integers = vec![true; names.len()];
                keys = Some((names, meta.location.clone()));
            }
            Some((known, first)) if *known != names => {
                return Err(format!(
                    "its files are partitioned differently: '{first}' by [{}], '{}' by [{}]",
                    known.join(", "),
                    meta.location,
                    names.join(", ")
                ));
            }
            Some(_) => {}
        }
        for (integer, value) in integers.iter_mut().zip(&values) {
            *integer &= value.parse::<i64>().is_ok();
        }
        listed.push(TableFile {
            meta,
            partition_values: values,
        });
    }
    let columns = keys
        .map(|(names, _)| names)
        .unwrap_or_default()
        .into_iter()
        .zip(integers)
        .map(|(key, integer)| {
            let kind = if integer {
                PartitionType::Bigint
            } else {
                PartitionType::Varchar
            };
            (key, kind)
        })
        .collect();
    Ok((columns, listed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(path: &str) -> ObjectMeta {
        ObjectMeta {
            location: Path::from(path),
            last_modified: chrono::DateTime::default(),
            size: 1,
            e_tag: None,
            version: None,
        }
    }

    #[test]
    fn partition_columns_are_typed_by_their_values() {
        let table = ListingTableUrl::parse("s3://b/t/").expect("url");
        let files = vec![
            meta("t/year=2024/region=EU/a.parquet"),
            meta("t/year=2025/region=US/b.parquet"),
        ];
        let (columns, files) = partition_columns(&table, files).expect("partitions");
        assert_eq!(files[1].partition_values, ["2025", "US"]);
        assert_eq!(
            columns,
            vec![
                ("year".to_string(), PartitionType::Bigint),
                ("region".to_string(), PartitionType::Varchar)
            ]
        );
        let mixed = vec![meta("t/year=2024/a.parquet"), meta("t/region=EU/b.parquet")];
        let err = partition_columns(&table, mixed).expect_err("mixed");
        assert!(err.contains("t/region=EU/b.parquet"), "{err}");
        assert!(
            partition_columns(&table, vec![meta("t/a.parquet")])
                .expect("none")
                .0
                .is_empty()
        );
    }
}
