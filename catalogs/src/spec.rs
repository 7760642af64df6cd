//! Catalog files: `etc/catalog/<name>.toml` → [`CatalogSpec`].
//!
//! ```toml
//! # etc/catalog/bench.toml: a catalog named "bench"
//! connector = "tpch"
//! column_naming = "simplified"
//! ```
//!
//! The file stem is the catalog name and `connector` picks the implementation (Trino's
//! convention). Unknown keys are errors, never silently ignored. A string value
//! `${ENV:NAME}` is replaced by the environment variable `NAME` (Trino's syntax), so secrets
//! stay out of files.

use std::path::{Path, PathBuf};

use braid_connector_memory::MemoryConfig;
use braid_connector_postgres::PostgresConfig;
use braid_connector_tpch::TpchConfig;
use figment::Figment;
use figment::providers::Serialized;
use serde::Deserialize;

use crate::error::CatalogError;

/// One catalog's configuration, tagged by `connector = "..."`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "connector", rename_all = "lowercase")]
pub enum CatalogSpec {
    Tpch(TpchConfig),
    Memory(MemoryConfig),
    Postgres(PostgresConfig),
}

impl CatalogSpec {
    /// The connector kind.
    pub fn kind(&self) -> &'static str {
        match self {
            CatalogSpec::Tpch(_) => braid_connector_tpch::KIND,
            CatalogSpec::Memory(_) => braid_connector_memory::KIND,
            CatalogSpec::Postgres(_) => braid_connector_postgres::KIND,
        }
    }
}

/// Every `*.toml` in `dir`, as `(catalog name, spec)`, sorted by name.
pub fn load_catalog_dir(dir: &Path) -> Result<Vec<(String, CatalogSpec)>, CatalogError> {
    let read_dir = |source| CatalogError::ReadDir {
        dir: dir.to_path_buf(),
        source,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(read_dir)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(read_dir)?;
    files.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    files.sort();
    files.iter().map(|f| load_catalog_file(f)).collect()
}

/// One catalog file, as `(catalog name, spec)`.
pub fn load_catalog_file(file: &Path) -> Result<(String, CatalogSpec), CatalogError> {
    let name = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_string();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(CatalogError::BadName {
            file: file.to_path_buf(),
            name,
        });
    }
    let text = std::fs::read_to_string(file).map_err(|source| CatalogError::ReadFile {
        file: file.to_path_buf(),
        source,
    })?;
    let spec = parse_catalog(&text, file)?;
    Ok((name, spec))
}

fn parse_catalog(text: &str, file: &Path) -> Result<CatalogSpec, CatalogError> {
    let invalid = |message: String| CatalogError::Invalid {
        file: file.to_path_buf(),
        message,
    };
    let mut value: toml::Table =
        toml::from_str(text).map_err(|e| invalid(e.message().to_string()))?;
    for (key, v) in value.iter_mut() {
        substitute_env(key, v, file)?;
    }
    Figment::from(Serialized::defaults(value))
        .extract::<CatalogSpec>()
        .map_err(|e| invalid(describe(&e)))
}

/// A figment error as "<what is wrong> (key 'a.b')".
fn describe(error: &figment::Error) -> String {
    use figment::error::Kind;
    let key = error.path.join(".");
    let what = match &error.kind {
        Kind::UnknownField(field, expected) => {
            let key = if key.is_empty() {
                field.clone()
            } else {
                format!("{key}.{field}")
            };
            return format!(
                "unknown key '{key}' (expected one of: {})",
                expected.join(", ")
            );
        }
        Kind::MissingField(field) => {
            let key = if key.is_empty() {
                field.to_string()
            } else {
                format!("{key}.{field}")
            };
            return format!("missing required key '{key}'");
        }
        Kind::UnknownVariant(found, expected) => format!(
            "unknown connector '{found}' (known connectors: {})",
            expected.join(", ")
        ),
        other => other.to_string(),
    };
    if key.is_empty() {
        what
    } else {
        format!("{what} (key '{key}')")
    }
}

/// Replaces `${ENV:NAME}` in every string value below `key`.
fn substitute_env(key: &str, value: &mut toml::Value, file: &Path) -> Result<(), CatalogError> {
    match value {
        toml::Value::String(s) => {
            while let Some(start) = s.find("${ENV:") {
                let Some(len) = s[start..].find('}') else {
                    break;
                };
                let var = s[start + 6..start + len].to_string();
                let replacement = std::env::var(&var).map_err(|_| CatalogError::MissingEnv {
                    file: file.to_path_buf(),
                    key: key.to_string(),
                    var: var.clone(),
                })?;
                s.replace_range(start..start + len + 1, &replacement);
            }
        }
        toml::Value::Array(items) => {
            for item in items {
                substitute_env(key, item, file)?;
            }
        }
        toml::Value::Table(table) => {
            for (k, v) in table.iter_mut() {
                substitute_env(&format!("{key}.{k}"), v, file)?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use braid_connector_tpch::ColumnNaming;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write catalog file");
        path
    }

    #[test]
    fn parses_a_catalog_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = write(
            dir.path(),
            "bench.toml",
            "connector = \"tpch\"\ncolumn_naming = \"simplified\"\n",
        );
        let (name, spec) = load_catalog_file(&file).expect("valid file");
        assert_eq!(name, "bench");
        assert_eq!(
            spec,
            CatalogSpec::Tpch(TpchConfig {
                column_naming: ColumnNaming::Simplified,
                splits: None
            })
        );
    }

    #[test]
    fn unknown_key_names_the_file_and_the_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = write(
            dir.path(),
            "bad.toml",
            "connector = \"tpch\"\ncolum_naming = \"simplified\"\n",
        );
        let err = load_catalog_file(&file)
            .expect_err("unknown key")
            .to_string();
        assert!(err.contains("bad.toml"), "{err}");
        assert!(err.contains("unknown key 'colum_naming'"), "{err}");
    }

    #[test]
    fn missing_connector_key_names_the_file_and_the_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = write(
            dir.path(),
            "nokind.toml",
            "column_naming = \"simplified\"\n",
        );
        let err = load_catalog_file(&file)
            .expect_err("missing key")
            .to_string();
        assert!(err.contains("nokind.toml"), "{err}");
        assert!(err.contains("missing required key 'connector'"), "{err}");
    }

    #[test]
    fn unknown_connector_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = write(dir.path(), "x.toml", "connector = \"oracle\"\n");
        let err = load_catalog_file(&file)
            .expect_err("unknown connector")
            .to_string();
        assert!(err.contains("unknown connector 'oracle'"), "{err}");
    }

    #[test]
    fn env_placeholders_are_substituted() {
        let file = Path::new("x.toml");
        // Cargo sets CARGO_PKG_NAME for the test process.
        let mut value = toml::Value::String("db-${ENV:CARGO_PKG_NAME}!".into());
        substitute_env("password", &mut value, file).expect("set variable");
        assert_eq!(value.as_str(), Some("db-braid-catalogs!"));

        let mut value = toml::Value::String("${ENV:BRAID_TEST_UNSET_42}".into());
        let err = substitute_env("password", &mut value, file)
            .expect_err("unset")
            .to_string();
        assert!(
            err.contains("BRAID_TEST_UNSET_42") && err.contains("'password'"),
            "{err}"
        );
    }
}
