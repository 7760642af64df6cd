//! [`ConnectorRegistry`]: the catalogs of one process.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use braid_connector_memory::{MemoryConfig, MemoryConnector};
use braid_connector_spi::{Connector, ScanCodec};
use braid_connector_tpch::{TpchConfig, TpchConnector};
use datafusion::catalog::{CatalogProviderList, MemoryCatalogProviderList};

use crate::codec::BraidPhysicalCodec;
use crate::error::CatalogError;
use crate::spec::{CatalogSpec, load_catalog_dir};

/// Which process the registry serves; some connectors behave differently on each.
#[derive(Debug, Clone)]
pub enum Role {
    /// Plans queries and owns memory tables. `fetch_endpoint` is the coordinator's internal
    /// Flight address (`http://host:port`) that workers fetch memory-table rows from.
    Coordinator { fetch_endpoint: String },
    /// Runs tasks: decodes scans and reads sources.
    Worker,
}

/// The catalogs of one process, by name.
#[derive(Debug, Clone)]
pub struct ConnectorRegistry {
    connectors: BTreeMap<String, Arc<dyn Connector>>,
}

impl ConnectorRegistry {
    /// The built-in catalogs (`tpch`, `memory`) plus every catalog file in `catalog_dir`; a
    /// file named like a built-in replaces it.
    pub fn load(catalog_dir: Option<&Path>, role: &Role) -> Result<Self, CatalogError> {
        let mut specs = BTreeMap::from([
            (
                "memory".to_string(),
                CatalogSpec::Memory(MemoryConfig::default()),
            ),
            ("tpch".to_string(), CatalogSpec::Tpch(TpchConfig::default())),
        ]);
        if let Some(dir) = catalog_dir {
            specs.extend(load_catalog_dir(dir)?);
        }
        Ok(Self::from_specs(specs, role))
    }

    /// A registry of exactly these catalogs.
    pub fn from_specs(specs: impl IntoIterator<Item = (String, CatalogSpec)>, role: &Role) -> Self {
        let connectors = specs
            .into_iter()
            .map(|(name, spec)| {
                let connector = build_connector(&name, spec, role);
                (name, connector)
            })
            .collect();
        Self { connectors }
    }

    /// The catalog called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Connector>> {
        self.connectors.get(name)
    }

    /// Every catalog, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Arc<dyn Connector>)> {
        self.connectors.iter()
    }

    /// The catalogs as DataFusion sees them.
    pub fn catalog_list(&self) -> Arc<dyn CatalogProviderList> {
        let list = MemoryCatalogProviderList::new();
        for (name, connector) in &self.connectors {
            list.register_catalog(name.clone(), connector.catalog_provider());
        }
        Arc::new(list)
    }

    /// The codec for every connector kind this build knows, whatever catalogs are configured,
    /// so a worker decodes any scan the coordinator sends.
    pub fn codec(&self) -> BraidPhysicalCodec {
        let mut codecs: BTreeMap<&'static str, Arc<dyn ScanCodec>> = BTreeMap::from([
            (
                braid_connector_tpch::KIND,
                Arc::new(braid_connector_tpch::TpchScanCodec) as Arc<dyn ScanCodec>,
            ),
            (
                braid_connector_memory::KIND,
                Arc::new(braid_connector_memory::MemoryScanCodec),
            ),
        ]);
        for connector in self.connectors.values() {
            codecs.insert(connector.kind(), connector.scan_codec());
        }
        // One postgres codec for every postgres catalog: it picks the pool by catalog name.
        let pools = self
            .connectors
            .iter()
            .filter_map(|(name, c)| {
                let pg = c
                    .as_any()
                    .downcast_ref::<braid_connector_postgres::PostgresConnector>()?;
                Some((name.clone(), pg.pool().clone()))
            })
            .collect();
        codecs.insert(
            braid_connector_postgres::KIND,
            Arc::new(braid_connector_postgres::PostgresScanCodec::new(pools)),
        );
        BraidPhysicalCodec::new(codecs)
    }
}

fn build_connector(name: &str, spec: CatalogSpec, role: &Role) -> Arc<dyn Connector> {
    match spec {
        CatalogSpec::Tpch(config) => Arc::new(TpchConnector::new(name, config)),
        CatalogSpec::Memory(config) => {
            let endpoint = match role {
                Role::Coordinator { fetch_endpoint } => Some(fetch_endpoint.clone()),
                Role::Worker => None,
            };
            Arc::new(MemoryConnector::new(name, config, endpoint))
        }
        CatalogSpec::Postgres(config) => Arc::new(
            braid_connector_postgres::PostgresConnector::new(name, config),
        ),
    }
}
