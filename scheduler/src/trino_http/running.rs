//! [`HttpQuery`]: one statement of the Trino protocol, from `POST` to its last page. A task
//! plans and runs it and sends what it produces — the columns, pages of rows, the end — down a
//! channel of [`PAGES_AHEAD`] pages; each `GET` of a `nextUri` takes the next page from it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use braid_connector_spi::char_length;
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::LogicalPlan;
use futures::StreamExt;
use parking_lot::Mutex;
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::prepared::{ClientStatement, classify};
use super::protocol::{QueryError, QueryResults, StatementStats};
use super::session::{ClientSession, SessionChanges};
use super::values::{Column, write_rows};
use crate::engine::{Engine, Planned, written_rows};
use crate::job::{CancelOnDrop, Scheduler, TaskCounts, running_task_counts};
use crate::queries::{ErrorCode, Query, QueryFailure};
use crate::session::Session;
use crate::sql_text::number_placeholders;

/// The JSON text of rows a page holds at most (a single row larger than this is a page of its
/// own).
pub const PAGE_BYTES: usize = 1 << 20;

/// How many pages the statement's task may produce before its client fetched them.
const PAGES_AHEAD: usize = 2;

/// The longest a `GET` waits for rows before it answers without any.
const MAX_WAIT: Duration = Duration::from_secs(1);

/// What the statement's task sends.
enum Event {
    Columns(Vec<Column>),
    Rows(String),
    Finished {
        update_type: Option<String>,
        update_count: Option<i64>,
        changes: SessionChanges,
    },
    Failed(QueryFailure),
}

/// How a statement ended.
#[derive(Clone)]
enum Outcome {
    Finished {
        update_type: Option<String>,
        update_count: Option<i64>,
        changes: SessionChanges,
    },
    Failed(QueryFailure),
}

/// The pages side of a statement, one `GET` at a time.
struct Pages {
    events: mpsc::Receiver<Event>,
    /// The token the next new page answers.
    next_token: u64,
    /// The last page served and its token, for a client that asks again.
    last: Option<(u64, CachedPage)>,
    columns: Option<Vec<Column>>,
    outcome: Option<Outcome>,
}

#[derive(Clone)]
struct CachedPage {
    headers: HeaderMap,
    body: String,
}

impl CachedPage {
    fn response(&self) -> Response {
        let mut response = (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            self.body.clone(),
        )
            .into_response();
        response.headers_mut().extend(self.headers.clone());
        response
    }
}

/// One statement of the protocol.
pub struct HttpQuery {
    query: Arc<Query>,
    slug: String,
    pages: tokio::sync::Mutex<Pages>,
    last_seen: Mutex<Instant>,
    /// Whether its last page was served (or it was cancelled).
    ended: Mutex<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
    scheduler: Scheduler,
    /// The tasks of its job as last read while the job ran.
    tasks: Mutex<Option<TaskCounts>>,
}

impl HttpQuery {
    /// Registers `sql` of `client` with the coordinator's queries and starts its task.
    pub fn start(engine: Arc<Engine>, client: ClientSession, sql: String) -> Arc<Self> {
        let defaults = braid_catalogs::bootstrap::session_config();
        let (config, invalid) = match client.config(defaults.clone()) {
            Ok(config) => (config, None),
            Err(failure) => (defaults.clone(), Some(failure)),
        };
        let session = Arc::new(Session::new(uuid::Uuid::new_v4().to_string(), config));
        let query = engine
            .queries()
            .begin(&client.submitter(), &session.config(), &sql);
        session.set_current_query(query.clone());
        let (sender, events) = mpsc::channel(PAGES_AHEAD);
        let this = Arc::new(Self {
            query: query.clone(),
            slug: uuid::Uuid::new_v4().simple().to_string(),
            pages: tokio::sync::Mutex::new(Pages {
                events,
                next_token: 1,
                last: None,
                columns: None,
                outcome: None,
            }),
            last_seen: Mutex::new(Instant::now()),
            ended: Mutex::new(false),
            task: Mutex::new(None),
            scheduler: engine.scheduler().clone(),
            tasks: Mutex::new(None),
        });
        let task = tokio::spawn(async move {
            let run = match invalid {
                Some(failure) => Err(failure),
                None => {
                    let statement = Statement {
                        engine: &engine,
                        client: &client,
                        session: &session,
                        query: &query,
                        events: &sender,
                        defaults: &defaults,
                    };
                    statement.run(&sql).await
                }
            };
            if let Err(failure) = run {
                query.fail_with(failure.clone());
                let _ = sender.send(Event::Failed(failure)).await;
            }
        });
        *this.task.lock() = Some(task);
        this
    }

    pub fn id(&self) -> &str {
        &self.query.id
    }

    pub fn user(&self) -> &str {
        &self.query.user
    }

    pub fn slug(&self) -> &str {
        &self.slug
    }

    /// How long since its client last asked for it.
    pub fn idle(&self) -> Duration {
        self.last_seen.lock().elapsed()
    }

    pub fn ended(&self) -> bool {
        *self.ended.lock()
    }

    /// The answer to the `POST`: the statement is queued; its first page is at `nextUri`.
    pub fn first_response(&self, base: &str) -> Response {
        let mut stats = StatementStats::of(&self.query.status());
        // Trino answers every submission as queued; planning follows.
        stats.state = "QUEUED";
        stats.queued = true;
        let results = QueryResults {
            id: self.query.id.clone(),
            info_uri: self.info_uri(base),
            next_uri: Some(self.next_uri(base, "queued", 1)),
            columns: None,
            data: None,
            stats,
            error: None,
            warnings: vec![],
            update_type: None,
            update_count: None,
        };
        json_page(&results, HeaderMap::new()).response()
    }

    fn info_uri(&self, base: &str) -> String {
        format!("{base}/ui/query.html?{}", self.query.id)
    }

    fn next_uri(&self, base: &str, phase: &str, token: u64) -> String {
        format!(
            "{base}/v1/statement/{phase}/{}/{}/{token}",
            self.query.id, self.slug
        )
    }

    /// The page of `token`: the next one, or the last one again.
    pub async fn page(&self, token: u64, base: &str) -> Response {
        *self.last_seen.lock() = Instant::now();
        let mut pages = self.pages.lock().await;
        if let Some((last, page)) = &pages.last
            && *last == token
        {
            return page.response();
        }
        if token != pages.next_token {
            return (
                StatusCode::GONE,
                format!(
                    "page {token} of query {} is gone: the next page is {}",
                    self.query.id, pages.next_token
                ),
            )
                .into_response();
        }
        let data = self.gather(&mut pages).await;
        let status = self.query.status();
        let mut stats = StatementStats::of(&status);
        if let Some(tasks) = self.task_counts().await {
            stats = stats.with_tasks(tasks);
        }
        let mut results = QueryResults {
            id: self.query.id.clone(),
            info_uri: self.info_uri(base),
            next_uri: Some(self.next_uri(base, "executing", token + 1)),
            columns: pages.columns.clone(),
            data: None,
            stats: stats.clone(),
            error: None,
            warnings: vec![],
            update_type: None,
            update_count: None,
        };
        if !data.is_empty() {
            results.data = RawValue::from_string(format!("[{data}]")).ok();
        }
        let mut headers = HeaderMap::new();
        match pages.outcome.clone() {
            None => {}
            Some(Outcome::Finished {
                update_type,
                update_count,
                changes,
            }) => {
                stats = stats.finished();
                results.next_uri = None;
                results.update_type = update_type;
                results.update_count = update_count;
                headers = changes.headers();
            }
            Some(Outcome::Failed(failure)) => {
                stats.state = "FAILED";
                results.next_uri = None;
                results.error = Some(QueryError::of(&failure));
            }
        }
        results.stats = stats;
        if results.next_uri.is_none() {
            *self.ended.lock() = true;
        }
        let page = json_page(&results, headers);
        let response = page.response();
        pages.last = Some((token, page));
        pages.next_token = token + 1;
        response
    }

    /// The tasks of the statement's latest job: read while it runs, the last reading after.
    async fn task_counts(&self) -> Option<TaskCounts> {
        let job = self.query.control.jobs().pop()?;
        if let Some(now) = running_task_counts(&self.scheduler, &job).await {
            *self.tasks.lock() = Some(now);
        }
        *self.tasks.lock()
    }

    /// Takes what the task produced, up to a page of rows, waiting at most [`MAX_WAIT`] for
    /// the first of it; the rows' JSON text.
    async fn gather(&self, pages: &mut Pages) -> String {
        let mut data = String::new();
        let deadline = tokio::time::Instant::now() + MAX_WAIT;
        while pages.outcome.is_none() && data.len() < PAGE_BYTES {
            let event = if data.is_empty() {
                match tokio::time::timeout_at(deadline, pages.events.recv()).await {
                    Ok(event) => event,
                    Err(_) => break,
                }
            } else {
                match pages.events.try_recv() {
                    Ok(event) => Some(event),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => None,
                }
            };
            match event {
                Some(Event::Columns(columns)) => pages.columns = Some(columns),
                Some(Event::Rows(rows)) => {
                    if !data.is_empty() {
                        data.push(',');
                    }
                    data.push_str(&rows);
                }
                Some(Event::Finished {
                    update_type,
                    update_count,
                    changes,
                }) => {
                    pages.outcome = Some(Outcome::Finished {
                        update_type,
                        update_count,
                        changes,
                    })
                }
                Some(Event::Failed(failure)) => pages.outcome = Some(Outcome::Failed(failure)),
                // The task ended without a word: it was cancelled or killed.
                None => {
                    let failure = self.query.status().failure.unwrap_or_else(|| {
                        QueryFailure::new(ErrorCode::UserCanceled, "Query was canceled")
                    });
                    pages.outcome = Some(Outcome::Failed(failure));
                }
            }
        }
        data
    }

    /// `DELETE` of a `nextUri`: the statement ends, and its jobs on the workers with it.
    pub fn cancel(&self, scheduler: &Scheduler) {
        self.stop(
            scheduler,
            QueryFailure::new(ErrorCode::UserCanceled, "Query was canceled by its client"),
        );
    }

    /// The client stopped asking for pages `after` ago.
    pub fn abandon(&self, scheduler: &Scheduler, after: Duration) {
        self.stop(
            scheduler,
            QueryFailure::new(
                ErrorCode::AbandonedQuery,
                format!(
                    "Query {} was abandoned by its client: no page was fetched for {}s",
                    self.query.id,
                    after.as_secs()
                ),
            ),
        );
    }

    /// Ends the statement before its client saw it: the port holds too many.
    pub fn reject(&self, scheduler: &Scheduler, message: &str) {
        self.stop(
            scheduler,
            QueryFailure::new(ErrorCode::QueryRejected, message),
        );
    }

    fn stop(&self, scheduler: &Scheduler, failure: QueryFailure) {
        self.query.fail_with(failure);
        self.query.control.cancel(scheduler);
        if let Some(task) = self.task.lock().take() {
            task.abort();
        }
        *self.ended.lock() = true;
    }
}

fn json_page(results: &QueryResults, headers: HeaderMap) -> CachedPage {
    let body = serde_json::to_string(results).unwrap_or_else(|e| {
        let failure = QueryFailure::new(
            ErrorCode::GenericInternalError,
            format!("the page could not be written: {e}"),
        );
        serde_json::json!({
            "id": results.id,
            "infoUri": results.info_uri,
            "stats": results.stats,
            "error": QueryError::of(&failure),
        })
        .to_string()
    });
    CachedPage { headers, body }
}

/// A statement's run, in its task.
struct Statement<'a> {
    engine: &'a Engine,
    client: &'a ClientSession,
    session: &'a Arc<Session>,
    query: &'a Arc<Query>,
    events: &'a mpsc::Sender<Event>,
    /// A new session's settings, to tell a cleared property from a set one.
    defaults: &'a datafusion::prelude::SessionConfig,
}

impl Statement<'_> {
    async fn run(&self, sql: &str) -> Result<(), QueryFailure> {
        let before = self.session.config();
        let planned = match classify(sql, &self.client.prepared)? {
            ClientStatement::Prepare { name, statement } => {
                // Checked now, as Trino analyzes a statement when it is prepared.
                self.plan(&number_placeholders(statement), None).await?;
                return self
                    .finish(
                        "PREPARE",
                        SessionChanges {
                            added_prepare: Some((name, statement.to_string())),
                            ..Default::default()
                        },
                    )
                    .await;
            }
            ClientStatement::Deallocate { name } => {
                if !self.client.prepared.contains_key(&name) {
                    return Err(QueryFailure::new(
                        ErrorCode::NotFound,
                        format!("Prepared statement not found: {name}"),
                    ));
                }
                return self
                    .finish(
                        "DEALLOCATE",
                        SessionChanges {
                            deallocated_prepare: Some(name),
                            ..Default::default()
                        },
                    )
                    .await;
            }
            ClientStatement::Execute { statement, using } => {
                let parameters = match using {
                    Some(list) => self.parameters(list).await?,
                    None => vec![],
                };
                self.plan(&number_placeholders(&statement), Some(&parameters))
                    .await?
            }
            ClientStatement::Plain => self.plan(sql, None).await?,
        };
        let update_type = update_type(&planned, sql);
        // As in Trino, `INSERT` and `CREATE TABLE AS` answer one row: the rows written.
        let writes = match &planned {
            Planned::Insert(_) => true,
            Planned::CreateTable(create) => {
                !matches!(create.input.as_ref(), LogicalPlan::EmptyRelation(_))
            }
            _ => false,
        };
        let returns_rows = !planned.has_side_effects();
        if writes {
            let rows = Field::new("rows", DataType::Int64, false);
            self.send(Event::Columns(vec![Column::of(&rows)])).await?;
        } else if returns_rows {
            let columns = planned
                .schema()
                .fields()
                .iter()
                .map(|f| Column::of(f))
                .collect();
            self.send(Event::Columns(columns)).await?;
        }
        let char_lengths: Vec<Option<usize>> = planned
            .schema()
            .fields()
            .iter()
            .map(|f| char_length(f))
            .collect();
        let running = CancelOnDrop::new(self.query.clone(), self.engine.scheduler());
        let mut rows = self
            .engine
            .execute(self.session, planned, self.query)
            .await
            .map_err(|e| QueryFailure::classify(&e))?;
        let mut written = 0i64;
        let mut page = String::new();
        while let Some(batch) = rows.next().await {
            let batch = batch.map_err(|e| QueryFailure::classify(&e))?;
            if writes {
                written += written_rows(&batch);
                continue;
            }
            if !returns_rows {
                continue;
            }
            // A page at a time: a large batch is cut so that no page grows far past its size.
            let mut offset = 0;
            while offset < batch.num_rows() {
                let length = PAGE_SLICE_ROWS.min(batch.num_rows() - offset);
                write_rows(&batch.slice(offset, length), &char_lengths, &mut page)
                    .map_err(|e| QueryFailure::classify(&e))?;
                offset += length;
                if page.len() >= PAGE_BYTES {
                    self.send(Event::Rows(std::mem::take(&mut page))).await?;
                }
            }
            // A client that took everything gets the rows so far at once: a slow source's
            // first rows do not wait for a whole page.
            if !page.is_empty() && self.events.capacity() == PAGES_AHEAD {
                self.send(Event::Rows(std::mem::take(&mut page))).await?;
            }
        }
        if writes {
            page = format!("[{written}]");
        }
        if !page.is_empty() {
            self.send(Event::Rows(page)).await?;
        }
        running.finish();
        let changes = SessionChanges::between(&before, &self.session.config(), self.defaults);
        let update_count = writes.then_some(written);
        self.send(Event::Finished {
            update_type,
            update_count,
            changes,
        })
        .await
    }

    /// Plans `sql` with `parameters` bound; a failure ends the query.
    async fn plan(
        &self,
        sql: &str,
        parameters: Option<&[ScalarValue]>,
    ) -> Result<Planned, QueryFailure> {
        self.engine
            .plan_query(self.query, self.session, sql, parameters)
            .await
            .map_err(|e| QueryFailure::classify(&e))
    }

    /// The values of an `EXECUTE … USING` list, evaluated on the coordinator.
    async fn parameters(&self, list: &str) -> Result<Vec<ScalarValue>, QueryFailure> {
        let ctx = self.engine.context(self.session).await;
        let evaluate = async {
            let batches = ctx.sql(&format!("SELECT {list}")).await?.collect().await?;
            let batch = batches
                .iter()
                .find(|b| b.num_rows() > 0)
                .ok_or_else(|| datafusion::error::DataFusionError::Plan("no row".into()))?;
            batch
                .columns()
                .iter()
                .map(|column| ScalarValue::try_from_array(column, 0))
                .collect::<datafusion::error::Result<Vec<_>>>()
        };
        evaluate.await.map_err(|e| {
            QueryFailure::new(
                ErrorCode::SyntaxError,
                format!("Invalid parameters (USING {list}): {}", e.strip_backtrace()),
            )
        })
    }

    /// Ends a statement that only changes the client's session.
    async fn finish(&self, update_type: &str, changes: SessionChanges) -> Result<(), QueryFailure> {
        self.query.planned();
        self.query.finish();
        self.send(Event::Finished {
            update_type: Some(update_type.to_string()),
            update_count: None,
            changes,
        })
        .await
    }

    /// Sends `event` once the client has room for it; a client that went away ends the task.
    async fn send(&self, event: Event) -> Result<(), QueryFailure> {
        self.events
            .send(event)
            .await
            .map_err(|_| QueryFailure::new(ErrorCode::AbandonedQuery, "the client went away"))
    }
}

/// Rows written to a page between two checks of its size.
const PAGE_SLICE_ROWS: usize = 1024;

/// Trino's `updateType` of a statement that changes something: `CREATE TABLE`, `INSERT`,
/// `SET SESSION`, `USE`, ...; `None` for a query.
fn update_type(planned: &Planned, sql: &str) -> Option<String> {
    if !planned.has_side_effects() {
        return None;
    }
    Some(match planned {
        Planned::CreateTable(_) => "CREATE TABLE".into(),
        Planned::Insert(_) => "INSERT".into(),
        Planned::Use { .. } => "USE".into(),
        Planned::KillQuery { .. } => "CALL".into(),
        Planned::Rename { view: false, .. } => "RENAME TABLE".into(),
        Planned::Rename { view: true, .. } => "RENAME VIEW".into(),
        _ => {
            let words: Vec<String> = crate::sql_text::leading_words(sql, 2)
                .iter()
                .map(|(word, _)| word.to_ascii_uppercase())
                .collect();
            match words.first().map(String::as_str) {
                Some("SET") => "SET SESSION".into(),
                Some("RESET") => "RESET SESSION".into(),
                Some("CREATE" | "DROP" | "ALTER") => words.join(" "),
                Some(word) => word.to_string(),
                None => String::new(),
            }
        }
    })
}
