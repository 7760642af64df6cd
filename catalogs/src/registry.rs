//! [`ConnectorRegistry`]: the catalogs of one process, made by the [`Factories`] of the
//! connector kinds this build knows.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use braid_connector_spi::{
    Capabilities, Connector, ConnectorContext, ConnectorError, ConnectorFactory, InternalService,
    LogicalRule, PhysicalRule, Role, SplitStore,
};
use datafusion::catalog::{CatalogProviderList, MemoryCatalogProviderList};

use crate::codec::BraidPhysicalCodec;
use crate::error::CatalogError;
use crate::spec::{CatalogSpec, load_catalog_dir};

/// The name of the coordinator's own catalog (`system.metadata.catalogs`), which no catalog
/// file may take.
pub const RESERVED: &str = "system";

/// The connector kinds a process can make catalogs of, by kind.
#[derive(Debug, Clone, Default)]
pub struct Factories {
    by_kind: BTreeMap<&'static str, Arc<dyn ConnectorFactory>>,
}

impl Factories {
    /// Every connector kind of this build. A new connector is one line here.
    pub fn builtin() -> Self {
        Self::default()
            .with(Arc::new(braid_connector_tpch::TpchFactory))
            .with(Arc::new(braid_connector_memory::MemoryFactory))
            .with(Arc::new(braid_connector_postgres::PostgresFactory))
            .with(Arc::new(braid_connector_kafka::KafkaFactory))
            .with(Arc::new(braid_connector_files::FilesFactory))
            .with(Arc::new(braid_connector_iceberg::IcebergFactory))
            .with(Arc::new(braid_connector_delta::DeltaFactory))
    }

    /// These factories and `factory` (which replaces one of the same kind).
    pub fn with(mut self, factory: Arc<dyn ConnectorFactory>) -> Self {
        self.by_kind.insert(factory.kind(), factory);
        self
    }

    fn create(
        &self,
        name: &str,
        spec: CatalogSpec,
        context: &ConnectorContext,
    ) -> Result<Arc<dyn Connector>, CatalogError> {
        let file = spec
            .file
            .clone()
            .unwrap_or_else(|| format!("<built-in {name}>").into());
        let Some(factory) = self.by_kind.get(spec.kind.as_str()) else {
            let known: Vec<_> = self.by_kind.keys().copied().collect();
            return Err(CatalogError::Invalid {
                file,
                message: format!(
                    "unknown connector '{}' (known connectors: {})",
                    spec.kind,
                    known.join(", ")
                ),
            });
        };
        factory
            .create(name, spec.options, context)
            .map_err(|e| match e {
                ConnectorError::Config { message } => CatalogError::Invalid { file, message },
                other => CatalogError::Connector(other),
            })
    }
}

/// The catalogs of one process, by name.
#[derive(Debug, Clone)]
pub struct ConnectorRegistry {
    connectors: BTreeMap<String, Arc<dyn Connector>>,
    /// Split lists too large for a plan, on the coordinator (unused on a worker).
    split_store: Arc<SplitStore>,
}

impl ConnectorRegistry {
    /// The built-in catalogs (`tpch`, `memory`) plus every catalog file in `catalog_dir`, made
    /// by this build's connectors; a file named like a built-in replaces it.
    pub fn load(catalog_dir: Option<&Path>, role: &Role) -> Result<Self, CatalogError> {
        Self::load_with(catalog_dir, role, &Factories::builtin())
    }

    /// [`ConnectorRegistry::load`] with the connector kinds of `factories`.
    pub fn load_with(
        catalog_dir: Option<&Path>,
        role: &Role,
        factories: &Factories,
    ) -> Result<Self, CatalogError> {
        let mut specs = BTreeMap::from([
            (
                "memory".to_string(),
                CatalogSpec::builtin(braid_connector_memory::KIND),
            ),
            (
                "tpch".to_string(),
                CatalogSpec::builtin(braid_connector_tpch::KIND),
            ),
        ]);
        if let Some(dir) = catalog_dir {
            specs.extend(load_catalog_dir(dir)?);
        }
        if let Some(spec) = specs.get(RESERVED) {
            return Err(CatalogError::Invalid {
                file: spec.file.clone().unwrap_or_default(),
                message: format!(
                    "'{RESERVED}' is Braid's own catalog: give this file another name"
                ),
            });
        }
        let split_store = Arc::new(SplitStore::default());
        let context = ConnectorContext::new(role.clone(), split_store.clone());
        let connectors = specs
            .into_iter()
            .map(|(name, spec)| Ok((name.clone(), factories.create(&name, spec, &context)?)))
            .collect::<Result<_, CatalogError>>()?;
        Ok(Self {
            connectors,
            split_store,
        })
    }

    /// The catalog called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Connector>> {
        self.connectors.get(name)
    }

    /// Every catalog, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Arc<dyn Connector>)> {
        self.connectors.iter()
    }

    /// Every catalog's name, kind and capabilities (`system.metadata.catalogs`).
    pub fn describe(&self) -> Vec<(String, &'static str, Capabilities)> {
        self.connectors
            .iter()
            .map(|(name, c)| (name.clone(), c.kind(), c.capabilities()))
            .collect()
    }

    /// The catalogs as DataFusion sees them.
    pub fn catalog_list(&self) -> Arc<dyn CatalogProviderList> {
        let list = MemoryCatalogProviderList::new();
        for (name, connector) in &self.connectors {
            list.register_catalog(name.clone(), connector.catalog_provider());
        }
        Arc::new(list)
    }

    /// The physical codec of this process: each catalog's scans go through that catalog's
    /// own codec, so two catalogs of one kind (two PostgreSQL servers) never mix.
    pub fn codec(&self) -> BraidPhysicalCodec {
        BraidPhysicalCodec::new(
            self.connectors
                .iter()
                .map(|(name, c)| (name.clone(), (c.kind(), c.scan_codec())))
                .collect(),
        )
    }

    /// The logical rules the connectors add to the coordinator's planner, each once by name.
    pub fn logical_rules(&self) -> Vec<LogicalRule> {
        let mut rules: BTreeMap<String, LogicalRule> = BTreeMap::new();
        for connector in self.connectors.values() {
            for rule in connector.logical_rules() {
                rules.entry(rule.name().to_string()).or_insert(rule);
            }
        }
        rules.into_values().collect()
    }

    /// The physical rules the connectors add to the coordinator's planner, each once by name.
    pub fn physical_rules(&self) -> Vec<PhysicalRule> {
        let mut rules: BTreeMap<String, PhysicalRule> = BTreeMap::new();
        for connector in self.connectors.values() {
            for rule in connector.physical_rules() {
                rules.entry(rule.name().to_string()).or_insert(rule);
            }
        }
        rules.into_values().collect()
    }

    /// The coordinator's split lists that were too large for their plans.
    pub fn split_store(&self) -> &SplitStore {
        &self.split_store
    }

    /// The service catalog `name` offers workers on the coordinator's internal port.
    pub fn internal_service(&self, name: &str) -> Option<Arc<dyn InternalService>> {
        self.connectors.get(name)?.internal_service()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(files: &[(&str, &str)]) -> Result<ConnectorRegistry, CatalogError> {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).expect("write catalog file");
        }
        ConnectorRegistry::load(Some(dir.path()), &Role::Worker)
    }

    #[test]
    fn catalog_files_make_catalogs_beside_the_built_ins() {
        let registry = load(&[
            (
                "bench.toml",
                "connector = \"tpch\"\ncolumn_naming = \"simplified\"\n",
            ),
            (
                "small.toml",
                "connector = \"memory\"\nmax_table_bytes = 100\n",
            ),
        ])
        .expect("valid files");
        let kinds: Vec<_> = registry
            .describe()
            .into_iter()
            .map(|(name, kind, _)| format!("{name}={kind}"))
            .collect();
        assert_eq!(
            kinds,
            ["bench=tpch", "memory=memory", "small=memory", "tpch=tpch"]
        );
    }

    #[test]
    fn option_errors_name_the_file_and_the_key() {
        let err = load(&[(
            "bad.toml",
            "connector = \"tpch\"\ncolum_naming = \"simplified\"\n",
        )])
        .expect_err("unknown key")
        .to_string();
        assert!(err.contains("bad.toml"), "{err}");
        assert!(err.contains("unknown key 'colum_naming'"), "{err}");

        let err = load(&[("x.toml", "connector = \"oracle\"\n")])
            .expect_err("unknown connector")
            .to_string();
        assert!(
            err.contains("x.toml") && err.contains("unknown connector 'oracle'"),
            "{err}"
        );
        assert!(err.contains("memory, postgres, tpch"), "{err}");

        let err = load(&[(
            "pg.toml",
            "connector = \"postgres\"\nhost = \"h\"\nuser = \"u\"\n",
        )])
        .expect_err("missing key")
        .to_string();
        assert!(
            err.contains("pg.toml") && err.contains("missing required key 'database'"),
            "{err}"
        );

        let err = load(&[(
            "pg.toml",
            "connector = \"postgres\"\nhost = \"h\"\nuser = \"u\"\ndatabase = \"d\"\nunconstrained_numeric_scale = 40\n",
        )])
        .expect_err("scale out of range")
        .to_string();
        assert!(
            err.contains("pg.toml") && err.contains("use 0 to 38"),
            "{err}"
        );
    }

    #[test]
    fn one_rule_per_name_however_many_catalogs() {
        let pg = |db: &str| {
            format!(
                "connector = \"postgres\"\nhost = \"127.0.0.1\"\nuser = \"u\"\ndatabase = \"{db}\"\n"
            )
        };
        let registry = load(&[("a.toml", &pg("a")), ("b.toml", &pg("b"))]).expect("valid");
        let names: Vec<_> = registry
            .logical_rules()
            .iter()
            .map(|r| r.name().to_string())
            .collect();
        assert_eq!(names, ["braid_postgres_subtree_pushdown"]);
    }
}
