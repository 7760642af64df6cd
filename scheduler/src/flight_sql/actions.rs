//! Flight actions beyond Flight SQL's own: `CancelFlightInfo` (the standard cancel), and
//! Braid's `braid.progress` (the current statement of a session: queued, or its job) and `braid.workers` (the live
//! workers and their task slots), which the `braid` client uses.

use arrow_flight::sql::{Any, TicketStatementQuery};
use arrow_flight::{
    Action, CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus, FlightInfo,
};
use prost::Message;
use tonic::Status;

use super::BraidFlightSql;
use super::statements::Owner;
use crate::auth::Identity;
use crate::job::job_stages;
use crate::session::session_key;

/// The custom action that reports the running job of a session (body: the session id).
pub const PROGRESS_ACTION: &str = "braid.progress";

/// The custom action that reports the live workers and their task slots.
pub const WORKERS_ACTION: &str = "braid.workers";

/// The standard Flight action that cancels the query of a `FlightInfo`.
const CANCEL_FLIGHT_INFO_ACTION: &str = "CancelFlightInfo";

impl BraidFlightSql {
    /// Runs a custom action of the caller; its result body.
    pub(super) async fn custom_action(
        &self,
        identity: Option<&Identity>,
        caller: &Owner,
        action: Action,
    ) -> Result<bytes::Bytes, Status> {
        Ok(match action.r#type.as_str() {
            CANCEL_FLIGHT_INFO_ACTION => {
                let cancel = CancelFlightInfoRequest::decode(action.body).map_err(|e| {
                    Status::invalid_argument(format!("bad CancelFlightInfoRequest: {e}"))
                })?;
                let info = cancel.info.ok_or_else(|| {
                    Status::invalid_argument("CancelFlightInfo without a FlightInfo")
                })?;
                let status = if self.cancel_info(&info, caller)? {
                    CancelStatus::Cancelled
                } else {
                    CancelStatus::NotCancellable
                };
                CancelFlightInfoResult::new(status).encode_to_vec().into()
            }
            PROGRESS_ACTION => {
                let session_id = String::from_utf8_lossy(&action.body).to_string();
                self.progress(identity, &session_id)
                    .await
                    .to_string()
                    .into()
            }
            WORKERS_ACTION => {
                let (workers, task_slots) = self.engine.live_workers().await;
                serde_json::json!({ "workers": workers, "task_slots": task_slots })
                    .to_string()
                    .into()
            }
            other => {
                return Err(Status::invalid_argument(format!(
                    "unknown action '{other}'"
                )));
            }
        })
    }

    /// Cancels the caller's statement a `FlightInfo` describes; whether it was still running.
    pub(super) fn cancel_info(&self, info: &FlightInfo, caller: &Owner) -> Result<bool, Status> {
        let handle = info
            .endpoint
            .iter()
            .filter_map(|e| e.ticket.as_ref())
            .find_map(|t| {
                let any = Any::decode(t.ticket.clone()).ok()?;
                let ticket: TicketStatementQuery = any.unpack().ok()??;
                Some(String::from_utf8_lossy(&ticket.statement_handle).to_string())
            })
            .ok_or_else(|| Status::invalid_argument("the FlightInfo names no Braid statement"))?;
        Ok(self
            .statements
            .cancel(&handle, caller, self.engine.scheduler()))
    }

    /// The session's current statement: its query id and state, and while a job runs, the
    /// job's stages, tasks and rows.
    async fn progress(&self, identity: Option<&Identity>, session_id: &str) -> serde_json::Value {
        let query = session_key(identity, Some(session_id))
            .and_then(|key| self.sessions.find(&key))
            .and_then(|s| s.current_query());
        let Some(query) = query else {
            return serde_json::json!({});
        };
        let mut report = serde_json::json!({
            "query_id": query.id,
            "state": query.state().name(),
        });
        let Some(job) = query.control.jobs().last().cloned() else {
            return report;
        };
        let stages = job_stages(self.engine.scheduler(), &job).await;
        let done = |status: &str| status == "Successful";
        let tasks: Vec<_> = stages
            .iter()
            .flat_map(|s| s.tasks.iter().flatten())
            .collect();
        let job_report = serde_json::json!({
            "job_id": job,
            "stages_total": stages.len(),
            "stages_done": stages.iter().filter(|s| done(&s.stage_status)).count(),
            "tasks_total": tasks.len(),
            "tasks_done": tasks.iter().filter(|t| done(&t.status)).count(),
            "rows": stages.iter().map(|s| s.output_rows).max().unwrap_or(0),
        });
        if let (Some(report), serde_json::Value::Object(job)) = (report.as_object_mut(), job_report)
        {
            report.extend(job);
        }
        report
    }
}
