//! [`QueryControl`]: a statement's handle on its Ballista jobs, for cancelling them, and
//! [`CancelOnDrop`], which cancels them when a client goes away.

use std::sync::Arc;

use datafusion::error::DataFusionError;
use parking_lot::Mutex;

use super::Scheduler;
use crate::queries::{ErrorCode, Query, QueryFailure};

/// A statement's handle on its Ballista job: cancelling it (a client's `CancelFlightInfo`, or a
/// client that went away) cancels the job on the cluster, before or after it was submitted;
/// killing it (a limit, `kill_query`) does so too, with the reason its result reports.
#[derive(Debug)]
pub struct QueryControl {
    state: Mutex<ControlState>,
    cancelled: tokio::sync::watch::Sender<bool>,
}

#[derive(Debug, Default)]
struct ControlState {
    jobs: Vec<String>,
    finished: bool,
    reason: Option<QueryFailure>,
}

impl Default for QueryControl {
    fn default() -> Self {
        Self {
            state: Mutex::new(ControlState::default()),
            cancelled: tokio::sync::watch::Sender::new(false),
        }
    }
}

impl QueryControl {
    /// A receiver that changes when the statement is cancelled.
    pub(super) fn on_cancel(&self) -> tokio::sync::watch::Receiver<bool> {
        self.cancelled.subscribe()
    }

    /// Whether [`QueryControl::cancel`] or [`QueryControl::kill`] was called.
    pub fn is_cancelled(&self) -> bool {
        *self.cancelled.borrow()
    }

    /// Why the statement was stopped: the kill's reason, else `USER_CANCELED`.
    pub fn reason(&self) -> QueryFailure {
        self.state
            .lock()
            .reason
            .clone()
            .unwrap_or_else(|| QueryFailure::new(ErrorCode::UserCanceled, "Query was cancelled"))
    }

    /// [`QueryControl::reason`] as the error the statement returns.
    pub fn cancelled_error(&self) -> DataFusionError {
        self.reason().into_error()
    }

    /// Waits until the statement is cancelled or killed; why.
    pub async fn stopped(&self) -> QueryFailure {
        let mut cancelled = self.on_cancel();
        // The sender lives as long as `self`: waiting cannot fail while it is borrowed.
        let _ = cancelled.wait_for(|c| *c).await;
        self.reason()
    }

    /// The statement's jobs so far (`INSERT` and `CREATE TABLE AS` run one, `EXPLAIN ANALYZE`
    /// one).
    pub fn jobs(&self) -> Vec<String> {
        self.state.lock().jobs.clone()
    }

    /// The statement ended (its jobs finished or failed): cancelling it now does nothing.
    pub fn finish(&self) {
        self.state.lock().finished = true;
    }

    /// Cancels the statement: its running job is cancelled on the cluster and a job not yet
    /// submitted never starts. Returns whether anything was still running.
    pub fn cancel(&self, scheduler: &Scheduler) -> bool {
        let jobs = {
            let state = self.state.lock();
            if state.finished {
                return false;
            }
            // Flagged under the lock: a job submitted before is in `jobs`, one submitted after
            // sees the flag in `submitted`. No job falls between the two.
            self.cancelled.send_replace(true);
            state.jobs.clone()
        };
        for job in jobs {
            cancel_job(scheduler, job);
        }
        true
    }

    /// Stops the statement for `reason`, whatever it is doing: its jobs are cancelled if still
    /// running, a job not yet submitted never starts, and a result being streamed ends with
    /// the reason as its error. The first reason given is kept.
    pub fn kill(&self, scheduler: &Scheduler, reason: QueryFailure) {
        let jobs = {
            let mut state = self.state.lock();
            state.reason.get_or_insert(reason);
            self.cancelled.send_replace(true);
            if state.finished {
                vec![]
            } else {
                state.jobs.clone()
            }
        };
        for job in jobs {
            cancel_job(scheduler, job);
        }
    }

    /// Records a submitted job; cancels it at once if the statement was cancelled meanwhile.
    pub(super) fn submitted(&self, scheduler: &Scheduler, job: &str) {
        let cancelled = {
            let mut state = self.state.lock();
            state.jobs.push(job.to_string());
            self.is_cancelled()
        };
        if cancelled {
            cancel_job(scheduler, job.to_string());
        }
    }
}

fn cancel_job(scheduler: &Scheduler, job: String) {
    let scheduler = scheduler.clone();
    tokio::spawn(async move {
        tracing::info!(%job, "cancelling query");
        if let Err(e) = scheduler.cancel_job(job.clone()).await {
            tracing::warn!(%job, "cancelling failed: {e}");
        }
    });
}

/// A running statement, which is cancelled if dropped before it finished: the client went
/// away. A query's result stream holds it until its last row (its job runs while it streams).
pub struct CancelOnDrop {
    query: Arc<Query>,
    scheduler: Scheduler,
}

impl CancelOnDrop {
    pub fn new(query: Arc<Query>, scheduler: &Scheduler) -> Self {
        Self {
            query,
            scheduler: scheduler.clone(),
        }
    }

    /// The statement's jobs ended: dropping it no longer cancels anything.
    pub fn finish(&self) {
        self.query.control.finish();
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.query.control.cancel(&self.scheduler) {
            self.query.fail_with(QueryFailure::new(
                ErrorCode::UserCanceled,
                "Query was cancelled: the client went away",
            ));
            tracing::info!(query = %self.query.id, jobs = ?self.query.control.jobs(), "client went away: statement cancelled");
        }
    }
}
