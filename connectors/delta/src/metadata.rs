//! [`Metadata`]: what a `delta` catalog holds — its listings (schemas are the subdirectories
//! of `location`, tables theirs, plus the `[tables]` entries) — and the loading of a table's
//! log at a version, through the catalog's own object stores. Every read of a log is bounded
//! by `timeout_seconds`.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Arc, Once};
use std::time::Duration;

use braid_connector_spi::{
    CatalogStores, ConnectorError, Listing, TableDirectories, TableVersion, location_url,
    subdirectory,
};
use datafusion::arrow::datatypes::Schema;
use deltalake_core::kernel::StructField;
use deltalake_core::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake_core::logstore::{
    LogStore, LogStoreFactory, ObjectStoreRef, StorageConfig, default_logstore, logstore_factories,
};
use deltalake_core::operations::create::CreateBuilder;
use deltalake_core::protocol::SaveMode;
use deltalake_core::{DeltaResult, DeltaTable, DeltaTableBuilder, DeltaTableError};
use futures::StreamExt;
use object_store::path::Path;
use parking_lot::RwLock;
use url::Url;

use crate::config::DeltaConfig;

/// The schemas and tables of one `delta` catalog.
#[derive(Debug)]
pub struct Metadata {
    catalog: String,
    config: DeltaConfig,
    stores: Arc<CatalogStores>,
    found: TableDirectories,
    /// Schemas made by `CREATE SCHEMA`: listed (until the coordinator restarts) before a table
    /// gives them a directory an object store lists.
    created: RwLock<BTreeSet<String>>,
}

/// The most schemas `CREATE SCHEMA` keeps in memory.
const MAX_CREATED_SCHEMAS: usize = 1000;

impl Metadata {
    pub fn new(catalog: &str, config: DeltaConfig) -> Result<Self, ConnectorError> {
        let root = config.location.as_deref().map(location_url).transpose()?;
        for (name, entry) in &config.tables {
            location_url(&entry.location).map_err(|e| ConnectorError::Config {
                message: format!("catalog '{catalog}', table '{name}': {e}"),
            })?;
        }
        register_s3_log_store();
        let stores = Arc::new(CatalogStores::new(catalog, config.s3.clone()));
        Ok(Self {
            catalog: catalog.to_string(),
            found: TableDirectories::new(stores.clone(), root),
            created: RwLock::new(BTreeSet::new()),
            config,
            stores,
        })
    }

    pub fn catalog(&self) -> &str {
        &self.catalog
    }

    pub fn config(&self) -> &DeltaConfig {
        &self.config
    }

    pub fn stores(&self) -> &Arc<CatalogStores> {
        &self.stores
    }

    /// The schemas, as last listed, and those of the `[tables]` entries.
    pub fn schemas(&self) -> Vec<String> {
        let mut names = self.found.schemas();
        names.extend(self.named().map(|(schema, _)| schema.to_string()));
        names.extend(self.created.read().iter().cloned());
        names.into_iter().collect()
    }

    /// The tables of `schema`, as last listed, and the named ones.
    pub fn tables(&self, schema: &str) -> Vec<String> {
        let mut names = self.found.tables(schema);
        names.extend(
            self.named()
                .filter(|(s, _)| *s == schema)
                .map(|(_, t)| t.to_string()),
        );
        names.into_iter().collect()
    }

    fn named(&self) -> impl Iterator<Item = (&str, &str)> {
        self.config.tables.keys().filter_map(|n| n.split_once('.'))
    }

    pub async fn refresh(&self, listing: Listing<'_>) -> Result<(), ConnectorError> {
        self.found.refresh(listing).await
    }

    /// `CREATE SCHEMA schema`: `location`'s `schema/` (a directory on local disk; on an object
    /// store, a prefix its first table makes).
    pub async fn create_schema(&self, schema: &str) -> Result<(), ConnectorError> {
        let Some(url) = self.found.root().map(|root| subdirectory(root, schema)) else {
            return Err(ConnectorError::Unsupported {
                catalog: self.catalog.clone(),
                kind: crate::KIND,
                operation: format!("CREATE SCHEMA '{schema}' in a catalog without a location"),
            });
        };
        if let Ok(dir) = url.to_file_path() {
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(|e| ConnectorError::Source {
                    catalog: self.catalog.clone(),
                    message: format!("schema '{schema}' at '{url}': {e}"),
                })?;
        }
        let mut created = self.created.write();
        if created.len() >= MAX_CREATED_SCHEMAS {
            created.clear();
        }
        created.insert(schema.to_string());
        Ok(())
    }

    /// The directory of `schema.table`: its `[tables]` entry, else `location`'s
    /// `schema/table/`.
    pub fn locate(&self, schema: &str, table: &str) -> Result<Option<Url>, ConnectorError> {
        match self.config.tables.get(&format!("{schema}.{table}")) {
            Some(entry) => Ok(Some(as_directory(location_url(&entry.location)?))),
            None => Ok(self.found.table_url(schema, table)),
        }
    }

    /// `schema.table` at `version` (the latest without one), its log read but not its file
    /// list; `None` when there is no such directory, or it holds no Delta table and was never
    /// listed as one.
    pub async fn load(
        &self,
        schema: &str,
        table: &str,
        version: Option<TableVersion>,
    ) -> Result<Option<DeltaTable>, ConnectorError> {
        let name = format!("{schema}.{table}");
        let Some(url) = self.find(schema, table).await? else {
            return Ok(None);
        };
        let mut delta = self
            .table_at(&url)
            .map_err(|e| self.error(&name, &url, e))?;
        let loaded = self
            .bounded(&name, &url, async {
                match version {
                    None => delta.load().await,
                    Some(TableVersion::Version(v)) => match u64::try_from(v) {
                        Ok(v) => delta.load_version(v).await,
                        Err(_) => Err(DeltaTableError::InvalidVersion(0)),
                    },
                    Some(TableVersion::Timestamp(ms)) => {
                        let at = chrono::DateTime::from_timestamp_millis(ms)
                            .ok_or_else(|| DeltaTableError::Generic(format!("time {ms}")))?;
                        delta.load_with_datetime(at).await
                    }
                }
            })
            .await;
        match loaded {
            Ok(()) => {}
            Err(DeltaTableError::NotATable(_)) => {
                return Err(self.message(
                    &name,
                    format!("'{url}' holds no Delta table (no commits under _delta_log/)"),
                ));
            }
            Err(e) => {
                // A version past the latest (or before the first kept) fails in the kernel
                // with a message of its own: say what Trino says.
                if let Some(TableVersion::Version(v)) = version {
                    let latest = self.bounded(&name, &url, delta.get_latest_version()).await;
                    if latest.is_ok_and(|latest| u64::try_from(v).map_or(true, |v| v > latest)) {
                        return Err(self.no_version(&name, version));
                    }
                }
                return Err(self.error(&name, &url, format!("reading its log (_delta_log/): {e}")));
            }
        }
        // deltalake loads the first version for a time before it; Trino says there is none.
        if let Some(TableVersion::Timestamp(ms)) = version {
            let snapshot = delta.snapshot().map_err(|e| self.error(&name, &url, e))?;
            let first = snapshot.version_timestamp(snapshot.version());
            if first.is_some_and(|committed| committed > ms) {
                return Err(self.no_version(&name, version));
            }
        }
        Ok(Some(delta))
    }

    /// The directory of `schema.table`, if it is a table: named in the catalog file, listed as
    /// one, or holding a `_delta_log/` (a table made since the last listing).
    pub async fn find(&self, schema: &str, table: &str) -> Result<Option<Url>, ConnectorError> {
        let Some(url) = self.locate(schema, table)? else {
            return Ok(None);
        };
        let name = format!("{schema}.{table}");
        let known = self.config.tables.contains_key(&name) || self.found.contains(schema, table);
        if known || self.has_log(&name, &url).await? {
            return Ok(Some(url));
        }
        Ok(None)
    }

    /// Whether the directory at `url` holds a `_delta_log/` with anything in it.
    async fn has_log(&self, name: &str, url: &Url) -> Result<bool, ConnectorError> {
        let error = |e: &dyn std::fmt::Display| self.error(name, url, e);
        let store = self.stores.store(url)?;
        let log = log_path(url).map_err(|e| error(&e))?;
        let first = self
            .bounded(name, url, async {
                Ok(store.list(Some(&log)).next().await.transpose()?)
            })
            .await
            .map_err(|e| error(&e))?;
        Ok(first.is_some())
    }

    /// `CREATE TABLE schema.table` (and the table of `CREATE TABLE AS`): version 0 of a Delta
    /// table at `location`'s `schema/table/`, with `columns`.
    pub async fn create_table(
        &self,
        schema: &str,
        table: &str,
        columns: &Schema,
    ) -> Result<(), ConnectorError> {
        let name = format!("{schema}.{table}");
        let Some(url) = self.locate(schema, table)? else {
            return Err(ConnectorError::Unsupported {
                catalog: self.catalog.clone(),
                kind: crate::KIND,
                operation: format!(
                    "CREATE TABLE '{name}' in a catalog without a location (name it in [tables])"
                ),
            });
        };
        let kernel: deltalake_core::kernel::StructType = columns
            .try_into_kernel()
            .map_err(|e| self.message(&name, format!("unsupported columns: {e}")))?;
        let fields: Vec<StructField> = kernel.fields().cloned().collect();
        // The kernel wants a local table's directory to exist (an object store has none).
        if let Ok(dir) = url.to_file_path() {
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(|e| self.error(&name, &url, e))?;
        }
        let log_store = self
            .table_at(&url)
            .map_err(|e| self.error(&name, &url, e))?
            .log_store();
        let created = self
            .bounded(&name, &url, async {
                CreateBuilder::new()
                    .with_log_store(log_store)
                    .with_table_name(table)
                    .with_columns(fields)
                    .with_save_mode(SaveMode::ErrorIfExists)
                    .await
                    .map(|_| ())
            })
            .await;
        match created {
            Ok(()) => Ok(()),
            Err(e) if e.to_string().contains("already exists") => {
                Err(ConnectorError::TableExists {
                    catalog: self.catalog.clone(),
                    schema: schema.to_string(),
                    table: table.to_string(),
                })
            }
            Err(e) => Err(self.error(&name, &url, e)),
        }
    }

    /// A table handle at `url` reading through the catalog's stores (not yet loaded).
    fn table_at(&self, url: &Url) -> DeltaResult<DeltaTable> {
        let store = self
            .stores
            .store(url)
            .map_err(|e| DeltaTableError::Generic(e.to_string()))?;
        DeltaTableBuilder::from_url(url.clone())?
            .with_storage_backend(store, url.clone())
            .without_files()
            .build()
    }

    /// `work`, bounded by `timeout_seconds`.
    pub async fn bounded<T>(
        &self,
        name: &str,
        url: &Url,
        work: impl Future<Output = DeltaResult<T>>,
    ) -> DeltaResult<T> {
        let limit = Duration::from_secs(self.config.timeout_seconds);
        tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
            Err(DeltaTableError::Generic(format!(
                "reading the log of table '{name}' at '{url}' took over {}s (timeout_seconds)",
                limit.as_secs()
            )))
        })
    }

    fn no_version(&self, name: &str, version: Option<TableVersion>) -> ConnectorError {
        self.message(
            name,
            format!(
                "has no version {}",
                version.map_or_else(String::new, TableVersion::describe)
            ),
        )
    }

    pub fn error(&self, name: &str, url: &Url, e: impl std::fmt::Display) -> ConnectorError {
        // The kernel's errors carry a backtrace after the message when one was captured.
        let e = e.to_string();
        let e = e.split("\n   0: ").next().unwrap_or_default();
        let message = match url.scheme() {
            "s3" | "s3a" => format!("at '{url}' (endpoint {}): {e}", self.stores.endpoint()),
            _ => format!("at '{url}': {e}"),
        };
        self.message(name, message)
    }

    pub fn message(&self, name: &str, message: String) -> ConnectorError {
        ConnectorError::Source {
            catalog: self.catalog.clone(),
            message: format!("table '{name}' {message}"),
        }
    }
}

/// The object-store path of the log of the table at `url`.
pub fn log_path(url: &Url) -> Result<Path, object_store::path::Error> {
    Ok(Path::from_url_path(url.path())?.join("_delta_log"))
}

/// `url` as a directory (a table is one, so its files resolve under it).
fn as_directory(mut url: Url) -> Url {
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

/// deltalake knows the log stores of `file://` and `memory://` only (S3's is in its `aws`
/// crate, with DynamoDB locking Braid does not use). Braid's S3 stores support conditional
/// puts, which the default log store commits with: register it for `s3://` and `s3a://`, once
/// per process.
fn register_s3_log_store() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for scheme in ["s3://", "s3a://"] {
            if let Ok(url) = Url::parse(scheme) {
                logstore_factories().insert(url, Arc::new(ConditionalPutLogStore));
            }
        }
    });
}

#[derive(Debug)]
struct ConditionalPutLogStore;

impl LogStoreFactory for ConditionalPutLogStore {
    fn with_options(
        &self,
        prefixed_store: ObjectStoreRef,
        root_store: ObjectStoreRef,
        location: &Url,
        options: &StorageConfig,
    ) -> DeltaResult<Arc<dyn LogStore>> {
        Ok(default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))
    }
}
