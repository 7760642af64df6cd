//! The workaround for a Ballista 53 gap in push scheduling: lost workers' tasks are never
//! offered again. Kept in this one place; `integration-tests/tests/worker_failure.rs` fails
//! without it (the query hangs).

use ballista_core::serde::protobuf::UpdateTaskStatusParams;
use ballista_core::serde::protobuf::scheduler_grpc_server::SchedulerGrpc;

use super::{Scheduler, live_executors};

/// Keeps tasks moving after a worker is lost.
///
/// Ballista 53 resets the tasks of a lost worker to pending but does not ask for task slots
/// again (no `ReviveOffers` after `ExecutorLost`), so with push scheduling they would wait
/// forever. While jobs run, this nudges the scheduler every second with an empty task-status
/// update from a live worker, which Ballista answers by offering free slots to pending tasks.
pub fn spawn_revive_watchdog(scheduler: Scheduler) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tick.tick().await;
            if scheduler.running_job_number() == 0 {
                continue;
            }
            let Some(live) = live_executors(&scheduler).await.into_iter().next() else {
                continue;
            };
            let nudge = tonic::Request::new(UpdateTaskStatusParams {
                executor_id: live.id.clone(),
                task_status: vec![],
            });
            if let Err(e) = scheduler.update_task_status(nudge).await {
                tracing::debug!("reviving task offers failed: {e}");
            }
        }
    })
}
