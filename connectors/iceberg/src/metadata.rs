//! [`Metadata`]: the Iceberg catalog client of one Braid catalog, and its listings.
//!
//! The client (iceberg's SQL or REST catalog) connects on first use, so a coordinator starts
//! while the catalog database is down, and each statement that needs it tries again. Every round
//! trip is bounded by the catalog file's `timeout_seconds`, and its errors name the catalog and
//! the database or server (never its password).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use braid_connector_spi::{CatalogStores, ConnectorError, Listing};
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::common::ColumnStatistics;
use iceberg::arrow::arrow_schema_to_schema_auto_assign_ids;
use iceberg::spec::Schema as IcebergSchema;
use iceberg::table::Table;
use iceberg::{Catalog, CatalogBuilder, ErrorKind, NamespaceIdent, TableCreation, TableIdent};
use iceberg_catalog_rest::RestCatalogBuilder;
use iceberg_catalog_sql::SqlCatalogBuilder;
use parking_lot::RwLock;
use secrecy::ExposeSecret;
use tokio::sync::Mutex;

use crate::config::{CatalogType, IcebergConfig};
use crate::stats::{self, SnapshotColumnsCache};
use crate::storage::StoresFactory;
use crate::v0_catalog;

/// The Iceberg catalog behind one Braid catalog.
#[derive(Debug)]
pub struct Metadata {
    catalog: String,
    config: Arc<IcebergConfig>,
    stores: Arc<CatalogStores>,
    client: Mutex<Option<Arc<dyn Catalog>>>,
    /// Namespaces and their tables, as last listed.
    found: RwLock<BTreeMap<String, BTreeSet<String>>>,
    /// What the manifests of snapshots scanned lately say of their columns.
    snapshot_columns: SnapshotColumnsCache,
}

impl Metadata {
    pub fn new(catalog: &str, config: Arc<IcebergConfig>, stores: Arc<CatalogStores>) -> Self {
        Self {
            catalog: catalog.to_string(),
            config,
            stores,
            client: Mutex::new(None),
            found: RwLock::new(BTreeMap::new()),
            snapshot_columns: SnapshotColumnsCache::default(),
        }
    }

    pub fn catalog(&self) -> &str {
        &self.catalog
    }

    pub fn config(&self) -> &IcebergConfig {
        &self.config
    }

    pub fn stores(&self) -> &Arc<CatalogStores> {
        &self.stores
    }

    /// The namespaces as last listed.
    pub fn schemas(&self) -> Vec<String> {
        self.found.read().keys().cloned().collect()
    }

    /// The tables of `schema` as last listed.
    pub fn tables(&self, schema: &str) -> Vec<String> {
        self.found
            .read()
            .get(schema)
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Lists the namespaces, and the tables `listing` asks for.
    pub async fn refresh(&self, listing: Listing<'_>) -> Result<(), ConnectorError> {
        let client = self.client().await?;
        let namespaces = self
            .round_trip("list the namespaces", client.list_namespaces(None))
            .await?;
        let old = self.found.read().clone();
        let mut found: BTreeMap<String, BTreeSet<String>> = namespaces
            .iter()
            .map(|ns| {
                let name = schema_name(ns);
                let tables = old.get(&name).cloned().unwrap_or_default();
                (name, tables)
            })
            .collect();
        let wanted: Vec<NamespaceIdent> = match listing {
            Listing::Schemas => Vec::new(),
            Listing::Tables { schema } => namespaces
                .into_iter()
                .filter(|ns| schema_name(ns) == schema)
                .collect(),
            Listing::All => namespaces,
        };
        for namespace in wanted {
            let tables = self
                .round_trip(
                    &format!("list the tables of '{}'", schema_name(&namespace)),
                    client.list_tables(&namespace),
                )
                .await?;
            found.insert(
                schema_name(&namespace),
                tables.into_iter().map(|t| t.name().to_string()).collect(),
            );
        }
        *self.found.write() = found;
        Ok(())
    }

    /// The table `schema.table` at its current metadata, or `None` when there is none.
    pub async fn load(&self, schema: &str, table: &str) -> Result<Option<Table>, ConnectorError> {
        let client = self.client().await?;
        let ident = TableIdent::new(namespace(schema), table.to_string());
        let what = format!("load table '{schema}.{table}'");
        match self.bounded(&what, client.load_table(&ident)).await? {
            Ok(table) => Ok(Some(table)),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::TableNotFound | ErrorKind::NamespaceNotFound
                ) =>
            {
                Ok(None)
            }
            Err(e) if e.kind() == ErrorKind::DataInvalid => Err(self.error(
                &format!("{what}: its current metadata file is not valid Iceberg metadata"),
                e,
            )),
            Err(e) => Err(self.error(&what, e)),
        }
    }

    /// `CREATE SCHEMA schema`: a namespace.
    pub async fn create_schema(&self, schema: &str) -> Result<(), ConnectorError> {
        let client = self.client().await?;
        self.round_trip(
            &format!("create namespace '{schema}'"),
            client.create_namespace(&namespace(schema), Default::default()),
        )
        .await?;
        self.found.write().entry(schema.to_string()).or_default();
        Ok(())
    }

    /// `CREATE TABLE schema.table` with `columns` (field ids assigned in order), unpartitioned,
    /// where the catalog puts new tables (under its warehouse).
    pub async fn create_table(
        &self,
        schema: &str,
        table: &str,
        columns: &Schema,
    ) -> Result<(), ConnectorError> {
        let what = format!("create table '{schema}.{table}'");
        let columns = Schema::new_with_metadata(
            columns
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_data_type(storable(f.data_type())))
                .collect::<Vec<_>>(),
            columns.metadata().clone(),
        );
        let iceberg_schema =
            arrow_schema_to_schema_auto_assign_ids(&columns).map_err(|e| self.error(&what, e))?;
        let creation = TableCreation::builder()
            .name(table.to_string())
            .schema(iceberg_schema)
            .build();
        let client = self.client().await?;
        self.round_trip(&what, client.create_table(&namespace(schema), creation))
            .await?;
        self.found
            .write()
            .entry(schema.to_string())
            .or_default()
            .insert(table.to_string());
        Ok(())
    }

    /// `DROP TABLE schema.table`: the catalog forgets it; its files stay.
    pub async fn drop_table(&self, schema: &str, table: &str) -> Result<(), ConnectorError> {
        let client = self.client().await?;
        let ident = TableIdent::new(namespace(schema), table.to_string());
        self.round_trip(
            &format!("drop table '{schema}.{table}'"),
            client.drop_table(&ident),
        )
        .await?;
        if let Some(tables) = self.found.write().get_mut(schema) {
            tables.remove(table);
        }
        Ok(())
    }

    /// The catalog client, connecting on first use (again after a failure).
    pub async fn client(&self) -> Result<Arc<dyn Catalog>, ConnectorError> {
        let mut client = self.client.lock().await;
        if let Some(client) = client.as_ref() {
            return Ok(client.clone());
        }
        let name = self
            .config
            .iceberg_catalog
            .clone()
            .unwrap_or_else(|| self.catalog.clone());
        let factory = Arc::new(StoresFactory::new(self.stores.clone()));
        let props = self.config.catalog_properties();
        let connected: Arc<dyn Catalog> = match self.config.catalog_type {
            CatalogType::Sql => {
                let uri = self.config.uri.expose_secret();
                let timeout = Duration::from_secs(self.config.timeout_seconds);
                match v0_catalog::add_iceberg_type(uri, timeout).await {
                    Ok(true) => tracing::info!(
                        catalog = %self.catalog,
                        "added column iceberg_type to the Iceberg SQL catalog's iceberg_tables (schema V0 to V1)"
                    ),
                    Ok(false) => {}
                    Err(e) => {
                        return Err(ConnectorError::Source {
                            catalog: self.catalog.clone(),
                            message: format!(
                                "cannot open the Iceberg catalog at {}: {e}",
                                self.config.uri_display()
                            ),
                        });
                    }
                }
                let builder = SqlCatalogBuilder::default().with_storage_factory(factory);
                Arc::new(
                    self.round_trip("connect", builder.load(name, props))
                        .await?,
                )
            }
            CatalogType::Rest => {
                let builder = RestCatalogBuilder::default().with_storage_factory(factory);
                Arc::new(
                    self.round_trip("connect", builder.load(name, props))
                        .await?,
                )
            }
        };
        *client = Some(connected.clone());
        Ok(connected)
    }

    /// The null counts and bounds of the columns of `table` (named `name`) at `snapshot_id`,
    /// read with `schema` (`arrow` its Arrow form), from its manifests the first time.
    pub async fn snapshot_columns(
        &self,
        name: &str,
        table: &Table,
        snapshot_id: i64,
        schema: &IcebergSchema,
        arrow: &Schema,
    ) -> Result<Arc<Vec<ColumnStatistics>>, ConnectorError> {
        let key = (table.metadata().uuid(), snapshot_id, schema.schema_id());
        if let Some(columns) = self.snapshot_columns.get(&key) {
            return Ok(columns);
        }
        let Some(snapshot) = table.metadata().snapshot_by_id(snapshot_id) else {
            return Ok(Arc::new(Vec::new()));
        };
        let what = format!("read the manifests of table '{name}'");
        let columns = self
            .round_trip(
                &what,
                stats::snapshot_columns(table, snapshot, schema, arrow),
            )
            .await?;
        let columns = Arc::new(columns);
        self.snapshot_columns.insert(key, columns.clone());
        Ok(columns)
    }

    /// `call` to the catalog within the catalog's timeout; an error names `what` failed.
    pub async fn round_trip<T>(
        &self,
        what: &str,
        call: impl Future<Output = iceberg::Result<T>>,
    ) -> Result<T, ConnectorError> {
        self.bounded(what, call)
            .await?
            .map_err(|e| self.error(what, e))
    }

    /// `call` within the catalog's timeout; only the timeout is this function's error.
    async fn bounded<T>(
        &self,
        what: &str,
        call: impl Future<Output = T>,
    ) -> Result<T, ConnectorError> {
        let timeout = Duration::from_secs(self.config.timeout_seconds);
        tokio::time::timeout(timeout, call)
            .await
            .map_err(|_| ConnectorError::Source {
                catalog: self.catalog.clone(),
                message: format!(
                    "cannot {what}: the Iceberg catalog at {} did not answer within {}s (timeout_seconds)",
                    self.config.uri_display(),
                    timeout.as_secs()
                ),
            })
    }

    /// An iceberg error as the connector's, naming the catalog and where it lives.
    pub fn error(&self, what: &str, e: iceberg::Error) -> ConnectorError {
        ConnectorError::Source {
            catalog: self.catalog.clone(),
            message: format!(
                "cannot {what} (Iceberg catalog at {}): {}",
                self.config.uri_display(),
                describe(&e)
            ),
        }
    }
}

/// An iceberg error in one line: its message and its sources (iceberg's `Display` spreads
/// them over several lines with a backtrace).
pub fn describe(e: &iceberg::Error) -> String {
    let mut text = e.message().to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The Arrow type Iceberg stores a column of `data_type` as (string and binary views as plain
/// strings and binaries).
fn storable(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
        DataType::BinaryView | DataType::LargeBinary => DataType::Binary,
        other => other.clone(),
    }
}

/// A namespace as a schema name: its levels joined by `.`.
fn schema_name(namespace: &NamespaceIdent) -> String {
    namespace.as_ref().join(".")
}

/// The namespace of a schema name.
fn namespace(schema: &str) -> NamespaceIdent {
    NamespaceIdent::from_vec(schema.split('.').map(str::to_string).collect())
        .unwrap_or_else(|_| NamespaceIdent::new(schema.to_string()))
}
