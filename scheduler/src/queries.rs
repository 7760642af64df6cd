//! Every statement the coordinator runs, from planning to its end: [`Queries`] (the registry
//! behind `system.runtime.queries` and `kill_query`) and [`Query`] (one statement: who ran
//! it, its state and times, its resource group, its failure).
//!
//! - Admission (`groups.rs`, Trino's resource groups): [`Queries::admit`] lets a query run,
//!   makes it wait in its group's queue, or rejects it with `QUERY_QUEUE_FULL`.
//! - Limits ([`QueryLimits`], Trino's `query.max-run-time`, `query.max-execution-time`,
//!   `query.max-queued-time`, lowered per session by `query_max_run_time` and
//!   `query_max_execution_time`): a watchdog per query kills it when one is exceeded, with
//!   `EXCEEDED_TIME_LIMIT` and a message naming the limit and its value.
//! - Memory (`memory.rs`, Trino's `query.max-memory-per-node` and `query.max-memory`): the
//!   per-node limit is shipped to the workers with every task (their query pools enforce it);
//!   the coordinator polls the workers' pools, shows each query's reservation and kills a query
//!   over its cluster-wide limit with `EXCEEDED_GLOBAL_MEMORY_LIMIT`.
//! - Failures carry Trino's error names (`failure.rs`).
//! - Shutdown: after [`Queries::close`] (the coordinator's SIGTERM) new statements fail with
//!   `SERVER_SHUTTING_DOWN` while admitted ones run to their end.
//! - [`TrackedStream`] follows a result to its end: the query finishes when its last row is
//!   sent, fails on an error, and ends early (a kill) with the kill's reason.
//!
//! The registry keeps every query that has not ended and, of the ended ones, those younger than
//! [`HISTORY_MIN_AGE`] and at most [`HISTORY_SIZE`] more (Trino's `query.min-expire-age` and
//! `query.max-history`).

mod failure;
mod groups;
mod memory;

pub use failure::{ErrorCode, QueryFailure, over_cluster_limit, worker_failure};
pub use groups::{GroupPath, ResourceGroups};
pub use memory::{ClusterMemory, NodeMemory, spawn_monitor};

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use braid_optimizer_rules::properties::{QueryProperties, format_duration};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream};
use datafusion::prelude::SessionConfig;
use futures::future::BoxFuture;
use futures::{FutureExt, Stream};
use parking_lot::Mutex;

use crate::job::{QueryControl, Scheduler};

/// Ended queries younger than this are kept (Trino's `query.min-expire-age`).
pub const HISTORY_MIN_AGE: Duration = Duration::from_secs(15 * 60);
/// Beyond those, at most this many ended queries are kept (Trino's `query.max-history`).
pub const HISTORY_SIZE: usize = 100;
/// The most ended queries kept whatever their age, so that a burst cannot grow the registry
/// without bound.
const HISTORY_MAX: usize = 10_000;

/// A query's state, with Trino's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryState {
    /// Being parsed and planned.
    Planning,
    /// Planned, waiting to run: for its result to be fetched, or for its resource group.
    Queued,
    /// Running, or sending its result.
    Running,
    Finished,
    Failed,
}

impl QueryState {
    pub fn name(self) -> &'static str {
        match self {
            QueryState::Planning => "PLANNING",
            QueryState::Queued => "QUEUED",
            QueryState::Running => "RUNNING",
            QueryState::Finished => "FINISHED",
            QueryState::Failed => "FAILED",
        }
    }

    pub fn is_done(self) -> bool {
        matches!(self, QueryState::Finished | QueryState::Failed)
    }
}

/// One time limit and where it was set, for the message that names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeLimit {
    pub value: Duration,
    /// `query.max-run-time` (the coordinator's setting) or `query_max_run_time` (the
    /// session's).
    pub name: &'static str,
}

/// One memory limit and where it was set, for the message that names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimit {
    pub bytes: usize,
    /// `query.max-memory` (the coordinator's setting) or `query_max_memory` (the session's).
    pub name: &'static str,
}

/// The coordinator's query limits (`[scheduler] query.max-run-time = "1h"` in `braid.toml`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryLimits {
    pub max_run_time: Option<Duration>,
    pub max_execution_time: Option<Duration>,
    pub max_queued_time: Option<Duration>,
    pub max_memory_per_node: Option<usize>,
    pub max_memory: Option<usize>,
}

/// The limits of one query: the coordinator's, lowered by its session's properties.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct EffectiveLimits {
    run: Option<TimeLimit>,
    execution: Option<TimeLimit>,
    queued: Option<TimeLimit>,
    max_memory_per_node: Option<MemoryLimit>,
    max_memory: Option<MemoryLimit>,
}

/// The lower of a limit set on the coordinator and one set in the session, with its name.
fn lower<T: Ord + Copy, L>(
    config: Option<T>,
    config_name: &'static str,
    session: Option<T>,
    session_name: &'static str,
    make: impl Fn(T, &'static str) -> L,
) -> Option<L> {
    match (config, session) {
        (Some(c), Some(s)) if s < c => Some(make(s, session_name)),
        (Some(c), _) => Some(make(c, config_name)),
        (None, Some(s)) => Some(make(s, session_name)),
        (None, None) => None,
    }
}

impl EffectiveLimits {
    fn new(limits: &QueryLimits, session: &QueryProperties) -> Self {
        let time = |value, name| TimeLimit { value, name };
        let memory = |bytes, name| MemoryLimit { bytes, name };
        Self {
            run: lower(
                limits.max_run_time,
                "query.max-run-time",
                session.query_max_run_time.0,
                "query_max_run_time",
                time,
            ),
            execution: lower(
                limits.max_execution_time,
                "query.max-execution-time",
                session.query_max_execution_time.0,
                "query_max_execution_time",
                time,
            ),
            max_memory_per_node: lower(
                limits.max_memory_per_node,
                "query.max-memory-per-node",
                session.query_max_memory_per_node.0,
                "query_max_memory_per_node",
                memory,
            ),
            max_memory: lower(
                limits.max_memory,
                "query.max-memory",
                session.query_max_memory.0,
                "query_max_memory",
                memory,
            ),
            queued: limits.max_queued_time.map(|value| TimeLimit {
                value,
                name: "query.max-queued-time",
            }),
        }
    }

    fn no_time_limits(&self) -> bool {
        self.run.is_none() && self.execution.is_none() && self.queued.is_none()
    }
}

/// What a query did, as `system.runtime.queries` shows it.
#[derive(Debug, Clone)]
pub struct QueryStatus {
    pub state: QueryState,
    pub resource_group: Option<Vec<String>>,
    pub created: SystemTime,
    /// When planning ended.
    pub planned: Option<SystemTime>,
    /// When it began to run (after admission).
    pub started: Option<SystemTime>,
    /// When its first job was submitted.
    pub submitted: Option<SystemTime>,
    pub ended: Option<SystemTime>,
    /// The last time the query made progress or its client fetched rows.
    pub last_heartbeat: SystemTime,
    pub failure: Option<QueryFailure>,
    pub output_rows: u64,
    pub output_bytes: u64,
    /// Compute and scheduled time of its jobs, recorded once the query ended.
    pub times: Option<(Duration, Duration)>,
    /// Bytes its tasks hold in the workers' pools now (as last reported), and the most seen.
    pub memory_reservation: u64,
    pub peak_memory_reservation: u64,
}

/// Who submits a statement: the user, the client program (Trino's `source`) and the client's
/// tags (Trino's `X-Trino-Client-Tags`). Resource group selectors match them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Submitter {
    pub user: String,
    pub source: Option<String>,
    pub client_tags: Vec<String>,
}

impl Submitter {
    /// The tags of a comma-separated list, trimmed, the empty ones left out.
    pub fn parse_tags(list: &str) -> Vec<String> {
        list.split(',')
            .map(str::trim)
            .filter(|tag| !tag.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// One statement.
#[derive(Debug)]
pub struct Query {
    pub id: String,
    pub user: String,
    pub source: Option<String>,
    pub client_tags: Vec<String>,
    pub sql: String,
    /// Cancels or kills its jobs.
    pub control: QueryControl,
    limits: EffectiveLimits,
    created_at: Instant,
    status: Mutex<(QueryStatus, Marks)>,
    changed: tokio::sync::watch::Sender<()>,
}

/// The monotonic instants the limits are measured from.
#[derive(Debug, Clone, Copy, Default)]
struct Marks {
    planned: Option<Instant>,
    started: Option<Instant>,
}

impl Query {
    /// Who submitted it.
    pub fn submitter(&self) -> Submitter {
        Submitter {
            user: self.user.clone(),
            source: self.source.clone(),
            client_tags: self.client_tags.clone(),
        }
    }

    fn new(id: String, submitter: &Submitter, sql: String, limits: EffectiveLimits) -> Self {
        let now = SystemTime::now();
        Self {
            id,
            user: submitter.user.clone(),
            source: submitter.source.clone(),
            client_tags: submitter.client_tags.clone(),
            sql,
            control: QueryControl::default(),
            limits,
            created_at: Instant::now(),
            status: Mutex::new((
                QueryStatus {
                    state: QueryState::Planning,
                    resource_group: None,
                    created: now,
                    planned: None,
                    started: None,
                    submitted: None,
                    ended: None,
                    last_heartbeat: now,
                    failure: None,
                    output_rows: 0,
                    output_bytes: 0,
                    times: None,
                    memory_reservation: 0,
                    peak_memory_reservation: 0,
                },
                Marks::default(),
            )),
            changed: tokio::sync::watch::Sender::new(()),
        }
    }

    /// A query outside any registry (tests, statements the registry cannot see).
    pub fn detached(user: &str, sql: &str) -> Arc<Self> {
        let submitter = Submitter {
            user: user.to_string(),
            ..Submitter::default()
        };
        Arc::new(Self::new(
            uuid::Uuid::new_v4().to_string(),
            &submitter,
            sql.to_string(),
            EffectiveLimits::default(),
        ))
    }

    pub fn status(&self) -> QueryStatus {
        self.status.lock().0.clone()
    }

    pub fn state(&self) -> QueryState {
        self.status.lock().0.state
    }

    /// Changes the status unless the query ended; wakes the watchdog.
    fn update(&self, change: impl FnOnce(&mut QueryStatus, &mut Marks)) {
        {
            let mut guard = self.status.lock();
            let (status, marks) = &mut *guard;
            if status.state.is_done() {
                return;
            }
            change(status, marks);
            status.last_heartbeat = SystemTime::now();
        }
        self.changed.send_replace(());
    }

    /// Planning ended: the query waits to run.
    pub fn planned(&self) {
        self.update(|status, marks| {
            status.state = QueryState::Queued;
            status.planned = Some(SystemTime::now());
            marks.planned = Some(Instant::now());
        });
    }

    fn queued_in(&self, group: &GroupPath) {
        self.update(|status, _| status.resource_group = Some(group.parts()));
    }

    fn running(&self) {
        self.update(|status, marks| {
            status.state = QueryState::Running;
            status.started = Some(SystemTime::now());
            marks.started = Some(Instant::now());
        });
    }

    /// Its first job was submitted to the cluster.
    pub fn submitted(&self) {
        self.update(|status, _| {
            status.submitted.get_or_insert_with(SystemTime::now);
        });
    }

    /// Keeps the compute and scheduled time of an ended query: its jobs' metrics may be gone
    /// later.
    pub fn keep_times(&self, times: (Duration, Duration)) {
        let mut guard = self.status.lock();
        if guard.0.state.is_done() {
            guard.0.times = Some(times);
        }
    }

    /// The workers hold `reserved` bytes for the query in all, and one of them held
    /// `node_peak` at most.
    fn memory_seen(&self, reserved: usize, node_peak: usize) {
        let mut guard = self.status.lock();
        let status = &mut guard.0;
        status.memory_reservation = reserved as u64;
        status.peak_memory_reservation = status
            .peak_memory_reservation
            .max(reserved as u64)
            .max(node_peak as u64);
    }

    /// The per-node memory limit the workers enforce for this query, if any.
    pub fn max_memory_per_node(&self) -> Option<MemoryLimit> {
        self.limits.max_memory_per_node
    }

    /// The cluster-wide memory limit the coordinator enforces for this query, if any.
    pub fn max_memory(&self) -> Option<MemoryLimit> {
        self.limits.max_memory
    }

    fn rows_sent(&self, batch: &RecordBatch) {
        let mut guard = self.status.lock();
        let status = &mut guard.0;
        status.output_rows += batch.num_rows() as u64;
        status.output_bytes += batch.get_array_memory_size() as u64;
        status.last_heartbeat = SystemTime::now();
    }

    /// The query ended well.
    pub fn finish(&self) {
        self.end(None);
    }

    /// The query failed with `error` (unless it had ended already); returns the error.
    pub fn fail(&self, error: DataFusionError) -> DataFusionError {
        self.end(Some(QueryFailure::classify(&error)));
        error
    }

    /// The query failed for `failure` (unless it had ended already).
    pub fn fail_with(&self, failure: QueryFailure) {
        self.end(Some(failure));
    }

    fn end(&self, failure: Option<QueryFailure>) {
        self.update(|status, _| {
            status.state = if failure.is_some() {
                QueryState::Failed
            } else {
                QueryState::Finished
            };
            status.failure = failure;
            status.ended = Some(SystemTime::now());
        });
    }

    /// Stops the query for `reason`: it fails at once, and its jobs, its wait for a resource
    /// group or its result stream end.
    pub fn kill(&self, scheduler: &Scheduler, reason: QueryFailure) {
        tracing::info!(query = %self.id, reason = %reason, "killing query");
        self.control.kill(scheduler, reason.clone());
        self.fail_with(reason);
    }

    /// What the watchdog waits for now: the next limit this query can exceed (when, and the
    /// failure it then gets), a change of state, or nothing (it ended).
    fn watch(&self) -> Watch {
        let guard = self.status.lock();
        let (status, marks) = &*guard;
        if status.state.is_done() {
            return Watch::Ended;
        }
        let limit = |start: Option<Instant>, limit: Option<TimeLimit>, what: &str| {
            let (start, limit) = (start?, limit?);
            let message = format!(
                "Query exceeded the maximum {what} limit of {} ({})",
                format_duration(limit.value),
                limit.name
            );
            Some((
                start + limit.value,
                QueryFailure::new(ErrorCode::ExceededTimeLimit, message),
            ))
        };
        let queued_since = (status.state == QueryState::Queued)
            .then_some(marks.planned)
            .flatten();
        [
            limit(Some(self.created_at), self.limits.run, "run time"),
            limit(marks.started, self.limits.execution, "execution time"),
            limit(queued_since, self.limits.queued, "queued time"),
        ]
        .into_iter()
        .flatten()
        .min_by_key(|(at, _)| *at)
        .map_or(Watch::StateChange, |(at, failure)| {
            Watch::Until(at, failure)
        })
    }
}

/// What a query's watchdog waits for.
enum Watch {
    /// The query ended.
    Ended,
    /// No limit runs now (an execution limit starts when the query leaves the queue).
    StateChange,
    /// The deadline of the next limit, and the failure the query gets there.
    Until(Instant, QueryFailure),
}

/// Kills the query when it exceeds one of its time limits; ends with the query.
fn spawn_watchdog(query: Arc<Query>, scheduler: Scheduler) {
    if query.limits.no_time_limits() {
        return;
    }
    let mut changed = query.changed.subscribe();
    tokio::spawn(async move {
        loop {
            match query.watch() {
                Watch::Ended => return,
                Watch::StateChange => {
                    // The sender lives in the query this task holds.
                    let _ = changed.changed().await;
                }
                Watch::Until(deadline, failure) => tokio::select! {
                    _ = tokio::time::sleep_until(deadline.into()) => {
                        if matches!(query.watch(), Watch::Until(at, _) if at <= Instant::now()) {
                            query.kill(&scheduler, failure);
                        }
                    }
                    // The query's state changed: its next deadline may have.
                    _ = changed.changed() => {}
                },
            }
        }
    });
}

/// The coordinator's queries.
pub struct Queries {
    map: Mutex<HashMap<String, Arc<Query>>>,
    sequence: AtomicU64,
    /// Distinguishes this coordinator's query ids from another's, as Trino's do.
    instance: String,
    groups: Arc<ResourceGroups>,
    limits: QueryLimits,
    admins: Vec<String>,
    scheduler: Scheduler,
    /// The workers' memory pools, as last reported.
    memory: ClusterMemory,
    /// Set on shutdown: no new statement is admitted.
    closed: AtomicBool,
}

impl std::fmt::Debug for Queries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queries")
            .field("queries", &self.map.lock().len())
            .field("limits", &self.limits)
            .finish()
    }
}

impl Queries {
    pub fn new(
        groups: Arc<ResourceGroups>,
        limits: QueryLimits,
        admins: Vec<String>,
        scheduler: Scheduler,
    ) -> Self {
        let instance: String = uuid::Uuid::new_v4()
            .simple()
            .to_string()
            .chars()
            .take(5)
            .collect();
        Self {
            map: Mutex::default(),
            sequence: AtomicU64::new(0),
            instance,
            groups,
            limits,
            admins,
            scheduler,
            memory: ClusterMemory::default(),
            closed: AtomicBool::new(false),
        }
    }

    /// Admits no new statement from now on: each fails with `SERVER_SHUTTING_DOWN`. Queries
    /// already admitted or queued go on.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// The queries that have not ended.
    pub fn unfinished(&self) -> Vec<Arc<Query>> {
        let map = self.map.lock();
        map.values()
            .filter(|q| !q.state().is_done())
            .cloned()
            .collect()
    }

    /// The workers' memory pools, as last reported.
    pub fn memory(&self) -> &ClusterMemory {
        &self.memory
    }

    /// Registers a statement of `submitter` with its session's settings.
    pub fn begin(&self, submitter: &Submitter, config: &SessionConfig, sql: &str) -> Arc<Query> {
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let id = format!(
            "{}_{:05}_{}",
            chrono::Utc::now().format("%Y%m%d_%H%M%S"),
            sequence % 100_000,
            self.instance
        );
        let limits = EffectiveLimits::new(&self.limits, &QueryProperties::of(config.options()));
        let query = Arc::new(Query::new(id.clone(), submitter, sql.to_string(), limits));
        {
            let mut map = self.map.lock();
            prune(&mut map);
            map.insert(id, query.clone());
        }
        spawn_watchdog(query.clone(), self.scheduler.clone());
        query
    }

    /// Every query kept, oldest first.
    pub fn list(&self) -> Vec<Arc<Query>> {
        let mut queries: Vec<_> = self.map.lock().values().cloned().collect();
        queries.sort_by_key(|q| q.created_at);
        queries
    }

    /// Lets `query` run once its resource group has room: it waits (state `QUEUED`) in the
    /// group's queue, or fails at once with `QUERY_QUEUE_FULL`. A kill or cancel while it
    /// waits ends the wait with that reason. The permit is held while the query runs.
    pub async fn admit(&self, query: &Query) -> Result<groups::Permit> {
        if query.control.is_cancelled() {
            return Err(query.control.cancelled_error());
        }
        let refuse = |failure: QueryFailure| {
            query.fail_with(failure.clone());
            failure.into_error()
        };
        if self.closed.load(Ordering::Acquire) {
            return Err(refuse(QueryFailure::new(
                ErrorCode::ServerShuttingDown,
                "The coordinator is shutting down: it accepts no new queries",
            )));
        }
        let path = self.groups.select(&query.submitter()).map_err(refuse)?;
        query.queued_in(&path);
        let permit = match self.groups.enter(&path).map_err(refuse)? {
            groups::Entry::Run(permit) => permit,
            groups::Entry::Queued(ticket) => {
                tracing::debug!(query = %query.id, group = %path.id(), "queued");
                tokio::select! {
                    permit = ticket.wait() => permit,
                    reason = query.control.stopped() => {
                        query.fail_with(reason.clone());
                        return Err(reason.into_error());
                    }
                }
            }
        };
        query.running();
        Ok(permit)
    }

    /// `kill_query`: stops the query `id` for `message`. Only its user or an admin may.
    pub fn kill(&self, id: &str, message: Option<&str>, caller: &str) -> Result<()> {
        let query = self.map.lock().get(id).cloned().ok_or_else(|| {
            QueryFailure::new(ErrorCode::NotFound, format!("Target query not found: {id}"))
                .into_error()
        })?;
        if query.user != caller && !self.admins.iter().any(|a| a == caller) {
            return Err(QueryFailure::new(
                ErrorCode::PermissionDenied,
                format!(
                    "Access Denied: Cannot kill query {id} of user {}",
                    query.user
                ),
            )
            .into_error());
        }
        if query.state().is_done() {
            return Err(QueryFailure::new(
                ErrorCode::NotSupported,
                format!("Target query is not running: {id}"),
            )
            .into_error());
        }
        let message = match message {
            Some(text) => format!("Query killed. Message: {text}"),
            None => "Query killed via kill_query procedure".to_string(),
        };
        query.kill(
            &self.scheduler,
            QueryFailure::new(ErrorCode::AdministrativelyKilled, message),
        );
        Ok(())
    }

    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }
}

/// Forgets ended queries older than [`HISTORY_MIN_AGE`] beyond the newest [`HISTORY_SIZE`],
/// and any beyond the newest [`HISTORY_MAX`].
fn prune(map: &mut HashMap<String, Arc<Query>>) {
    let mut ended: Vec<(SystemTime, String)> = map
        .iter()
        .filter_map(|(id, q)| q.status().ended.map(|at| (at, id.clone())))
        .collect();
    if ended.len() <= HISTORY_SIZE {
        return;
    }
    ended.sort();
    let excess = ended.len() - HISTORY_SIZE;
    let now = SystemTime::now();
    let over_max = ended.len().saturating_sub(HISTORY_MAX);
    for (i, (at, id)) in ended.into_iter().take(excess).enumerate() {
        if i < over_max || now.duration_since(at).unwrap_or_default() >= HISTORY_MIN_AGE {
            map.remove(&id);
        }
    }
}

/// A query's result stream: counts the rows sent, ends the query with the stream (finished, or
/// failed with its error), and stops with the kill's reason when the query is killed. Holds
/// the query's place in its resource group until it ends.
pub struct TrackedStream {
    inner: SendableRecordBatchStream,
    query: Arc<Query>,
    stopped: Option<BoxFuture<'static, QueryFailure>>,
    permit: Option<groups::Permit>,
}

impl TrackedStream {
    pub fn new(
        inner: SendableRecordBatchStream,
        query: Arc<Query>,
        permit: Option<groups::Permit>,
    ) -> Self {
        let watched = query.clone();
        let stopped = async move { watched.control.stopped().await }.boxed();
        Self {
            inner,
            query,
            stopped: Some(stopped),
            permit,
        }
    }

    fn end(&mut self) {
        self.query.control.finish();
        self.stopped = None;
        self.permit = None;
    }
}

impl Stream for TrackedStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(stopped) = self.stopped.as_mut() else {
            return Poll::Ready(None);
        };
        if let Poll::Ready(reason) = stopped.poll_unpin(cx) {
            self.query.fail_with(reason.clone());
            self.end();
            return Poll::Ready(Some(Err(reason.into_error())));
        }
        match self.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(batch))) => {
                self.query.rows_sent(&batch);
                Poll::Ready(Some(Ok(batch)))
            }
            Poll::Ready(Some(Err(error))) => {
                let error = self.query.fail(error);
                self.end();
                Poll::Ready(Some(Err(error)))
            }
            Poll::Ready(None) => {
                self.query.finish();
                self.end();
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl RecordBatchStream for TrackedStream {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }
}

impl Drop for TrackedStream {
    fn drop(&mut self) {
        if self.stopped.is_some() {
            self.query.fail_with(QueryFailure::new(
                ErrorCode::UserCanceled,
                "Query was cancelled: the client stopped reading its result",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_limits_only_lower_the_coordinators() {
        let limits = QueryLimits {
            max_run_time: Some(Duration::from_secs(60)),
            max_execution_time: None,
            max_queued_time: Some(Duration::from_secs(5)),
            max_memory_per_node: Some(1 << 30),
            max_memory: Some(4 << 30),
        };
        let mut session = QueryProperties::default();
        session.query_max_run_time.0 = Some(Duration::from_secs(600));
        session.query_max_execution_time.0 = Some(Duration::from_secs(10));
        session.query_max_memory_per_node.0 = Some(256 << 20);
        session.query_max_memory.0 = Some(8 << 30);
        let effective = EffectiveLimits::new(&limits, &session);
        assert_eq!(
            effective.run,
            Some(TimeLimit {
                value: Duration::from_secs(60),
                name: "query.max-run-time"
            })
        );
        assert_eq!(
            effective.execution.map(|l| l.name),
            Some("query_max_execution_time")
        );
        assert_eq!(
            effective.queued.map(|l| l.value),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            effective.max_memory_per_node,
            Some(MemoryLimit {
                bytes: 256 << 20,
                name: "query_max_memory_per_node"
            })
        );
        assert_eq!(
            effective.max_memory,
            Some(MemoryLimit {
                bytes: 4 << 30,
                name: "query.max-memory"
            })
        );
    }

    #[test]
    fn a_query_ends_once_and_keeps_its_first_failure() {
        let query = Query::detached("ann", "SELECT 1");
        assert_eq!(query.state(), QueryState::Planning);
        query.planned();
        query.running();
        query.fail_with(QueryFailure::new(ErrorCode::ExceededTimeLimit, "slow"));
        query.finish();
        let status = query.status();
        assert_eq!(status.state, QueryState::Failed);
        assert_eq!(
            status.failure.map(|f| f.code),
            Some(ErrorCode::ExceededTimeLimit)
        );
        assert!(status.started.is_some() && status.ended.is_some());
    }
}
