//! [`Metadata`]: which tables a `kafka` catalog has. A table is a described table (a file in
//! `table_description_dir`), a name in `table_names`, or a topic on the brokers (in
//! `default_schema`), as in Trino. Descriptions are read once, when the catalog is made; the
//! topics are listed by `refresh_listings` before a statement lists the catalog, so DataFusion's
//! synchronous listings answer from memory.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use braid_connector_spi::{ConnectorError, Listing};
use parking_lot::Mutex;

use crate::broker::Broker;
use crate::description::{DescribedTable, load_descriptions};

#[derive(Debug)]
pub struct Metadata {
    broker: Arc<Broker>,
    /// By (schema, table).
    described: BTreeMap<(String, String), Arc<DescribedTable>>,
    /// `table_names`, as (schema, table).
    named: BTreeSet<(String, String)>,
    /// The topics at the last listing.
    topics: Mutex<BTreeSet<String>>,
}

impl Metadata {
    /// The catalog's tables: its descriptions are read (and checked) now.
    pub fn new(broker: Arc<Broker>) -> Result<Self, ConnectorError> {
        let config = broker.config().clone();
        let described = match &config.table_description_dir {
            Some(dir) => load_descriptions(dir, &config.default_schema)?,
            None => Vec::new(),
        };
        let described = described
            .into_iter()
            .map(|table| {
                let key = (
                    table.description.schema().to_string(),
                    table.description.table_name.clone(),
                );
                (key, Arc::new(table))
            })
            .collect();
        Ok(Self {
            named: config.named_tables().collect(),
            broker,
            described,
            topics: Mutex::default(),
        })
    }

    /// The schemas: the default one and those the descriptions and `table_names` name.
    pub fn schemas(&self) -> Vec<String> {
        let default = self.broker.config().default_schema.clone();
        let names: BTreeSet<String> = std::iter::once(default)
            .chain(self.described.keys().map(|(schema, _)| schema.clone()))
            .chain(self.named.iter().map(|(schema, _)| schema.clone()))
            .collect();
        names.into_iter().collect()
    }

    /// The tables of `schema` known now: described, named, and (in the default schema) the
    /// topics of the last listing.
    pub fn tables(&self, schema: &str) -> Vec<String> {
        let mut names: BTreeSet<String> = self
            .described
            .keys()
            .chain(&self.named)
            .filter(|(s, _)| s == schema)
            .map(|(_, table)| table.clone())
            .collect();
        if schema == self.broker.config().default_schema {
            names.extend(self.topics.lock().iter().cloned());
        }
        names.into_iter().collect()
    }

    /// Lists the topics when `listing` shows tables.
    pub async fn refresh(&self, listing: Listing<'_>) -> Result<(), ConnectorError> {
        if matches!(listing, Listing::Schemas) {
            return Ok(());
        }
        let topics = self.broker.topics().await?;
        *self.topics.lock() = topics.into_keys().collect();
        Ok(())
    }

    /// The table `schema.table`: its description, or an undescribed topic's (if the topic
    /// exists or the table is named in `table_names`).
    pub async fn table(
        &self,
        schema: &str,
        table: &str,
    ) -> Result<Option<Arc<DescribedTable>>, ConnectorError> {
        let key = (schema.to_string(), table.to_string());
        if let Some(described) = self.described.get(&key) {
            return Ok(Some(described.clone()));
        }
        let undescribed = || Some(Arc::new(DescribedTable::undescribed(schema, table)));
        if self.named.contains(&key) {
            return Ok(undescribed());
        }
        if schema != self.broker.config().default_schema {
            return Ok(None);
        }
        Ok(self
            .broker
            .partitions(table)
            .await?
            .is_some()
            .then(undescribed)
            .flatten())
    }
}
