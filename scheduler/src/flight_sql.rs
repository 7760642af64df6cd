//! [`BraidFlightSql`]: the coordinator's Arrow Flight SQL service. Statements are planned in
//! `GetFlightInfo` (errors surface there, before anything runs) and run in `DoGet`; metadata
//! calls list every catalog. The same port serves memory-table rows to workers.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::server::FlightSqlService;
use arrow_flight::sql::{
    Any, CommandGetCatalogs, CommandGetDbSchemas, CommandGetTables, CommandStatementQuery,
    ProstMessageExt, SqlInfo, TicketStatementQuery,
};
use arrow_flight::{Action, FlightData, FlightDescriptor, FlightEndpoint, FlightInfo, Ticket};
use braid_connector_memory::{FETCH_TYPE_URL, FetchTicket, MemoryConnector};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use futures::{Stream, TryStreamExt};
use parking_lot::Mutex;
use prost::Message;
use tonic::{Request, Response, Status};

use crate::engine::{Engine, Planned};
use crate::job::job_stages;
use crate::session::{SESSION_HEADER, Session, Sessions};

/// The custom action that reports the running job of a session (body: the session id).
pub const PROGRESS_ACTION: &str = "braid.progress";

/// The custom action that reports the live workers and their task slots.
pub const WORKERS_ACTION: &str = "braid.workers";

/// Statements planned but not fetched within this time are dropped.
const STATEMENT_TTL: Duration = Duration::from_secs(600);

type FlightDataStream = Pin<Box<dyn Stream<Item = Result<FlightData, Status>> + Send + 'static>>;

struct PendingStatement {
    session: Arc<Session>,
    planned: Planned,
    created: Instant,
}

/// The Flight SQL frontend of the coordinator.
pub struct BraidFlightSql {
    engine: Arc<Engine>,
    sessions: Sessions,
    statements: Mutex<HashMap<String, PendingStatement>>,
}

impl BraidFlightSql {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self {
            engine,
            sessions: Sessions::default(),
            statements: Mutex::new(HashMap::new()),
        }
    }

    fn session<T>(&self, request: &Request<T>) -> Arc<Session> {
        let id = request
            .metadata()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok());
        self.sessions
            .get(id, braid_catalogs::bootstrap::session_config)
    }

    fn info_for<T: ProstMessageExt>(
        &self,
        command: T,
        schema: &SchemaRef,
        descriptor: FlightDescriptor,
    ) -> Result<Response<FlightInfo>, Status> {
        let ticket = Ticket::new(command.as_any().encode_to_vec());
        let info = FlightInfo::new()
            .try_with_schema(schema)
            .map_err(|e| Status::internal(e.to_string()))?
            .with_endpoint(FlightEndpoint::new().with_ticket(ticket))
            .with_descriptor(descriptor);
        Ok(Response::new(info))
    }

    fn pending(&self, handle: &str) -> Option<PendingStatement> {
        let mut statements = self.statements.lock();
        statements.retain(|_, s| s.created.elapsed() < STATEMENT_TTL);
        statements.remove(handle)
    }

    async fn progress(&self, session_id: &str) -> serde_json::Value {
        let Some(job) = self.sessions.find(session_id).and_then(|s| s.current_job()) else {
            return serde_json::json!({});
        };
        let stages = job_stages(self.engine.scheduler(), &job).await;
        let done = |status: &str| status == "Successful";
        let tasks: Vec<_> = stages
            .iter()
            .flat_map(|s| s.tasks.iter().flatten())
            .collect();
        serde_json::json!({
            "job_id": job,
            "stages_total": stages.len(),
            "stages_done": stages.iter().filter(|s| done(&s.stage_status)).count(),
            "tasks_total": tasks.len(),
            "tasks_done": tasks.iter().filter(|t| done(&t.status)).count(),
            "rows": stages.iter().map(|s| s.output_rows).max().unwrap_or(0),
        })
    }
}

/// A DataFusion error as a gRPC status the client can act on.
pub fn status(error: DataFusionError) -> Status {
    let message = error.to_string();
    match error.find_root() {
        DataFusionError::Plan(_) | DataFusionError::SQL(..) | DataFusionError::SchemaError(..) => {
            Status::invalid_argument(message)
        }
        DataFusionError::NotImplemented(_) => Status::unimplemented(message),
        DataFusionError::ResourcesExhausted(_) => Status::resource_exhausted(message),
        _ => Status::internal(message),
    }
}

fn encode(stream: SendableRecordBatchStream) -> FlightDataStream {
    let schema = stream.schema();
    let batches = stream.map_err(|e| FlightError::ExternalError(Box::new(e)));
    let flight = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(batches)
        .map_err(Status::from);
    Box::pin(flight)
}

fn encode_batch(batch: RecordBatch) -> FlightDataStream {
    let flight = FlightDataEncoderBuilder::new()
        .with_schema(batch.schema())
        .build(futures::stream::iter([Ok(batch)]))
        .map_err(Status::from);
    Box::pin(flight)
}

#[tonic::async_trait]
impl FlightSqlService for BraidFlightSql {
    type FlightService = BraidFlightSql;

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let session = self.session(&request);
        let planned = self
            .engine
            .plan(&session, &query.query)
            .await
            .map_err(status)?;
        let schema = planned.schema();
        let handle = uuid::Uuid::new_v4().to_string();
        self.statements.lock().insert(
            handle.clone(),
            PendingStatement {
                session,
                planned,
                created: Instant::now(),
            },
        );
        let ticket = TicketStatementQuery {
            statement_handle: handle.into_bytes().into(),
        };
        self.info_for(ticket, &schema, request.into_inner())
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let handle = String::from_utf8_lossy(&ticket.statement_handle).to_string();
        let Some(pending) = self.pending(&handle) else {
            return Err(Status::not_found(
                "statement handle is unknown or was already fetched; run the statement again",
            ));
        };
        let stream = self
            .engine
            .execute(&pending.session, pending.planned)
            .await
            .map_err(status)?;
        Ok(Response::new(encode(stream)))
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        self.info_for(query, &schema, request.into_inner())
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let mut builder = query.into_builder();
        for (name, _) in self.engine.registry().iter() {
            builder.append(name);
        }
        let batch = builder
            .build()
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(encode_batch(batch)))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.info_for(query, &schema, request.into_inner())
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let mut builder = query.into_builder();
        for (name, connector) in self.engine.registry().iter() {
            for schema in connector.catalog_provider().schema_names() {
                builder.append(name, schema);
            }
            builder.append(name, "information_schema");
        }
        let batch = builder
            .build()
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(encode_batch(batch)))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.info_for(query, &schema, request.into_inner())
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let include_schema = query.include_schema;
        let catalog_filter = query.catalog.clone();
        let mut builder = query.into_builder();
        for (name, connector) in self.engine.registry().iter() {
            if catalog_filter.as_ref().is_some_and(|c| c != name) {
                continue;
            }
            let catalog = connector.catalog_provider();
            for schema_name in catalog.schema_names() {
                let Some(schema) = catalog.schema(&schema_name) else {
                    continue;
                };
                for table in schema.table_names() {
                    let columns = if include_schema {
                        match schema.table(&table).await {
                            Ok(Some(provider)) => provider.schema(),
                            _ => continue,
                        }
                    } else {
                        Arc::new(datafusion::arrow::datatypes::Schema::empty())
                    };
                    builder
                        .append(name, &schema_name, &table, "TABLE", &columns)
                        .map_err(|e| Status::internal(e.to_string()))?;
                }
            }
        }
        let batch = builder
            .build()
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(encode_batch(batch)))
    }

    /// Memory-table rows for workers ([`FetchTicket`]).
    async fn do_get_fallback(
        &self,
        _request: Request<Ticket>,
        message: Any,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        if message.type_url != FETCH_TYPE_URL {
            return Err(Status::unimplemented(format!(
                "unknown ticket type {}",
                message.type_url
            )));
        }
        let ticket = FetchTicket::from_any_value(&message.value).map_err(status)?;
        let store = self
            .engine
            .registry()
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

    async fn do_action_fallback(
        &self,
        request: Request<Action>,
    ) -> Result<Response<<Self as FlightService>::DoActionStream>, Status> {
        let action = request.into_inner();
        let body = match action.r#type.as_str() {
            PROGRESS_ACTION => {
                let session_id = String::from_utf8_lossy(&action.body).to_string();
                self.progress(&session_id).await
            }
            WORKERS_ACTION => {
                let (workers, task_slots) = self.engine.live_workers().await;
                serde_json::json!({ "workers": workers, "task_slots": task_slots })
            }
            other => {
                return Err(Status::invalid_argument(format!(
                    "unknown action '{other}'"
                )));
            }
        }
        .to_string();
        let result = arrow_flight::Result {
            body: body.into_bytes().into(),
        };
        Ok(Response::new(Box::pin(futures::stream::iter([Ok(result)]))))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

impl std::fmt::Debug for BraidFlightSql {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BraidFlightSql")
    }
}
