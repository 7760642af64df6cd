//! The worker's Arrow Flight service: Ballista's (shuffle reads), serving first the shuffle
//! partitions the worker holds in memory (`shuffle.rs`), plus one action through which the
//! coordinator asks the worker how it is doing (a `WorkerStatus`) and tells it which jobs
//! still run (a `StatusRequest`: the store drops the outputs of the others) and which query
//! may use the reserved memory slice.
//!
//! Ballista 53's heartbeat carries only process-wide figures (RSS, the machine's memory), not
//! what the worker's memory pool holds per query, and it cannot be extended; the coordinator
//! instead calls the action `braid.worker_status` on every live worker's Flight port, sums the
//! queries' reservations across the cluster (`query.max-memory`) and shows the figures in
//! `system.runtime.nodes` and `system.runtime.queries`.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaResult, Ticket,
};
use ballista_core::error::BallistaError;
use ballista_core::utils::{GrpcServerConfig, create_grpc_server};
use ballista_executor::flight_service::BallistaFlightService;
use ballista_executor::shutdown::Shutdown;
use braid_optimizer_rules::memory::{STATUS_ACTION, StatusRequest, WorkerMemory, WorkerStatus};
use futures::Stream;
use tonic::{Request, Response, Status, Streaming};

use crate::shuffle::{self, ShuffleStore};

/// Ballista's action for a shuffle partition sent as the bytes of an Arrow IPC stream.
const BLOCK_TRANSPORT: &str = "IO_BLOCK_TRANSPORT";

/// Ballista's Flight service with the status action added, serving the shuffle partitions
/// the worker holds in memory before its files.
struct WorkerFlightService {
    ballista: BallistaFlightService,
    memory: Arc<WorkerMemory>,
    store: Arc<ShuffleStore>,
}

type BoxedStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The function Ballista calls to start the worker's Flight server (its
/// `override_arrow_flight_service`).
pub fn flight_server(
    memory: Arc<WorkerMemory>,
    store: Arc<ShuffleStore>,
    max_message_size: usize,
) -> impl Fn(
    String,
    SocketAddr,
    Shutdown,
    GrpcServerConfig,
) -> tokio::task::JoinHandle<Result<(), BallistaError>>
+ Send
+ Sync {
    move |work_dir, address, mut shutdown, grpc| {
        let service = WorkerFlightService {
            ballista: BallistaFlightService::new(work_dir),
            memory: memory.clone(),
            store: store.clone(),
        };
        tokio::spawn(async move {
            tracing::info!(%address, "worker Flight service listening");
            create_grpc_server(&grpc)
                .add_service(
                    FlightServiceServer::new(service)
                        .max_decoding_message_size(max_message_size)
                        .max_encoding_message_size(max_message_size),
                )
                .serve_with_shutdown(address, shutdown.recv())
                .await
                .map_err(BallistaError::TonicError)
        })
    }
}

#[tonic::async_trait]
impl FlightService for WorkerFlightService {
    type HandshakeStream = BoxedStream<HandshakeResponse>;
    type ListFlightsStream = BoxedStream<FlightInfo>;
    type DoGetStream = BoxedStream<FlightData>;
    type DoPutStream = BoxedStream<PutResult>;
    type DoActionStream = BoxedStream<arrow_flight::Result>;
    type ListActionsStream = BoxedStream<ActionType>;
    type DoExchangeStream = BoxedStream<FlightData>;

    async fn do_action(
        &self,
        request: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        let action = request.get_ref();
        if action.r#type == BLOCK_TRANSPORT
            && let Some(held) = shuffle::held_partition(&self.store, &action.body)
        {
            return Ok(Response::new(shuffle::serve_blocks(held)));
        }
        if action.r#type != STATUS_ACTION {
            return self.ballista.do_action(request).await;
        }
        // The coordinator lists its running jobs: outputs of the others are no longer read.
        if !action.body.is_empty() {
            let asked: StatusRequest = serde_json::from_slice(&action.body)
                .map_err(|e| Status::invalid_argument(format!("status request: {e}")))?;
            self.memory.designate(asked.reserved_query);
            let running = asked.running_jobs.into_iter().collect();
            let freed = self.store.retain_jobs(&running);
            if freed > 0 {
                tracing::debug!(freed, "released the shuffle outputs of ended jobs");
            }
        }
        let status = WorkerStatus {
            processor_count: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory: self.memory.status(),
        };
        let body = serde_json::to_vec(&status).map_err(|e| Status::internal(e.to_string()))?;
        let result = arrow_flight::Result { body: body.into() };
        Ok(Response::new(Box::pin(futures::stream::once(async {
            Ok(result)
        }))))
    }

    async fn do_get(
        &self,
        request: Request<Ticket>,
    ) -> Result<Response<Self::DoGetStream>, Status> {
        if let Some(held) = shuffle::held_partition(&self.store, &request.get_ref().ticket) {
            return Ok(Response::new(shuffle::serve(held)));
        }
        self.ballista.do_get(request).await
    }

    async fn handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        self.ballista.handshake(request).await
    }

    async fn list_flights(
        &self,
        request: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        self.ballista.list_flights(request).await
    }

    async fn get_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.ballista.get_flight_info(request).await
    }

    async fn poll_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        self.ballista.poll_flight_info(request).await
    }

    async fn get_schema(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        self.ballista.get_schema(request).await
    }

    async fn do_put(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        self.ballista.do_put(request).await
    }

    async fn list_actions(
        &self,
        request: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        self.ballista.list_actions(request).await
    }

    async fn do_exchange(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        self.ballista.do_exchange(request).await
    }
}
