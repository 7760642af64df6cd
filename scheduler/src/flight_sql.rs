//! [`BraidFlightSql`]: the coordinator's Arrow Flight SQL service, complete enough for the
//! JDBC and ADBC drivers and the BI tools on top of them.
//!
//! - Statements are planned in `GetFlightInfo` (errors surface there). Queries run in `DoGet`;
//!   statements with side effects (`CREATE TABLE [AS]`, `INSERT`, DDL, `SET`, `USE`) run in
//!   `GetFlightInfo` itself, so they take effect whether or not the client fetches their result
//!   (DBAPI and JDBC users often don't). `CommandStatementUpdate` returns the row count.
//! - Handles (`statements.rs`) belong to the session that made them, are bounded and expire.
//! - Prepared statements: `?` or `$n` placeholders, parameters bound through `DoPut` (decoded in
//!   `wire.rs`, with results and errors), executed as a query or an update.
//! - Metadata: `GetSqlInfo`, `GetXdbcTypeInfo` (`crate::sql_info`), and in `metadata.rs`
//!   `GetCatalogs` / `GetDbSchemas` / `GetTables` over every catalog (a NULL catalog means
//!   all), `GetTableTypes`; the key calls answer empty.
//! - Sessions: `Handshake` returns a bearer token ([`crate::auth`]); a connection's session is
//!   its login, or the `x-braid-session` header of that user ([`crate::session`]).
//! - Cancel: `CancelFlightInfo` (`actions.rs`, with Braid's own actions), `CancelQuery`, or a
//!   client that goes away while its statement runs cancels the Ballista job ([`QueryControl`]).

mod actions;
mod metadata;
mod statements;
mod wire;

use std::pin::Pin;
use std::sync::Arc;

use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::metadata::{SqlInfoData, XdbcTypeInfoData};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionCancelQueryRequest, ActionCancelQueryResult, ActionClosePreparedStatementRequest,
    ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult, CommandGetCatalogs,
    CommandGetCrossReference, CommandGetDbSchemas, CommandGetExportedKeys, CommandGetImportedKeys,
    CommandGetPrimaryKeys, CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables,
    CommandGetXdbcTypeInfo, CommandPreparedStatementQuery, CommandPreparedStatementUpdate,
    CommandStatementQuery, CommandStatementUpdate, DoPutPreparedStatementResult, ProstMessageExt,
    SqlInfo, TicketStatementQuery,
};
use arrow_flight::{
    Action, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse,
    Ticket,
};
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::{Stream, StreamExt, TryStreamExt};
use prost::Message;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status, Streaming};

use crate::auth::{Authenticator, Identity};
use crate::engine::{Engine, Planned, batches_stream};
use crate::job::CancelOnDrop;
use crate::queries::{Query, Submitter};
use crate::session::{Session, Sessions, caller_key};
use crate::sql_info;
use crate::sql_text::number_placeholders;
pub use actions::{PROGRESS_ACTION, WORKERS_ACTION};
use statements::{Outcome, Owner, PreparedStatements, Statements, Taken, bind};
pub use wire::{FlightDataStream, encode, status};
use wire::{empty_batch_stream, encode_batch, ipc_schema, parameter_rows};

/// The Flight SQL frontend of the coordinator.
pub struct BraidFlightSql {
    engine: Arc<Engine>,
    auth: Arc<Authenticator>,
    sessions: Sessions,
    statements: Arc<Statements>,
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
            statements: Arc::default(),
            prepared: PreparedStatements::default(),
            sql_info: sql_info::sql_info()?,
            type_info: sql_info::type_info()?,
        })
    }

    /// The caller's session: named by the `x-braid-session` header within the caller's user,
    /// else the caller's bearer token (one session per login), else a fresh one.
    fn session<T>(&self, request: &Request<T>) -> (Owner, Arc<Session>) {
        let owner = caller_key(request);
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

    /// Registers a statement of `client` with the coordinator's queries; it is the session's
    /// current statement (what its progress reports) from then on, as it is listed in
    /// `system.runtime.queries` from then on.
    fn begin(&self, submitter: &Submitter, session: &Session, sql: &str) -> Arc<Query> {
        let query = self
            .engine
            .queries()
            .begin(submitter, &session.config(), sql);
        session.set_current_query(query.clone());
        query
    }

    /// Plans `query` (`sql`) in the caller `owner`'s `session`; a failure ends it.
    async fn plan(
        &self,
        owner: &Owner,
        query: &Query,
        session: &Session,
        sql: &str,
    ) -> Result<Planned, Status> {
        let planned = self.engine.plan_query(query, session, sql, None).await;
        session_kept(owner, query, planned)
    }

    /// Keeps a planned statement for its `DoGet` and describes it. A statement with side
    /// effects runs now, and `DoGet` only returns its result.
    async fn statement_info(
        &self,
        owner: Owner,
        session: Arc<Session>,
        planned: Planned,
        query: Arc<Query>,
        descriptor: FlightDescriptor,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = planned.schema();
        let outcome = if planned.has_side_effects() {
            let batches = self.run_to_end(&session, planned, &query).await?;
            Outcome::Done {
                schema: schema.clone(),
                batches,
            }
        } else {
            Outcome::Planned(Box::new(planned))
        };
        let handle = self.statements.insert(owner, session, outcome, query)?;
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
        query: &Arc<Query>,
    ) -> Result<Vec<RecordBatch>, Status> {
        let running = CancelOnDrop::new(query.clone(), self.engine.scheduler());
        let result = async {
            self.engine
                .execute(session, planned, query)
                .await?
                .try_collect()
                .await
        }
        .await;
        running.finish();
        result.map_err(status)
    }

    /// Plans the caller's prepared statement with its bound parameter row `row` (if bound),
    /// as a new query.
    async fn plan_prepared(
        &self,
        submitter: &Submitter,
        handle: &[u8],
        caller: &Owner,
        row: usize,
    ) -> Result<(Arc<Session>, Planned, Arc<Query>), Status> {
        let (session, plan, params) = self.prepared.with(handle, caller, |p| {
            let params = match &p.bound {
                Some(rows) => rows.get(row).cloned(),
                None if p.plan.parameters().is_empty() => None,
                None => {
                    return Err(Status::invalid_argument(format!(
                        "the statement has {} parameters: bind them before executing it",
                        p.plan.parameters().len()
                    )));
                }
            };
            Ok((p.session.clone(), p.plan.clone(), params))
        })?;
        let query = self.begin(submitter, &session, plan.sql());
        let planned = self
            .engine
            .plan_prepared_query(&query, &session, &plan, params.as_deref())
            .await;
        let planned = session_kept(caller, &query, planned)?;
        Ok((session, planned, query))
    }

    /// The number of bound parameter rows of a prepared statement (1 when none are needed).
    fn bound_rows(&self, handle: &[u8], caller: &Owner) -> Result<usize, Status> {
        self.prepared
            .with(handle, caller, |p| Ok(p.bound.as_ref().map_or(1, Vec::len)))
    }

    async fn execute_update(
        &self,
        session: &Session,
        planned: Planned,
        query: &Arc<Query>,
    ) -> Result<i64, Status> {
        let running = CancelOnDrop::new(query.clone(), self.engine.scheduler());
        let result = self.engine.execute_update(session, planned, query).await;
        running.finish();
        result.map_err(status)
    }
}

/// `planned`, unless it changes the session (`SET SESSION`, `USE`) of a caller without one:
/// each statement of such a caller runs in a new session, so the change would be lost.
fn session_kept(
    owner: &Owner,
    query: &Query,
    planned: datafusion::error::Result<Planned>,
) -> Result<Planned, Status> {
    let planned = planned.map_err(status)?;
    if owner.is_none() && planned.changes_session() {
        let error = datafusion::error::DataFusionError::Plan(
            "this client has no session, so SET SESSION, RESET SESSION and USE would have no \
             effect: each of its statements runs in a new session. Log in (a username and \
             password handshake; while passwords are off any user name is accepted) or name \
             a session with the x-braid-session header"
                .into(),
        );
        return Err(status(query.fail(error)));
    }
    Ok(planned)
}

/// The user of a caller without a login (passwords off, no handshake).
const ANONYMOUS: &str = "anonymous";

/// Who runs a statement ([`Submitter`]) by the request's login and its `x-braid-source` and
/// `x-braid-client-tags` metadata.
fn submitter_of<T>(request: &Request<T>) -> Submitter {
    let header = |name: &str| {
        request
            .metadata()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    Submitter {
        user: request
            .extensions()
            .get::<Identity>()
            .map_or_else(|| ANONYMOUS.to_string(), |identity| identity.user.clone()),
        source: header(SOURCE_HEADER).or_else(|| header("user-agent")),
        client_tags: header(CLIENT_TAGS_HEADER)
            .map(|tags| Submitter::parse_tags(&tags))
            .unwrap_or_default(),
    }
}

/// The gRPC metadata key of the client's tags (Trino's `X-Trino-Client-Tags`), which
/// resource group selectors match.
pub const CLIENT_TAGS_HEADER: &str = "x-braid-client-tags";

/// The gRPC metadata key that names the client program (Trino's `source`); without it the
/// `user-agent` is the source.
pub const SOURCE_HEADER: &str = "x-braid-source";

/// A statement whose `DoGet` is under way: forgotten when it is over, cancelled if dropped
/// before its query finished.
struct Fetching {
    statements: Arc<Statements>,
    handle: String,
    running: CancelOnDrop,
}

impl Drop for Fetching {
    fn drop(&mut self) {
        self.statements.remove(&self.handle);
    }
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
        let running = self.begin(&submitter_of(&request), &session, &query.query);
        let planned = self.plan(&owner, &running, &session, &query.query).await?;
        self.statement_info(owner, session, planned, running, request.into_inner())
            .await
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let caller = caller_key(&request);
        let handle = &query.prepared_statement_handle;
        if self.bound_rows(handle, &caller)? > 1 {
            return Err(Status::invalid_argument(
                "a query takes one row of parameters; bind several rows only for updates",
            ));
        }
        let (session, planned, running) = self
            .plan_prepared(&submitter_of(&request), handle, &caller, 0)
            .await?;
        self.statement_info(caller, session, planned, running, request.into_inner())
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
            query,
        } = self.statements.take(&handle, &caller_key(&request))?;
        let fetching = Fetching {
            statements: self.statements.clone(),
            handle,
            running: CancelOnDrop::new(query.clone(), self.engine.scheduler()),
        };
        let rows = match outcome {
            Outcome::Done { schema, batches } => batches_stream(schema, batches),
            // The job runs while its rows stream: the statement stays cancellable (and is
            // cancelled if the client goes away) until the stream is over.
            Outcome::Planned(planned) => {
                let rows = self
                    .engine
                    .execute(&session, *planned, &query)
                    .await
                    .map_err(status)?;
                let schema = rows.schema();
                let rows = rows.inspect(move |_| {
                    let _ = &fetching;
                });
                return Ok(Response::new(encode(Box::pin(
                    RecordBatchStreamAdapter::new(schema, rows),
                ))));
            }
        };
        fetching.running.finish();
        Ok(Response::new(encode(rows)))
    }

    async fn do_put_statement_update(
        &self,
        command: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let (owner, session) = self.session(&request);
        let query = self.begin(&submitter_of(&request), &session, &command.query);
        let planned = self.plan(&owner, &query, &session, &command.query).await?;
        self.execute_update(&session, planned, &query).await
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let (owner, session) = self.session(&request);
        let sql = number_placeholders(&query.query);
        let plan = self.engine.prepare(&session, &sql).await.map_err(status)?;
        let dataset_schema = ipc_schema(&plan.schema())?;
        let parameter_schema = ipc_schema(&Schema::new(plan.parameters().to_vec()))?;
        let handle = self.prepared.insert(owner, session, plan)?;
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
        let caller = caller_key(&request);
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
        let caller = caller_key(&request);
        let submitter = submitter_of(&request);
        // Parameters may come with the update itself.
        let rows = parameter_rows(request).await?;
        if !rows.is_empty() {
            self.prepared
                .with(&handle, &caller, |statement| bind(statement, rows))?;
        }
        let mut total = 0;
        for row in 0..self.bound_rows(&handle, &caller)? {
            let (session, planned, query) = self
                .plan_prepared(&submitter, &handle, &caller, row)
                .await?;
            total += self.execute_update(&session, planned, &query).await?;
        }
        Ok(total)
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        self.prepared
            .close(&query.prepared_statement_handle, &caller_key(&request));
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
        let result = if self.cancel_info(&info, &caller_key(&request))? {
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
        Ok(Response::new(encode_batch(self.table_types(query)?)))
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
        Ok(Response::new(encode_batch(self.catalogs(query)?)))
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
        Ok(Response::new(encode_batch(self.schemas(query).await?)))
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
        Ok(Response::new(encode_batch(self.tables(query).await?)))
    }

    async fn do_action_fallback(
        &self,
        request: Request<Action>,
    ) -> Result<Response<<Self as FlightService>::DoActionStream>, Status> {
        let identity = request.extensions().get::<Identity>().cloned();
        let caller = caller_key(&request);
        let body = self
            .custom_action(identity.as_ref(), &caller, request.into_inner())
            .await?;
        let result = arrow_flight::Result { body };
        Ok(Response::new(Box::pin(futures::stream::iter([Ok(result)]))))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

impl std::fmt::Debug for BraidFlightSql {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BraidFlightSql")
    }
}
