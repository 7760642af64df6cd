//! The handles a Flight SQL client holds between calls: [`Statements`] (from `GetFlightInfo`
//! to `DoGet`) and [`PreparedStatements`] (from create to close). Each handle belongs to the
//! session that made it ([`Owner`]): another caller gets "unknown handle", exactly as for a
//! handle that never existed. Both maps are bounded and forget unused handles.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use parking_lot::Mutex;
use tonic::Status;

use crate::engine::{Planned, PreparedPlan};
use crate::queries::{ErrorCode, Query, QueryFailure};
use crate::session::Session;

/// The session key of the caller that made a handle (`None`: an anonymous caller without a
/// session, possible only when passwords are off).
pub type Owner = Option<String>;

/// Statements not fetched within this time are dropped.
const STATEMENT_TTL: Duration = Duration::from_secs(600);
/// Prepared statements unused for this long are closed.
const PREPARED_TTL: Duration = Duration::from_secs(3600);
/// The most open handles of one kind a session may hold, and all sessions together.
const PER_OWNER: usize = 1_000;
const IN_ALL: usize = 20_000;

/// What `DoGet` will return for a statement.
pub enum Outcome {
    /// A query, run when the client fetches it.
    Planned(Box<Planned>),
    /// A statement with side effects, already run at `GetFlightInfo`: its result rows.
    Done {
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
    },
}

struct Statement {
    owner: Owner,
    session: Arc<Session>,
    /// Taken by `DoGet`; `None` while it runs.
    outcome: Option<Outcome>,
    query: Arc<Query>,
    created: Instant,
}

/// A statement `DoGet` took: run it (or send its rows) as `query`.
pub struct Taken {
    pub session: Arc<Session>,
    pub outcome: Outcome,
    pub query: Arc<Query>,
}

/// Statements from `GetFlightInfo` until their `DoGet` finished.
#[derive(Default)]
pub struct Statements {
    map: Mutex<HashMap<String, Statement>>,
}

impl Statements {
    /// Keeps a statement for its `DoGet`; its handle. A query never fetched within
    /// [`STATEMENT_TTL`] is dropped and fails as `ABANDONED_QUERY`.
    pub fn insert(
        &self,
        owner: Owner,
        session: Arc<Session>,
        outcome: Outcome,
        query: Arc<Query>,
    ) -> Result<String, Status> {
        let mut map = self.map.lock();
        map.retain(|_, s| {
            let keep = s.outcome.is_none() || s.created.elapsed() < STATEMENT_TTL;
            if !keep {
                s.query.fail_with(QueryFailure::new(
                    ErrorCode::AbandonedQuery,
                    format!(
                        "Query was abandoned: its result was not fetched within {}s",
                        STATEMENT_TTL.as_secs()
                    ),
                ));
            }
            keep
        });
        if let Err(status) = check_bounds(map.values().map(|s| &s.owner), &owner, "statements") {
            query.fail_with(QueryFailure::new(
                ErrorCode::QueryRejected,
                status.message().to_string(),
            ));
            return Err(status);
        }
        let handle = uuid::Uuid::new_v4().to_string();
        map.insert(
            handle.clone(),
            Statement {
                owner,
                session,
                outcome: Some(outcome),
                query,
                created: Instant::now(),
            },
        );
        Ok(handle)
    }

    /// The statement behind `handle`, for its one `DoGet` by its owner.
    pub fn take(&self, handle: &str, caller: &Owner) -> Result<Taken, Status> {
        let mut map = self.map.lock();
        let taken = map
            .get_mut(handle)
            .filter(|s| &s.owner == caller)
            .and_then(|s| {
                Some(Taken {
                    session: s.session.clone(),
                    outcome: s.outcome.take()?,
                    query: s.query.clone(),
                })
            });
        taken.ok_or_else(|| {
            Status::not_found(
                "statement handle is unknown, cancelled or already fetched; run the statement again",
            )
        })
    }

    /// Forgets a statement whose `DoGet` ended.
    pub fn remove(&self, handle: &str) {
        self.map.lock().remove(handle);
    }

    /// Cancels the caller's statement `handle`: one not fetched yet is dropped, a running one's
    /// job cancelled. Whether it was still pending or running.
    pub fn cancel(&self, handle: &str, caller: &Owner, scheduler: &crate::job::Scheduler) -> bool {
        let mut map = self.map.lock();
        let Some(statement) = map.get(handle).filter(|s| &s.owner == caller) else {
            return false;
        };
        if statement.outcome.is_some() {
            if let Some(statement) = map.remove(handle) {
                statement.query.fail_with(QueryFailure::new(
                    ErrorCode::UserCanceled,
                    "Query was cancelled before its result was fetched",
                ));
            }
            return true;
        }
        let query = statement.query.clone();
        drop(map);
        query.control.cancel(scheduler)
    }
}

/// A prepared statement: its plan and the last bound parameter rows.
pub struct Prepared {
    pub owner: Owner,
    pub session: Arc<Session>,
    pub plan: Arc<PreparedPlan>,
    pub bound: Option<Vec<Vec<ScalarValue>>>,
    last_used: Instant,
}

/// Prepared statements from create to close (or until unused for an hour).
#[derive(Default)]
pub struct PreparedStatements {
    map: Mutex<HashMap<String, Prepared>>,
}

impl PreparedStatements {
    /// Keeps a prepared statement; its handle.
    pub fn insert(
        &self,
        owner: Owner,
        session: Arc<Session>,
        plan: PreparedPlan,
    ) -> Result<String, Status> {
        let mut map = self.map.lock();
        map.retain(|_, p| p.last_used.elapsed() < PREPARED_TTL);
        check_bounds(
            map.values().map(|p| &p.owner),
            &owner,
            "prepared statements",
        )?;
        let handle = uuid::Uuid::new_v4().to_string();
        map.insert(
            handle.clone(),
            Prepared {
                owner,
                session,
                plan: Arc::new(plan),
                bound: None,
                last_used: Instant::now(),
            },
        );
        Ok(handle)
    }

    /// Runs `f` on the caller's prepared statement `handle`.
    pub fn with<T>(
        &self,
        handle: &[u8],
        caller: &Owner,
        f: impl FnOnce(&mut Prepared) -> Result<T, Status>,
    ) -> Result<T, Status> {
        let mut map = self.map.lock();
        let prepared = map
            .get_mut(String::from_utf8_lossy(handle).as_ref())
            .filter(|p| &p.owner == caller)
            .ok_or_else(|| {
                Status::not_found("unknown prepared statement (closed, expired or never created)")
            })?;
        prepared.last_used = Instant::now();
        f(prepared)
    }

    /// Closes the caller's prepared statement `handle` (a no-op for anyone else's).
    pub fn close(&self, handle: &[u8], caller: &Owner) {
        let mut map = self.map.lock();
        let key = String::from_utf8_lossy(handle);
        if map.get(key.as_ref()).is_some_and(|p| &p.owner == caller) {
            map.remove(key.as_ref());
        }
    }
}

/// Refuses a new handle when its owner, or everyone together, holds too many.
fn check_bounds<'a>(
    owners: impl Iterator<Item = &'a Owner>,
    owner: &Owner,
    what: &str,
) -> Result<(), Status> {
    let (mut all, mut mine) = (0, 0);
    for o in owners {
        all += 1;
        mine += usize::from(o == owner);
    }
    if mine >= PER_OWNER {
        return Err(Status::resource_exhausted(format!(
            "this session has {mine} open {what}: fetch or close some first"
        )));
    }
    if all >= IN_ALL {
        return Err(Status::resource_exhausted(format!(
            "the coordinator holds {all} open {what}; try again later"
        )));
    }
    Ok(())
}

/// Binds parameter rows to a prepared statement, each with one value per parameter.
pub(super) fn bind(statement: &mut Prepared, rows: Vec<Vec<ScalarValue>>) -> Result<(), Status> {
    let parameters = statement.plan.parameters().len();
    if let Some(row) = rows.iter().find(|r| r.len() != parameters) {
        return Err(Status::invalid_argument(format!(
            "the statement has {parameters} parameters but {} values were bound",
            row.len()
        )));
    }
    statement.bound = Some(rows);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::Schema;

    fn done() -> Outcome {
        Outcome::Done {
            schema: Arc::new(Schema::empty()),
            batches: vec![],
        }
    }

    fn session() -> Arc<Session> {
        crate::session::Sessions::default().get(None, datafusion::prelude::SessionConfig::new)
    }

    #[test]
    fn a_statement_is_fetched_once_and_only_by_its_owner() {
        let statements = Statements::default();
        let ann = Some("ann/1".to_string());
        let handle = statements
            .insert(
                ann.clone(),
                session(),
                done(),
                Query::detached("ann", "SELECT 1"),
            )
            .expect("insert");
        let bob = Some("bob/2".to_string());
        assert!(statements.take(&handle, &bob).is_err());
        assert!(statements.take(&handle, &None).is_err());
        assert!(statements.take(&handle, &ann).is_ok());
        assert!(statements.take(&handle, &ann).is_err(), "fetched once");
    }

    #[test]
    fn prepared_statements_belong_to_their_owner_and_are_bounded() {
        let prepared = PreparedStatements::default();
        let ann = Some("ann/1".to_string());
        let bob = Some("bob/2".to_string());
        let plan = || PreparedPlan::unplanned("SELECT 1");
        let handle = prepared
            .insert(ann.clone(), session(), plan())
            .expect("insert");
        let sql =
            |who: &Owner| prepared.with(handle.as_bytes(), who, |p| Ok(p.plan.sql().to_string()));
        assert!(sql(&bob).is_err());
        prepared.close(handle.as_bytes(), &bob);
        assert_eq!(sql(&ann).expect("still open"), "SELECT 1");
        prepared.close(handle.as_bytes(), &ann);
        assert!(sql(&ann).is_err());

        for _ in 0..PER_OWNER {
            prepared
                .insert(bob.clone(), session(), plan())
                .expect("within the bound");
        }
        let err = prepared
            .insert(bob.clone(), session(), plan())
            .expect_err("over the bound");
        assert_eq!(err.code(), tonic::Code::ResourceExhausted);
        assert!(
            prepared.insert(ann, session(), plan()).is_ok(),
            "another session is not affected"
        );
    }
}
