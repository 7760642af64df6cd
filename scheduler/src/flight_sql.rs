//! [`BraidFlightSql`]: the coordinator's Arrow Flight SQL service, complete enough for the
//! JDBC and ADBC drivers and the BI tools on top of them.
//!
//! - Statements are planned in `GetFlightInfo` (errors surface there). Queries run in `DoGet`;
//!   statements with side effects (`CREATE TABLE [AS]`, `INSERT`, DDL, `SET`, `USE`) run in
//!   `GetFlightInfo` itself, so they take effect whether or not the client fetches their result
//!   (DBAPI and JDBC users often don't). `CommandStatementUpdate` returns the row count.
//! - Handles ([`statements`]) belong to the session that made them, are bounded and expire.
//! - Prepared statements: `?` or `$n` placeholders, parameters bound through `DoPut`, executed as
//!   a query or an update.
//! - Metadata: `GetSqlInfo`, `GetXdbcTypeInfo`, `GetCatalogs` / `GetDbSchemas` / `GetTables`
//!   over every catalog (a NULL catalog means all), `GetTableTypes`, and the key calls (empty).
//! - Sessions: `Handshake` returns a bearer token ([`crate::auth`]); a connection's session is
//!   its token, or the `x-braid-session` header of that user.
//! - Cancel: `CancelFlightInfo`, `CancelQuery`, or a client that goes away while its statement
//!   runs cancels the Ballista job ([`QueryControl`]).

mod statements;

use std::pin::Pin;
use std::sync::Arc;

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::metadata::{SqlInfoData, XdbcTypeInfoData};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionCancelQueryRequest, ActionCancelQueryResult, ActionClosePreparedStatementRequest,
    ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult, Any,
    CommandGetCatalogs, CommandGetCrossReference, CommandGetDbSchemas, CommandGetExportedKeys,
    CommandGetImportedKeys, CommandGetPrimaryKeys, CommandGetSqlInfo, CommandGetTableTypes,
    CommandGetTables, CommandGetXdbcTypeInfo, CommandPreparedStatementQuery,
    CommandPreparedStatementUpdate, CommandStatementQuery, CommandStatementUpdate,
    DoPutPreparedStatementResult, ProstMessageExt, SqlInfo, TicketStatementQuery,
};
use arrow_flight::{
    Action, CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus, FlightData,
    FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, IpcMessage,
    SchemaAsIpc, Ticket,
};
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::ipc::writer::IpcWriteOptions;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use futures::{Stream, TryStreamExt};
use prost::Message;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status, Streaming};

use crate::auth::{Authenticator, Identity};
use crate::engine::{Engine, Planned, batches_stream};
use crate::job::{QueryControl, job_stages};
use crate::session::{SESSION_HEADER, Session, Sessions};
use crate::sql_info;
use crate::sql_text::number_placeholders;
use statements::{Outcome, Owner, PreparedStatements, Statements, Taken};

/// The custom action that reports the running job of a session (body: the session id).
pub const PROGRESS_ACTION: &str = "braid.progress";

/// The custom action that reports the live workers and their task slots.
pub const WORKERS_ACTION: &str = "braid.workers";

/// The standard Flight action that cancels the query of a `FlightInfo`.
const CANCEL_FLIGHT_INFO_ACTION: &str = "CancelFlightInfo";

pub type FlightDataStream =
    Pin<Box<dyn Stream<Item = Result<FlightData, Status>> + Send + 'static>>;

/// The Flight SQL frontend of the coordinator.
pub struct BraidFlightSql {
    engine: Arc<Engine>,
    auth: Arc<Authenticator>,
    sessions: Sessions,
    statements: Statements,
    prepared: PreparedStatements,
    sql_info: SqlInfoData,
    type_info: XdbcTypeInfoData,
}

impl BraidFlightSql {
    pub fn new(engine: Arc<Engine>, auth: Arc<Authenticator>) -> Result<Self, String> {
        Ok(Self {
            engine,
            auth,
            sessions: Sessions::default(),
            statements: Statements::default(),
            prepared: PreparedStatements::default(),
            sql_info: sql_info::sql_info()?,
            type_info: sql_info::type_info()?,
        })
    }

    /// The caller's session: named by the `x-braid-session` header within the caller's user,
    /// else the caller's bearer token (one session per login), else a fresh one.
    fn session<T>(&self, request: &Request<T>) -> (Owner, Arc<Session>) {
        let owner = owner(request);
        let session = self
            .sessions
            .get(owner.as_deref(), braid_catalogs::bootstrap::session_config);
        (owner, session)
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

    /// Keeps a planned statement for its `DoGet` and describes it. A statement with side
    /// effects runs now, and `DoGet` only returns its result.
    async fn statement_info(
        &self,
        owner: Owner,
        session: Arc<Session>,
        planned: Planned,
        descriptor: FlightDescriptor,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = planned.schema();
        let outcome = if planned.has_side_effects() {
            let batches = self.run_to_end(&session, planned).await?;
            Outcome::Done {
                schema: schema.clone(),
                batches,
            }
        } else {
            Outcome::Planned(Box::new(planned))
        };
        let handle = self.statements.insert(owner, session, outcome)?;
        let ticket = TicketStatementQuery {
            statement_handle: handle.into_bytes().into(),
        };
        self.info_for(ticket, &schema, descriptor)
    }

    /// Runs `planned` to its end; its result rows. A client that goes away cancels it.
    async fn run_to_end(
        &self,
        session: &Session,
        planned: Planned,
    ) -> Result<Vec<RecordBatch>, Status> {
        let running = CancelOnDrop::new(&self.engine);
        let result = async {
            self.engine
                .execute(session, planned, &running.control)
                .await?
                .try_collect()
                .await
        }
        .await;
        running.control.finish();
        result.map_err(status)
    }

    /// Cancels the caller's statement a `FlightInfo` describes; whether it was still running.
    fn cancel_info(&self, info: &FlightInfo, caller: &Owner) -> Result<bool, Status> {
        let handle = info
            .endpoint
            .iter()
            .filter_map(|e| e.ticket.as_ref())
            .find_map(|t| {
                let any = Any::decode(t.ticket.clone()).ok()?;
                let ticket: TicketStatementQuery = any.unpack().ok()??;
                Some(String::from_utf8_lossy(&ticket.statement_handle).to_string())
            })
            .ok_or_else(|| Status::invalid_argument("the FlightInfo names no Braid statement"))?;
        Ok(self
            .statements
            .cancel(&handle, caller, self.engine.scheduler()))
    }

    async fn progress(&self, identity: Option<&Identity>, session_id: &str) -> serde_json::Value {
        let job = session_key(identity, Some(session_id))
            .and_then(|key| self.sessions.find(&key))
            .and_then(|s| s.current_job());
        let Some(job) = job else {
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

    /// Plans the caller's prepared statement with its bound parameter row `row` (if bound).
    async fn plan_prepared(
        &self,
        handle: &[u8],
        caller: &Owner,
        row: usize,
    ) -> Result<(Arc<Session>, Planned), Status> {
        let (session, sql, params) = self.prepared.with(handle, caller, |p| {
            let params = match &p.bound {
                Some(rows) => rows.get(row).cloned(),
                None if p.parameters.is_empty() => None,
                None => {
                    return Err(Status::invalid_argument(format!(
                        "the statement has {} parameters: bind them before executing it",
                        p.parameters.len()
                    )));
                }
            };
            Ok((p.session.clone(), p.sql.clone(), params))
        })?;
        let planned = self
            .engine
            .plan_with(&session, &sql, params.as_deref())
            .await
            .map_err(status)?;
        Ok((session, planned))
    }

    /// The number of bound parameter rows of a prepared statement (1 when none are needed).
    fn bound_rows(&self, handle: &[u8], caller: &Owner) -> Result<usize, Status> {
        self.prepared
            .with(handle, caller, |p| Ok(p.bound.as_ref().map_or(1, Vec::len)))
    }

    async fn execute_update(&self, session: &Session, planned: Planned) -> Result<i64, Status> {
        let running = CancelOnDrop::new(&self.engine);
        let result = self
            .engine
            .execute_update(session, planned, &running.control)
            .await;
        running.control.finish();
        result.map_err(status)
    }
}

/// The owner of a caller's handles and the key of its session: its login (one session per
/// login) or the `x-braid-session` header of its user; `None` for an anonymous caller that
/// names no session (each of its requests gets a fresh session).
fn owner<T>(request: &Request<T>) -> Owner {
    let header = request
        .metadata()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok());
    session_key(request.extensions().get::<Identity>(), header)
}

/// The sessions map key for a caller: sessions of different users never mix.
fn session_key(identity: Option<&Identity>, header: Option<&str>) -> Option<String> {
    match (identity, header) {
        (Some(identity), Some(id)) => Some(format!("{}/{id}", identity.user)),
        (Some(identity), None) => Some(format!("{}/login:{}", identity.user, identity.login)),
        (None, Some(id)) => Some(id.to_string()),
        (None, None) => None,
    }
}

/// A statement's control, which cancels the statement if it is dropped before the statement
/// finished: the client went away.
struct CancelOnDrop<'a> {
    control: Arc<QueryControl>,
    engine: &'a Engine,
}

impl<'a> CancelOnDrop<'a> {
    fn new(engine: &'a Engine) -> Self {
        Self::with(Arc::default(), engine)
    }

    fn with(control: Arc<QueryControl>, engine: &'a Engine) -> Self {
        Self { control, engine }
    }
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if self.control.cancel(self.engine.scheduler()) {
            tracing::info!(jobs = ?self.control.jobs(), "client went away: statement cancelled");
        }
    }
}

/// An IPC-encoded schema, as prepared-statement results carry them.
fn ipc_schema(schema: &Schema) -> Result<bytes::Bytes, Status> {
    let message: IpcMessage = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e: datafusion::arrow::error::ArrowError| Status::internal(e.to_string()))?;
    Ok(message.0)
}

/// The most parameter rows one `DoPut` may bind.
const MAX_PARAMETER_ROWS: usize = 100_000;

/// The rows of parameter values a client sent with `DoPut`, at most [`MAX_PARAMETER_ROWS`].
async fn parameter_rows(
    request: Request<PeekableFlightDataStream>,
) -> Result<Vec<Vec<ScalarValue>>, Status> {
    // The first message may carry only the command's descriptor.
    let flight = request
        .into_inner()
        .try_filter(|data| futures::future::ready(!data.data_header.is_empty()))
        .map_err(FlightError::from);
    let mut batches = arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(flight);
    let mut rows = Vec::new();
    while let Some(batch) = batches
        .try_next()
        .await
        .map_err(|e| Status::invalid_argument(format!("bad parameter batch: {e}")))?
    {
        if rows.len() + batch.num_rows() > MAX_PARAMETER_ROWS {
            return Err(Status::invalid_argument(format!(
                "more than {MAX_PARAMETER_ROWS} parameter rows in one call: bind them in smaller batches"
            )));
        }
        for row in 0..batch.num_rows() {
            let values = batch
                .columns()
                .iter()
                .map(|column| ScalarValue::try_from_array(column, row))
                .collect::<Result<Vec<_>, _>>()
                .map_err(status)?;
            rows.push(values);
        }
    }
    Ok(rows)
}

/// Binds parameter rows to a prepared statement, each with one value per parameter.
fn bind(statement: &mut statements::Prepared, rows: Vec<Vec<ScalarValue>>) -> Result<(), Status> {
    if let Some(row) = rows.iter().find(|r| r.len() != statement.parameters.len()) {
        return Err(Status::invalid_argument(format!(
            "the statement has {} parameters but {} values were bound",
            statement.parameters.len(),
            row.len()
        )));
    }
    statement.bound = Some(rows);
    Ok(())
}

fn empty_batch_stream(schema: SchemaRef) -> FlightDataStream {
    encode_batch(RecordBatch::new_empty(schema))
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

/// A result stream as Flight data.
pub fn encode(stream: SendableRecordBatchStream) -> FlightDataStream {
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

    /// Basic credentials in, bearer token out (in the `authorization` response header).
    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        // Some drivers (ADBC's Go client) send an empty bearer beside their Basic credentials.
        let authorization = request
            .metadata()
            .get_all("authorization")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.trim_start().to_ascii_lowercase().starts_with("basic"));
        let identity = self.auth.login(authorization).await?;
        tracing::info!(user = %identity.user, "login");
        let reply = HandshakeResponse {
            protocol_version: 0,
            payload: identity.token.clone().into_bytes().into(),
        };
        let mut response: Response<
            Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>,
        > = Response::new(Box::pin(futures::stream::iter([Ok(reply)])));
        let bearer = MetadataValue::try_from(format!("Bearer {}", identity.token))
            .map_err(|e| Status::internal(e.to_string()))?;
        response.metadata_mut().insert("authorization", bearer);
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let (owner, session) = self.session(&request);
        let planned = self
            .engine
            .plan(&session, &query.query)
            .await
            .map_err(status)?;
        self.statement_info(owner, session, planned, request.into_inner())
            .await
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let caller = owner(&request);
        let handle = &query.prepared_statement_handle;
        if self.bound_rows(handle, &caller)? > 1 {
            return Err(Status::invalid_argument(
                "a query takes one row of parameters; bind several rows only for updates",
            ));
        }
        let (session, planned) = self.plan_prepared(handle, &caller, 0).await?;
        self.statement_info(caller, session, planned, request.into_inner())
            .await
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let handle = String::from_utf8_lossy(&ticket.statement_handle).to_string();
        let Taken {
            session,
            outcome,
            control,
        } = self.statements.take(&handle, &owner(&request))?;
        let result = match outcome {
            Outcome::Done { schema, batches } => Ok(batches_stream(schema, batches)),
            Outcome::Planned(planned) => {
                let running = CancelOnDrop::with(control, &self.engine);
                let result = self
                    .engine
                    .execute(&session, *planned, &running.control)
                    .await;
                running.control.finish();
                result
            }
        };
        self.statements.remove(&handle);
        Ok(Response::new(encode(result.map_err(status)?)))
    }

    async fn do_put_statement_update(
        &self,
        command: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let (_, session) = self.session(&request);
        let planned = self
            .engine
            .plan(&session, &command.query)
            .await
            .map_err(status)?;
        self.execute_update(&session, planned).await
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let (owner, session) = self.session(&request);
        let sql = number_placeholders(&query.query);
        let planned = self.engine.plan(&session, &sql).await.map_err(status)?;
        let parameters = planned.parameters().map_err(status)?;
        let dataset_schema = ipc_schema(&planned.schema())?;
        let parameter_schema = ipc_schema(&Schema::new(parameters.clone()))?;
        let handle = self.prepared.insert(owner, session, sql, parameters)?;
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: handle.into_bytes().into(),
            dataset_schema,
            parameter_schema,
        })
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let caller = owner(&request);
        let rows = parameter_rows(request).await?;
        self.prepared
            .with(&query.prepared_statement_handle, &caller, |statement| {
                bind(statement, rows)
            })?;
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(query.prepared_statement_handle),
        })
    }

    /// Runs the statement once per bound parameter row; the update counts add up.
    async fn do_put_prepared_statement_update(
        &self,
        query: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let handle = query.prepared_statement_handle;
        let caller = owner(&request);
        // Parameters may come with the update itself.
        let rows = parameter_rows(request).await?;
        if !rows.is_empty() {
            self.prepared
                .with(&handle, &caller, |statement| bind(statement, rows))?;
        }
        let mut total = 0;
        for row in 0..self.bound_rows(&handle, &caller)? {
            let (session, planned) = self.plan_prepared(&handle, &caller, row).await?;
            total += self.execute_update(&session, planned).await?;
        }
        Ok(total)
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        self.prepared
            .close(&query.prepared_statement_handle, &owner(&request));
        Ok(())
    }

    async fn do_action_cancel_query(
        &self,
        query: ActionCancelQueryRequest,
        request: Request<Action>,
    ) -> Result<ActionCancelQueryResult, Status> {
        let info = FlightInfo::decode(query.info)
            .map_err(|e| Status::invalid_argument(format!("bad FlightInfo: {e}")))?;
        // CancelResult: 1 = cancelled, 3 = not cancellable (it already ended).
        let result = if self.cancel_info(&info, &owner(&request))? {
            1
        } else {
            3
        };
        Ok(ActionCancelQueryResult { result })
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder(&self.sql_info).schema();
        self.info_for(query, &schema, request.into_inner())
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let batch = query
            .into_builder(&self.sql_info)
            .build()
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(encode_batch(batch)))
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder(&self.type_info).schema();
        self.info_for(query, &schema, request.into_inner())
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let batch = query
            .into_builder(&self.type_info)
            .build()
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(encode_batch(batch)))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        self.info_for(query, &schema, request.into_inner())
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let mut builder = query.into_builder();
        for table_type in TABLE_TYPES {
            builder.append(table_type);
        }
        let batch = builder
            .build()
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(encode_batch(batch)))
    }

    async fn get_flight_info_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.info_for(
            query,
            &sql_info::primary_keys_schema(),
            request.into_inner(),
        )
    }

    async fn do_get_primary_keys(
        &self,
        _query: CommandGetPrimaryKeys,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        Ok(Response::new(empty_batch_stream(
            sql_info::primary_keys_schema(),
        )))
    }

    async fn get_flight_info_exported_keys(
        &self,
        query: CommandGetExportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.info_for(
            query,
            &sql_info::foreign_keys_schema(),
            request.into_inner(),
        )
    }

    async fn do_get_exported_keys(
        &self,
        _query: CommandGetExportedKeys,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        Ok(Response::new(empty_batch_stream(
            sql_info::foreign_keys_schema(),
        )))
    }

    async fn get_flight_info_imported_keys(
        &self,
        query: CommandGetImportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.info_for(
            query,
            &sql_info::foreign_keys_schema(),
            request.into_inner(),
        )
    }

    async fn do_get_imported_keys(
        &self,
        _query: CommandGetImportedKeys,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        Ok(Response::new(empty_batch_stream(
            sql_info::foreign_keys_schema(),
        )))
    }

    async fn get_flight_info_cross_reference(
        &self,
        query: CommandGetCrossReference,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.info_for(
            query,
            &sql_info::foreign_keys_schema(),
            request.into_inner(),
        )
    }

    async fn do_get_cross_reference(
        &self,
        _query: CommandGetCrossReference,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        Ok(Response::new(empty_batch_stream(
            sql_info::foreign_keys_schema(),
        )))
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

    async fn do_action_fallback(
        &self,
        request: Request<Action>,
    ) -> Result<Response<<Self as FlightService>::DoActionStream>, Status> {
        let identity = request.extensions().get::<Identity>().cloned();
        let caller = owner(&request);
        let action = request.into_inner();
        let body: bytes::Bytes = match action.r#type.as_str() {
            CANCEL_FLIGHT_INFO_ACTION => {
                let cancel = CancelFlightInfoRequest::decode(action.body).map_err(|e| {
                    Status::invalid_argument(format!("bad CancelFlightInfoRequest: {e}"))
                })?;
                let info = cancel.info.ok_or_else(|| {
                    Status::invalid_argument("CancelFlightInfo without a FlightInfo")
                })?;
                let status = if self.cancel_info(&info, &caller)? {
                    CancelStatus::Cancelled
                } else {
                    CancelStatus::NotCancellable
                };
                CancelFlightInfoResult::new(status).encode_to_vec().into()
            }
            PROGRESS_ACTION => {
                let session_id = String::from_utf8_lossy(&action.body).to_string();
                self.progress(identity.as_ref(), &session_id)
                    .await
                    .to_string()
                    .into()
            }
            WORKERS_ACTION => {
                let (workers, task_slots) = self.engine.live_workers().await;
                serde_json::json!({ "workers": workers, "task_slots": task_slots })
                    .to_string()
                    .into()
            }
            other => {
                return Err(Status::invalid_argument(format!(
                    "unknown action '{other}'"
                )));
            }
        };
        let result = arrow_flight::Result { body };
        Ok(Response::new(Box::pin(futures::stream::iter([Ok(result)]))))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

/// The table types `GetTables` reports.
const TABLE_TYPES: [&str; 2] = ["TABLE", "VIEW"];

impl std::fmt::Debug for BraidFlightSql {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BraidFlightSql")
    }
}
