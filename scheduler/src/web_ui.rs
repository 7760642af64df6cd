//! [`WebUi`]: the coordinator's web UI, on the HTTP port beside Trino's protocol, as Trino's.
//!
//! - `/ui/` is one page (`web_ui/index.html`, embedded in the binary) that refreshes itself:
//!   the cluster (workers with their task slots, memory and last heartbeat; running, queued and
//!   ended query counts; result rows and bytes per second now), the query list (filter by
//!   state and user, kill), and a query's detail (its SQL, its stages with their plans — a
//!   source scan's pushed-down SQL among them — rows and output bytes, a timeline of its tasks
//!   per worker, its error).
//! - The page reads `/ui/api/*`, JSON made from the coordinator's own state: the rows of
//!   `system.runtime.nodes`, `queries` and `tasks` ([`Runtime::table`]) and the scheduler's
//!   stages of a query's jobs. Reading it registers no query.
//! - With `auth = "password"` (TLS only, as the protocol) the page asks for a user and
//!   password once; the login's token rides in an `HttpOnly`, `Secure`, `SameSite=Strict`
//!   cookie and expires as Flight SQL's tokens do. A user kills their own queries, an admin
//!   (`admin_users`) anyone's; without passwords anyone may, as in Trino.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use datafusion::arrow::array::RecordBatch;
use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::auth::Authenticator;
use crate::job::job_stages;
use crate::queries::{ErrorCode, QueryFailure};
use crate::system::Runtime;
use crate::trino_http::PLAIN_HTTP_REFUSAL;

/// The page.
const INDEX: &str = include_str!("web_ui/index.html");

/// The cookie that carries a login's token.
const COOKIE: &str = "braid_ui";

/// The columns of `system.runtime.queries` the page shows.
const QUERY_COLUMNS: &[&str] = &[
    "query_id",
    "state",
    "user",
    "source",
    "query",
    "resource_group_id",
    "created",
    "started",
    "end",
    "error_code",
    "error_message",
    "elapsed_time_millis",
    "queued_time_millis",
    "peak_memory_reservation",
    "output_rows",
    "output_bytes",
];

/// The web UI of a coordinator.
pub struct WebUi {
    runtime: Arc<Runtime>,
    auth: Arc<Authenticator>,
    tls: bool,
    /// The result rows and bytes sent so far, when last read, for the rates.
    throughput: Mutex<Throughput>,
}

#[derive(Default)]
struct Throughput {
    last: Option<(Instant, i64, i64)>,
    rates: (f64, f64),
}

impl WebUi {
    pub fn new(runtime: Arc<Runtime>, auth: Arc<Authenticator>, tls: bool) -> Arc<Self> {
        Arc::new(Self {
            runtime,
            auth,
            tls,
            throughput: Mutex::new(Throughput::default()),
        })
    }

    /// The page and its API.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
            .route("/ui/", get(index))
            .route("/ui/api/login", post(login))
            .route("/ui/api/cluster", get(cluster))
            .route("/ui/api/queries", get(queries))
            .route("/ui/api/query/{id}", get(query_detail))
            .route("/ui/api/query/{id}/kill", post(kill))
            .with_state(self)
    }

    /// The user of the request's login cookie when passwords are on, `None` when they are off,
    /// or the refusal (which the page turns into its login form).
    fn caller(&self, headers: &HeaderMap) -> Result<Option<String>, Refusal> {
        if !self.auth.required() {
            return Ok(None);
        }
        if !self.tls {
            return Err(refuse(StatusCode::UNAUTHORIZED, PLAIN_HTTP_REFUSAL, false));
        }
        let token = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='));
        let Some(token) = token else {
            return Err(refuse(StatusCode::UNAUTHORIZED, "log in", true));
        };
        match self.auth.check(Some(&format!("Bearer {token}"))) {
            Ok(identity) => Ok(identity.map(|i| i.user)),
            Err(status) => Err(refuse(StatusCode::UNAUTHORIZED, status.message(), true)),
        }
    }

    /// The rows of a `system.runtime` table as JSON objects, only `columns` if given.
    async fn rows(&self, table: &str, columns: Option<&[&str]>) -> Result<Vec<Value>, Refusal> {
        let failed = |e: &dyn std::fmt::Display| {
            refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("system.runtime.{table}: {e}"),
                false,
            )
        };
        let batch = match self.runtime.table(table).await {
            Ok(Some(batch)) => batch,
            Ok(None) => return Ok(vec![]),
            Err(e) => return Err(failed(&e)),
        };
        let batch = match columns {
            Some(names) => project(&batch, names).map_err(|e| failed(&e))?,
            None => batch,
        };
        json_rows(&batch).map_err(|e| failed(&e))
    }
}

/// A refused request: its status and message, and whether logging in would help (the page
/// then shows its login form).
struct Refusal {
    status: StatusCode,
    message: String,
    login: bool,
}

fn refuse(status: StatusCode, message: impl Into<String>, login: bool) -> Refusal {
    Refusal {
        status,
        message: message.into(),
        login,
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = json!({"error": self.message, "login": self.login});
        (self.status, axum::Json(body)).into_response()
    }
}

/// `batch` with only the columns `names`, in that order.
fn project(
    batch: &RecordBatch,
    names: &[&str],
) -> Result<RecordBatch, datafusion::arrow::error::ArrowError> {
    let schema = batch.schema();
    let indices = names
        .iter()
        .map(|name| schema.index_of(name))
        .collect::<Result<Vec<_>, _>>()?;
    batch.project(&indices)
}

/// The rows of `batch` as JSON objects.
fn json_rows(batch: &RecordBatch) -> Result<Vec<Value>, String> {
    let mut writer = arrow::json::ArrayWriter::new(Vec::new());
    writer.write(batch).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    let bytes = writer.into_inner();
    if bytes.is_empty() {
        return Ok(vec![]);
    }
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}

async fn index() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        INDEX,
    )
        .into_response()
}

/// `POST /ui/api/login` with `{"user": ..., "password": ...}`: a session cookie.
async fn login(State(ui): State<Arc<WebUi>>, body: Bytes) -> Response {
    if !ui.auth.required() {
        return StatusCode::NO_CONTENT.into_response();
    }
    if !ui.tls {
        return refuse(StatusCode::UNAUTHORIZED, PLAIN_HTTP_REFUSAL, false).into_response();
    }
    let Ok(form) = serde_json::from_slice::<Value>(&body) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "expected {\"user\", \"password\"}",
            true,
        )
        .into_response();
    };
    let text = |key: &str| form[key].as_str().unwrap_or_default().to_string();
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        text("user"),
        text("password")
    ));
    match ui.auth.login(Some(&format!("Basic {credentials}"))).await {
        Ok(identity) => {
            let cookie = format!(
                "{COOKIE}={}; Path=/ui; HttpOnly; Secure; SameSite=Strict",
                identity.token
            );
            let mut response = StatusCode::NO_CONTENT.into_response();
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Err(status) => refuse(StatusCode::UNAUTHORIZED, status.message(), true).into_response(),
    }
}

/// `GET /ui/api/cluster`: the nodes, the queries by state, and the result rate now.
async fn cluster(State(ui): State<Arc<WebUi>>, headers: HeaderMap) -> Response {
    let user = match ui.caller(&headers) {
        Ok(user) => user,
        Err(refused) => return refused.into_response(),
    };
    let nodes = match ui.rows("nodes", None).await {
        Ok(rows) => rows,
        Err(e) => return e.into_response(),
    };
    let queries = match ui
        .rows("queries", Some(&["state", "output_rows", "output_bytes"]))
        .await
    {
        Ok(rows) => rows,
        Err(e) => return e.into_response(),
    };
    let mut counts = serde_json::Map::new();
    let (mut rows, mut bytes) = (0i64, 0i64);
    for query in &queries {
        let state = query["state"].as_str().unwrap_or("UNKNOWN").to_string();
        let count = counts.entry(state).or_insert(json!(0));
        *count = json!(count.as_i64().unwrap_or(0) + 1);
        rows += query["output_rows"].as_i64().unwrap_or(0);
        bytes += query["output_bytes"].as_i64().unwrap_or(0);
    }
    let (rows_per_second, bytes_per_second) = ui.throughput.lock().sample(rows, bytes);
    axum::Json(json!({
        "user": user,
        "auth": ui.auth.required(),
        "nodes": nodes,
        "queries": counts,
        "rows_per_second": rows_per_second,
        "bytes_per_second": bytes_per_second,
    }))
    .into_response()
}

impl Throughput {
    /// The rates since the last sample at least half a second old; a query that left the list
    /// takes its rows with it, so a drop counts as nothing sent.
    fn sample(&mut self, rows: i64, bytes: i64) -> (f64, f64) {
        let now = Instant::now();
        match self.last {
            Some((at, last_rows, last_bytes)) => {
                let seconds = now.duration_since(at).as_secs_f64();
                if seconds >= 0.5 {
                    self.rates = (
                        (rows - last_rows).max(0) as f64 / seconds,
                        (bytes - last_bytes).max(0) as f64 / seconds,
                    );
                    self.last = Some((now, rows, bytes));
                }
            }
            None => self.last = Some((now, rows, bytes)),
        }
        self.rates
    }
}

/// `GET /ui/api/queries`: every query kept, newest first.
async fn queries(State(ui): State<Arc<WebUi>>, headers: HeaderMap) -> Response {
    if let Err(refused) = ui.caller(&headers) {
        return refused.into_response();
    }
    match ui.rows("queries", Some(QUERY_COLUMNS)).await {
        Ok(mut rows) => {
            rows.reverse();
            axum::Json(rows).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// `GET /ui/api/query/{id}`: the query, its jobs' stages (with their plans) and its tasks.
async fn query_detail(
    State(ui): State<Arc<WebUi>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = ui.caller(&headers) {
        return refused.into_response();
    }
    let Some(found) = ui.runtime.queries.list().into_iter().find(|q| q.id == id) else {
        return refuse(
            StatusCode::NOT_FOUND,
            format!("Query not found: {id}"),
            false,
        )
        .into_response();
    };
    let row = match ui.rows("queries", Some(QUERY_COLUMNS)).await {
        Ok(rows) => rows.into_iter().find(|r| r["query_id"] == id.as_str()),
        Err(e) => return e.into_response(),
    };
    let tasks = match ui.runtime.query_tasks(&id).await.map(|b| json_rows(&b)) {
        Ok(Ok(rows)) => rows,
        Ok(Err(e)) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, e, false).into_response(),
        Err(e) => {
            return refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string(), false).into_response();
        }
    };
    // A cancelled job's stages keep the state they had in Ballista's graph: once the query
    // ended, none of them runs any more.
    let ended = found.state().is_done();
    let mut stages = Vec::new();
    for job in found.control.jobs() {
        for stage in job_stages(&ui.runtime.scheduler, &job).await {
            let status = match stage.stage_status.as_str() {
                "Successful" | "Failed" => stage.stage_status,
                _ if ended => "Stopped".to_string(),
                _ => stage.stage_status,
            };
            stages.push(json!({
                "job_id": job,
                "stage_id": stage.stage_id,
                "status": status,
                "input_rows": stage.input_rows,
                "output_rows": stage.output_rows,
                "elapsed_compute": stage.elapsed_compute,
                "plan": stage.stage_plan,
                "tasks": stage.tasks.len(),
            }));
        }
    }
    axum::Json(json!({"query": row, "stages": stages, "tasks": tasks})).into_response()
}

/// `POST /ui/api/query/{id}/kill`: kills the query, as `kill_query` does.
async fn kill(
    State(ui): State<Arc<WebUi>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let caller = match ui.caller(&headers) {
        Ok(Some(user)) => user,
        // No passwords: anyone may, as in Trino.
        Ok(None) => match ui.runtime.queries.list().into_iter().find(|q| q.id == id) {
            Some(query) => query.user.clone(),
            None => {
                return refuse(
                    StatusCode::NOT_FOUND,
                    format!("Query not found: {id}"),
                    false,
                )
                .into_response();
            }
        },
        Err(refused) => return refused.into_response(),
    };
    match ui
        .runtime
        .queries
        .kill(&id, Some("Killed from the web UI"), &caller)
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => {
            let failure = QueryFailure::classify(&e);
            let status = match failure.code {
                ErrorCode::NotFound => StatusCode::NOT_FOUND,
                ErrorCode::PermissionDenied => StatusCode::FORBIDDEN,
                _ => StatusCode::CONFLICT,
            };
            refuse(status, failure.message, false).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_what_was_sent_since_the_last_sample() {
        let mut throughput = Throughput::default();
        assert_eq!(throughput.sample(100, 1000), (0.0, 0.0));
        throughput.last = throughput
            .last
            .map(|(at, r, b)| (at - std::time::Duration::from_secs(2), r, b));
        let (rows, bytes) = throughput.sample(300, 5000);
        assert!(
            (rows - 100.0).abs() < 1.0 && (bytes - 2000.0).abs() < 10.0,
            "{rows} {bytes}"
        );
        // A query left the list: nothing negative.
        throughput.last = throughput
            .last
            .map(|(at, r, b)| (at - std::time::Duration::from_secs(1), r, b));
        assert_eq!(throughput.sample(10, 10), (0.0, 0.0));
    }
}
