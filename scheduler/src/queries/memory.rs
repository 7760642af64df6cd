//! The cluster's memory as the coordinator sees it: every [`POLL_INTERVAL`], the coordinator
//! asks each live worker for its memory pool (the Flight action `braid.worker_status`),
//! keeps the answers for `system.runtime.nodes` ([`ClusterMemory::node`]), adds up each
//! query's reservations across the workers for `system.runtime.queries`, kills a query over
//! its `query.max-memory` with `EXCEEDED_GLOBAL_MEMORY_LIMIT`, and tells the resource groups
//! what their queries hold (their `softMemoryLimit`).
//!
//! Each ask lists the jobs still running, and the worker drops the shuffle outputs it holds
//! in memory for the others.
//!
//! A worker that does not answer within [`POLL_TIMEOUT`] keeps its last figures until it
//! leaves the cluster; the map holds only workers the scheduler still knows.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use arrow_flight::Action;
use arrow_flight::flight_service_client::FlightServiceClient;
use braid_optimizer_rules::memory::{STATUS_ACTION, StatusRequest, WorkerStatus};
use braid_optimizer_rules::properties::format_size;
use futures::StreamExt;
use parking_lot::Mutex;
use tonic::transport::{Channel, Endpoint};

use super::{ErrorCode, Queries, QueryFailure};
use crate::job::live_executors;

/// How often the workers are asked.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How long one worker may take to answer.
const POLL_TIMEOUT: Duration = Duration::from_secs(2);

/// One worker's last report.
#[derive(Debug, Clone)]
pub struct NodeMemory {
    pub status: WorkerStatus,
    pub at: SystemTime,
}

/// The workers' last reports, by executor id, and a channel to each.
#[derive(Debug, Default)]
pub struct ClusterMemory {
    nodes: Mutex<HashMap<String, (NodeMemory, Channel)>>,
    /// The query the workers' reserved slices are for ([`reserved_query`]).
    reserved_query: Mutex<Option<String>>,
}

impl ClusterMemory {
    /// The last report of worker `executor_id`, if it answered once.
    pub fn node(&self, executor_id: &str) -> Option<NodeMemory> {
        self.nodes.lock().get(executor_id).map(|(n, _)| n.clone())
    }
}

/// Polls the workers for as long as `queries` lives.
pub fn spawn_monitor(queries: &Arc<Queries>) {
    let queries: Weak<Queries> = Arc::downgrade(queries);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(POLL_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(queries) = queries.upgrade() else {
                return;
            };
            poll(&queries).await;
        }
    });
}

/// One round: ask every live worker, then account the queries.
async fn poll(queries: &Queries) {
    let executors = live_executors(queries.scheduler()).await;
    // Listed with each ask: a worker drops the shuffle outputs of jobs no longer running.
    let running = StatusRequest {
        running_jobs: (queries.scheduler().state.task_manager)
            .get_running_job_cache()
            .keys()
            .cloned()
            .collect(),
        reserved_query: queries.memory.reserved_query.lock().clone(),
    };
    let request = bytes::Bytes::from(serde_json::to_vec(&running).unwrap_or_default());
    let memory = &queries.memory;
    let asks = executors.iter().map(|meta| {
        let known = memory.nodes.lock().get(&meta.id).map(|(_, c)| c.clone());
        let address = format!("http://{}:{}", meta.host, meta.port);
        let request = request.clone();
        async move {
            let channel = match known {
                Some(channel) => channel,
                None => Endpoint::from_shared(address.clone())
                    .map_err(|e| e.to_string())?
                    .connect_timeout(POLL_TIMEOUT)
                    .timeout(POLL_TIMEOUT)
                    .connect_lazy(),
            };
            let status = tokio::time::timeout(POLL_TIMEOUT, ask(channel.clone(), request))
                .await
                .map_err(|_| format!("worker {address} did not answer within {POLL_TIMEOUT:?}"))?
                .map_err(|e| format!("worker {address}: {e}"))?;
            Ok::<_, String>((meta.id.clone(), status, channel))
        }
    });
    let answers = futures::future::join_all(asks).await;
    {
        let mut nodes = memory.nodes.lock();
        nodes.retain(|id, _| executors.iter().any(|meta| &meta.id == id));
        for answer in answers {
            match answer {
                Ok((id, status, channel)) => {
                    let at = SystemTime::now();
                    nodes.insert(id, (NodeMemory { status, at }, channel));
                }
                Err(e) => tracing::debug!("memory poll: {e}"),
            }
        }
    }
    account(queries);
}

async fn ask(channel: Channel, request: bytes::Bytes) -> Result<WorkerStatus, String> {
    let mut client = FlightServiceClient::new(channel);
    let action = Action {
        r#type: STATUS_ACTION.to_string(),
        body: request,
    };
    let mut results = client
        .do_action(action)
        .await
        .map_err(|e| e.message().to_string())?
        .into_inner();
    let body = match results.next().await {
        Some(Ok(result)) => result.body,
        Some(Err(e)) => return Err(e.message().to_string()),
        None => return Err("no status in the answer".into()),
    };
    serde_json::from_slice(&body).map_err(|e| format!("unreadable status: {e}"))
}

/// Adds up each running query's reservations across the workers, records them on the query
/// and kills a query over its cluster-wide limit.
fn account(queries: &Queries) {
    let mut totals: HashMap<String, (usize, usize)> = HashMap::new();
    let mut owners = Vec::new();
    for (node, _) in queries.memory.nodes.lock().values() {
        for query in &node.status.memory.queries {
            let total = totals.entry(query.query_id.clone()).or_default();
            total.0 += query.reserved;
            total.1 = total.1.max(query.peak);
        }
        owners.extend(node.status.memory.reserved_owner.clone());
    }
    let next = reserved_query(&totals, &owners);
    *queries.memory.reserved_query.lock() = next;
    let cluster: usize = queries
        .memory
        .nodes
        .lock()
        .values()
        .map(|(node, _)| node.status.memory.limit)
        .sum();
    let mut by_group = Vec::new();
    for query in queries.list() {
        let status = query.status();
        if status.state.is_done() {
            continue;
        }
        let (reserved, node_peak) = totals.get(&query.id).copied().unwrap_or_default();
        query.memory_seen(reserved, node_peak);
        if let Some(group) = status.resource_group {
            by_group.push((group, reserved));
        }
        if let Some(limit) = query.limits.max_memory.as_ref()
            && reserved > limit.bytes
        {
            let message = format!(
                "Query exceeded distributed user memory limit of {} [{}] (it held {} on the workers)",
                format_size(limit.bytes),
                limit.name,
                format_size(reserved)
            );
            query.kill(
                queries.scheduler(),
                QueryFailure::new(ErrorCode::ExceededGlobalMemoryLimit, message),
            );
        }
    }
    queries.groups.memory_seen(&by_group, cluster);
}

/// The query the workers' reserved slices are for (the `reserved` memory policy), chosen for
/// the whole cluster so that no two workers lend theirs to two different queries: one that
/// already holds a slice (`owners`, as the workers reported them) until it ends, else the
/// query holding the most memory across the cluster (`totals`: bytes held, by query id; ties
/// go to the lower id, the older query).
fn reserved_query(totals: &HashMap<String, (usize, usize)>, owners: &[String]) -> Option<String> {
    let held = |id: &String| totals.get(id).map_or(0, |t| t.0);
    let largest = |candidates: &mut dyn Iterator<Item = &String>| {
        candidates
            .max_by(|a, b| held(a).cmp(&held(b)).then_with(|| b.cmp(a)))
            .cloned()
    };
    largest(&mut owners.iter()).or_else(|| {
        largest(
            &mut totals
                .iter()
                .filter(|(_, (bytes, _))| *bytes > 0)
                .map(|(id, _)| id),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserved_slices_go_to_their_owner_else_to_the_largest_query() {
        let totals: HashMap<String, (usize, usize)> = [
            ("q1".to_string(), (100, 100)),
            ("q2".to_string(), (900, 900)),
            ("q3".to_string(), (900, 900)),
            ("q4".to_string(), (0, 50)),
        ]
        .into();
        assert_eq!(reserved_query(&totals, &[]).as_deref(), Some("q2"));
        assert_eq!(
            reserved_query(&totals, &["q1".into()]).as_deref(),
            Some("q1"),
            "an owner keeps the slices until it ends"
        );
        let idle: HashMap<String, (usize, usize)> = [("q4".to_string(), (0, 50))].into();
        assert_eq!(reserved_query(&idle, &[]), None);
    }
}
