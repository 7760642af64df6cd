//! The JSON documents of Trino's client protocol: [`QueryResults`] (one per response of
//! `POST /v1/statement` and of each `nextUri`), its [`StatementStats`] and [`QueryError`].

use std::time::SystemTime;

use serde::Serialize;
use serde_json::value::RawValue;

use super::values::Column;
use crate::job::TaskCounts;
use crate::queries::{ErrorCode, QueryFailure, QueryState, QueryStatus};

/// One response of the protocol.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryResults {
    pub id: String,
    pub info_uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<Column>>,
    /// The page's rows: a JSON array of rows, each an array of values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Box<RawValue>>,
    pub stats: StatementStats,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<QueryError>,
    pub warnings: Vec<()>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_count: Option<i64>,
}

/// The progress of a statement, with Trino's field names. Splits are Braid's tasks.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatementStats {
    pub state: &'static str,
    pub queued: bool,
    pub scheduled: bool,
    pub progress_percentage: Option<f64>,
    pub running_percentage: Option<f64>,
    pub nodes: u64,
    pub total_splits: u64,
    pub queued_splits: u64,
    pub running_splits: u64,
    pub completed_splits: u64,
    pub cpu_time_millis: u64,
    pub wall_time_millis: u64,
    pub queued_time_millis: u64,
    pub elapsed_time_millis: u64,
    pub processed_rows: u64,
    pub processed_bytes: u64,
    pub physical_input_bytes: u64,
    pub peak_memory_bytes: u64,
    pub spilled_bytes: u64,
}

impl StatementStats {
    /// The stats of a statement whose coordinator status is `status`.
    pub fn of(status: &QueryStatus) -> Self {
        let millis = |from: Option<SystemTime>, to: Option<SystemTime>| match (from, to) {
            (Some(from), to) => to
                .unwrap_or_else(SystemTime::now)
                .duration_since(from)
                .map_or(0, |d| d.as_millis() as u64),
            _ => 0,
        };
        let (cpu, scheduled) = status.times.unwrap_or_default();
        let queued_until = status.started.or(status.ended);
        Self {
            state: status.state.name(),
            queued: status.state == QueryState::Queued,
            scheduled: status.started.is_some(),
            progress_percentage: status.state.is_done().then_some(100.0),
            running_percentage: None,
            nodes: 0,
            total_splits: 0,
            queued_splits: 0,
            running_splits: 0,
            completed_splits: 0,
            cpu_time_millis: cpu.as_millis() as u64,
            wall_time_millis: scheduled.as_millis() as u64,
            queued_time_millis: millis(status.planned, queued_until),
            elapsed_time_millis: millis(Some(status.created), status.ended),
            processed_rows: status.output_rows,
            processed_bytes: status.output_bytes,
            physical_input_bytes: 0,
            peak_memory_bytes: status.peak_memory_reservation,
            spilled_bytes: 0,
        }
    }

    /// Adds the statement's tasks as Trino's splits: their counts, the workers that ran them
    /// as nodes, and the share completed (and running) as the progress.
    pub fn with_tasks(mut self, tasks: TaskCounts) -> Self {
        let percent =
            |part: u64| (tasks.total > 0).then(|| 100.0 * part as f64 / tasks.total as f64);
        self.nodes = tasks.workers;
        self.total_splits = tasks.total;
        self.queued_splits = tasks.queued;
        self.running_splits = tasks.running;
        self.completed_splits = tasks.completed;
        if self.progress_percentage.is_none() {
            self.progress_percentage = percent(tasks.completed);
            self.running_percentage = percent(tasks.running);
        }
        self
    }

    /// The stats of a statement that finished: every split is complete.
    pub fn finished(mut self) -> Self {
        self.state = "FINISHED";
        self.progress_percentage = Some(100.0);
        self.running_percentage = Some(0.0);
        self.completed_splits = self.total_splits;
        self.queued_splits = 0;
        self.running_splits = 0;
        self
    }
}

/// Why a statement failed, as Trino reports it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryError {
    pub message: String,
    pub error_code: i32,
    pub error_name: &'static str,
    pub error_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_location: Option<ErrorLocation>,
    pub failure_info: FailureInfo,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ErrorLocation {
    pub line_number: u64,
    pub column_number: u64,
}

/// What Trino's clients print of an error besides its message.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureInfo {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub message: String,
    pub suppressed: Vec<()>,
    pub stack: Vec<()>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_location: Option<ErrorLocation>,
}

impl QueryError {
    pub fn of(failure: &QueryFailure) -> Self {
        // The message without the error name the coordinator's messages lead with.
        let message = failure
            .message
            .strip_prefix(&format!("{}: ", failure.code.name()))
            .unwrap_or(&failure.message)
            .to_string();
        let location = (failure.code == ErrorCode::SyntaxError)
            .then(|| error_location(&message))
            .flatten();
        Self {
            failure_info: FailureInfo {
                kind: "io.trino.spi.TrinoException",
                message: message.clone(),
                suppressed: vec![],
                stack: vec![],
                error_location: location,
            },
            message,
            error_code: failure.code.code(),
            error_name: failure.code.name(),
            error_type: failure.code.error_type(),
            error_location: location,
        }
    }
}

/// Where a syntax error is, from the parser's `... at Line: 1, Column: 8`.
fn error_location(message: &str) -> Option<ErrorLocation> {
    let at = message.rfind("Line: ")?;
    let rest = &message[at + "Line: ".len()..];
    let (line, rest) = rest.split_once(", Column: ")?;
    let column: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some(ErrorLocation {
        line_number: line.trim().parse().ok()?,
        column_number: column.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_say_where() {
        let failure = QueryFailure::new(
            ErrorCode::SyntaxError,
            "SQL error: ParserError(\"Expected: an expression, found: FROM at Line: 1, Column: 8\")",
        );
        let error = QueryError::of(&failure);
        assert_eq!(error.error_name, "SYNTAX_ERROR");
        assert_eq!(error.error_code, 1);
        assert_eq!(error.error_type, "USER_ERROR");
        assert_eq!(
            error.error_location,
            Some(ErrorLocation {
                line_number: 1,
                column_number: 8
            })
        );
        let missing = QueryError::of(&QueryFailure::new(
            ErrorCode::TableNotFound,
            "TABLE_NOT_FOUND: Table 'memory.default.nope' does not exist",
        ));
        assert_eq!(missing.error_code, 46);
        assert_eq!(
            missing.message,
            "Table 'memory.default.nope' does not exist"
        );
        assert!(missing.error_location.is_none());
    }
}
