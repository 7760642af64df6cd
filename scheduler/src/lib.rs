//! # braid-scheduler
//!
//! The Braid coordinator: Ballista 53's scheduler (push scheduling) plus an Arrow Flight SQL
//! frontend on its own port.
//!
//! - [`Coordinator::start`] loads the catalogs, starts the Ballista scheduler (workers register
//!   on its port, which also serves Ballista's REST status under `/api`) and the Flight SQL
//!   service.
//! - [`engine::Engine`] plans each statement against the coordinator's catalogs. Metadata
//!   statements (Trino's `SHOW ...`, `USE`, `DESCRIBE`: [`trino`]), DDL, `SET`,
//!   `information_schema` and `EXPLAIN` run on the coordinator; queries run as Ballista jobs
//!   submitted with `SchedulerServer::submit_job` ([`job`]).
//! - [`flight_sql::BraidFlightSql`] is the Flight SQL service; [`session`] keeps each client's
//!   `USE`/`SET` apart.
//! - [`CoordinatorSettings`]: flags > `BRAID_SCHEDULER_*` env > `braid.toml` > defaults.

pub mod engine;
pub mod flight_sql;
pub mod job;
pub mod session;
mod settings;
pub mod trino;

use std::net::SocketAddr;
use std::sync::Arc;

use arrow_flight::flight_service_server::FlightServiceServer;
use ballista_core::config::TaskSchedulingPolicy;
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::{create_scheduler, start_grpc_service};
use braid_catalogs::{ConnectorRegistry, Role, bootstrap};
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use settings::{CoordinatorFlags, CoordinatorSettings};

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
}

/// A running coordinator.
pub struct Coordinator {
    /// Where workers register.
    pub scheduler_addr: SocketAddr,
    /// Where clients connect.
    pub flight_sql_addr: SocketAddr,
    scheduler: JoinHandle<Result<(), CoordinatorError>>,
    flight_sql: JoinHandle<Result<(), CoordinatorError>>,
}

impl Coordinator {
    /// Starts the scheduler and the Flight SQL service. A port of 0 picks a free one.
    pub async fn start(settings: CoordinatorSettings) -> Result<Self, CoordinatorError> {
        let flight_listener = bind(&settings.bind_host, settings.flight_sql_port).await?;
        let flight_sql_addr = local_addr(&flight_listener)?;
        let endpoint = format!(
            "http://{}:{}",
            settings.external_host,
            flight_sql_addr.port()
        );
        let registry = ConnectorRegistry::load(
            settings.catalog_dir.as_deref(),
            &Role::Coordinator {
                flight_endpoint: endpoint,
            },
        )?;

        // Ballista binds the scheduler port itself: reserve a free one when asked for port 0.
        let scheduler_port = match settings.port {
            0 => local_addr(&bind(&settings.bind_host, 0).await?)?.port(),
            port => port,
        };
        let catalogs = registry.catalog_list();
        let config = SchedulerConfig {
            bind_host: settings.bind_host.clone(),
            external_host: settings.external_host.clone(),
            bind_port: scheduler_port,
            scheduling_policy: TaskSchedulingPolicy::PushStaged,
            executor_timeout_seconds: settings.worker_timeout_seconds,
            expire_dead_executor_interval_seconds: 2,
            override_config_producer: Some(Arc::new(bootstrap::session_config)),
            override_session_builder: Some(Arc::new(move |config| {
                Ok(engine::session_state(config, catalogs.clone()))
            })),
            override_physical_codec: Some(Arc::new(registry.codec())),
            ..Default::default()
        };
        let cluster = BallistaCluster::new_from_config(&config)
            .await
            .map_err(|e| CoordinatorError::Scheduler(e.to_string()))?;
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
        let engine = Arc::new(engine::Engine::new(registry, scheduler));
        let service = FlightServiceServer::new(flight_sql::BraidFlightSql::new(engine))
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE);
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(flight_listener);
        let flight_task = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming)
                .await
                .map_err(|e| CoordinatorError::FlightSql(e.to_string()))
        });
        tracing::info!(%scheduler_addr, %flight_sql_addr, "Braid coordinator started");
        Ok(Self {
            scheduler_addr,
            flight_sql_addr,
            scheduler: scheduler_task,
            flight_sql: flight_task,
        })
    }

    /// Runs until the scheduler or the Flight SQL service stops.
    pub async fn wait(self) -> Result<(), CoordinatorError> {
        let outcome = tokio::select! {
            r = self.scheduler => r,
            r = self.flight_sql => r,
        };
        outcome.map_err(|e| CoordinatorError::Scheduler(e.to_string()))?
    }
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
