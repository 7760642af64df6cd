//! [`Pool`]: PostgreSQL connections of one catalog in one process, at most `pool_size` open.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// [`Pool::result_types`] by SQL text, for the subtree rule, which reads it without
    /// waiting ([`Pool::described`]).
    described: Mutex<HashMap<String, Described>>,
    /// Statements the subtree rule found no answer for; [`Pool::describe_wanted`] asks.
    wanted: Mutex<Vec<String>>,
    /// Held while the wanted statements are asked for, so that a second caller waits for the
    /// answers rather than returning before they are known.
    describing: tokio::sync::Mutex<()>,
}

/// When a statement's result types were asked for, and PostgreSQL's answer.
type Described = (Instant, Result<Vec<String>, String>);

/// The most statements whose result types a pool remembers.
const DESCRIBED_MAX: usize = 1024;
/// The most statements waiting for [`Pool::describe_wanted`].
const WANTED_MAX: usize = 64;

/// The catalog's TLS connector.
#[derive(Clone)]
struct Tls(tokio_postgres_rustls::MakeRustlsConnect);

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls")
    }
}

/// A connection borrowed from a [`Pool`]; returned when dropped, unless a statement is still
/// running on it (see [`PooledClient::set_running`]).
pub struct PooledClient {
    client: Option<Client>,
    pool: Arc<Pool>,
    /// A statement was sent and has not been read to its end.
    running: bool,
    _permit: OwnedSemaphorePermit,
}

impl std::ops::Deref for PooledClient {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client.as_ref().expect("present until drop")
    }
}

impl PooledClient {
    /// Marks a statement as running (before it is sent) or read to its end. Dropped while one
    /// runs — its task cancelled or failed, at whatever await — the connection cancels it and
    /// closes instead of going back to the pool, where it would drain the rest of the result
    /// while PostgreSQL scans on and the next borrower waits.
    pub fn set_running(&mut self, running: bool) {
        self.running = running;
    }

    /// Cancels the statement running on this connection and closes the connection.
    fn cancel_and_discard(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // No runtime left: the process is ending and the connection with it.
        };
        let token = client.cancel_token();
        let tls = self.pool.tls.clone();
        let catalog = self.pool.catalog.clone();
        let address = self.pool.config.address();
        let timeout = self.pool.connect_timeout();
        runtime.spawn(async move {
            let cancel = async {
                match tls {
                    Ok(Tls(tls)) => token.cancel_query(tls).await,
                    Err(_) => token.cancel_query(tokio_postgres::NoTls).await,
                }
            };
            match tokio::time::timeout(timeout, cancel).await {
                Ok(Ok(())) => tracing::info!(%catalog, "abandoned PostgreSQL query cancelled"),
                Ok(Err(e)) => tracing::warn!(%catalog, %address, "cannot cancel an abandoned PostgreSQL query: {}", describe(&e)),
                Err(_) => tracing::warn!(%catalog, %address, "cancelling an abandoned PostgreSQL query timed out"),
            }
            // Closing the connection ends the backend even where the cancel did not arrive.
            drop(client);
        });
    }
}

impl Drop for PooledClient {
    fn drop(&mut self) {
        if self.running {
            self.cancel_and_discard();
        } else if let Some(client) = self.client.take()
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
            described: Mutex::new(HashMap::new()),
            wanted: Mutex::new(Vec::new()),
            describing: tokio::sync::Mutex::new(()),
        }
    }

    /// [`Pool::result_types`] of `sql` if known, without waiting; else `sql` is noted for the
    /// next [`Pool::describe_wanted`] and the answer is `None`.
    pub fn described(&self, sql: &str) -> Option<Result<Vec<String>, String>> {
        let ttl = Duration::from_secs(self.config.metadata_cache_ttl_seconds);
        if let Some((at, types)) = self.described.lock().get(sql)
            && at.elapsed() < ttl
        {
            return Some(types.clone());
        }
        let mut wanted = self.wanted.lock();
        if wanted.len() < WANTED_MAX && !wanted.iter().any(|w| w == sql) {
            wanted.push(sql.to_string());
        }
        None
    }

    /// Asks PostgreSQL for the result types [`Pool::described`] could not answer; returns
    /// whether there were any.
    pub async fn describe_wanted(self: &Arc<Self>) -> bool {
        let _describing = self.describing.lock().await;
        let wanted = std::mem::take(&mut *self.wanted.lock());
        for sql in &wanted {
            // An error is remembered as the answer (the statement is not pushed) or, when
            // the server is unreachable, reported when the query runs.
            let _ = self.result_types(sql).await;
        }
        !wanted.is_empty()
    }

    /// The type names (`pg_type.typname`) of the columns `sql` returns, as PostgreSQL plans it
    /// without running it; an error if PostgreSQL rejects the SQL. Remembered for
    /// `metadata_cache_ttl_seconds`.
    pub async fn result_types(self: &Arc<Self>, sql: &str) -> Result<Vec<String>, String> {
        let ttl = Duration::from_secs(self.config.metadata_cache_ttl_seconds);
        if let Some((at, types)) = self.described.lock().get(sql)
            && at.elapsed() < ttl
        {
            return types.clone();
        }
        let mut client = match self.get().await {
            Ok(client) => client,
            // Not remembered: the server may be back soon.
            Err(e) => return Err(e.to_string()),
        };
        // Dropped mid-prepare (timed out), the connection is cancelled and discarded.
        client.set_running(true);
        let prepared = tokio::time::timeout(self.connect_timeout(), client.prepare(sql)).await;
        client.set_running(prepared.is_err());
        let types = match prepared {
            Ok(prepared) => prepared
                .map(|statement| {
                    statement
                        .columns()
                        .iter()
                        .map(|c| c.type_().name().to_string())
                        .collect()
                })
                .map_err(|e| describe(&e)),
            Err(_) => {
                return Err(format!(
                    "PostgreSQL at {} did not plan the statement within {}s",
                    self.config.address(),
                    self.connect_timeout().as_secs()
                ));
            }
        };
        let mut described = self.described.lock();
        described.retain(|_, (at, _)| at.elapsed() < ttl);
        if described.len() >= DESCRIBED_MAX {
            described.clear();
        }
        described.insert(sql.to_string(), (Instant::now(), types.clone()));
        types
    }

    pub fn catalog(&self) -> &str {
        &self.catalog
    }

    pub fn config(&self) -> &PostgresConfig {
        &self.config
    }

    /// An open connection, waiting while `pool_size` are in use, for at most
    /// `pool_wait_timeout_seconds`.
    pub async fn get(self: &Arc<Self>) -> Result<PooledClient, ConnectorError> {
        let wait = Duration::from_secs(self.config.pool_wait_timeout_seconds.max(1));
        let permit = tokio::time::timeout(wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| {
                self.error(format!(
                    "all {} connections to PostgreSQL at {} stayed busy for {}s (raise 'pool_size' or 'pool_wait_timeout_seconds' in the catalog file)",
                    self.config.pool_size.max(1),
                    self.config.address(),
                    wait.as_secs()
                ))
            })?
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
            running: false,
            _permit: permit,
        })
    }

    fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.config.connect_timeout_seconds.max(1))
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
            .connect_timeout(self.connect_timeout());
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
