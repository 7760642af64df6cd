//! [`FilesConfig`]: the options of a `files` catalog file.

use std::collections::BTreeMap;

use braid_connector_spi::{CheckOptions, StorageOptions};
use serde::{Deserialize, Serialize};

/// Options of a `files` catalog file.
///
/// ```toml
/// connector = "files"
/// location = "s3://lake/warehouse"   # or a local directory; <location>/<schema>/<table>/
/// format = "parquet"                 # of tables that do not say: parquet or csv
/// max_split_size = 134217728         # the most bytes one split reads
///
/// [csv]                              # how CSV tables are read
/// header = true
/// delimiter = ","
///
/// [tables."sales.orders"]            # a table anywhere, besides those under `location`
/// location = "s3://other-bucket/exports/orders/"
/// format = "csv"
///
/// [s3]                               # how s3:// locations are reached (see the SPI's storage)
/// endpoint = "http://127.0.0.1:9000"
/// aws_access_key = "${ENV:S3_ACCESS_KEY}"
/// aws_secret_key = "${ENV:S3_SECRET_KEY}"
/// path_style_access = true
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesConfig {
    /// The directory whose subdirectories are schemas, and theirs tables.
    #[serde(default)]
    pub location: Option<String>,
    /// The format of tables that do not name one.
    #[serde(default)]
    pub format: Format,
    /// The most bytes one split reads; larger Parquet files are cut into byte ranges (a row
    /// group belongs to the range that holds its middle).
    #[serde(default = "default_max_split_size")]
    pub max_split_size: u64,
    #[serde(default)]
    pub csv: CsvOptions,
    /// Tables by `schema.table`, wherever their files are.
    #[serde(default)]
    pub tables: BTreeMap<String, TableEntry>,
    #[serde(default)]
    pub s3: StorageOptions,
}

fn default_max_split_size() -> u64 {
    128 << 20
}

/// A file format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Parquet,
    Csv,
}

impl Format {
    /// The extension of the format's files; other files in a table's directory are ignored.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Parquet => ".parquet",
            Format::Csv => ".csv",
        }
    }
}

/// How CSV files are read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvOptions {
    /// The first line names the columns.
    #[serde(default = "yes")]
    pub header: bool,
    /// One character.
    #[serde(default = "comma")]
    pub delimiter: String,
}

impl Default for CsvOptions {
    fn default() -> Self {
        Self {
            header: true,
            delimiter: comma(),
        }
    }
}

fn yes() -> bool {
    true
}

fn comma() -> String {
    ",".into()
}

impl CsvOptions {
    /// The delimiter as the one byte it must be.
    pub fn delimiter_byte(&self) -> Option<u8> {
        match self.delimiter.as_bytes() {
            [byte] => Some(*byte),
            _ => None,
        }
    }
}

/// A table named in the catalog file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableEntry {
    /// The table's directory (or one file).
    pub location: String,
    #[serde(default)]
    pub format: Option<Format>,
    /// How this table's CSV files are read, when not as the catalog's.
    #[serde(default)]
    pub csv: Option<CsvOptions>,
}

impl CheckOptions for FilesConfig {
    /// Checks what can be checked without reading a file: returns the key at fault and why.
    fn check(&self) -> Result<(), (String, String)> {
        if self.location.is_none() && self.tables.is_empty() {
            return Err((
                "location".into(),
                "a files catalog needs a location, [tables] entries, or both".into(),
            ));
        }
        if self.max_split_size == 0 {
            return Err(("max_split_size".into(), "must be at least 1".into()));
        }
        let csv_ok = |key: String, csv: &CsvOptions| match csv.delimiter_byte() {
            Some(_) => Ok(()),
            None => Err((
                key,
                format!("'{}' is not one single-byte character", csv.delimiter),
            )),
        };
        csv_ok("csv.delimiter".into(), &self.csv)?;
        for (name, entry) in &self.tables {
            if name.split('.').count() != 2 || name.split('.').any(str::is_empty) {
                return Err((
                    format!("tables.\"{name}\""),
                    "a table is named schema.table".into(),
                ));
            }
            if let Some(csv) = &entry.csv {
                csv_ok(format!("tables.\"{name}\".csv.delimiter"), csv)?;
            }
        }
        self.s3.check()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<FilesConfig, String> {
        let config: FilesConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        config
            .check()
            .map_err(|(key, why)| format!("{key}: {why}"))?;
        Ok(config)
    }

    #[test]
    fn a_full_catalog_file_parses() {
        let config = parse(
            r#"
            location = "/data/lake"
            format = "csv"
            [csv]
            delimiter = "|"
            [tables."sales.orders"]
            location = "s3://b/orders/"
            format = "parquet"
            [s3]
            endpoint = "http://127.0.0.1:9000"
            path_style_access = true
            "#,
        )
        .expect("config");
        assert_eq!(config.format, Format::Csv);
        assert_eq!(config.csv.delimiter_byte(), Some(b'|'));
        assert_eq!(config.tables["sales.orders"].format, Some(Format::Parquet));
    }

    #[test]
    fn bad_options_name_their_key() {
        let err = parse("format = \"orc\"\nlocation = \"/x\"\n").expect_err("orc");
        assert!(err.contains("orc"), "{err}");
        let err = parse("").expect_err("nothing");
        assert!(err.starts_with("location:"), "{err}");
        let err = parse("location = \"/x\"\n[csv]\ndelimiter = \"ab\"\n").expect_err("delim");
        assert!(err.starts_with("csv.delimiter:"), "{err}");
        let err = parse("[tables.orders]\nlocation = \"/x\"\n").expect_err("name");
        assert!(err.starts_with("tables.\"orders\""), "{err}");
    }
}
