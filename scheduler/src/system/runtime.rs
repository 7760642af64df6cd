//! `system.runtime`: `nodes`, `queries` and `tasks`, with Trino's column names, read from the
//! coordinator's own state ([`Runtime`]) each time a query scans them.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use ballista_core::serde::protobuf::executor_status;
use ballista_scheduler::cluster::JobState;
use braid_connector_spi::{ComputedTable, RowSource};
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Int64Array, IntervalMonthDayNanoArray, ListBuilder, RecordBatch,
    StringArray, StringBuilder, TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{
    DataType, Field, IntervalMonthDayNano, IntervalUnit, Schema, SchemaRef, TimeUnit,
};
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider};
use datafusion::error::Result;

use crate::job::{Scheduler, job_tasks, job_times};
use crate::queries::{Queries, Query};

/// What the `system.runtime` tables read.
pub struct Runtime {
    pub queries: Arc<Queries>,
    pub scheduler: Scheduler,
    /// Ballista's job store: the execution graphs of finished jobs.
    pub job_state: Arc<dyn JobState>,
    /// The coordinator's own row in `nodes`: its id and Flight SQL address.
    pub coordinator_id: String,
    pub coordinator_uri: String,
}

impl Runtime {
    /// The rows of `system.runtime.<table>` (`nodes`, `queries` or `tasks`) now, as a scan of
    /// the table reads them; `None` for another name.
    pub async fn table(self: &Arc<Self>, name: &str) -> Result<Option<RecordBatch>> {
        let kind = match name {
            "nodes" => Kind::Nodes,
            "queries" => Kind::Queries,
            "tasks" => Kind::Tasks,
            _ => return Ok(None),
        };
        let table = RuntimeTable {
            kind,
            schema: kind.schema(),
            runtime: self.clone(),
        };
        Ok(table.rows().await?.pop())
    }

    /// The rows of `system.runtime.tasks` of one query: only its jobs are read.
    pub async fn query_tasks(&self, query_id: &str) -> Result<RecordBatch> {
        let columns = tasks(self, Some(query_id)).await;
        Ok(RecordBatch::try_new(Kind::Tasks.schema(), columns)?)
    }
}

/// The `runtime` schema.
pub fn schema(runtime: Arc<Runtime>) -> Arc<dyn SchemaProvider> {
    let schema = MemorySchemaProvider::new();
    for kind in [Kind::Nodes, Kind::Queries, Kind::Tasks] {
        let table = RuntimeTable {
            kind,
            schema: kind.schema(),
            runtime: runtime.clone(),
        };
        // Fresh names in a fresh schema: registering cannot clash.
        let _ = schema.register_table(kind.name().to_string(), ComputedTable::provider(table));
    }
    Arc::new(schema)
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Nodes,
    Queries,
    Tasks,
}

fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

fn interval() -> DataType {
    DataType::Interval(IntervalUnit::MonthDayNano)
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Nodes => "nodes",
            Kind::Queries => "queries",
            Kind::Tasks => "tasks",
        }
    }

    fn schema(self) -> SchemaRef {
        let text = |name: &str, nullable| Field::new(name, DataType::Utf8, nullable);
        let int = |name: &str, nullable| Field::new(name, DataType::Int64, nullable);
        let time = |name: &str, nullable| Field::new(name, timestamp(), nullable);
        let fields = match self {
            Kind::Nodes => vec![
                text("node_id", false),
                text("http_uri", false),
                text("node_version", false),
                Field::new("coordinator", DataType::Boolean, false),
                text("state", false),
                int("processor_count", true),
                int("task_slots", true),
                int("heap_used", true),
                int("heap_available", true),
                time("last_heartbeat", true),
            ],
            Kind::Queries => vec![
                text("query_id", false),
                text("state", false),
                text("user", false),
                text("source", true),
                text("query", false),
                Field::new(
                    "resource_group_id",
                    DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
                    true,
                ),
                int("queued_time_ms", false),
                int("analysis_time_ms", true),
                int("planning_time_ms", true),
                time("created", false),
                time("started", true),
                time("last_heartbeat", false),
                time("end", true),
                text("error_type", true),
                text("error_code", true),
                text("error_message", true),
                int("elapsed_time_millis", false),
                int("queued_time_millis", false),
                Field::new("total_cpu_time", interval(), false),
                Field::new("total_scheduled_time", interval(), false),
                int("memory_reservation", true),
                int("total_memory_reservation", true),
                int("peak_memory_reservation", true),
                int("output_rows", false),
                int("output_bytes", false),
            ],
            Kind::Tasks => vec![
                text("node_id", true),
                text("task_id", false),
                int("stage_id", false),
                int("partition_id", false),
                text("query_id", false),
                text("job_id", false),
                text("state", false),
                int("input_rows", true),
                int("output_rows", true),
                int("output_bytes", true),
                time("start", true),
                time("end", true),
                int("elapsed_time_millis", true),
            ],
        };
        Arc::new(Schema::new(fields))
    }
}

/// One `system.runtime` table: its rows are read from the coordinator at each scan.
struct RuntimeTable {
    kind: Kind,
    schema: SchemaRef,
    runtime: Arc<Runtime>,
}

impl std::fmt::Debug for RuntimeTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "system.runtime.{}", self.kind.name())
    }
}

#[async_trait]
impl RowSource for RuntimeTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    async fn rows(&self) -> Result<Vec<RecordBatch>> {
        let columns = match self.kind {
            Kind::Nodes => nodes(&self.runtime).await,
            Kind::Queries => queries(&self.runtime).await,
            Kind::Tasks => tasks(&self.runtime, None).await,
        };
        Ok(vec![RecordBatch::try_new(self.schema.clone(), columns)?])
    }
}

fn millis(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn strings<I: IntoIterator<Item = Option<String>>>(values: I) -> ArrayRef {
    Arc::new(StringArray::from_iter(values))
}

fn ints<I: IntoIterator<Item = Option<i64>>>(values: I) -> ArrayRef {
    Arc::new(Int64Array::from_iter(values))
}

fn times<I: IntoIterator<Item = Option<i64>>>(values: I) -> ArrayRef {
    Arc::new(TimestampMillisecondArray::from_iter(values).with_timezone("UTC"))
}

fn intervals<I: IntoIterator<Item = Duration>>(values: I) -> ArrayRef {
    Arc::new(IntervalMonthDayNanoArray::from_iter_values(
        values.into_iter().map(|d| {
            IntervalMonthDayNano::new(0, 0, i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        }),
    ))
}

/// The coordinator, then every worker the scheduler still knows (a worker without a heartbeat
/// for the worker timeout is dropped, so a dead worker leaves the table).
async fn nodes(runtime: &Runtime) -> Vec<ArrayRef> {
    struct Node {
        id: String,
        uri: String,
        coordinator: bool,
        state: &'static str,
        processors: Option<i64>,
        slots: Option<i64>,
        /// The worker pool's reserved bytes and size.
        heap: Option<(i64, i64)>,
        heartbeat: Option<i64>,
    }
    let mut rows = vec![Node {
        id: runtime.coordinator_id.clone(),
        uri: runtime.coordinator_uri.clone(),
        coordinator: true,
        state: "active",
        processors: std::thread::available_parallelism()
            .ok()
            .map(|n| n.get() as i64),
        slots: None,
        heap: None,
        heartbeat: Some(millis(SystemTime::now())),
    }];
    let manager = &runtime.scheduler.state.executor_manager;
    for (meta, _, _) in manager.get_executors_state().await.unwrap_or_default() {
        let heartbeat = manager.get_executor_hearbeat(&meta.id);
        let state = match heartbeat
            .as_ref()
            .and_then(|h| h.status.as_ref())
            .and_then(|s| s.status.as_ref())
        {
            Some(executor_status::Status::Active(_)) => "active",
            Some(executor_status::Status::Terminating(_)) => "shutting_down",
            _ => continue,
        };
        let reported = runtime.queries.memory().node(&meta.id).map(|n| n.status);
        let int = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        rows.push(Node {
            uri: format!("http://{}:{}", meta.host, meta.port),
            id: meta.id,
            coordinator: false,
            state,
            processors: reported.as_ref().map(|r| int(r.processor_count)),
            heap: reported
                .as_ref()
                .map(|r| (int(r.memory.reserved), int(r.memory.limit))),
            slots: Some(i64::from(meta.specification.task_slots)),
            heartbeat: heartbeat.map(|h| i64::try_from(h.timestamp).unwrap_or(0) * 1000),
        });
    }
    let version = env!("CARGO_PKG_VERSION");
    vec![
        strings(rows.iter().map(|n| Some(n.id.clone()))),
        strings(rows.iter().map(|n| Some(n.uri.clone()))),
        strings(rows.iter().map(|_| Some(version.to_string()))),
        Arc::new(BooleanArray::from_iter(
            rows.iter().map(|n| Some(n.coordinator)),
        )),
        strings(rows.iter().map(|n| Some(n.state.to_string()))),
        ints(rows.iter().map(|n| n.processors)),
        ints(rows.iter().map(|n| n.slots)),
        ints(rows.iter().map(|n| n.heap.map(|(used, _)| used))),
        ints(rows.iter().map(|n| n.heap.map(|(_, limit)| limit))),
        times(rows.iter().map(|n| n.heartbeat)),
    ]
}

/// A query's compute and scheduled time: its jobs' totals, kept once it ended.
async fn query_times(runtime: &Runtime, query: &Query) -> (Duration, Duration) {
    if let Some(times) = query.status().times {
        return times;
    }
    let mut total = (Duration::ZERO, Duration::ZERO);
    for job in query.control.jobs() {
        let (compute, scheduled) = job_times(&runtime.scheduler, &job).await;
        total.0 += compute;
        total.1 += scheduled;
    }
    query.keep_times(total);
    total
}

async fn queries(runtime: &Runtime) -> Vec<ArrayRef> {
    let queries = runtime.queries.list();
    let now = SystemTime::now();
    let mut statuses = Vec::with_capacity(queries.len());
    for query in &queries {
        let times = query_times(runtime, query).await;
        statuses.push((query.status(), times));
    }
    let since = |from: SystemTime, to: Option<SystemTime>| {
        to.unwrap_or(now).duration_since(from).unwrap_or_default()
    };
    let queued = |s: &crate::queries::QueryStatus| {
        s.planned.map_or(Duration::ZERO, |planned| {
            since(planned, s.started.or(s.ended))
        })
    };
    let mut groups = ListBuilder::new(StringBuilder::new());
    for (status, _) in &statuses {
        match &status.resource_group {
            Some(parts) => {
                for part in parts {
                    groups.values().append_value(part);
                }
                groups.append(true);
            }
            None => groups.append(false),
        }
    }
    vec![
        strings(queries.iter().map(|q| Some(q.id.clone()))),
        strings(
            statuses
                .iter()
                .map(|(s, _)| Some(s.state.name().to_string())),
        ),
        strings(queries.iter().map(|q| Some(q.user.clone()))),
        strings(queries.iter().map(|q| q.source.clone())),
        strings(queries.iter().map(|q| Some(q.sql.clone()))),
        Arc::new(groups.finish()),
        ints(statuses.iter().map(|(s, _)| Some(duration_ms(queued(s))))),
        ints(statuses.iter().map(|(s, _)| {
            s.planned
                .map(|planned| duration_ms(since(s.created, Some(planned))))
        })),
        ints(statuses.iter().map(|(s, _)| {
            let (started, submitted) = (s.started?, s.submitted?);
            Some(duration_ms(since(started, Some(submitted))))
        })),
        times(statuses.iter().map(|(s, _)| Some(millis(s.created)))),
        times(statuses.iter().map(|(s, _)| s.started.map(millis))),
        times(statuses.iter().map(|(s, _)| Some(millis(s.last_heartbeat)))),
        times(statuses.iter().map(|(s, _)| s.ended.map(millis))),
        strings(
            statuses
                .iter()
                .map(|(s, _)| s.failure.as_ref().map(|f| f.code.error_type().to_string())),
        ),
        strings(
            statuses
                .iter()
                .map(|(s, _)| s.failure.as_ref().map(|f| f.code.name().to_string())),
        ),
        strings(
            statuses
                .iter()
                .map(|(s, _)| s.failure.as_ref().map(|f| f.message.clone())),
        ),
        ints(
            statuses
                .iter()
                .map(|(s, _)| Some(duration_ms(since(s.created, s.ended)))),
        ),
        ints(statuses.iter().map(|(s, _)| Some(duration_ms(queued(s))))),
        intervals(statuses.iter().map(|(_, (compute, _))| *compute)),
        intervals(statuses.iter().map(|(_, (_, scheduled))| *scheduled)),
        // Braid has no system memory apart from the user memory: both are the same figure.
        ints(
            statuses
                .iter()
                .map(|(s, _)| Some(s.memory_reservation as i64)),
        ),
        ints(
            statuses
                .iter()
                .map(|(s, _)| Some(s.memory_reservation as i64)),
        ),
        ints(
            statuses
                .iter()
                .map(|(s, _)| Some(s.peak_memory_reservation as i64)),
        ),
        ints(statuses.iter().map(|(s, _)| Some(s.output_rows as i64))),
        ints(statuses.iter().map(|(s, _)| Some(s.output_bytes as i64))),
    ]
}

/// The tasks of every kept query, or of the query `only`.
async fn tasks(runtime: &Runtime, only: Option<&str>) -> Vec<ArrayRef> {
    let mut rows = Vec::new();
    let queries = runtime.queries.list();
    for query in queries.iter().filter(|q| only.is_none_or(|id| q.id == id)) {
        for job in query.control.jobs() {
            for task in job_tasks(&runtime.scheduler, runtime.job_state.as_ref(), &job).await {
                rows.push((query.id.clone(), job.clone(), task));
            }
        }
    }
    vec![
        strings(rows.iter().map(|(_, _, t)| t.worker.clone())),
        strings(
            rows.iter()
                .map(|(_, job, t)| Some(format!("{job}.{}.{}", t.stage_id, t.partition_id))),
        ),
        ints(rows.iter().map(|(_, _, t)| Some(t.stage_id as i64))),
        ints(rows.iter().map(|(_, _, t)| Some(t.partition_id as i64))),
        strings(rows.iter().map(|(query, _, _)| Some(query.clone()))),
        strings(rows.iter().map(|(_, job, _)| Some(job.clone()))),
        strings(rows.iter().map(|(_, _, t)| Some(t.state.to_string()))),
        ints(rows.iter().map(|(_, _, t)| t.input_rows.map(|n| n as i64))),
        ints(rows.iter().map(|(_, _, t)| t.output_rows.map(|n| n as i64))),
        ints(
            rows.iter()
                .map(|(_, _, t)| t.output_bytes.map(|n| n as i64)),
        ),
        times(rows.iter().map(|(_, _, t)| t.started)),
        times(rows.iter().map(|(_, _, t)| t.ended)),
        ints(rows.iter().map(|(_, _, t)| {
            let end = t.ended.unwrap_or_else(|| millis(SystemTime::now()));
            t.started.map(|start| end - start)
        })),
    ]
}
