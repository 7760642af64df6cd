//! [`InternalFlightService`]: the coordinator's cluster-internal Flight port. Workers `do_get`
//! an [`InternalTicket`] here: the [`braid_connector_spi::InternalService`] of the ticket's
//! catalog answers (memory tables' rows), or the split store hands a task its split of a scan
//! whose split list was too large for the plan; and the final tasks of a job `do_put` their
//! result partitions here ([`ResultInbox`]). It offers nothing else. Clients use the
//! Flight SQL port, which has authentication and TLS; this port, like Ballista's scheduler
//! port, is for the cluster's private network.

use std::pin::Pin;
use std::sync::Arc;

use arrow_flight::flight_service_server::FlightService;
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaResult, Ticket,
};
use braid_catalogs::ConnectorRegistry;
use braid_connector_spi::{ConnectorError, InternalTicket};
use futures::Stream;
use tonic::{Request, Response, Status, Streaming};

use crate::engine::batches_stream;
use crate::flight_sql::{encode, status};
use crate::job::ResultInbox;

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Serves the connectors' internal services to workers.
#[derive(Clone)]
pub struct InternalFlightService {
    registry: ConnectorRegistry,
    results: Arc<ResultInbox>,
}

impl InternalFlightService {
    pub fn new(registry: ConnectorRegistry, results: Arc<ResultInbox>) -> Self {
        Self { registry, results }
    }
}

fn only_fetch<T>() -> Result<T, Status> {
    Err(Status::unimplemented(
        "this is the cluster-internal port; clients use the Flight SQL port",
    ))
}

#[tonic::async_trait]
impl FlightService for InternalFlightService {
    type HandshakeStream = BoxStream<HandshakeResponse>;
    type ListFlightsStream = BoxStream<FlightInfo>;
    type DoGetStream = BoxStream<FlightData>;
    type DoPutStream = BoxStream<PutResult>;
    type DoExchangeStream = BoxStream<FlightData>;
    type DoActionStream = BoxStream<arrow_flight::Result>;
    type ListActionsStream = BoxStream<ActionType>;

    async fn do_get(
        &self,
        request: Request<Ticket>,
    ) -> Result<Response<Self::DoGetStream>, Status> {
        let ticket = InternalTicket::decode(&request.into_inner().ticket)
            .map_err(|e: ConnectorError| Status::invalid_argument(e.to_string()))?;
        let rows = match ticket {
            InternalTicket::Service { catalog, request } => {
                let service = self.registry.internal_service(&catalog).ok_or_else(|| {
                    Status::not_found(format!(
                        "catalog '{catalog}' serves nothing on the internal port"
                    ))
                })?;
                service.fetch(&request).await.map_err(status)?
            }
            InternalTicket::Split { handle, partition } => {
                let batch = self
                    .registry
                    .split_store()
                    .batch(&handle, partition)
                    .map_err(|e| Status::not_found(e.to_string()))?;
                batches_stream(batch.schema(), vec![batch])
            }
        };
        Ok(Response::new(encode(rows)))
    }

    async fn handshake(
        &self,
        _request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        only_fetch()
    }

    async fn list_flights(
        &self,
        _request: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        only_fetch()
    }

    async fn get_flight_info(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        only_fetch()
    }

    async fn poll_flight_info(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        only_fetch()
    }

    async fn get_schema(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        only_fetch()
    }

    /// A final task's result partition ([`ResultInbox::receive`]).
    async fn do_put(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        self.results.receive(request.into_inner()).await?;
        let done: BoxStream<PutResult> = Box::pin(futures::stream::empty());
        Ok(Response::new(done))
    }

    async fn do_exchange(
        &self,
        _request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        only_fetch()
    }

    async fn do_action(
        &self,
        _request: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        only_fetch()
    }

    async fn list_actions(
        &self,
        _request: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        only_fetch()
    }
}
