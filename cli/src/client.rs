//! [`BraidClient`]: a Flight SQL client of the coordinator, with its own session.

use std::path::PathBuf;
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use arrow_flight::sql::client::{FlightSqlServiceClient, PreparedStatement};
use arrow_flight::{Action, FlightInfo};
use futures::{Stream, StreamExt, TryStreamExt};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// Errors talking to the coordinator.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: tonic::transport::Error,
    },
    #[error("{0}")]
    Query(String),
}

impl From<arrow::error::ArrowError> for ClientError {
    fn from(e: arrow::error::ArrowError) -> Self {
        ClientError::Query(clean_error(&e.to_string()))
    }
}

impl From<arrow_flight::error::FlightError> for ClientError {
    fn from(e: arrow_flight::error::FlightError) -> Self {
        ClientError::Query(clean_error(&e.to_string()))
    }
}

/// Strips the gRPC wrapping (`Tonic error: code: ..., message: "..."`) so the server's
/// message is what the user reads.
fn clean_error(message: &str) -> String {
    let Some(start) = message.find("message: \"") else {
        return message.to_string();
    };
    let rest = &message[start + 10..];
    let end = rest
        .find("\", details")
        .or_else(|| rest.rfind('"'))
        .unwrap_or(rest.len());
    rest[..end].replace("\\\"", "\"").replace("\\n", "\n")
}

#[cfg(test)]
mod tests {
    use super::clean_error;

    #[test]
    fn keeps_the_server_message() {
        let raw = r#"Tonic error: code: 'Client specified an invalid argument', message: "Table 'tpch.tiny.x' does not exist""#;
        assert_eq!(clean_error(raw), "Table 'tpch.tiny.x' does not exist");
        let raw = r#"Tonic error: code: 'Internal error', message: "boom \"x\"", details: [], metadata: {}"#;
        assert_eq!(clean_error(raw), "boom \"x\"");
        assert_eq!(clean_error("plain"), "plain");
    }
}

/// A connection to a Braid coordinator, with its own session (`USE`, `SET`).
#[derive(Debug, Clone)]
pub struct BraidClient {
    client: FlightSqlServiceClient<Channel>,
    session_id: String,
}

/// How to reach and log in to a coordinator.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// Speak TLS; the server's certificate is checked against the system's roots, or
    /// `tls_ca_file` when given.
    pub tls: bool,
    pub tls_ca_file: Option<PathBuf>,
    /// Log in with these credentials (a Basic handshake that returns a bearer token).
    pub user: Option<String>,
    pub password: Option<String>,
}

impl BraidClient {
    /// Connects to the coordinator's Flight SQL address (`host:port`), plain and anonymous.
    pub async fn connect(addr: &str) -> Result<Self, ClientError> {
        Self::connect_with(addr, &ConnectOptions::default()).await
    }

    /// Connects with TLS and credentials as `options` say.
    pub async fn connect_with(addr: &str, options: &ConnectOptions) -> Result<Self, ClientError> {
        let tls = options.tls || options.tls_ca_file.is_some();
        let url = match addr.split_once("://") {
            Some(_) => addr.to_string(),
            None if tls => format!("https://{addr}"),
            None => format!("http://{addr}"),
        };
        let connect_error = |source| ClientError::Connect {
            addr: addr.to_string(),
            source,
        };
        let mut endpoint = Endpoint::from_shared(url)
            .map_err(connect_error)?
            .connect_timeout(Duration::from_secs(10));
        if tls {
            let ca_file = match &options.tls_ca_file {
                Some(path) => path.clone(),
                None => braid_connector_spi::system_ca_bundle().ok_or_else(|| {
                    ClientError::Query(
                        "no system CA bundle found (set SSL_CERT_FILE or pass --tls-ca-file)"
                            .into(),
                    )
                })?,
            };
            let pem = std::fs::read(&ca_file).map_err(|e| {
                ClientError::Query(format!("cannot read CA file {}: {e}", ca_file.display()))
            })?;
            let config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem));
            endpoint = endpoint.tls_config(config).map_err(connect_error)?;
        }
        let channel = endpoint.connect().await.map_err(connect_error)?;
        let session_id = uuid::Uuid::new_v4().to_string();
        let mut client = FlightSqlServiceClient::new(channel);
        client.set_header("x-braid-session", &session_id);
        // Trino's `source` of this client's queries (resource-group selectors match it).
        client.set_header("x-braid-source", "braid-cli");
        if let Some(user) = &options.user {
            let password = options.password.as_deref().unwrap_or_default();
            client.handshake(user, password).await.map_err(|e| {
                ClientError::Query(format!("login failed: {}", clean_error(&e.to_string())))
            })?;
        }
        Ok(Self { client, session_id })
    }

    /// Runs one statement; the stream yields its rows as they arrive.
    pub async fn query(
        &mut self,
        sql: &str,
    ) -> Result<
        (
            SchemaRef,
            impl Stream<Item = Result<RecordBatch, ClientError>> + use<>,
        ),
        ClientError,
    > {
        let info = self.client.execute(sql.to_string(), None).await?;
        self.fetch(info).await
    }

    /// Prepares `sql` (with `?` placeholders) in this client's session.
    pub async fn prepare(&mut self, sql: &str) -> Result<PreparedStatement<Channel>, ClientError> {
        Ok(self.client.prepare(sql.to_string(), None).await?)
    }

    /// Runs a prepared statement with `parameters` (a row of values for its placeholders, if
    /// it has any); the stream yields its rows as they arrive.
    pub async fn execute_prepared(
        &mut self,
        statement: &mut PreparedStatement<Channel>,
        parameters: Option<RecordBatch>,
    ) -> Result<
        (
            SchemaRef,
            impl Stream<Item = Result<RecordBatch, ClientError>> + use<>,
        ),
        ClientError,
    > {
        if let Some(parameters) = parameters {
            statement.set_parameters(parameters)?;
        }
        let info = statement.execute().await?;
        self.fetch(info).await
    }

    /// The rows of a statement the coordinator described by `info`, as they arrive.
    async fn fetch(
        &mut self,
        info: FlightInfo,
    ) -> Result<
        (
            SchemaRef,
            impl Stream<Item = Result<RecordBatch, ClientError>> + use<>,
        ),
        ClientError,
    > {
        let schema = std::sync::Arc::new(info.clone().try_decode_schema()?);
        let mut streams = Vec::new();
        for endpoint in info.endpoint {
            let Some(ticket) = endpoint.ticket else {
                continue;
            };
            streams.push(self.client.do_get(ticket).await?);
        }
        let batches = futures::stream::iter(streams)
            .flatten()
            .map_err(ClientError::from);
        Ok((schema, batches))
    }

    /// Runs one statement and collects its rows.
    pub async fn query_all(
        &mut self,
        sql: &str,
    ) -> Result<(SchemaRef, Vec<RecordBatch>), ClientError> {
        let (schema, batches) = self.query(sql).await?;
        Ok((schema, batches.try_collect().await?))
    }

    /// A custom coordinator action's JSON answer.
    pub async fn action(
        &mut self,
        name: &str,
        body: &str,
    ) -> Result<serde_json::Value, ClientError> {
        let action = Action::new(name, body.as_bytes().to_vec());
        let mut results = self.client.do_action(action).await?;
        let Some(result) = results.next().await else {
            return Ok(serde_json::Value::Null);
        };
        let result = result.map_err(|s| ClientError::Query(s.message().to_string()))?;
        serde_json::from_slice(&result.body).map_err(|e| ClientError::Query(e.to_string()))
    }

    /// Progress of this session's running query.
    pub async fn progress(&mut self) -> Result<serde_json::Value, ClientError> {
        let session = self.session_id.clone();
        self.action(braid_scheduler::flight_sql::PROGRESS_ACTION, &session)
            .await
    }

    /// Waits until the cluster has at least `workers` live workers.
    pub async fn wait_for_workers(
        &mut self,
        workers: u64,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let status = self
                .action(braid_scheduler::flight_sql::WORKERS_ACTION, "")
                .await?;
            if status["workers"].as_u64().unwrap_or(0) >= workers {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                return Err(ClientError::Query(format!(
                    "no {workers} workers registered after {timeout:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
