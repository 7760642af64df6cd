//! [`Broker`]: one catalog's calls to its Kafka brokers at planning time (topics, partitions,
//! watermarks, offsets for timestamps). librdkafka's calls block, so each runs on tokio's
//! blocking pool under a timeout; an error names the catalog and the servers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use braid_connector_spi::ConnectorError;
use parking_lot::Mutex;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::config::KafkaConfig;
use crate::split::OffsetRange;

/// The brokers of one catalog.
pub struct Broker {
    catalog: String,
    config: Arc<KafkaConfig>,
    /// Made on first use and kept: librdkafka keeps its connections to the brokers.
    client: Mutex<Option<Arc<BaseConsumer>>>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("catalog", &self.catalog)
            .field("servers", &self.config.nodes.servers())
            .finish()
    }
}

impl Broker {
    pub fn new(catalog: String, config: Arc<KafkaConfig>) -> Self {
        Self {
            catalog,
            config,
            client: Mutex::new(None),
        }
    }

    pub fn catalog(&self) -> &str {
        &self.catalog
    }

    pub fn config(&self) -> &Arc<KafkaConfig> {
        &self.config
    }

    /// An error of this catalog naming its servers.
    pub fn error(&self, message: impl std::fmt::Display) -> ConnectorError {
        source_error(&self.catalog, &self.config.nodes.servers(), message)
    }

    fn client(&self) -> Result<Arc<BaseConsumer>, ConnectorError> {
        let mut client = self.client.lock();
        if let Some(client) = client.as_ref() {
            return Ok(client.clone());
        }
        let made: BaseConsumer = self
            .config
            .client_config()
            .create()
            .map_err(|e| self.error(format!("cannot make a client: {e}")))?;
        let made = Arc::new(made);
        *client = Some(made.clone());
        Ok(made)
    }

    /// Runs `call` with the client on the blocking pool, bounded by the catalog's timeout.
    async fn call<T: Send + 'static>(
        &self,
        what: &str,
        call: impl FnOnce(&BaseConsumer, Duration) -> Result<T, KafkaError> + Send + 'static,
    ) -> Result<T, ConnectorError> {
        let client = self.client()?;
        let timeout = self.config.timeout();
        let task = tokio::task::spawn_blocking(move || call(&client, timeout));
        // librdkafka's own timeout ends the call; this one is the bound should it not.
        match tokio::time::timeout(timeout + Duration::from_secs(5), task).await {
            Ok(Ok(Ok(value))) => Ok(value),
            Ok(Ok(Err(e))) => Err(self.error(format!("{what}: {}", describe(&e, timeout)))),
            Ok(Err(e)) => Err(self.error(format!("{what}: {e}"))),
            Err(_) => Err(self.error(format!("{what}: no answer within {}s", timeout.as_secs()))),
        }
    }

    /// Every topic and its partitions (Kafka's own `__` topics left out).
    pub async fn topics(&self) -> Result<BTreeMap<String, Vec<i32>>, ConnectorError> {
        self.call("listing the topics", |client, timeout| {
            let metadata = client.fetch_metadata(None, timeout)?;
            Ok(metadata
                .topics()
                .iter()
                .filter(|t| !t.name().starts_with("__") && t.error().is_none())
                .map(|t| {
                    let partitions = t.partitions().iter().map(|p| p.id()).collect();
                    (t.name().to_string(), partitions)
                })
                .collect())
        })
        .await
    }

    /// The partitions of `topic`, `None` if the brokers do not have it.
    pub async fn partitions(&self, topic: &str) -> Result<Option<Vec<i32>>, ConnectorError> {
        let name = topic.to_string();
        self.call(
            &format!("reading topic '{topic}'"),
            move |client, timeout| {
                let metadata = client.fetch_metadata(Some(&name), timeout)?;
                let Some(found) = metadata.topics().iter().find(|t| t.name() == name) else {
                    return Ok(None);
                };
                match found.error() {
                    None => {}
                    Some(e)
                        if RDKafkaErrorCode::from(e)
                            == RDKafkaErrorCode::UnknownTopicOrPartition =>
                    {
                        return Ok(None);
                    }
                    Some(e) => return Err(KafkaError::MetadataFetch(e.into())),
                }
                let mut partitions: Vec<i32> = found.partitions().iter().map(|p| p.id()).collect();
                partitions.sort_unstable();
                Ok(Some(partitions))
            },
        )
        .await
    }

    /// The offsets held by `partitions` of `topic` (their watermarks).
    pub async fn watermarks(
        &self,
        topic: &str,
        partitions: &[i32],
    ) -> Result<Vec<OffsetRange>, ConnectorError> {
        let (name, partitions) = (topic.to_string(), partitions.to_vec());
        self.call(
            &format!("reading the offsets of topic '{topic}'"),
            move |client, timeout| {
                partitions
                    .iter()
                    .map(|&partition| {
                        let (start, end) = client.fetch_watermarks(&name, partition, timeout)?;
                        Ok(OffsetRange {
                            partition,
                            start,
                            end,
                        })
                    })
                    .collect()
            },
        )
        .await
    }

    /// Per partition of `ranges`, the position of the timestamp `millis` among its offsets
    /// (`timestamps.rs`: Kafka's `offsetsForTimes`, checked).
    pub async fn timestamp_positions(
        &self,
        topic: &str,
        ranges: &[OffsetRange],
        millis: i64,
    ) -> Result<BTreeMap<i32, i64>, ConnectorError> {
        let (name, ranges) = (topic.to_string(), ranges.to_vec());
        let mut config = self.config.client_config();
        config
            .set("group.id", format!("braid-{}", self.catalog))
            .set("enable.partition.eof", "true")
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "10");
        self.call(
            &format!("finding offsets by time in topic '{topic}'"),
            move |_, timeout| {
                let reader: BaseConsumer = config.create()?;
                crate::timestamps::positions(&reader, &name, &ranges, millis, timeout)
            },
        )
        .await
    }
}

/// An error of catalog `catalog` whose brokers are `servers`.
pub fn source_error(
    catalog: &str,
    servers: &str,
    message: impl std::fmt::Display,
) -> ConnectorError {
    ConnectorError::Source {
        catalog: catalog.to_string(),
        message: format!("Kafka at {servers}: {message}"),
    }
}

/// A librdkafka error as a user reads it: a timeout says how long was waited.
pub fn describe(error: &KafkaError, timeout: Duration) -> String {
    let timed_out = matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::OperationTimedOut
                | RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
        )
    );
    if timed_out {
        format!(
            "the brokers did not answer within {}s ({error})",
            timeout.as_secs()
        )
    } else {
        error.to_string()
    }
}
