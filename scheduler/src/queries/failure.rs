//! Why a query failed, in Trino's terms: [`ErrorCode`] (the error name and its type) and
//! [`QueryFailure`], the error Braid raises itself (limits, queues, kills). Any other error is
//! classified from its DataFusion kind and wording by [`QueryFailure::classify`].

use std::fmt;

use braid_optimizer_rules::memory::parse_size;
use braid_optimizer_rules::properties::format_size;
use datafusion::error::DataFusionError;

use super::MemoryLimit;

/// Trino's error names that Braid reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    GenericUserError,
    SyntaxError,
    AbandonedQuery,
    UserCanceled,
    PermissionDenied,
    NotFound,
    NotSupported,
    CatalogNotFound,
    SchemaNotFound,
    TableNotFound,
    ColumnNotFound,
    TypeMismatch,
    InvalidSessionProperty,
    AdministrativelyKilled,
    QueryRejected,
    GenericInternalError,
    ExceededTimeLimit,
    ExceededLocalMemoryLimit,
    ExceededGlobalMemoryLimit,
    ExceededSpillLimit,
    QueryQueueFull,
    ServerShuttingDown,
}

impl ErrorCode {
    /// Trino's name: `EXCEEDED_TIME_LIMIT`.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::GenericUserError => "GENERIC_USER_ERROR",
            ErrorCode::SyntaxError => "SYNTAX_ERROR",
            ErrorCode::AbandonedQuery => "ABANDONED_QUERY",
            ErrorCode::UserCanceled => "USER_CANCELED",
            ErrorCode::PermissionDenied => "PERMISSION_DENIED",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::NotSupported => "NOT_SUPPORTED",
            ErrorCode::CatalogNotFound => "CATALOG_NOT_FOUND",
            ErrorCode::SchemaNotFound => "SCHEMA_NOT_FOUND",
            ErrorCode::TableNotFound => "TABLE_NOT_FOUND",
            ErrorCode::ColumnNotFound => "COLUMN_NOT_FOUND",
            ErrorCode::TypeMismatch => "TYPE_MISMATCH",
            ErrorCode::InvalidSessionProperty => "INVALID_SESSION_PROPERTY",
            ErrorCode::AdministrativelyKilled => "ADMINISTRATIVELY_KILLED",
            ErrorCode::QueryRejected => "QUERY_REJECTED",
            ErrorCode::GenericInternalError => "GENERIC_INTERNAL_ERROR",
            ErrorCode::ExceededTimeLimit => "EXCEEDED_TIME_LIMIT",
            ErrorCode::ExceededLocalMemoryLimit => "EXCEEDED_LOCAL_MEMORY_LIMIT",
            ErrorCode::ExceededGlobalMemoryLimit => "EXCEEDED_GLOBAL_MEMORY_LIMIT",
            ErrorCode::ExceededSpillLimit => "EXCEEDED_SPILL_LIMIT",
            ErrorCode::QueryQueueFull => "QUERY_QUEUE_FULL",
            ErrorCode::ServerShuttingDown => "SERVER_SHUTTING_DOWN",
        }
    }

    /// Trino's number for the error (`io.trino.spi.StandardErrorCode`), which its clients
    /// report beside the name.
    pub fn code(self) -> i32 {
        match self {
            ErrorCode::GenericUserError => 0,
            ErrorCode::SyntaxError => 1,
            ErrorCode::AbandonedQuery => 2,
            ErrorCode::UserCanceled => 3,
            ErrorCode::PermissionDenied => 4,
            ErrorCode::NotFound => 5,
            ErrorCode::NotSupported => 13,
            ErrorCode::InvalidSessionProperty => 14,
            ErrorCode::QueryRejected => 31,
            ErrorCode::AdministrativelyKilled => 38,
            ErrorCode::CatalogNotFound => 44,
            ErrorCode::SchemaNotFound => 45,
            ErrorCode::TableNotFound => 46,
            ErrorCode::ColumnNotFound => 47,
            ErrorCode::TypeMismatch => 58,
            ErrorCode::GenericInternalError => 65536,
            ErrorCode::ServerShuttingDown => 65545,
            ErrorCode::ExceededGlobalMemoryLimit => 131073,
            ErrorCode::QueryQueueFull => 131074,
            ErrorCode::ExceededTimeLimit => 131075,
            ErrorCode::ExceededSpillLimit => 131078,
            ErrorCode::ExceededLocalMemoryLimit => 131079,
        }
    }

    /// Trino's error type: `USER_ERROR`, `INTERNAL_ERROR` or `INSUFFICIENT_RESOURCES`.
    pub fn error_type(self) -> &'static str {
        match self {
            ErrorCode::GenericInternalError | ErrorCode::ServerShuttingDown => "INTERNAL_ERROR",
            ErrorCode::ExceededTimeLimit
            | ErrorCode::ExceededLocalMemoryLimit
            | ErrorCode::ExceededGlobalMemoryLimit
            | ErrorCode::ExceededSpillLimit
            | ErrorCode::QueryQueueFull => "INSUFFICIENT_RESOURCES",
            _ => "USER_ERROR",
        }
    }
}

/// A query's failure: its Trino error code and the message the user reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryFailure {
    pub code: ErrorCode,
    pub message: String,
}

impl fmt::Display for QueryFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.name(), self.message)
    }
}

impl std::error::Error for QueryFailure {}

impl QueryFailure {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The failure as a DataFusion error (which [`QueryFailure::classify`] recognises).
    pub fn into_error(self) -> DataFusionError {
        DataFusionError::External(Box::new(self))
    }

    /// The [`QueryFailure`] inside `error`, however deeply wrapped.
    pub fn find(error: &DataFusionError) -> Option<&QueryFailure> {
        let mut current: &(dyn std::error::Error + 'static) = error;
        loop {
            if let Some(failure) = current.downcast_ref::<QueryFailure>() {
                return Some(failure);
            }
            current = current.source()?;
        }
    }

    /// The failure a DataFusion error stands for: a [`QueryFailure`] anywhere in its chain as
    /// it is, any other error by its kind and wording.
    pub fn classify(error: &DataFusionError) -> QueryFailure {
        if let Some(failure) = Self::find(error) {
            return failure.clone();
        }
        let message = error.to_string();
        let root = error.find_root();
        let code = match root {
            DataFusionError::SQL(..) => ErrorCode::SyntaxError,
            DataFusionError::SchemaError(..) => ErrorCode::ColumnNotFound,
            DataFusionError::NotImplemented(_) => ErrorCode::NotSupported,
            DataFusionError::ResourcesExhausted(_) => ErrorCode::ExceededLocalMemoryLimit,
            DataFusionError::Plan(text) => plan_error_code(text),
            DataFusionError::Configuration(_) => ErrorCode::InvalidSessionProperty,
            _ => ErrorCode::GenericInternalError,
        };
        QueryFailure::new(code, message)
    }
}

/// The failure a worker's task error stands for when a resource ran out: the query's memory
/// on a worker (`EXCEEDED_LOCAL_MEMORY_LIMIT`, naming `per_node`, the query's per-node limit,
/// when the worker's own words do not name it, as when spilling is off) or the spill space
/// (`EXCEEDED_SPILL_LIMIT`). `None` for any other error.
pub fn worker_failure(message: &str, per_node: Option<MemoryLimit>) -> Option<QueryFailure> {
    const SPILL_FULL: &str = "The used disk space during the spilling process";
    if let Some(at) = message.find(SPILL_FULL) {
        // DataFusion's advice names its own setting; the worker's is `max_spill_per_node`.
        let detail = first_line(&message[at..]);
        let detail = detail.split(" Try increasing").next().unwrap_or_default();
        return Some(QueryFailure::new(
            ErrorCode::ExceededSpillLimit,
            format!(
                "Query exceeded per-node spill limit [max-spill-per-node]: {} (raise \
                 max_spill_per_node in the workers' [executor] settings)",
                detail.trim_end_matches('.')
            ),
        ));
    }
    if let Some(at) = message.find("Query exceeded ") {
        return Some(QueryFailure::new(
            ErrorCode::ExceededLocalMemoryLimit,
            first_line(&message[at..]),
        ));
    }
    let at = message
        .find("Resources exhausted")
        .or_else(|| message.find("ResourcesExhausted"))?;
    let limit = match per_node {
        Some(limit) => format!(
            "per-node memory limit of {} [{}]",
            format_size(limit.bytes),
            limit.name
        ),
        None => "its memory on a worker [memory-limit]".to_string(),
    };
    Some(QueryFailure::new(
        ErrorCode::ExceededLocalMemoryLimit,
        format!("Query exceeded {limit}: {}", first_line(&message[at..])),
    ))
}

/// A worker's `EXCEEDED_LOCAL_MEMORY_LIMIT` for a query that held more on that worker alone
/// (the `Allocated:` of the worker's message) than its cluster-wide limit `cluster`, as
/// `EXCEEDED_GLOBAL_MEMORY_LIMIT`: the query crossed that limit first, even when the
/// coordinator's poll of the workers (once a second) had not seen it yet. Any other failure is
/// returned as it is.
pub fn over_cluster_limit(failure: QueryFailure, cluster: Option<MemoryLimit>) -> QueryFailure {
    let Some(limit) = cluster else {
        return failure;
    };
    if failure.code != ErrorCode::ExceededLocalMemoryLimit {
        return failure;
    }
    let held = failure
        .message
        .split_once("[Allocated: ")
        .and_then(|(_, rest)| rest.split(',').next())
        .and_then(|size| parse_size(size).ok());
    match held {
        Some(held) if held > limit.bytes => QueryFailure::new(
            ErrorCode::ExceededGlobalMemoryLimit,
            format!(
                "Query exceeded distributed user memory limit of {} [{}] (it held {} on one \
                 worker: {})",
                format_size(limit.bytes),
                limit.name,
                format_size(held),
                failure.message
            ),
        ),
        _ => failure,
    }
}

/// The first line of `text`, without the `")` and `"))` Ballista's nested debug formatting
/// ends it with.
fn first_line(text: &str) -> String {
    let mut line = text.lines().next().unwrap_or(text).trim_end();
    while let Some(inner) = line
        .strip_suffix("\"))")
        .or_else(|| line.strip_suffix("\")"))
    {
        line = inner;
    }
    line.strip_suffix('"').unwrap_or(line).to_string()
}

/// A planning error's code from the wording Braid's and DataFusion's planners use.
fn plan_error_code(text: &str) -> ErrorCode {
    if text.starts_with("Table '") && text.ends_with("does not exist") {
        ErrorCode::TableNotFound
    } else if text.starts_with("Schema '") && text.ends_with("does not exist") {
        ErrorCode::SchemaNotFound
    } else if text.starts_with("Catalog '") && text.ends_with("does not exist") {
        ErrorCode::CatalogNotFound
    } else if text.contains("No field named") {
        ErrorCode::ColumnNotFound
    } else if text.contains("Cannot coerce")
        || text.contains("Cannot infer common")
        || text.contains("type coercion")
        || text.contains("Invalid function arguments")
    {
        ErrorCode::TypeMismatch
    } else {
        ErrorCode::GenericUserError
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::common::plan_datafusion_err;

    #[test]
    fn failures_are_found_in_wrapped_errors_and_others_classified() {
        let failure = QueryFailure::new(ErrorCode::ExceededTimeLimit, "too slow");
        let wrapped =
            DataFusionError::Context("running".into(), Box::new(failure.clone().into_error()));
        assert_eq!(QueryFailure::classify(&wrapped), failure);
        assert_eq!(
            failure.to_string(),
            "EXCEEDED_TIME_LIMIT: too slow",
            "the name leads the message"
        );
        let missing = plan_datafusion_err!("Table 'tpch.tiny.nope' does not exist");
        assert_eq!(
            QueryFailure::classify(&missing).code,
            ErrorCode::TableNotFound
        );
        let pool = "query j1 failed: Task 3 failed: ExecutionError(\"Resources exhausted: \
            Query exceeded per-node memory limit of 64MB [query.max-memory-per-node] on worker \
            w1:50051 [Allocated: 63MB, Delta: 2MB, Operator: GroupedHashAggregateStream[1]]\"))\"))";
        let local = worker_failure(pool, None).expect("a memory failure");
        assert_eq!(local.code, ErrorCode::ExceededLocalMemoryLimit);
        assert!(
            local
                .message
                .starts_with("Query exceeded per-node memory limit of 64MB")
                && local.message.ends_with("GroupedHashAggregateStream[1]]"),
            "{}",
            local.message
        );
        let cluster = |bytes| {
            Some(MemoryLimit {
                bytes,
                name: "query_max_memory",
            })
        };
        let global = over_cluster_limit(local.clone(), cluster(8 << 20));
        assert_eq!(global.code, ErrorCode::ExceededGlobalMemoryLimit);
        assert!(
            global
                .message
                .starts_with("Query exceeded distributed user memory limit of 8MB [query_max_memory] (it held 63MB on one worker: Query exceeded per-node"),
            "{}",
            global.message
        );
        assert_eq!(over_cluster_limit(local.clone(), cluster(1 << 30)), local);
        assert_eq!(over_cluster_limit(local.clone(), None), local);
        let no_spill = "query j2 failed: Resources exhausted: Memory Exhausted while Sorting \
            (DiskManager is disabled)";
        let limit = MemoryLimit {
            bytes: 64 << 20,
            name: "query_max_memory_per_node",
        };
        let local = worker_failure(no_spill, Some(limit)).expect("a memory failure");
        assert_eq!(
            local.message,
            "Query exceeded per-node memory limit of 64MB [query_max_memory_per_node]: \
             Resources exhausted: Memory Exhausted while Sorting (DiskManager is disabled)"
        );
        let spill = worker_failure(
            "x: The used disk space during the spilling process has exceeded the allowable limit \
             of 1.0 MB. Try increasing the `max_temp_directory_size` in the disk manager.",
            None,
        )
        .expect("a spill failure");
        assert_eq!(spill.code.name(), "EXCEEDED_SPILL_LIMIT");
        assert!(
            spill.message.ends_with(
                "limit of 1.0 MB (raise max_spill_per_node in the workers' [executor] settings)"
            ),
            "{}",
            spill.message
        );
        assert!(worker_failure("query j3 failed: division by zero", None).is_none());
        let other = DataFusionError::Execution("boom".into());
        let classified = QueryFailure::classify(&other);
        assert_eq!(classified.code.error_type(), "INTERNAL_ERROR");
        assert!(classified.message.contains("boom"));
    }
}
