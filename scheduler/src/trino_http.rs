//! [`TrinoHttp`]: Trino's HTTP client protocol on the coordinator's `http_port` (8080 by
//! default, as Trino's), so that Trino's clients — the `trino` Python client and its
//! SQLAlchemy dialect, dbt-trino, the Trino CLI and JDBC driver — connect unchanged.
//!
//! - `POST /v1/statement` registers the statement (it is listed in `system.runtime.queries`,
//!   admitted by the resource groups, limited like any other) and answers at once with its id
//!   and a `nextUri`; a task plans and runs it ([`running`]).
//! - `GET` on each `nextUri` returns the next page: up to [`running::PAGE_BYTES`] of rows in
//!   Trino's JSON encoding ([`values`]), the columns with Trino's type names and signatures, the
//!   statement's stats ([`protocol`]). A page waits at most a second for rows. The task stops
//!   producing while its client has not fetched what it made: the coordinator never holds
//!   more than two pages of a result. A page can be fetched again (a client's retry).
//! - `DELETE` on a `nextUri` cancels the statement and its jobs on the workers. A statement
//!   whose client stopped fetching for `query_client_timeout_seconds` (5 minutes) is cancelled
//!   as `ABANDONED_QUERY`.
//! - The session travels in the `X-Trino-*` headers ([`session`]); `PREPARE`, `EXECUTE …
//!   USING`, `EXECUTE IMMEDIATE` and `DEALLOCATE PREPARE` work as in Trino ([`prepared`]).
//! - `GET /v1/info` describes the server, as Trino's clients probe it.
//!
//! Authentication: with `auth = "password"`, every request carries Basic credentials of the
//! password file ([`Authenticator::check_basic`]), and only over TLS (`tls_cert_file`): without
//! it the port refuses every request, as Trino takes no password over plain HTTP. A user
//! reaches only their own statements' URIs, and `X-Trino-User` may name no one else.

mod prepared;
mod protocol;
mod running;
mod session;
mod values;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use parking_lot::Mutex;

use crate::auth::Authenticator;
use crate::engine::Engine;
use running::HttpQuery;

/// Why the port refuses every request when passwords are on but TLS is not.
pub(crate) const PLAIN_HTTP_REFUSAL: &str = "this coordinator requires passwords, and takes none \
    over plain HTTP: set tls_cert_file and tls_key_file to serve this port over TLS";

/// The most statements open on the HTTP port at once, for one user and for all.
const PER_USER: usize = 1000;
const IN_ALL: usize = 10_000;

/// How long an ended statement's last page stays, for a client that asks for it again.
const ENDED_KEPT: Duration = Duration::from_secs(60);

/// The Trino HTTP frontend of the coordinator.
pub struct TrinoHttp {
    engine: Arc<Engine>,
    auth: Arc<Authenticator>,
    /// Whether the port speaks TLS: the scheme of the URIs it hands out.
    tls: bool,
    queries: Mutex<HashMap<String, Arc<HttpQuery>>>,
    started: Instant,
    /// How long a statement may go unfetched before it is abandoned.
    client_timeout: Duration,
}

impl TrinoHttp {
    pub fn new(
        engine: Arc<Engine>,
        auth: Arc<Authenticator>,
        tls: bool,
        client_timeout: Duration,
    ) -> Arc<Self> {
        let this = Arc::new(Self {
            engine,
            auth,
            tls,
            queries: Mutex::new(HashMap::new()),
            started: Instant::now(),
            client_timeout,
        });
        let weak = Arc::downgrade(&this);
        // Every 5 s, or more often for a short timeout.
        let every = (client_timeout / 2).clamp(Duration::from_millis(100), Duration::from_secs(5));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let Some(this) = weak.upgrade() else { break };
                this.sweep();
            }
        });
        this
    }

    /// The routes of the protocol.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/v1/statement", post(submit))
            .route(
                "/v1/statement/{phase}/{id}/{slug}/{token}",
                get(next_page).delete(cancel),
            )
            .route("/v1/info", get(info))
            .with_state(self)
    }

    /// Cancels the statements their clients abandoned and forgets the ended ones.
    fn sweep(&self) {
        let mut abandoned = Vec::new();
        self.queries.lock().retain(|_, query| {
            let idle = query.idle();
            if query.ended() {
                idle < ENDED_KEPT
            } else if idle >= self.client_timeout {
                abandoned.push(query.clone());
                false
            } else {
                true
            }
        });
        for query in abandoned {
            query.abandon(self.engine.scheduler(), self.client_timeout);
        }
    }

    /// Keeps `query` unless its user, or everyone, has too many open.
    fn insert(&self, query: Arc<HttpQuery>) -> Result<(), String> {
        let mut queries = self.queries.lock();
        let mine = queries
            .values()
            .filter(|q| q.user() == query.user())
            .count();
        if mine >= PER_USER {
            return Err(format!(
                "user {} has {mine} statements open on this port: fetch or cancel some first",
                query.user()
            ));
        }
        if queries.len() >= IN_ALL {
            return Err(format!(
                "the coordinator holds {} open statements; try again later",
                queries.len()
            ));
        }
        queries.insert(query.id().to_string(), query);
        Ok(())
    }

    /// The statement `id` if `slug` is its own (the unguessable part of its URIs) and, with
    /// passwords on, `user`'s.
    fn find(&self, id: &str, slug: &str, user: Option<&str>) -> Option<Arc<HttpQuery>> {
        self.queries
            .lock()
            .get(id)
            .filter(|query| query.slug() == slug)
            .filter(|query| user.is_none_or(|user| query.user() == user))
            .cloned()
    }

    /// The base of the URIs a response names: the address the client used.
    fn base_uri(&self, headers: &HeaderMap) -> String {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{host}")
    }

    /// The request's user when passwords are on (`None` when they are off), or the response
    /// that refuses it.
    async fn authenticate(&self, headers: &HeaderMap) -> Result<Option<String>, Response> {
        if !self.auth.required() {
            return Ok(None);
        }
        if !self.tls {
            return Err(refuse(StatusCode::UNAUTHORIZED, PLAIN_HTTP_REFUSAL));
        }
        let authorization = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let user = match self.auth.check_basic(authorization).await {
            Ok(user) => user,
            Err(status) => {
                let mut refused = refuse(StatusCode::UNAUTHORIZED, status.message());
                refused.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Basic realm=\"Braid\""),
                );
                return Err(refused);
            }
        };
        let named = headers
            .get("x-trino-user")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty());
        if let (Some(user), Some(named)) = (&user, named)
            && named != user
        {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                format!("Access Denied: User {user} cannot impersonate user {named}"),
            ));
        }
        Ok(user)
    }
}

fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message.into(),
    )
        .into_response()
}

async fn submit(State(http): State<Arc<TrinoHttp>>, headers: HeaderMap, body: Bytes) -> Response {
    let user = match http.authenticate(&headers).await {
        Ok(user) => user,
        Err(refused) => return refused,
    };
    let client = match session::ClientSession::from_headers(&headers, user.as_deref()) {
        Ok(client) => client,
        Err(session::BadRequest(message)) => return refuse(StatusCode::BAD_REQUEST, message),
    };
    let Ok(sql) = String::from_utf8(body.to_vec()) else {
        return refuse(StatusCode::BAD_REQUEST, "the statement is not UTF-8 text");
    };
    if sql.trim().is_empty() {
        return refuse(StatusCode::BAD_REQUEST, "SQL statement is empty");
    }
    let query = HttpQuery::start(http.engine.clone(), client, sql);
    let first = query.first_response(&http.base_uri(&headers));
    if let Err(message) = http.insert(query.clone()) {
        query.reject(http.engine.scheduler(), &message);
        return refuse(StatusCode::TOO_MANY_REQUESTS, message);
    }
    first
}

async fn next_page(
    State(http): State<Arc<TrinoHttp>>,
    Path((_phase, id, slug, token)): Path<(String, String, String, u64)>,
    headers: HeaderMap,
) -> Response {
    let user = match http.authenticate(&headers).await {
        Ok(user) => user,
        Err(refused) => return refused,
    };
    match http.find(&id, &slug, user.as_deref()) {
        Some(query) => query.page(token, &http.base_uri(&headers)).await,
        None => refuse(StatusCode::NOT_FOUND, format!("Query not found: {id}")),
    }
}

async fn cancel(
    State(http): State<Arc<TrinoHttp>>,
    Path((_phase, id, slug, _token)): Path<(String, String, String, u64)>,
    headers: HeaderMap,
) -> Response {
    let user = match http.authenticate(&headers).await {
        Ok(user) => user,
        Err(refused) => return refused,
    };
    match http.find(&id, &slug, user.as_deref()) {
        Some(query) => {
            query.cancel(http.engine.scheduler());
            StatusCode::NO_CONTENT.into_response()
        }
        None => refuse(StatusCode::NOT_FOUND, format!("Query not found: {id}")),
    }
}

/// `GET /v1/info`: what Trino's CLI and drivers read of a server.
async fn info(State(http): State<Arc<TrinoHttp>>) -> Response {
    let uptime = http.started.elapsed().as_secs_f64();
    axum::Json(serde_json::json!({
        "nodeVersion": {"version": env!("CARGO_PKG_VERSION")},
        "environment": "braid",
        "coordinator": true,
        "starting": false,
        "uptime": format!("{:.2}m", uptime / 60.0),
    }))
    .into_response()
}
