//! The workers' memory: one bounded pool per worker, shared by all its tasks, with a sub-pool
//! per query.
//!
//! - [`WorkerMemory`]: a worker's pool. Ballista 53 builds a runtime per task and, by default,
//!   gives it an unbounded pool; a Braid worker hands every task the [`QueryPool`] of the task's
//!   query (found by the `braid.query_id` the coordinator sets), and every query pool draws on
//!   the one worker pool. The worker pool follows a [`PoolPolicy`] chosen by name in
//!   `braid.toml`: `fair`, `greedy` or `reserved` (Trino's general and reserved pools).
//! - [`QueryPool`]: a query's share on one worker, which its tasks use through
//!   [`QueryPool::task_pool`] (under `fair` and `reserved`, its running tasks share it fairly). It refuses to grow past the query's
//!   `query.max-memory-per-node`, and its refusals read as Trino's ("Query exceeded per-node
//!   memory limit of 256MB [query.max-memory-per-node] ..."): operators that can spill then
//!   spill; the others fail the query with that message.
//! - [`WorkerStatus`]: what a worker reports to the coordinator (the Flight action
//!   [`STATUS_ACTION`]) — its cores, its pool's limit and what is reserved ([`MemoryStatus`]),
//!   and each running query's reservation and peak.
//!
//! The registry of query pools holds them weakly: a query's pool lives as long as one of its
//! tasks (or one of their reservations) does, and the registry forgets it after.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use datafusion::common::resources_datafusion_err;
use datafusion::error::Result;
use datafusion::execution::memory_pool::{
    FairSpillPool, GreedyMemoryPool, MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
    TrackConsumersPool,
};
use parking_lot::Mutex;

use crate::properties::format_size;

/// How many of the largest consumers an out-of-memory error names.
const REPORTED_CONSUMERS: usize = 3;

/// How a worker's pool is shared between the operators of its tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PoolPolicy {
    /// Operators that can spill share what the others leave, each its fair part; the others
    /// take first come, first served (DataFusion's `FairSpillPool`).
    #[default]
    Fair,
    /// First come, first served for every operator (DataFusion's `GreedyMemoryPool`).
    Greedy,
    /// Trino's general and reserved pools: queries share the general pool fairly; when it is
    /// full, the largest query on the worker may go on in a reserved slice that no other
    /// query uses, so that one query always progresses and the cluster cannot deadlock.
    Reserved,
}

impl PoolPolicy {
    /// The policy named `name` in `braid.toml`.
    pub fn parse(name: &str) -> Result<Self, String> {
        match name.trim().to_ascii_lowercase().as_str() {
            "fair" => Ok(PoolPolicy::Fair),
            "greedy" => Ok(PoolPolicy::Greedy),
            "reserved" => Ok(PoolPolicy::Reserved),
            other => Err(format!(
                "unknown memory pool policy '{other}' (use fair, greedy or reserved)"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            PoolPolicy::Fair => "fair",
            PoolPolicy::Greedy => "greedy",
            PoolPolicy::Reserved => "reserved",
        }
    }
}

/// A per-query memory limit and the name it was set by, for the message that names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryMemoryLimit {
    pub bytes: usize,
    /// `query.max-memory-per-node` (the coordinator's setting) or
    /// `query_max_memory_per_node` (the session's).
    pub name: String,
}

/// A worker's memory pool and the pools of the queries running on it.
#[derive(Debug)]
pub struct WorkerMemory {
    /// How the worker is named in errors (its Flight address).
    node: String,
    policy: PoolPolicy,
    limit: usize,
    /// The pool every query draws on (the general pool under the `reserved` policy).
    general: Arc<TrackConsumersPool<Policy>>,
    /// The reserved slice (`reserved` policy only).
    reserved: Option<ReservedSlice>,
    queries: Mutex<HashMap<String, Weak<QueryPool>>>,
    /// The query the coordinator chose for the reserved slices of the whole cluster (the
    /// cluster's largest), from its last status request; `None` before one named a query.
    designated: Mutex<Option<String>>,
}

/// Trino's reserved pool: a slice of the worker's memory lent to one query at a time.
#[derive(Debug)]
struct ReservedSlice {
    size: usize,
    used: AtomicUsize,
    /// The query using it; the slice is free again once that query's pool is gone.
    owner: Mutex<Weak<QueryPool>>,
}

impl WorkerMemory {
    /// A pool of `limit` bytes on the worker `node`. Under [`PoolPolicy::Reserved`],
    /// `reserved` bytes of it form the reserved slice.
    pub fn new(node: impl Into<String>, limit: usize, policy: PoolPolicy, reserved: usize) -> Self {
        let reserved = (policy == PoolPolicy::Reserved).then(|| ReservedSlice {
            size: reserved.min(limit),
            used: AtomicUsize::new(0),
            owner: Mutex::new(Weak::new()),
        });
        let general_size = limit - reserved.as_ref().map_or(0, |r| r.size);
        let inner = match policy {
            PoolPolicy::Greedy => Policy::Greedy(GreedyMemoryPool::new(general_size)),
            PoolPolicy::Fair | PoolPolicy::Reserved => {
                Policy::Fair(FairSpillPool::new(general_size))
            }
        };
        let top = NonZeroUsize::new(REPORTED_CONSUMERS).unwrap_or(NonZeroUsize::MIN);
        Self {
            node: node.into(),
            policy,
            limit,
            general: Arc::new(TrackConsumersPool::new(inner, top)),
            reserved,
            queries: Mutex::default(),
            designated: Mutex::default(),
        }
    }

    /// Takes the coordinator's choice of the query that may go on in the reserved slice (see
    /// [`StatusRequest::reserved_query`]).
    pub fn designate(&self, query_id: Option<String>) {
        *self.designated.lock() = query_id;
    }

    /// The pool's size in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The default budget: 60% of the machine's memory, leaving room for what the pool does not
    /// account (Flight buffers, shuffle reads, Arrow buffers outside reservations).
    pub fn default_limit() -> usize {
        let total = total_memory_bytes().unwrap_or(4 << 30);
        total / 10 * 6
    }

    /// The pool of query `query_id` on this worker, created on its first task. `limit` is the
    /// query's `query.max-memory-per-node`; the first task's value holds for the query.
    pub fn query_pool(
        self: &Arc<Self>,
        query_id: &str,
        limit: Option<QueryMemoryLimit>,
    ) -> Arc<QueryPool> {
        let mut queries = self.queries.lock();
        if let Some(pool) = queries.get(query_id).and_then(Weak::upgrade) {
            return pool;
        }
        // The registry holds only live queries: drop those whose tasks all ended.
        queries.retain(|_, pool| pool.strong_count() > 0);
        let pool = Arc::new(QueryPool {
            query_id: query_id.to_string(),
            limit,
            worker: self.clone(),
            usage: Mutex::default(),
            in_reserved: Mutex::default(),
        });
        queries.insert(query_id.to_string(), Arc::downgrade(&pool));
        pool
    }

    /// A reservation on the worker's pool outside any query: what the worker keeps of
    /// finished tasks (shuffle outputs held in memory) until their job ends.
    pub fn shuffle_reservation(&self) -> MemoryReservation {
        let pool: Arc<dyn MemoryPool> = self.general.clone();
        MemoryConsumer::new("shuffle store").register(&pool)
    }

    /// What the worker's pool holds now, and for which queries.
    pub fn status(&self) -> MemoryStatus {
        let mut queries: Vec<QueryMemory> = self
            .live_queries()
            .iter()
            .map(|pool| {
                let usage = pool.usage.lock();
                QueryMemory {
                    query_id: pool.query_id.clone(),
                    reserved: usage.total(),
                    peak: usage.peak,
                }
            })
            .collect();
        queries.sort_by(|a, b| a.query_id.cmp(&b.query_id));
        let reserved_slice = self
            .reserved
            .as_ref()
            .map_or(0, |r| r.used.load(Ordering::Relaxed));
        let reserved_owner = self
            .reserved
            .as_ref()
            .and_then(|slice| slice.owner.lock().upgrade())
            .map(|owner| owner.query_id.clone());
        MemoryStatus {
            limit: self.limit,
            reserved: self.general.reserved() + reserved_slice,
            queries,
            reserved_owner,
        }
    }

    fn live_queries(&self) -> Vec<Arc<QueryPool>> {
        self.queries
            .lock()
            .values()
            .filter_map(Weak::upgrade)
            .collect()
    }

    /// Whether `query` may move on into the reserved slice: the slice is free and `query` is
    /// the one the coordinator chose for the whole cluster (so that two workers never lend
    /// their slices to two different queries, each of which then fails on the other worker),
    /// or, before the coordinator chose one, the largest query on the worker.
    fn try_promote(&self, query: &Arc<QueryPool>) -> bool {
        let Some(slice) = &self.reserved else {
            return false;
        };
        let mut owner = slice.owner.lock();
        if let Some(current) = owner.upgrade() {
            return Arc::ptr_eq(&current, query);
        }
        let chosen = match &*self.designated.lock() {
            Some(designated) => *designated == query.query_id,
            None => {
                let own = query.used();
                self.live_queries().iter().all(|other| other.used() <= own)
            }
        };
        if chosen {
            *owner = Arc::downgrade(query);
            tracing::info!(
                query = %query.query_id,
                node = %self.node,
                "query continues in the reserved memory pool"
            );
        }
        chosen
    }

    fn owns_reserved(&self, query: &QueryPool) -> bool {
        self.reserved.as_ref().is_some_and(|slice| {
            slice
                .owner
                .lock()
                .upgrade()
                .is_some_and(|owner| std::ptr::eq(Arc::as_ptr(&owner), query))
        })
    }
}

/// The Flight action by which the coordinator asks a worker for its [`WorkerStatus`], which
/// the answer's body holds as JSON.
pub const STATUS_ACTION: &str = "braid.worker_status";

/// What the coordinator sends with [`STATUS_ACTION`]: the jobs it still runs, so that the
/// worker can drop what it holds for the others, and under the `reserved` policy the query
/// that may go on in the workers' reserved slices.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StatusRequest {
    pub running_jobs: Vec<String>,
    /// The query that holds a reserved slice on some worker, else the query that holds the
    /// most memory across the cluster (Trino's choice for its reserved pool).
    #[serde(default)]
    pub reserved_query: Option<String>,
}

/// What a worker reports to the coordinator.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WorkerStatus {
    /// Cores the worker's process may use.
    pub processor_count: usize,
    /// The worker's memory pool and the queries in it.
    pub memory: MemoryStatus,
}

/// A worker's memory, as it reports it to the coordinator.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemoryStatus {
    /// The worker pool's size in bytes.
    pub limit: usize,
    /// Bytes reserved now, by all queries.
    pub reserved: usize,
    /// The queries with a task on the worker.
    pub queries: Vec<QueryMemory>,
    /// The query going on in the worker's reserved slice (`reserved` policy).
    #[serde(default)]
    pub reserved_owner: Option<String>,
}

/// One query's memory on one worker.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QueryMemory {
    pub query_id: String,
    pub reserved: usize,
    pub peak: usize,
}

/// The pool a worker's general memory is, by [`PoolPolicy`].
#[derive(Debug)]
enum Policy {
    Fair(FairSpillPool),
    Greedy(GreedyMemoryPool),
}

impl Policy {
    fn pool(&self) -> &dyn MemoryPool {
        match self {
            Policy::Fair(pool) => pool,
            Policy::Greedy(pool) => pool,
        }
    }
}

impl MemoryPool for Policy {
    fn register(&self, consumer: &MemoryConsumer) {
        self.pool().register(consumer)
    }
    fn unregister(&self, consumer: &MemoryConsumer) {
        self.pool().unregister(consumer)
    }
    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.pool().grow(reservation, additional)
    }
    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.pool().shrink(reservation, shrink)
    }
    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        self.pool().try_grow(reservation, additional)
    }
    fn reserved(&self) -> usize {
        self.pool().reserved()
    }
    fn memory_limit(&self) -> MemoryLimit {
        self.pool().memory_limit()
    }
}

/// One query's memory on one worker: the pool the runtime of each of its tasks uses.
#[derive(Debug)]
pub struct QueryPool {
    query_id: String,
    limit: Option<QueryMemoryLimit>,
    worker: Arc<WorkerMemory>,
    /// What the query holds on this worker.
    usage: Mutex<Usage>,
    /// Per consumer, the bytes it holds in the reserved slice (`reserved` policy).
    in_reserved: Mutex<HashMap<usize, usize>>,
}

impl QueryPool {
    /// Bytes the query holds on this worker.
    pub fn used(&self) -> usize {
        self.usage.lock().total()
    }

    /// The pool of one task of this query: what the task's runtime uses.
    pub fn task_pool(self: &Arc<Self>) -> Arc<dyn MemoryPool> {
        Arc::new(TaskPool {
            query: self.clone(),
            share: Arc::default(),
        })
    }

    /// Takes `additional` bytes for `reservation` of `task` within the query's per-node limit.
    /// Unless the worker's policy is `greedy`, the query's running tasks on the worker share
    /// the limit fairly: a task past its share is refused (a sort then spills) even if the
    /// query has room, so that one task cannot take what another needs to finish (DataFusion's
    /// merge of spilled runs reserves all it can get). On refusal, the message names the limit.
    fn take(
        &self,
        task: &TaskShare,
        reservation: &MemoryReservation,
        additional: usize,
    ) -> Result<(), String> {
        let mut usage = self.usage.lock();
        if let Some(limit) = &self.limit {
            let tasks = usage.tasks.max(1);
            let share = limit.bytes / tasks;
            let held = task.held.load(Ordering::Relaxed);
            let over_total = usage.total() + additional > limit.bytes;
            let over_share =
                self.worker.policy != PoolPolicy::Greedy && tasks > 1 && held + additional > share;
            if over_total || over_share {
                let mut why = format!(
                    "per-node memory limit of {} [{}]",
                    format_size(limit.bytes),
                    limit.name
                );
                if over_share && !over_total {
                    why += &format!(
                        " (a fair share of {} for each of its {tasks} running tasks)",
                        format_size(share)
                    );
                }
                return Err(self.exceeded(&usage, reservation, additional, &why));
            }
        }
        usage.add(reservation, additional);
        task.held.fetch_add(additional, Ordering::Relaxed);
        Ok(())
    }

    /// The error of a refused allocation, in Trino's words.
    fn exceeded(
        &self,
        usage: &Usage,
        reservation: &MemoryReservation,
        additional: usize,
        why: &str,
    ) -> String {
        let top = self.worker.general.report_top(REPORTED_CONSUMERS);
        let top: Vec<&str> = top
            .lines()
            .map(|line| line.trim().trim_end_matches([',', '.']))
            .filter(|line| !line.is_empty())
            .collect();
        let top = top.join("; ");
        format!(
            "Query exceeded {why} on worker {} [Allocated: {}, Delta: {}, Operator: {}, \
             Top consumers on the worker: {top}]",
            self.worker.node,
            format_size(usage.total()),
            format_size(additional),
            reservation.consumer().name(),
        )
    }

    /// Grows into the reserved slice, if this query owns it (or may take it) and it has room.
    fn try_grow_reserved(
        self: &Arc<Self>,
        reservation: &MemoryReservation,
        additional: usize,
    ) -> bool {
        let Some(slice) = &self.worker.reserved else {
            return false;
        };
        if !self.worker.try_promote(self) {
            return false;
        }
        let grown = slice
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                (used + additional <= slice.size).then_some(used + additional)
            })
            .is_ok();
        if grown {
            *self
                .in_reserved
                .lock()
                .entry(reservation.consumer().id())
                .or_default() += additional;
        }
        grown
    }
}

/// What a query holds on one worker, by kind of operator.
#[derive(Debug, Default)]
struct Usage {
    spillable: usize,
    unspillable: usize,
    /// Tasks of the query on the worker that hold a registered operator.
    tasks: usize,
    /// The most the query held.
    peak: usize,
}

impl Usage {
    fn total(&self) -> usize {
        self.spillable + self.unspillable
    }

    fn add(&mut self, reservation: &MemoryReservation, bytes: usize) {
        match reservation.consumer().can_spill() {
            true => self.spillable += bytes,
            false => self.unspillable += bytes,
        }
    }

    /// Records the current total as the peak, once an allocation is kept.
    fn kept(&mut self) {
        self.peak = self.peak.max(self.total());
    }

    fn remove(&mut self, reservation: &MemoryReservation, bytes: usize) {
        match reservation.consumer().can_spill() {
            true => self.spillable = self.spillable.saturating_sub(bytes),
            false => self.unspillable = self.unspillable.saturating_sub(bytes),
        }
    }
}

/// One task's part of its query's pool (see [`QueryPool::take`]).
#[derive(Debug, Default)]
struct TaskShare {
    /// Operators registered by the task: it counts as running while it has one.
    consumers: AtomicUsize,
    held: AtomicUsize,
}

/// The pool of one task: its query's pool, with the task's share tracked. Ballista asks for a
/// runtime (and so a pool) per task; a runtime made only to decode the task's plan registers
/// no operator and does not count.
#[derive(Debug)]
struct TaskPool {
    query: Arc<QueryPool>,
    share: Arc<TaskShare>,
}

impl MemoryPool for TaskPool {
    fn register(&self, consumer: &MemoryConsumer) {
        if self.share.consumers.fetch_add(1, Ordering::Relaxed) == 0 {
            self.query.usage.lock().tasks += 1;
        }
        self.query.worker.general.register(consumer)
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        if self.share.consumers.fetch_sub(1, Ordering::Relaxed) == 1 {
            let mut usage = self.query.usage.lock();
            usage.tasks = usage.tasks.saturating_sub(1);
        }
        self.query.worker.general.unregister(consumer)
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        {
            let mut usage = self.query.usage.lock();
            usage.add(reservation, additional);
            usage.kept();
        }
        self.share.held.fetch_add(additional, Ordering::Relaxed);
        self.query.worker.general.grow(reservation, additional)
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        let pool = &self.query;
        pool.usage.lock().remove(reservation, shrink);
        let _ = self
            .share
            .held
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
                Some(held.saturating_sub(shrink))
            });
        // Bytes held in the reserved slice are given back first.
        let mut general = shrink;
        if let Some(slice) = &pool.worker.reserved {
            let mut in_reserved = pool.in_reserved.lock();
            let id = reservation.consumer().id();
            if let Some(held) = in_reserved.get_mut(&id) {
                let back = (*held).min(shrink);
                *held -= back;
                if *held == 0 {
                    in_reserved.remove(&id);
                }
                slice.used.fetch_sub(back, Ordering::Relaxed);
                general -= back;
            }
        }
        if general > 0 {
            pool.worker.general.shrink(reservation, general)
        }
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        let pool = &self.query;
        // Taken from the query's budget first (and given back if the worker refuses), so that
        // two tasks of the query cannot both pass its limit.
        pool.take(&self.share, reservation, additional)
            .map_err(|message| resources_datafusion_err!("{message}"))?;
        let in_general = if pool.worker.owns_reserved(pool) {
            Err(None)
        } else {
            pool.worker
                .general
                .try_grow(reservation, additional)
                .map_err(Some)
        };
        match in_general {
            Ok(()) => {}
            Err(_) if pool.try_grow_reserved(reservation, additional) => {}
            Err(error) => {
                let mut usage = pool.usage.lock();
                usage.remove(reservation, additional);
                self.share.held.fetch_sub(additional, Ordering::Relaxed);
                let why = format!(
                    "the worker's memory pool of {} [memory-limit]",
                    format_size(pool.worker.limit)
                );
                let detail = error.map(|e| e.strip_backtrace()).unwrap_or_default();
                let message = pool.exceeded(&usage, reservation, additional, &why);
                return Err(resources_datafusion_err!("{message}: {detail}"));
            }
        }
        pool.usage.lock().kept();
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.query.used()
    }

    fn memory_limit(&self) -> MemoryLimit {
        let worker = self.query.worker.limit;
        MemoryLimit::Finite(
            self.query
                .limit
                .as_ref()
                .map_or(worker, |l| l.bytes.min(worker)),
        )
    }
}

/// Total physical memory from `/proc/meminfo`, if readable.
fn total_memory_bytes() -> Option<usize> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Parses a size like `512MB`, `4GiB`, `1g` or a plain byte count.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a size (examples: 512MB, 4GB, 1073741824)"))?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "'{text}': unknown size unit '{other}' (use B, KB, MB, GB, TB)"
            ));
        }
    };
    Ok((number * factor) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(limit: usize, policy: PoolPolicy, reserved: usize) -> Arc<WorkerMemory> {
        Arc::new(WorkerMemory::new("w1:50051", limit, policy, reserved))
    }

    fn pool_of(
        worker: &Arc<WorkerMemory>,
        query: &str,
        limit: Option<usize>,
    ) -> Arc<dyn MemoryPool> {
        let limit = limit.map(|bytes| QueryMemoryLimit {
            bytes,
            name: "query.max-memory-per-node".into(),
        });
        worker.query_pool(query, limit).task_pool()
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("2KB"), Ok(2048));
        assert_eq!(parse_size("1.5g"), Ok(1536 * 1024 * 1024));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("3 parsecs").is_err());
        assert_eq!(PoolPolicy::parse("Reserved"), Ok(PoolPolicy::Reserved));
        assert!(
            PoolPolicy::parse("lifo")
                .unwrap_err()
                .contains("fair, greedy")
        );
    }

    #[test]
    fn the_worker_pool_is_bounded_and_shared_by_queries() {
        let worker = worker(1000, PoolPolicy::Greedy, 0);
        let a = MemoryConsumer::new("a").register(&pool_of(&worker, "q1", None));
        let b = MemoryConsumer::new("b").register(&pool_of(&worker, "q2", None));
        a.try_grow(600).expect("within the limit");
        let err = b
            .try_grow(600)
            .expect_err("over the shared limit")
            .to_string();
        assert!(err.contains("Resources exhausted"), "{err}");
        assert!(
            err.contains(
                "Query exceeded the worker's memory pool of 1000B [memory-limit] on worker w1:50051"
            ),
            "{err}"
        );
        let status = worker.status();
        assert_eq!((status.limit, status.reserved), (1000, 600));
        assert_eq!(status.queries.len(), 2);
        assert_eq!(status.queries[0].reserved, 600);
    }

    #[test]
    fn a_query_cannot_pass_its_per_node_limit_and_others_are_unaffected() {
        // Greedy: the query's tasks take from its limit first come, first served.
        let worker = worker(10_000, PoolPolicy::Greedy, 0);
        let q1 = pool_of(&worker, "q1", Some(1000));
        let sort = MemoryConsumer::new("ExternalSorter[0]")
            .with_can_spill(true)
            .register(&q1);
        // Two tasks of the same query share its pool.
        let other_task =
            MemoryConsumer::new("HashJoinInput").register(&pool_of(&worker, "q1", None));
        sort.try_grow(700).expect("within the query's limit");
        let err = other_task
            .try_grow(400)
            .expect_err("over the query's limit")
            .to_string();
        assert!(
            err.contains("Query exceeded per-node memory limit of 1000B [query.max-memory-per-node] on worker w1:50051 [Allocated: 700B, Delta: 400B, Operator: HashJoinInput, Top consumers on the worker: "),
            "{err}"
        );
        let q2 = MemoryConsumer::new("other").register(&pool_of(&worker, "q2", None));
        q2.try_grow(5000).expect("another query has its own budget");
        drop(sort);
        assert_eq!(worker.status().reserved, 5000, "freed bytes go back");
        let peak = worker.status().queries[0].peak;
        assert_eq!(peak, 700, "the query's peak is kept while it runs");
    }

    #[test]
    fn running_tasks_of_a_query_share_its_limit_fairly() {
        let worker = worker(10_000, PoolPolicy::Fair, 0);
        let query = worker.query_pool(
            "q1",
            Some(QueryMemoryLimit {
                bytes: 1000,
                name: "query.max-memory-per-node".into(),
            }),
        );
        let (task_a, task_b, decoding) = (query.task_pool(), query.task_pool(), query.task_pool());
        let merge_a = MemoryConsumer::new("ExternalSorterMerge[0]").register(&task_a);
        let sort_b = MemoryConsumer::new("ExternalSorter[1]")
            .with_can_spill(true)
            .register(&task_b);
        merge_a.try_grow(500).expect("its share");
        let err = merge_a.try_grow(1).expect_err("past its share").to_string();
        assert!(
            err.contains("per-node memory limit of 1000B [query.max-memory-per-node] (a fair share of 500B for each of its 2 running tasks)"),
            "{err}"
        );
        sort_b
            .try_grow(500)
            .expect("the other task keeps its share");
        drop(decoding);
        drop(sort_b);
        merge_a.try_grow(400).expect("alone now: the whole limit");
        assert!(merge_a.try_grow(200).is_err(), "never past the limit");

        let (greedy, _other) = worker_with_two_tasks(PoolPolicy::Greedy);
        greedy.try_grow(900).expect("greedy: no shares");
    }

    fn worker_with_two_tasks(policy: PoolPolicy) -> (MemoryReservation, MemoryReservation) {
        let worker = worker(10_000, policy, 0);
        let query = worker.query_pool(
            "q1",
            Some(QueryMemoryLimit {
                bytes: 1000,
                name: "query.max-memory-per-node".into(),
            }),
        );
        let other = MemoryConsumer::new("b").register(&query.task_pool());
        (MemoryConsumer::new("a").register(&query.task_pool()), other)
    }

    #[test]
    fn pools_of_ended_queries_are_forgotten() {
        let worker = worker(1000, PoolPolicy::Fair, 0);
        let pool = pool_of(&worker, "q1", None);
        assert_eq!(worker.status().queries.len(), 1);
        drop(pool);
        assert!(worker.status().queries.is_empty());
        let _again = pool_of(&worker, "q2", None);
        assert_eq!(worker.queries.lock().len(), 1, "dead entries are pruned");
    }

    #[test]
    fn under_the_reserved_policy_the_largest_query_goes_on_in_the_reserved_slice() {
        // 1000 bytes: 700 general, 300 reserved.
        let worker = worker(1000, PoolPolicy::Reserved, 300);
        let big = MemoryConsumer::new("big").register(&pool_of(&worker, "big", None));
        let small = MemoryConsumer::new("small").register(&pool_of(&worker, "small", None));
        big.try_grow(500).expect("general pool");
        small.try_grow(150).expect("general pool");
        // The general pool is full for both; the small query may not take the slice...
        let err = small
            .try_grow(100)
            .expect_err("not the largest")
            .to_string();
        assert!(err.contains("memory pool of 1000B"), "{err}");
        // ... the largest may, up to the slice's size.
        big.try_grow(250).expect("reserved slice");
        assert!(big.try_grow(100).is_err(), "the slice is 300 bytes");
        assert_eq!(worker.status().reserved, 900);
        // Giving back empties the slice first; once the query is gone it is free again.
        big.shrink(250);
        assert_eq!(
            worker
                .reserved
                .as_ref()
                .map(|r| r.used.load(Ordering::Relaxed)),
            Some(0)
        );
        drop(big);
        small.try_grow(300).expect("general pool has room again");
        assert_eq!(worker.status().reserved, 450);
    }

    #[test]
    fn the_query_the_coordinator_chose_takes_the_slice_even_if_not_the_largest_here() {
        let worker = worker(1000, PoolPolicy::Reserved, 300);
        let big = MemoryConsumer::new("big").register(&pool_of(&worker, "big", None));
        let chosen = MemoryConsumer::new("chosen").register(&pool_of(&worker, "chosen", None));
        worker.designate(Some("chosen".into()));
        big.try_grow(500).expect("general pool");
        chosen.try_grow(150).expect("general pool");
        assert!(big.try_grow(100).is_err(), "not the cluster's choice");
        chosen.try_grow(250).expect("the reserved slice");
        assert_eq!(worker.status().reserved_owner.as_deref(), Some("chosen"));
        // Once it owns the slice, a new choice waits until it is done.
        worker.designate(Some("big".into()));
        assert!(big.try_grow(100).is_err(), "the slice is taken");
        drop(chosen);
        // 750 bytes: past the general pool's 700.
        big.try_grow(250).expect("the slice, free again");
        assert_eq!(worker.status().reserved_owner.as_deref(), Some("big"));
    }
}
