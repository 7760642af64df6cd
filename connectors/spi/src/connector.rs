//! The contract of a connector: [`ConnectorFactory`] (one per kind, registered once) makes a
//! [`Connector`] (one per catalog file); the connector hands DataFusion a catalog, a
//! [`ScanCodec`] for its scan nodes, optimizer rules for the coordinator's planner, and
//! optionally an [`InternalService`] that workers call on the coordinator.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::CatalogProvider;
use datafusion::error::DataFusionError;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::optimizer::OptimizerRule;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use serde::de::DeserializeOwned;

use crate::split::{Split, SplitPlanner, SplitStore, Splits};
use crate::{Capabilities, ConnectorError};

/// A logical optimizer rule a connector adds to the coordinator's planner.
pub type LogicalRule = Arc<dyn OptimizerRule + Send + Sync>;
/// A physical optimizer rule a connector adds to the coordinator's planner.
pub type PhysicalRule = Arc<dyn PhysicalOptimizerRule + Send + Sync>;

/// Makes the catalogs of one connector kind from their catalog files.
pub trait ConnectorFactory: Debug + Send + Sync {
    /// The kind, as written in `connector = "..."` (`tpch`, `memory`, `postgres`, ...).
    fn kind(&self) -> &'static str;

    /// The catalog `catalog` from its file's options (all keys but `connector`). An option
    /// error names the key ([`CatalogOptions::parse`] does).
    fn create(
        &self,
        catalog: &str,
        options: CatalogOptions,
        context: &ConnectorContext,
    ) -> Result<Arc<dyn Connector>, ConnectorError>;
}

/// What a statement is about to list of a catalog: see [`Connector::refresh_listings`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing<'a> {
    /// The schema names (`SHOW SCHEMAS`, resolving `catalog.schema.table`).
    Schemas,
    /// The schema names and the tables of one schema (`SHOW TABLES FROM catalog.schema`).
    Tables { schema: &'a str },
    /// Every schema and every table (`information_schema`, Flight SQL `GetTables`).
    All,
}

/// A configured catalog: one connector kind plus one catalog file's settings.
///
/// DataFusion asks a catalog for its schema and table names, and runs optimizer rules,
/// synchronously. A connector whose source is remote answers those calls from memory and never
/// waits on the network in them: the coordinator awaits [`Connector::refresh_listings`] before a
/// statement lists the catalog, and [`Connector::complete_rule_checks`] between a first
/// optimization of a plan and the one that runs.
#[async_trait]
pub trait Connector: Debug + Send + Sync {
    /// The connector kind.
    fn kind(&self) -> &'static str;

    /// The DataFusion catalog that resolves `schema.table` names in this catalog.
    fn catalog_provider(&self) -> Arc<dyn CatalogProvider>;

    /// The codec of this catalog's scan nodes. It decodes with this catalog's own settings
    /// (connections, credentials), so two catalogs of one kind never mix.
    fn scan_codec(&self) -> Arc<dyn ScanCodec>;

    /// What this connector supports (`system.metadata.catalogs` shows it).
    fn capabilities(&self) -> Capabilities;

    /// Logical rules for the coordinator's planner (pushdown). A rule is installed once by its
    /// name, however many catalogs of the kind there are, so it must serve all of them.
    fn logical_rules(&self) -> Vec<LogicalRule> {
        Vec::new()
    }

    /// Physical rules for the coordinator's planner, installed once by name like
    /// [`Connector::logical_rules`].
    fn physical_rules(&self) -> Vec<PhysicalRule> {
        Vec::new()
    }

    /// What workers fetch from the coordinator's internal port for this catalog (memory
    /// tables' rows); `None` when the connector reads its source directly.
    fn internal_service(&self) -> Option<Arc<dyn InternalService>> {
        None
    }

    /// Brings what the catalog's synchronous `schema_names` / `table_names` return for
    /// `listing` up to date. Nothing to do for a catalog that lists from memory.
    async fn refresh_listings(&self, _listing: Listing<'_>) -> Result<(), ConnectorError> {
        Ok(())
    }

    /// `CREATE SCHEMA schema` in the source; `Ok(false)` leaves it to DataFusion's
    /// `CatalogProvider::register_schema`, as [`Connector::create_table`] does.
    async fn create_schema(&self, _schema: &str) -> Result<bool, ConnectorError> {
        Ok(false)
    }

    /// `CREATE TABLE schema.table` with `columns`, made in the source before the statement
    /// writes any row. `Ok(false)`: the connector makes no tables this way, and the engine
    /// registers the table with the schema as DataFusion does (`SchemaProvider::register_table`,
    /// for catalogs that keep their tables in memory).
    async fn create_table(
        &self,
        _schema: &str,
        _table: &str,
        _columns: SchemaRef,
    ) -> Result<bool, ConnectorError> {
        Ok(false)
    }

    /// `DROP TABLE schema.table` in the source; `Ok(false)` leaves it to
    /// `SchemaProvider::deregister_table`, as [`Connector::create_table`] does.
    async fn drop_table(&self, _schema: &str, _table: &str) -> Result<bool, ConnectorError> {
        Ok(false)
    }

    /// `ALTER TABLE|VIEW schema.table RENAME TO new_schema.new_table` within the catalog.
    /// `Ok(false)`: the connector renames nothing, and the statement fails saying so.
    async fn rename_table(
        &self,
        _from: (&str, &str),
        _to: (&str, &str),
    ) -> Result<bool, ConnectorError> {
        Ok(false)
    }

    /// Runs the source round trips this connector's optimizer rules asked for while they ran
    /// (a rule that needs the source's answer leaves the plan as it is and asks for it); the
    /// next optimization of the same plan finds the answers. Returns whether there were any.
    async fn complete_rule_checks(&self) -> Result<bool, ConnectorError> {
        Ok(false)
    }
}

/// Encodes and decodes the scan nodes of one catalog.
///
/// A payload carries table handles and splits, never a connection or a secret: the worker's
/// codec for the catalog holds those, from the worker's own catalog file.
pub trait ScanCodec: Debug + Send + Sync {
    /// Encodes `node` if it is a scan of this catalog; `Ok(None)` means "not mine" (another
    /// kind, or another catalog of this kind).
    fn try_encode(&self, node: &dyn ExecutionPlan) -> Result<Option<Vec<u8>>, DataFusionError>;

    /// Rebuilds a node from a payload written by [`ScanCodec::try_encode`].
    fn try_decode(
        &self,
        payload: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn ExecutionPlan>, DataFusionError>;
}

/// A connector's answer to workers on the coordinator's internal port.
#[async_trait]
pub trait InternalService: Debug + Send + Sync {
    /// Streams the answer to `request`, bytes the connector's own scan wrote (see
    /// [`InternalTicket`]).
    async fn fetch(&self, request: &[u8]) -> Result<SendableRecordBatchStream, DataFusionError>;
}

/// What a worker asks the coordinator's internal port. Travels as the bytes of a Flight ticket.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum InternalTicket {
    /// `request` for the [`InternalService`] of `catalog`.
    Service { catalog: String, request: Vec<u8> },
    /// Split `partition` of a scan whose splits the coordinator keeps
    /// ([`crate::SplitStore`]).
    Split { handle: String, partition: usize },
}

impl InternalTicket {
    /// The catalog the ticket is for (empty for a split), for error messages.
    pub fn catalog(&self) -> &str {
        match self {
            InternalTicket::Service { catalog, .. } => catalog,
            InternalTicket::Split { .. } => "",
        }
    }

    pub fn encode(&self) -> Result<Vec<u8>, ConnectorError> {
        serde_json::to_vec(self).map_err(|e| ConnectorError::Codec {
            kind: "internal",
            reason: e.to_string(),
        })
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, ConnectorError> {
        serde_json::from_slice(bytes).map_err(|e| ConnectorError::Codec {
            kind: "internal",
            reason: format!("not a ticket of the internal port: {e}"),
        })
    }
}

/// Which process a catalog is made for; some connectors behave differently on each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Plans queries. `internal_endpoint` is the coordinator's internal Flight address
    /// (`http://host:port`) that workers call (memory-table rows, split lists).
    Coordinator { internal_endpoint: String },
    /// Runs tasks: decodes scans and reads sources.
    Worker,
}

/// What a factory knows of the process it makes a catalog for.
#[derive(Debug, Clone)]
pub struct ConnectorContext {
    pub role: Role,
    /// Where the coordinator keeps split lists too large for a plan; `None` on a worker.
    pub splits: Option<SplitPlanner>,
}

impl ConnectorContext {
    /// The context of a process of `role`; a coordinator keeps large split lists in `store`.
    pub fn new(role: Role, store: Arc<SplitStore>) -> Self {
        let splits = match &role {
            Role::Coordinator { internal_endpoint } => {
                Some(SplitPlanner::new(store, internal_endpoint.clone()))
            }
            Role::Worker => None,
        };
        Self { role, splits }
    }

    /// A scan's splits, in its plan or (when large) kept on the coordinator. Only the
    /// coordinator plans scans.
    pub fn plan_splits(&self, splits: Vec<Split>) -> Result<Splits, ConnectorError> {
        match &self.splits {
            Some(planner) => planner.plan(splits),
            None => Ok(Splits::Inline(splits)),
        }
    }
}

/// Checks of a connector's options beyond their types (ranges, keys that go together).
pub trait CheckOptions {
    /// The key at fault (`s3.endpoint`) and why, or `Ok`.
    fn check(&self) -> Result<(), (String, String)>;
}

/// One catalog file's options: every key but `connector`, `${ENV:VAR}` already substituted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CatalogOptions(toml::Table);

impl CatalogOptions {
    pub fn new(table: toml::Table) -> Self {
        Self(table)
    }

    /// The options as the connector's typed config. Errors name the key: `unknown key
    /// 'max_table_byte' (expected one of: ...)`, `missing required key 'host'`.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ConnectorError> {
        figment::Figment::from(figment::providers::Serialized::defaults(&self.0))
            .extract::<T>()
            .map_err(|e| ConnectorError::Config {
                message: describe(&e),
            })
    }
}

impl CatalogOptions {
    /// [`CatalogOptions::parse`], then the options' own [`CheckOptions::check`]; an error of
    /// the check names the catalog and the key.
    pub fn parse_checked<T: DeserializeOwned + CheckOptions>(
        &self,
        catalog: &str,
    ) -> Result<T, ConnectorError> {
        let options: T = self.parse()?;
        options
            .check()
            .map_err(|(key, reason)| ConnectorError::InvalidOption {
                catalog: catalog.to_string(),
                key,
                reason,
            })?;
        Ok(options)
    }
}

/// A figment error as "<what is wrong> (key 'a.b')".
fn describe(error: &figment::Error) -> String {
    use figment::error::Kind;
    let key = error.path.join(".");
    // Figment's path may or may not end with the field already.
    let under = |field: &str| {
        if key.is_empty() {
            field.to_string()
        } else if error.path.last().is_some_and(|last| last == field) {
            key.clone()
        } else {
            format!("{key}.{field}")
        }
    };
    match &error.kind {
        Kind::UnknownField(field, expected) => format!(
            "unknown key '{}' (expected one of: {})",
            under(field),
            expected.join(", ")
        ),
        Kind::MissingField(field) => format!("missing required key '{}'", under(field)),
        other if key.is_empty() => other.to_string(),
        other => format!("{other} (key '{key}')"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Config {
        host: String,
        #[serde(default)]
        port: u16,
    }

    fn options(text: &str) -> CatalogOptions {
        CatalogOptions::new(toml::from_str(text).expect("toml"))
    }

    #[test]
    fn option_errors_name_the_key() {
        let err = options("host = \"h\"\nprot = 1\n")
            .parse::<Config>()
            .expect_err("unknown key")
            .to_string();
        assert!(err.contains("unknown key 'prot'"), "{err}");
        let err = options("port = 1\n")
            .parse::<Config>()
            .expect_err("missing key")
            .to_string();
        assert!(err.contains("missing required key 'host'"), "{err}");
        let err = options("host = \"h\"\nport = \"x\"\n")
            .parse::<Config>()
            .expect_err("wrong type")
            .to_string();
        assert!(err.contains("key 'port'"), "{err}");
    }
}
