//! [`Pool`]: PostgreSQL connections of one catalog in one process, at most `pool_size` open.

use std::sync::Arc;
use std::time::Duration;

use braid_connector_spi::ConnectorError;
use parking_lot::Mutex;
use secrecy::ExposeSecret;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::Client;

use crate::config::{PostgresConfig, SslMode};

/// The connections of one catalog.
#[derive(Debug)]
pub struct Pool {
    catalog: String,
    config: Arc<PostgresConfig>,
    idle: Mutex<Vec<Client>>,
    permits: Arc<Semaphore>,
    /// Built once (it reads `sslrootcert`); an error is reported when connecting.
    tls: Result<Tls, String>,
}

/// The catalog's TLS connector.
#[derive(Clone)]
struct Tls(tokio_postgres_rustls::MakeRustlsConnect);

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls")
    }
}

/// A connection borrowed from a [`Pool`]; returned when dropped.
pub struct PooledClient {
    client: Option<Client>,
    pool: Arc<Pool>,
    _permit: OwnedSemaphorePermit,
}

impl std::ops::Deref for PooledClient {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client.as_ref().expect("present until drop")
    }
}

impl Drop for PooledClient {
    fn drop(&mut self) {
        if let Some(client) = self.client.take()
            && !client.is_closed()
        {
            self.pool.idle.lock().push(client);
        }
    }
}

impl Pool {
    pub fn new(catalog: String, config: Arc<PostgresConfig>) -> Self {
        let permits = Arc::new(Semaphore::new(config.pool_size.max(1)));
        let tls = crate::tls::connector(&config).map(Tls);
        Self {
            catalog,
            config,
            idle: Mutex::new(Vec::new()),
            permits,
            tls,
        }
    }

    pub fn catalog(&self) -> &str {
        &self.catalog
    }

    pub fn config(&self) -> &PostgresConfig {
        &self.config
    }

    /// An open connection, waiting while `pool_size` are in use.
    pub async fn get(self: &Arc<Self>) -> Result<PooledClient, ConnectorError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| self.error("the connection pool is closed".into()))?;
        let idle = {
            let mut idle = self.idle.lock();
            idle.retain(|c| !c.is_closed());
            idle.pop()
        };
        let client = match idle {
            Some(client) => client,
            None => self.connect().await?,
        };
        Ok(PooledClient {
            client: Some(client),
            pool: self.clone(),
            _permit: permit,
        })
    }

    async fn connect(&self) -> Result<Client, ConnectorError> {
        let config = &self.config;
        let mut pg = tokio_postgres::Config::new();
        pg.ssl_mode(match config.sslmode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
        });
        pg.host(&config.host)
            .port(config.port)
            .dbname(&config.database)
            .user(&config.user)
            .application_name("braid")
            .connect_timeout(Duration::from_secs(config.connect_timeout_seconds.max(1)));
        if let Some(password) = &config.password {
            pg.password(password.expose_secret());
        }
        // Literals are quoted for standard-conforming strings (a backslash is a character).
        let mut options = "-c standard_conforming_strings=on".to_string();
        if config.statement_timeout_seconds > 0 {
            options.push_str(&format!(
                " -c statement_timeout={}s",
                config.statement_timeout_seconds
            ));
        }
        pg.options(&options);
        let Tls(tls) = self
            .tls
            .clone()
            .map_err(|reason| ConnectorError::InvalidOption {
                catalog: self.catalog.clone(),
                key: "sslrootcert".into(),
                reason,
            })?;
        let (client, connection) = pg.connect(tls).await.map_err(|e| {
            self.error(format!(
                "cannot connect to PostgreSQL at {} (database '{}', user '{}'): {}",
                config.address(),
                config.database,
                config.user,
                describe(&e)
            ))
        })?;
        let catalog = self.catalog.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%catalog, "PostgreSQL connection ended: {e}");
            }
        });
        Ok(client)
    }

    /// An error of this catalog.
    pub fn error(&self, message: String) -> ConnectorError {
        ConnectorError::Source {
            catalog: self.catalog.clone(),
            message,
        }
    }
}

/// PostgreSQL's own message for a server error, else the client's.
pub fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => match std::error::Error::source(error) {
            Some(source) => format!("{error}: {source}"),
            None => error.to_string(),
        },
    }
}
