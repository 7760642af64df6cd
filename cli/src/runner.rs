//! Running statements for the REPL, `-c` and `-f`: output (through a pager when asked), the
//! row-count-and-time line, a live progress line while a query runs on an interactive
//! terminal, and Ctrl-C, which cancels the running query on the cluster.

use std::io::{BufWriter, IsTerminal, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use arrow::datatypes::SchemaRef;
use futures::TryStreamExt;

use braid_scheduler::sql_text::code_spans;

use crate::client::BraidClient;
use crate::output::{Format, ResultWriter};

/// Runs statements against one session.
pub struct Runner {
    client: BraidClient,
    pub format: Format,
    /// Whether the row-count line gives the time taken (`\timing`).
    pub timing: bool,
    /// The most rows a table shows; the rest are counted.
    pub max_rows: usize,
    /// A shell command that pages tables (`less -FXRSn`), when output is a terminal.
    pub pager: Option<String>,
    progress: bool,
}

/// How a statement ended when it did not finish.
#[derive(Debug)]
pub enum RunError {
    /// The statement failed: the message to show.
    Failed(String),
    /// Ctrl-C: the statement was cancelled on the cluster.
    Interrupted,
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Failed(message) => f.write_str(message),
            RunError::Interrupted => f.write_str("Query was canceled (Ctrl-C)"),
        }
    }
}

impl From<RunError> for String {
    fn from(e: RunError) -> Self {
        e.to_string()
    }
}

impl Runner {
    pub fn new(client: BraidClient, format: Format) -> Self {
        Self {
            client,
            format,
            timing: true,
            max_rows: usize::MAX,
            pager: None,
            progress: std::io::stderr().is_terminal(),
        }
    }

    /// The session's client, for statements whose rows are not printed (completion).
    pub fn client(&self) -> BraidClient {
        self.client.clone()
    }

    /// Runs one statement and prints its rows as they arrive. Ctrl-C stops it: dropping the
    /// result stream cancels the query on the cluster.
    pub async fn run(&mut self, sql: &str) -> Result<(), RunError> {
        let started = Instant::now();
        let mut progress = self.progress.then(|| spawn_progress(self.client.clone()));
        let outcome = tokio::select! {
            outcome = self.print(sql, started, &mut progress) => outcome.map_err(RunError::Failed),
            _ = tokio::signal::ctrl_c() => Err(RunError::Interrupted),
        };
        stop_progress(&mut progress);
        outcome
    }

    /// Prints the rows of `sql`; the progress line goes when the first rows come.
    async fn print(
        &mut self,
        sql: &str,
        started: Instant,
        progress: &mut Option<tokio::task::JoinHandle<()>>,
    ) -> Result<(), String> {
        let (schema, mut batches) = self.client.query(sql).await.map_err(|e| e.to_string())?;
        let has_columns = !schema.fields().is_empty();
        // Opened at the first rows, so that a pager shows up with them and not before.
        let mut output = None;
        let mut rows = 0;
        while let Some(batch) = batches.try_next().await.map_err(|e| e.to_string())? {
            stop_progress(progress);
            rows += batch.num_rows();
            if output.is_none() {
                output = Some(self.open_output(&schema)?);
            }
            if let Some((writer, pager)) = &mut output
                && let Err(e) = writer.write(&batch)
            {
                // The pager was quit: the rest is not wanted.
                if pager.is_some() {
                    break;
                }
                return Err(e.to_string());
            }
        }
        let (writer, pager) = match output {
            Some(output) => output,
            None => self.open_output(&schema)?,
        };
        let finished = writer.finish();
        if let Some(pager) = pager {
            pager.wait().await;
        } else {
            finished.map_err(|e| e.to_string())?;
        }
        let time = if self.timing {
            format!(" in {:.3}s", started.elapsed().as_secs_f64())
        } else {
            String::new()
        };
        if has_columns {
            let plural = if rows == 1 { "" } else { "s" };
            let hidden = if self.format == Format::Table && rows > self.max_rows {
                format!("; the first {} shown, see --maxrows", self.max_rows)
            } else {
                String::new()
            };
            eprintln!("({rows} row{plural}{time}{hidden})");
        } else {
            eprintln!("(done{time})");
        }
        Ok(())
    }

    /// Where a result goes: stdout, or a pager for a table on a terminal.
    fn open_output(&self, schema: &SchemaRef) -> Result<(Output, Option<Pager>), String> {
        let paged = self.format == Format::Table
            && !schema.fields().is_empty()
            && std::io::stdout().is_terminal();
        let mut pager = match &self.pager {
            Some(command) if paged => Some(Pager::start(command)?),
            _ => None,
        };
        let out: Box<dyn Write + Send> = match pager.as_mut().and_then(|p| p.0.stdin.take()) {
            Some(stdin) => Box::new(stdin),
            None => Box::new(std::io::stdout()),
        };
        let writer = ResultWriter::with_max_rows(
            self.format,
            schema.clone(),
            BufWriter::new(out),
            self.max_rows,
        );
        Ok((writer, pager))
    }

    /// Runs every statement of a script; stops at the first error.
    pub async fn run_script(&mut self, text: &str) -> Result<(), RunError> {
        for statement in split_statements(text) {
            self.run(&statement).await?;
        }
        Ok(())
    }
}

/// A result's writer.
type Output = ResultWriter<BufWriter<Box<dyn Write + Send>>>;

/// A pager process reading a table on its standard input.
struct Pager(Child);

impl Pager {
    fn start(command: &str) -> Result<Self, String> {
        Command::new("sh")
            .args(["-c", command])
            .stdin(Stdio::piped())
            .spawn()
            .map(Pager)
            .map_err(|e| format!("cannot start the pager '{command}': {e} (set BRAID_PAGER)"))
    }

    /// Waits (off the async threads) for the reader to quit the pager.
    async fn wait(mut self) {
        drop(self.0.stdin.take());
        let _ = tokio::task::spawn_blocking(move || self.0.wait()).await;
    }
}

/// Ends the progress line and clears it.
fn stop_progress(progress: &mut Option<tokio::task::JoinHandle<()>>) {
    if let Some(task) = progress.take() {
        task.abort();
        eprint!("\r\x1b[2K");
    }
}

/// Polls the coordinator for the session's job and redraws one status line.
fn spawn_progress(mut client: BraidClient) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let started = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let Ok(p) = client.progress().await else {
                continue;
            };
            let elapsed = started.elapsed().as_secs_f64();
            let query = p["query_id"].as_str().unwrap_or("?");
            if p["state"] == "QUEUED" {
                eprint!("\r\x1b[2K[{elapsed:.1}s] query {query}: queued");
                continue;
            }
            if p.get("job_id").is_none() {
                continue;
            }
            eprint!(
                "\r\x1b[2K[{elapsed:.1}s] query {query}: stages {}/{}, tasks {}/{}, rows {}",
                p["stages_done"], p["stages_total"], p["tasks_done"], p["tasks_total"], p["rows"],
            );
        }
    })
}

/// Splits a script into statements on `;` outside literals, quoted names and comments; a
/// piece with nothing but comments and white space is no statement.
pub fn split_statements(text: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut start = 0;
    for span in code_spans(text) {
        for (offset, _) in text[span.clone()].match_indices(';') {
            let end = span.start + offset;
            pieces.push(&text[start..end]);
            start = end + 1;
        }
    }
    pieces.push(&text[start..]);
    pieces
        .into_iter()
        .filter(|piece| {
            code_spans(piece)
                .into_iter()
                .any(|span| !piece[span].trim().is_empty())
        })
        .map(|piece| piece.trim().to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_semicolons_outside_quotes_and_comments() {
        let script =
            "select 1; -- a comment; with a semicolon\nselect ';' as s;\n\nselect \"a;b\" from t";
        assert_eq!(
            split_statements(script),
            vec![
                "select 1",
                "-- a comment; with a semicolon\nselect ';' as s",
                "select \"a;b\" from t"
            ]
        );
        assert_eq!(
            split_statements("select 'x'';' /* ; */; -- only a comment"),
            vec!["select 'x'';' /* ; */"]
        );
        assert!(split_statements("  ;; ").is_empty());
    }
}
