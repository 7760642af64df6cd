//! Catalog files: `etc/catalog/<name>.toml` → [`CatalogSpec`].
//!
//! ```toml
//! # etc/catalog/bench.toml: a catalog named "bench"
//! connector = "tpch"
//! column_naming = "simplified"
//! ```
//!
//! The file stem is the catalog name and `connector` picks the implementation (Trino's
//! convention); the connector's factory checks the other keys, and an unknown key is an error,
//! never silently ignored. A string value `${ENV:NAME}` is replaced by the environment variable
//! `NAME` (Trino's syntax), so secrets stay out of files.

use std::path::{Path, PathBuf};

use braid_connector_spi::CatalogOptions;

use crate::error::CatalogError;

/// One catalog file: its connector kind (`connector = "..."`) and the rest of its options,
/// which the connector's factory checks when it makes the catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogSpec {
    pub kind: String,
    pub options: CatalogOptions,
    /// The file it came from (`None` for a built-in catalog), for error messages.
    pub file: Option<PathBuf>,
}

impl CatalogSpec {
    /// A built-in catalog of `kind` with its defaults.
    pub fn builtin(kind: &str) -> Self {
        Self {
            kind: kind.to_string(),
            options: CatalogOptions::default(),
            file: None,
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
    let mut table: toml::Table =
        toml::from_str(text).map_err(|e| invalid(e.message().to_string()))?;
    for (key, v) in table.iter_mut() {
        substitute_env(key, v, file)?;
    }
    let kind = match table.remove("connector") {
        Some(toml::Value::String(kind)) => kind,
        Some(_) => return Err(invalid("key 'connector' must be a string".into())),
        None => return Err(invalid("missing required key 'connector'".into())),
    };
    Ok(CatalogSpec {
        kind,
        options: CatalogOptions::new(table),
        file: Some(file.to_path_buf()),
    })
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
        assert_eq!(spec.kind, "tpch");
        let config: braid_connector_tpch::TpchConfig = spec.options.parse().expect("options");
        assert_eq!(
            config,
            braid_connector_tpch::TpchConfig {
                column_naming: braid_connector_tpch::ColumnNaming::Simplified,
                splits: None
            }
        );
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
