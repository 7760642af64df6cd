//! Client sessions: a connection's `USE` and `SET` persist across its statements and stay
//! invisible to other connections. A client names its session with the `x-braid-session`
//! gRPC header; requests without one get a fresh session each.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::prelude::SessionConfig;

use crate::auth::Identity;
use crate::queries::Query;
use parking_lot::Mutex;

/// The gRPC metadata key that names a client session.
pub const SESSION_HEADER: &str = "x-braid-session";

/// Sessions idle longer than this are forgotten.
const IDLE_TIMEOUT: Duration = Duration::from_secs(12 * 3600);

/// The most sessions kept; beyond it the longest idle is forgotten.
const MAX_SESSIONS: usize = 10_000;

/// One client session.
#[derive(Debug)]
pub struct Session {
    pub id: String,
    state: Mutex<SessionState>,
}

#[derive(Debug)]
struct SessionState {
    config: SessionConfig,
    /// `SET datafusion.execution.target_partitions` was used: keep it instead of sizing
    /// partitions to the cluster.
    fixed_partitions: bool,
    current_query: Option<Arc<Query>>,
    last_used: Instant,
}

impl Session {
    pub fn new(id: String, config: SessionConfig) -> Self {
        Self {
            id,
            state: Mutex::new(SessionState {
                config,
                fixed_partitions: false,
                current_query: None,
                last_used: Instant::now(),
            }),
        }
    }

    /// The session's settings now.
    pub fn config(&self) -> SessionConfig {
        self.state.lock().config.clone()
    }

    /// Whether the session fixed its own target partitions.
    pub fn fixed_partitions(&self) -> bool {
        self.state.lock().fixed_partitions
    }

    /// Keeps the settings a statement changed (`USE`, `SET`).
    pub fn update_config(&self, config: SessionConfig, fixed_partitions: bool) {
        let mut state = self.state.lock();
        state.config = config;
        state.fixed_partitions |= fixed_partitions;
    }

    /// The statement the session runs or ran last, for progress reports.
    pub fn current_query(&self) -> Option<Arc<Query>> {
        self.state.lock().current_query.clone()
    }

    pub fn set_current_query(&self, query: Arc<Query>) {
        self.state.lock().current_query = Some(query);
    }
}

/// Every session of the coordinator.
#[derive(Debug, Default)]
pub struct Sessions {
    sessions: Mutex<HashMap<String, Arc<Session>>>,
}

impl Sessions {
    /// The session called `id` (created on first use), or a fresh anonymous one.
    pub fn get(
        &self,
        id: Option<&str>,
        new_config: impl FnOnce() -> SessionConfig,
    ) -> Arc<Session> {
        let Some(id) = id else {
            return Arc::new(Session::new(uuid::Uuid::new_v4().to_string(), new_config()));
        };
        let mut sessions = self.sessions.lock();
        sessions.retain(|_, s| s.state.lock().last_used.elapsed() < IDLE_TIMEOUT);
        if sessions.len() >= MAX_SESSIONS && !sessions.contains_key(id) {
            let idlest = sessions
                .iter()
                .min_by_key(|(_, s)| s.state.lock().last_used)
                .map(|(key, _)| key.clone());
            if let Some(key) = idlest {
                sessions.remove(&key);
            }
        }
        let session = sessions
            .entry(id.to_string())
            .or_insert_with(|| Arc::new(Session::new(id.to_string(), new_config())))
            .clone();
        session.state.lock().last_used = Instant::now();
        session
    }

    /// The session called `id`, if it exists.
    pub fn find(&self, id: &str) -> Option<Arc<Session>> {
        self.sessions.lock().get(id).cloned()
    }
}

/// The owner of a caller's handles and the key of its session: its login (one session per
/// login) or the `x-braid-session` header of its user; `None` for an anonymous caller that
/// names no session (each of its requests gets a fresh session).
pub fn caller_key<T>(request: &tonic::Request<T>) -> Option<String> {
    let header = request
        .metadata()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok());
    session_key(request.extensions().get::<Identity>(), header)
}

/// The sessions map key for a caller: sessions of different users never mix.
pub fn session_key(identity: Option<&Identity>, header: Option<&str>) -> Option<String> {
    match (identity, header) {
        (Some(identity), Some(id)) => Some(format!("{}/{id}", identity.user)),
        (Some(identity), None) => Some(format!("{}/login:{}", identity.user, identity.login)),
        (None, Some(id)) => Some(id.to_string()),
        (None, None) => None,
    }
}
