use std::path::PathBuf;

/// Errors loading catalogs. Each names the file and, where it can, the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read catalog directory {}: {source}", dir.display())]
    ReadDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read catalog file {}: {source}", file.display())]
    ReadFile {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("catalog file {}: {message}", file.display())]
    Invalid { file: PathBuf, message: String },
    #[error("catalog file {}: key '{key}' refers to environment variable {var}, which is not set", file.display())]
    MissingEnv {
        file: PathBuf,
        key: String,
        var: String,
    },
    #[error("catalog file {}: '{name}' is not a valid catalog name (use letters, digits and _)", file.display())]
    BadName { file: PathBuf, name: String },
    #[error(transparent)]
    Connector(#[from] braid_connector_spi::ConnectorError),
}
