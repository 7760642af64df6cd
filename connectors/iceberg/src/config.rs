//! [`IcebergConfig`]: the options of an `iceberg` catalog file.

use std::collections::HashMap;
use std::fmt;

use braid_connector_spi::{CheckOptions, StorageOptions};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

/// Options of an `iceberg` catalog file.
///
/// ```toml
/// connector = "iceberg"
/// catalog_type = "sql"                          # or "rest"
/// uri = "sqlite:///var/lake/catalog.db"         # sql: the catalog database; rest: the server
/// warehouse = "s3://lake/warehouse"             # where new tables go
/// iceberg_catalog = "default"                   # the catalog's name inside the database
///
/// [s3]                                          # how s3:// files are reached (the SPI's storage)
/// endpoint = "http://127.0.0.1:9000"
/// aws_access_key = "${ENV:S3_ACCESS_KEY}"
/// aws_secret_key = "${ENV:S3_SECRET_KEY}"
/// path_style_access = true
/// ```
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IcebergConfig {
    pub catalog_type: CatalogType,
    /// `sql`: the database (`sqlite:///path/catalog.db`, `postgresql://user:pw@host/db`);
    /// `rest`: the REST server (`http://host:8181`). May hold a password: never printed whole.
    pub uri: SecretString,
    /// Where new tables are written (`s3://bucket/dir` or a local directory); required for
    /// `sql`, the server's default for `rest`.
    #[serde(default)]
    pub warehouse: Option<String>,
    /// The catalog's name inside the SQL database (pyiceberg's `SqlCatalog(name)`); the Braid
    /// catalog's name when absent.
    #[serde(default)]
    pub iceberg_catalog: Option<String>,
    /// The bearer token of a REST catalog.
    #[serde(default)]
    pub token: Option<SecretString>,
    /// The most bytes one split reads; larger data files without deletes are cut into byte
    /// ranges (a row group belongs to the range that holds its middle).
    #[serde(default = "default_max_split_size")]
    pub max_split_size: u64,
    /// How long one round trip to the catalog (database, REST server, metadata file) may take.
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
    #[serde(default)]
    pub s3: StorageOptions,
}

fn default_max_split_size() -> u64 {
    128 << 20
}

fn default_timeout_seconds() -> u64 {
    30
}

/// The kind of Iceberg catalog that holds the tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatalogType {
    /// An Iceberg SQL catalog (Trino's `jdbc`): the `iceberg_tables` and
    /// `iceberg_namespace_properties` tables of a SQLite or PostgreSQL database.
    Sql,
    /// An Iceberg REST catalog.
    Rest,
}

impl fmt::Debug for IcebergConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IcebergConfig")
            .field("catalog_type", &self.catalog_type)
            .field("uri", &self.uri_display())
            .field("warehouse", &self.warehouse)
            .field("iceberg_catalog", &self.iceberg_catalog)
            .field("token", &self.token.as_ref().map(|_| "[hidden]"))
            .field("max_split_size", &self.max_split_size)
            .field("timeout_seconds", &self.timeout_seconds)
            .field("s3", &self.s3)
            .finish()
    }
}

impl IcebergConfig {
    /// The catalog's URI without its password, for messages.
    pub fn uri_display(&self) -> String {
        let uri = self.uri.expose_secret();
        match Url::parse(uri) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("***"));
                url.to_string()
            }
            Ok(_) => uri.to_string(),
            Err(_) => "(not a URL)".to_string(),
        }
    }

    /// The properties iceberg's catalog builders take.
    pub fn catalog_properties(&self) -> HashMap<String, String> {
        let mut props = HashMap::from([("uri".to_string(), self.uri.expose_secret().to_string())]);
        if let Some(warehouse) = &self.warehouse {
            props.insert("warehouse".into(), warehouse.clone());
        }
        match self.catalog_type {
            CatalogType::Sql => {
                let style = if self.uri.expose_secret().starts_with("sqlite:") {
                    "QMark"
                } else {
                    "DollarNumeric"
                };
                props.insert("sql_bind_style".into(), style.into());
                props.insert("pool.max-connections".into(), "4".into());
            }
            CatalogType::Rest => {
                if let Some(token) = &self.token {
                    props.insert("token".into(), token.expose_secret().to_string());
                }
            }
        }
        props
    }
}

impl CheckOptions for IcebergConfig {
    fn check(&self) -> Result<(), (String, String)> {
        let uri = self.uri.expose_secret();
        let scheme = Url::parse(uri).map(|u| u.scheme().to_string()).ok();
        match (self.catalog_type, scheme.as_deref()) {
            (CatalogType::Sql, Some("sqlite" | "postgres" | "postgresql")) => {}
            (CatalogType::Sql, _) => {
                return Err((
                    "uri".into(),
                    "an sql catalog's uri is sqlite:///path/catalog.db or postgresql://user@host/db"
                        .into(),
                ));
            }
            (CatalogType::Rest, Some("http" | "https")) => {}
            (CatalogType::Rest, _) => {
                return Err((
                    "uri".into(),
                    "a rest catalog's uri is http://host:port or https://...".into(),
                ));
            }
        }
        if self.catalog_type == CatalogType::Sql && self.warehouse.is_none() {
            return Err((
                "warehouse".into(),
                "an sql catalog needs a warehouse (where new tables are written)".into(),
            ));
        }
        if self.max_split_size == 0 {
            return Err(("max_split_size".into(), "must be at least 1".into()));
        }
        if self.timeout_seconds == 0 {
            return Err(("timeout_seconds".into(), "must be at least 1".into()));
        }
        self.s3.check()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> IcebergConfig {
        toml::from_str(text).expect("config")
    }

    #[test]
    fn passwords_never_reach_debug() {
        let c = config(
            "catalog_type = \"sql\"\nuri = \"postgresql://u:s3cr3t@h/db\"\nwarehouse = \"/w\"\n",
        );
        let text = format!("{c:?}");
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains("postgresql://u:***@h/db"), "{text}");
        assert_eq!(c.check(), Ok(()));
        assert_eq!(c.catalog_properties()["sql_bind_style"], "DollarNumeric");
    }

    #[test]
    fn options_are_checked() {
        let c = config("catalog_type = \"sql\"\nuri = \"mysql://h/db\"\nwarehouse = \"/w\"\n");
        assert_eq!(c.check().expect_err("scheme").0, "uri");
        let c = config("catalog_type = \"sql\"\nuri = \"sqlite:///c.db\"\n");
        assert_eq!(c.check().expect_err("warehouse").0, "warehouse");
        let c = config("catalog_type = \"rest\"\nuri = \"http://h:8181\"\n");
        assert_eq!(c.check(), Ok(()));
        assert_eq!(c.catalog_properties().get("sql_bind_style"), None);
    }
}
