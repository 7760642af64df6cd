//! # braid-connector-kafka
//!
//! Kafka topics as a Braid catalog (`connector = "kafka"`), on Trino's model: its table
//! description files, internal column names, decoders and catalog options.
//!
//! - [`KafkaConfig`] (`config.rs`): the catalog file's options; `[client]` passes librdkafka
//!   settings (SASL, TLS) through, their values never printed.
//! - [`TableDescription`] (`description.rs`): Trino's JSON table description files, loaded
//!   from `table_description_dir` with errors naming the file and the field; a
//!   [`DescribedTable`] carries the Avro schema files they name.
//! - [`FieldType`] (`types.rs`) and [`InternalColumn`] (`columns.rs`): the field types and the
//!   internal columns (`_partition_id`, `_partition_offset`, `_timestamp`, `_key`, ...).
//! - [`decoder`]: `raw`, `csv`, `json`, `avro`; a record that does not decode is corrupt, with
//!   NULL fields, and never fails the query.
//! - [`Broker`] (`broker.rs`): the coordinator's calls to the brokers (topics, watermarks,
//!   where a timestamp falls: `timestamps.rs`), off the runtime's threads and under
//!   `timeout_seconds`.
//! - [`Metadata`] (`metadata.rs`): the catalog's tables: described, named, and the topics.
//! - [`KafkaCatalog`] → [`KafkaSchema`] → [`KafkaTable`] (`provider.rs`): `scan` fixes per
//!   partition the offsets [low, high) to read, narrowed by the filters on `_partition_id`,
//!   `_partition_offset` and `_timestamp` (`pushdown.rs`), and cuts them into splits of at most
//!   `messages_per_split` (`split.rs`).
//! - [`KafkaScanExec`] (`exec.rs`): partition *i* reads split *i* with a consumer assigned to
//!   its topic partition (`reader.rs`); [`KafkaScanCodec`] ships it without credentials.
//! - `sink.rs`: `INSERT` encodes each row with the description's formats (the decoders'
//!   layouts, written) and produces it, waiting for the brokers' acknowledgements.

mod broker;
mod columns;
mod config;
pub mod decoder;
mod description;
mod exec;
mod metadata;
mod provider;
mod pushdown;
mod reader;
mod sink;
mod split;
mod timestamps;
mod types;

use std::sync::Arc;

use braid_connector_spi::{
    Capabilities, CatalogOptions, Connector, ConnectorContext, ConnectorError, ConnectorFactory,
    Listing, ScanCodec, ScanExecCodec,
};
use datafusion::catalog::CatalogProvider;

pub use broker::Broker;
pub use columns::InternalColumn;
pub use config::KafkaConfig;
pub use description::{
    DataFormat, DescribedTable, FieldDescription, FieldGroup, TableDescription, load_descriptions,
};
pub use exec::{ColumnRef, KafkaScan, KafkaScanExec, KafkaScanHandle};
pub use metadata::Metadata;
pub use provider::{KafkaCatalog, KafkaSchema, KafkaTable};
pub use split::{KafkaSplit, OffsetRange};
pub use types::FieldType;

/// The connector kind, as written in catalog files.
pub const KIND: &str = "kafka";

/// Encodes and decodes the `KafkaScanExec`s of one catalog.
pub type KafkaScanCodec = ScanExecCodec<KafkaScan>;

/// Makes `kafka` catalogs.
#[derive(Debug, Default)]
pub struct KafkaFactory;

impl ConnectorFactory for KafkaFactory {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn create(
        &self,
        catalog: &str,
        options: CatalogOptions,
        context: &ConnectorContext,
    ) -> Result<Arc<dyn Connector>, ConnectorError> {
        let config: KafkaConfig = options.parse_checked(catalog)?;
        Ok(Arc::new(KafkaConnector::new(
            catalog,
            config,
            context.clone(),
        )?))
    }
}

/// A `kafka` catalog.
#[derive(Debug)]
pub struct KafkaConnector {
    shared: Arc<provider::Shared>,
    catalog: Arc<KafkaCatalog>,
}

impl KafkaConnector {
    /// A catalog named `name`: its description files are read now, the brokers are called
    /// when first needed.
    pub fn new(
        name: &str,
        config: KafkaConfig,
        context: ConnectorContext,
    ) -> Result<Self, ConnectorError> {
        let broker = Arc::new(Broker::new(name.to_string(), Arc::new(config)));
        let shared = Arc::new(provider::Shared {
            metadata: Metadata::new(broker.clone())?,
            broker,
            context,
        });
        Ok(Self {
            catalog: Arc::new(KafkaCatalog::new(shared.clone())),
            shared,
        })
    }
}

#[async_trait::async_trait]
impl Connector for KafkaConnector {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn catalog_provider(&self) -> Arc<dyn CatalogProvider> {
        self.catalog.clone()
    }

    fn scan_codec(&self) -> Arc<dyn ScanCodec> {
        let broker = self.shared.broker.clone();
        let catalog = broker.catalog().to_string();
        Arc::new(KafkaScanCodec::new(catalog, move |handle| {
            KafkaScan::new(handle, broker.catalog(), broker.config().clone())
        }))
    }

    async fn refresh_listings(&self, listing: Listing<'_>) -> Result<(), ConnectorError> {
        self.shared.metadata.refresh(listing).await
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            projection_pushdown: true,
            filter_pushdown: true,
            limit_pushdown: true,
            parallel_splits: true,
            writes: false,
            views: false,
        }
    }
}
