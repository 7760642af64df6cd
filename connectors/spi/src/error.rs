use datafusion::error::DataFusionError;

/// Errors a connector reports. Each names the catalog, table or key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// A catalog file's options do not fit the connector (the file is named by the caller).
    #[error("{message}")]
    Config { message: String },
    /// A catalog option has a value the connector cannot use.
    #[error("catalog '{catalog}': invalid value for '{key}': {reason}")]
    InvalidOption {
        catalog: String,
        key: String,
        reason: String,
    },
    /// A table does not exist (any more) in the catalog.
    #[error("table '{catalog}.{schema}.{table}' does not exist")]
    TableNotFound {
        catalog: String,
        schema: String,
        table: String,
    },
    /// A table exists already.
    #[error("table '{catalog}.{schema}.{table}' already exists")]
    TableExists {
        catalog: String,
        schema: String,
        table: String,
    },
    /// A schema does not exist in the catalog.
    #[error("schema '{catalog}.{schema}' does not exist")]
    SchemaNotFound { catalog: String, schema: String },
    /// The operation is not supported by this connector.
    #[error("catalog '{catalog}' ({kind} connector) does not support {operation}")]
    Unsupported {
        catalog: String,
        kind: &'static str,
        operation: String,
    },
    /// A limit configured for the catalog was exceeded.
    #[error(
        "catalog '{catalog}': {what} exceeds the limit of {limit} (set '{key}' in the catalog file to raise it)"
    )]
    LimitExceeded {
        catalog: String,
        what: String,
        limit: String,
        key: &'static str,
    },
    /// A scan payload could not be decoded (workers and coordinator on different versions?).
    #[error("cannot decode a {kind} scan: {reason}")]
    Codec { kind: &'static str, reason: String },
    /// The source failed while reading or writing.
    #[error("catalog '{catalog}': {message}")]
    Source { catalog: String, message: String },
}

impl From<ConnectorError> for DataFusionError {
    fn from(err: ConnectorError) -> Self {
        match err {
            ConnectorError::TableNotFound { .. } | ConnectorError::SchemaNotFound { .. } => {
                DataFusionError::Plan(err.to_string())
            }
            other => DataFusionError::External(Box::new(other)),
        }
    }
}
