//! [`KafkaConfig`]: the options of a `kafka` catalog file, Trino's `kafka.*` properties in TOML
//! spelling, and the librdkafka settings made of them ([`KafkaConfig::client_config`]).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use braid_connector_spi::CheckOptions;
use rdkafka::ClientConfig;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Options of a `kafka` catalog file.
///
/// ```toml
/// connector = "kafka"
/// nodes = ["broker-1:9092", "broker-2:9092"]
/// default_schema = "default"
/// table_names = ["orders", "audit.logins"]   # besides the described tables and the topics
/// table_description_dir = "etc/kafka"
/// hide_internal_columns = true
/// messages_per_split = 100000
/// timeout_seconds = 10
///
/// [client]                                   # passed to librdkafka as is
/// "security.protocol" = "SASL_SSL"
/// "sasl.mechanism" = "SCRAM-SHA-256"
/// "sasl.username" = "braid"
/// "sasl.password" = "${ENV:KAFKA_PASSWORD}"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// The bootstrap servers, `host:port` (Trino's `kafka.nodes`).
    pub nodes: Nodes,
    /// The schema of tables whose description names none, and of undescribed topics.
    #[serde(default = "default_schema")]
    pub default_schema: String,
    /// Tables besides the described ones: `table` (in `default_schema`) or `schema.table`; the
    /// topic is the table name.
    #[serde(default)]
    pub table_names: Vec<String>,
    /// Where the table description files (`*.json`, Trino's format) are.
    #[serde(default)]
    pub table_description_dir: Option<PathBuf>,
    /// Internal columns (`_partition_id`, ...) are left out of `SELECT *` and `DESCRIBE`, yet
    /// still selectable by name.
    #[serde(default = "yes")]
    pub hide_internal_columns: bool,
    /// The most messages one split reads.
    #[serde(default = "default_messages_per_split")]
    pub messages_per_split: u64,
    /// How long a call to the brokers (metadata, offsets, a fetch that brings nothing, a
    /// produce) may take before it is an error naming the servers.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// librdkafka settings (`security.protocol`, `sasl.*`, `ssl.*`, ...), values never printed.
    #[serde(default)]
    pub client: BTreeMap<String, ClientValue>,
}

/// `nodes` as a list or as Trino's comma-separated string.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Nodes {
    List(Vec<String>),
    Text(String),
}

impl Nodes {
    /// The servers as librdkafka's `bootstrap.servers` takes them.
    pub fn servers(&self) -> String {
        match self {
            Nodes::List(nodes) => nodes.join(","),
            Nodes::Text(text) => text.split(',').map(str::trim).collect::<Vec<_>>().join(","),
        }
    }
}

/// One `[client]` value: text, a number or a boolean, kept secret.
#[derive(Clone, Deserialize)]
#[serde(untagged)]
pub enum ClientValue {
    Text(SecretString),
    Integer(i64),
    Boolean(bool),
}

impl ClientValue {
    fn text(&self) -> String {
        match self {
            ClientValue::Text(text) => text.expose_secret().to_string(),
            ClientValue::Integer(i) => i.to_string(),
            ClientValue::Boolean(b) => b.to_string(),
        }
    }
}

impl fmt::Debug for ClientValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[hidden]")
    }
}

/// `[client]` keys Braid sets itself.
const RESERVED_CLIENT_KEYS: [(&str, &str); 5] = [
    ("bootstrap.servers", "set 'nodes' instead"),
    (
        "group.id",
        "Braid assigns partitions itself and commits nothing",
    ),
    ("enable.auto.commit", "Braid commits nothing"),
    ("enable.partition.eof", "Braid's reader needs it"),
    ("auto.offset.reset", "Braid's reader needs it"),
];

impl CheckOptions for KafkaConfig {
    /// Checks what serde cannot: an error names the key.
    fn check(&self) -> Result<(), (String, String)> {
        let bad = |key: &str, reason: &str| Err((key.to_string(), reason.to_string()));
        if self.nodes.servers().trim().is_empty() {
            return bad("nodes", "no bootstrap server given (host:port)");
        }
        if self.default_schema.trim().is_empty() {
            return bad("default_schema", "empty");
        }
        if self.messages_per_split == 0 {
            return bad("messages_per_split", "must be at least 1");
        }
        if self.timeout_seconds == 0 {
            return bad("timeout_seconds", "must be at least 1");
        }
        for (key, reason) in RESERVED_CLIENT_KEYS {
            if self.client.contains_key(key) {
                return bad(&format!("client.{key}"), reason);
            }
        }
        Ok(())
    }
}

impl KafkaConfig {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds)
    }

    /// The tables of `table_names` as (schema, table).
    pub fn named_tables(&self) -> impl Iterator<Item = (String, String)> + '_ {
        self.table_names
            .iter()
            .map(|name| match name.split_once('.') {
                Some((schema, table)) => (schema.to_string(), table.to_string()),
                None => (self.default_schema.clone(), name.clone()),
            })
    }

    /// librdkafka's settings for a client of this catalog: the servers, the timeouts, then
    /// `[client]`.
    pub fn client_config(&self) -> ClientConfig {
        let timeout_ms = (self.timeout_seconds * 1000).to_string();
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", self.nodes.servers())
            .set("socket.timeout.ms", &timeout_ms)
            .set("socket.connection.setup.timeout.ms", &timeout_ms)
            .set("message.timeout.ms", &timeout_ms)
            // As Kafka's own clients: records of aborted transactions are read too, and a
            // planned range never waits for an open transaction to end.
            .set("isolation.level", "read_uncommitted")
            .set("log_level", "3");
        for (key, value) in &self.client {
            config.set(key, value.text());
        }
        config
    }
}

fn default_schema() -> String {
    "default".into()
}

fn yes() -> bool {
    true
}

fn default_messages_per_split() -> u64 {
    100_000
}

fn default_timeout() -> u64 {
    10
}

#[cfg(test)]
mod tests {
    use braid_connector_spi::CatalogOptions;

    use super::*;

    fn config(text: &str) -> KafkaConfig {
        CatalogOptions::new(toml::from_str(text).expect("toml"))
            .parse()
            .expect("config")
    }

    #[test]
    fn options_take_trinos_defaults_and_secrets_stay_hidden() {
        let config = config(
            "nodes = \"a:9092, b:9092\"\n[client]\n\"sasl.password\" = \"s3cret\"\n\"fetch.wait.max.ms\" = 50\n",
        );
        assert_eq!(config.nodes.servers(), "a:9092,b:9092");
        assert_eq!(config.default_schema, "default");
        assert!(config.hide_internal_columns);
        assert_eq!(config.messages_per_split, 100_000);
        assert_eq!(config.timeout_seconds, 10);
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        let client = config.client_config();
        assert_eq!(client.get("sasl.password"), Some("s3cret"));
        assert_eq!(client.get("fetch.wait.max.ms"), Some("50"));
        assert_eq!(client.get("bootstrap.servers"), Some("a:9092,b:9092"));
    }

    #[test]
    fn reserved_and_bad_values_name_the_key() {
        let bad = config("nodes = [\"a:1\"]\n[client]\n\"group.id\" = \"g\"\n");
        assert_eq!(bad.check().expect_err("reserved").0, "client.group.id");
        let bad = config("nodes = [\"a:1\"]\nmessages_per_split = 0\n");
        assert_eq!(bad.check().expect_err("zero").0, "messages_per_split");
        let named = config("nodes = [\"a:1\"]\ntable_names = [\"t\", \"s.u\"]\n");
        assert_eq!(
            named.named_tables().collect::<Vec<_>>(),
            [
                ("default".to_string(), "t".to_string()),
                ("s".to_string(), "u".to_string())
            ]
        );
    }
}
