//! # braid-scheduler
//!
//! The Braid coordinator: Ballista 53's scheduler (push scheduling) plus an Arrow Flight SQL
//! frontend on its own port.
//!
//! - [`Coordinator::start`] loads the catalogs, starts the Ballista scheduler (workers register
//!   on its port, which also serves Ballista's REST status under `/api`), the Flight SQL
//!   service (optionally TLS, behind [`auth::AuthLayer`]) and the internal Flight port where
//!   workers call the connectors' internal services (memory-table rows).
//!   [`Coordinator::start_with`] takes the connector kinds to know (tests add their own).
//! - [`engine::Engine`] plans each statement against the coordinator's catalogs. Metadata
//!   statements (Trino's `SHOW ...`, `USE`, `DESCRIBE`: [`trino`]), DDL, `SET`,
//!   `information_schema` and `EXPLAIN` run on the coordinator; queries run as Ballista jobs
//!   submitted with `SchedulerServer::submit_job` ([`job`]).
//!   Trino's `FOR VERSION|TIMESTAMP AS OF` is rewritten by byte spans before parsing
//!   (`time_travel.rs`).
//! - [`trino_http::TrinoHttp`] speaks Trino's HTTP client protocol on `http_port`, over the
//!   same engine, queries and resource groups as Flight SQL; [`web_ui::WebUi`] serves the web
//!   UI on the same port.
//! - [`queries::Queries`] registers every statement: Trino's resource groups admit or queue
//!   it, time limits end it, and `system.runtime.queries` / `kill_query` read and stop it.
//! - [`flight_sql::BraidFlightSql`] is the Flight SQL service; [`auth`] checks passwords and
//!   bearer tokens; [`session`] keeps each client's `USE`/`SET` apart; [`job::QueryControl`]
//!   cancels a statement's Ballista job.
//! - [`CoordinatorSettings`]: flags > `BRAID_SCHEDULER_*` env > `braid.toml` > defaults.
//! - [`main_with`]: the `braid-scheduler` program (flags, logging, exit code) for a set of
//!   connector kinds; its `main` and the test daemons call it.

pub mod auth;
pub mod engine;
pub mod flight_sql;
mod internal;
pub mod job;
pub mod queries;
pub mod session;
mod settings;
mod sql_info;
pub mod sql_text;
pub mod system;
mod time_travel;
mod tls;
pub mod trino;
pub mod trino_http;
pub mod web_ui;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arrow_flight::flight_service_server::FlightServiceServer;
use ballista_core::config::TaskSchedulingPolicy;
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::{create_scheduler, start_grpc_service};
use braid_catalogs::{ConnectorRegistry, Factories, Role, bootstrap};
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use settings::{AuthMode, CoordinatorFlags, CoordinatorSettings};

/// Largest gRPC message the Flight SQL port accepts or sends.
const MAX_MESSAGE_SIZE: usize = 64 * 1024 * 1024;

/// Why the coordinator could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum CoordinatorError {
    #[error("invalid coordinator setting: {0}")]
    Settings(String),
    #[error(transparent)]
    Catalog(#[from] braid_catalogs::CatalogError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("scheduler failed: {0}")]
    Scheduler(String),
    #[error("Flight SQL service failed: {0}")]
    FlightSql(String),
    #[error("Trino HTTP service failed: {0}")]
    Http(String),
}

/// The `braid-scheduler` command line.
#[derive(Debug, clap::Parser)]
#[command(
    name = "braid-scheduler",
    version,
    about = "The Braid coordinator: plans queries and serves Flight SQL"
)]
struct Cli {
    #[command(flatten)]
    flags: CoordinatorFlags,
}

/// The `braid-scheduler` program with the connector kinds of `factories`: parses the flags,
/// logs to stdout, runs until stopped, and reports failure on stderr and in the exit code.
pub async fn main_with(factories: &Factories) -> std::process::ExitCode {
    use clap::Parser;
    braid_catalogs::bootstrap::run_daemon("braid-scheduler", "info,datafusion=warn", async {
        let cli = Cli::parse();
        let settings = CoordinatorSettings::resolve(&cli.flags)?;
        Coordinator::start_with(settings, factories)
            .await?
            .wait_or_shut_down()
            .await
    })
    .await
}

/// A running coordinator.
pub struct Coordinator {
    /// Where workers register.
    pub scheduler_addr: SocketAddr,
    /// Where Flight SQL clients connect.
    pub flight_sql_addr: SocketAddr,
    /// Where Trino's clients connect.
    pub http_addr: SocketAddr,
    scheduler: JoinHandle<Result<(), CoordinatorError>>,
    flight_sql: JoinHandle<Result<(), CoordinatorError>>,
    internal: JoinHandle<Result<(), CoordinatorError>>,
    http: JoinHandle<Result<(), CoordinatorError>>,
    queries: Arc<queries::Queries>,
    grace_period: Duration,
}

impl Coordinator {
    /// Starts the scheduler and the Flight SQL service with this build's connectors. A port of
    /// 0 picks a free one.
    pub async fn start(settings: CoordinatorSettings) -> Result<Self, CoordinatorError> {
        Self::start_with(settings, &Factories::builtin()).await
    }

    /// [`Coordinator::start`] with the connector kinds of `factories`.
    pub async fn start_with(
        settings: CoordinatorSettings,
        factories: &Factories,
    ) -> Result<Self, CoordinatorError> {
        let auth = Arc::new(
            auth::Authenticator::new(
                settings.auth,
                settings.password_file.as_deref(),
                Duration::from_secs(settings.token_ttl_seconds),
            )
            .map_err(CoordinatorError::Settings)?,
        );
        let tls = tls::TlsFiles::load(&settings)?;
        let limits = settings.query.limits()?;
        let groups = match &settings.resource_groups_file {
            Some(path) => {
                queries::ResourceGroups::load(path).map_err(CoordinatorError::Settings)?
            }
            None => queries::ResourceGroups::default_groups(),
        };
        let flight_listener = bind(&settings.bind_host, settings.flight_sql_port).await?;
        let flight_sql_addr = local_addr(&flight_listener)?;
        let http_listener = bind(&settings.bind_host, settings.http_port).await?;
        let http_addr = local_addr(&http_listener)?;
        let internal_listener = bind(&settings.bind_host, settings.internal_port).await?;
        let internal_endpoint = format!(
            "http://{}:{}",
            settings.external_host,
            local_addr(&internal_listener)?.port()
        );
        let registry = ConnectorRegistry::load_with(
            settings.catalog_dir.as_deref(),
            &Role::Coordinator {
                internal_endpoint: internal_endpoint.clone(),
            },
            factories,
        )?;

        // Ballista binds the scheduler port itself: reserve a free one when asked for port 0.
        let scheduler_port = match settings.port {
            0 => local_addr(&bind(&settings.bind_host, 0).await?)?.port(),
            port => port,
        };
        let planner = engine::Planner::new(&registry);
        let session_planner = planner.clone();
        let config = SchedulerConfig {
            bind_host: settings.bind_host.clone(),
            external_host: settings.external_host.clone(),
            bind_port: scheduler_port,
            scheduling_policy: TaskSchedulingPolicy::PushStaged,
            executor_timeout_seconds: settings.worker_timeout_seconds,
            expire_dead_executor_interval_seconds: 2,
            override_config_producer: Some(Arc::new(bootstrap::session_config)),
            override_session_builder: Some(Arc::new(move |config| {
                Ok(session_planner.session_state(config))
            })),
            override_physical_codec: Some(Arc::new(registry.codec())),
            ..Default::default()
        };
        let cluster = BallistaCluster::new_from_config(&config)
            .await
            .map_err(|e| CoordinatorError::Scheduler(e.to_string()))?;
        let job_state = cluster.job_state();
        let scheduler =
            create_scheduler::<LogicalPlanNode, PhysicalPlanNode>(cluster, Arc::new(config))
                .await
                .map_err(|e| CoordinatorError::Scheduler(e.to_string()))?;
        let scheduler_addr: SocketAddr = format!("{}:{scheduler_port}", settings.bind_host)
            .parse()
            .map_err(|e| CoordinatorError::Settings(format!("bind_host: {e}")))?;
        let grpc = start_grpc_service(scheduler_addr, scheduler.clone());
        let scheduler_task = tokio::spawn(async move {
            grpc.await
                .map_err(|e| CoordinatorError::Scheduler(e.to_string()))
        });

        job::spawn_revive_watchdog(scheduler.clone());
        let results = Arc::new(job::ResultInbox::default());
        let internal_service = FlightServiceServer::new(internal::InternalFlightService::new(
            registry.clone(),
            results.clone(),
        ))
        .max_encoding_message_size(MAX_MESSAGE_SIZE)
        .max_decoding_message_size(MAX_MESSAGE_SIZE);
        let internal = no_delay(internal_listener);
        let internal_task = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(internal_service)
                .serve_with_incoming(internal)
                .await
                .map_err(|e| CoordinatorError::FlightSql(e.to_string()))
        });

        let queries = Arc::new(queries::Queries::new(
            groups,
            limits,
            settings.admin_users.clone(),
            scheduler.clone(),
        ));
        queries::spawn_monitor(&queries);
        let runtime = Arc::new(system::Runtime {
            queries: queries.clone(),
            scheduler: scheduler.clone(),
            job_state,
            coordinator_id: format!("coordinator-{}", settings.external_host),
            coordinator_uri: format!("http://{}:{}", settings.external_host, http_addr.port()),
        });
        planner.add_system(&registry, runtime.clone());
        let engine = Arc::new(engine::Engine::new(
            registry,
            planner,
            queries.clone(),
            engine::ResultsRoute {
                inbox: results,
                endpoint: internal_endpoint,
            },
        ));
        let trino_routes = trino_http::TrinoHttp::new(
            engine.clone(),
            auth.clone(),
            tls.is_some(),
            Duration::from_secs(settings.query_client_timeout_seconds),
        )
        .router()
        .merge(web_ui::WebUi::new(runtime, auth.clone(), tls.is_some()).router());
        let http_task = match &tls {
            Some(files) => {
                let listener = tls::TlsListener::new(http_listener, files.acceptor())
                    .map_err(|e| CoordinatorError::Http(e.to_string()))?;
                tokio::spawn(async move {
                    axum::serve(listener, trino_routes)
                        .await
                        .map_err(|e| CoordinatorError::Http(e.to_string()))
                })
            }
            None => tokio::spawn(async move {
                axum::serve(http_listener, trino_routes)
                    .await
                    .map_err(|e| CoordinatorError::Http(e.to_string()))
            }),
        };
        let flight_sql = flight_sql::BraidFlightSql::new(engine, auth.clone())
            .map_err(CoordinatorError::FlightSql)?;
        let service = FlightServiceServer::new(flight_sql)
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE);
        let mut server = tonic::transport::Server::builder();
        if let Some(files) = &tls {
            server = server
                .tls_config(files.tonic())
                .map_err(|e| CoordinatorError::Settings(format!("TLS: {e}")))?;
        }
        let incoming = no_delay(flight_listener);
        let router = server
            .layer(auth::AuthLayer::new(auth))
            .add_service(service);
        let flight_task = tokio::spawn(async move {
            router
                .serve_with_incoming(incoming)
                .await
                .map_err(|e| CoordinatorError::FlightSql(e.to_string()))
        });
        tracing::info!(
            %scheduler_addr,
            %flight_sql_addr,
            %http_addr,
            auth = ?settings.auth,
            tls = settings.tls_cert_file.is_some(),
            "Braid coordinator started"
        );
        Ok(Self {
            scheduler_addr,
            flight_sql_addr,
            http_addr,
            scheduler: scheduler_task,
            flight_sql: flight_task,
            internal: internal_task,
            http: http_task,
            queries,
            grace_period: Duration::from_secs(settings.shutdown_grace_period_seconds),
        })
    }

    /// Runs until the scheduler or the Flight SQL service stops.
    pub async fn wait(self) -> Result<(), CoordinatorError> {
        let outcome = tokio::select! {
            r = self.scheduler => r,
            r = self.flight_sql => r,
            r = self.internal => r,
            r = self.http => r,
        };
        outcome.map_err(|e| CoordinatorError::Scheduler(e.to_string()))?
    }

    /// [`Self::wait`], or until SIGTERM or SIGINT, and then a graceful stop: see [`shut_down`].
    pub async fn wait_or_shut_down(self) -> Result<(), CoordinatorError> {
        let stop = shutdown_signal()?;
        let (queries, grace_period) = (self.queries.clone(), self.grace_period);
        tokio::select! {
            r = self.wait() => r,
            signal = stop => {
                tracing::info!(
                    "{signal}: the coordinator accepts no new queries and lets running ones end"
                );
                shut_down(&queries, grace_period).await;
                Ok(())
            }
        }
    }
}

/// A graceful stop: new statements fail with `SERVER_SHUTTING_DOWN` while the services keep
/// serving, so running queries stream their results to the end; those still running after
/// `grace_period` are killed with that error.
async fn shut_down(queries: &queries::Queries, grace_period: Duration) {
    queries.close();
    let deadline = tokio::time::Instant::now() + grace_period;
    loop {
        let running = queries.unfinished();
        if running.is_empty() {
            tracing::info!("no query is running: the coordinator stops");
            // The last results were handed to the connections; let them reach their clients.
            tokio::time::sleep(Duration::from_millis(500)).await;
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            for query in running {
                query.kill(
                    queries.scheduler(),
                    queries::QueryFailure::new(
                        queries::ErrorCode::ServerShuttingDown,
                        format!(
                            "The coordinator shut down: the query did not end within the \
                             shutdown grace period of {} s",
                            grace_period.as_secs()
                        ),
                    ),
                );
            }
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Resolves with the signal's name on SIGTERM or SIGINT.
fn shutdown_signal() -> Result<impl std::future::Future<Output = &'static str>, CoordinatorError> {
    use tokio::signal::unix::{SignalKind, signal};
    let install =
        |kind| signal(kind).map_err(|e| CoordinatorError::Settings(format!("signal handler: {e}")));
    let (mut term, mut int) = (
        install(SignalKind::terminate())?,
        install(SignalKind::interrupt())?,
    );
    Ok(async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    })
}

async fn bind(host: &str, port: u16) -> Result<TcpListener, CoordinatorError> {
    TcpListener::bind((host, port))
        .await
        .map_err(|source| CoordinatorError::Bind {
            addr: format!("{host}:{port}"),
            source,
        })
}

fn local_addr(listener: &TcpListener) -> Result<SocketAddr, CoordinatorError> {
    listener
        .local_addr()
        .map_err(|source| CoordinatorError::Bind {
            addr: "listener".into(),
            source,
        })
}

/// The connections of `listener` with Nagle's algorithm off. `serve_with_incoming` ignores the
/// server builder's `tcp_nodelay`: without this every small response waited for the client's
/// delayed ACK, some 40–90 ms per statement.
fn no_delay(listener: TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true))
}
