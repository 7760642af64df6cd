//! [`DeltaConfig`]: the options of a `delta` catalog file.
//!
//! ```toml
//! connector = "delta"
//! location = "s3://lake/delta"      # <location>/<schema>/<table>/ are tables
//! [tables."sales.orders"]           # and so is every entry, wherever it is
//! location = "/data/orders"
//! [s3]                              # the SPI's object-store options
//! endpoint = "http://127.0.0.1:9000"
//! ```

use std::collections::BTreeMap;

use braid_connector_spi::{CheckOptions, StorageOptions};
use serde::Deserialize;

/// The options of a `delta` catalog.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeltaConfig {
    /// A directory whose subdirectories are schemas, and theirs tables.
    #[serde(default)]
    pub location: Option<String>,
    /// Tables named `schema.table`, each at its own location.
    #[serde(default)]
    pub tables: BTreeMap<String, TableEntry>,
    /// The most bytes one split reads (a task reads one split).
    #[serde(default = "default_max_split_size")]
    pub max_split_size: u64,
    /// The bound of every read of a table's log (loading a version, listing its files).
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
    #[serde(default)]
    pub s3: StorageOptions,
}

fn default_max_split_size() -> u64 {
    128 << 20
}

fn default_timeout_seconds() -> u64 {
    60
}

/// A table named in the catalog file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableEntry {
    /// The table's directory (the one holding `_delta_log/`).
    pub location: String,
}

impl CheckOptions for DeltaConfig {
    fn check(&self) -> Result<(), (String, String)> {
        if self.location.is_none() && self.tables.is_empty() {
            return Err((
                "location".into(),
                "a delta catalog needs a location, [tables] entries, or both".into(),
            ));
        }
        if self.max_split_size == 0 {
            return Err(("max_split_size".into(), "must be at least 1".into()));
        }
        if self.timeout_seconds == 0 {
            return Err(("timeout_seconds".into(), "must be at least 1".into()));
        }
        for name in self.tables.keys() {
            if name.split('.').count() != 2 || name.split('.').any(str::is_empty) {
                return Err((
                    format!("tables.\"{name}\""),
                    "a table is named schema.table".into(),
                ));
            }
        }
        self.s3.check()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<DeltaConfig, String> {
        let config: DeltaConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        config
            .check()
            .map_err(|(key, why)| format!("{key}: {why}"))?;
        Ok(config)
    }

    #[test]
    fn catalog_files_parse_and_mistakes_are_named() {
        let config = parse(
            r#"
            location = "/data/delta"
            [tables."sales.orders"]
            location = "s3://b/orders"
            [s3]
            endpoint = "http://127.0.0.1:9000"
            "#,
        )
        .expect("valid");
        assert_eq!(config.tables["sales.orders"].location, "s3://b/orders");
        assert_eq!(config.max_split_size, 128 << 20);
        let err = parse("").expect_err("nothing to read");
        assert!(err.starts_with("location:"), "{err}");
        let err = parse("[tables.orders]\nlocation = \"/x\"").expect_err("no schema");
        assert!(err.contains("schema.table"), "{err}");
        let err = parse("location = \"/x\"\nformat = \"delta\"").expect_err("unknown key");
        assert!(err.contains("format"), "{err}");
    }
}
