//! [`MemoryFetchService`]: the coordinator's cluster-internal Flight port. Workers fetch
//! memory-table rows here with a [`FetchTicket`]; it offers nothing else. Clients use the Flight
//! SQL port, which has authentication and TLS; this port, like Ballista's scheduler port, is for
//! the cluster's private network.

use std::pin::Pin;

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::Any;
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaResult, Ticket,
};
use braid_catalogs::ConnectorRegistry;
use braid_connector_memory::{FETCH_TYPE_URL, FetchTicket, MemoryConnector};
use futures::{Stream, TryStreamExt};
use prost::Message;
use tonic::{Request, Response, Status, Streaming};

use crate::flight_sql::status;

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Serves memory-table batches to workers.
#[derive(Debug, Clone)]
pub struct MemoryFetchService {
    registry: ConnectorRegistry,
}

impl MemoryFetchService {
    pub fn new(registry: ConnectorRegistry) -> Self {
        Self { registry }
    }
}

fn only_fetch<T>() -> Result<T, Status> {
    Err(Status::unimplemented(
        "this is the cluster-internal port; clients use the Flight SQL port",
    ))
}

#[tonic::async_trait]
impl FlightService for MemoryFetchService {
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
        let message = Any::decode(request.into_inner().ticket)
            .map_err(|e| Status::invalid_argument(format!("bad ticket: {e}")))?;
        if message.type_url != FETCH_TYPE_URL {
            return Err(Status::invalid_argument(format!(
                "unknown ticket type {}",
                message.type_url
            )));
        }
        let ticket = FetchTicket::from_any_value(&message.value).map_err(status)?;
        let store = self
            .registry
            .get(&ticket.catalog)
            .and_then(|c| c.as_any().downcast_ref::<MemoryConnector>())
            .map(|m| m.store().clone())
            .ok_or_else(|| Status::not_found(format!("no memory catalog '{}'", ticket.catalog)))?;
        let (schema, batches) = ticket.read(&store).map_err(status)?;
        let flight = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(futures::stream::iter(batches.into_iter().map(Ok)))
            .map_err(Status::from);
        Ok(Response::new(Box::pin(flight)))
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

    async fn do_put(
        &self,
        _request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        only_fetch()
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
