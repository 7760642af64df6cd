//! Running statements for the REPL, `-c` and `-f`: output (through a pager when asked), the
//! row-count-and-time line, a live progress line while a query runs on an interactive
//! terminal, and Ctrl-C, which cancels the running query on the cluster.

use std::io::{BufWriter, IsTerminal, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
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
    /// The terminal's columns and rows, when known (the REPL's line editor tells): a table
    /// that fits goes straight to the terminal, without the pager.
    pub screen: Option<(usize, usize)>,
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
            screen: None,
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
                if pager.as_ref().is_some_and(PagerSlot::is_started) {
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
        match pager.and_then(|slot| slot.started()) {
            Some(pager) => pager.wait().await,
            None => finished.map_err(|e| e.to_string())?,
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

    /// Where a result goes: stdout, or for a table on a terminal the [`Screen`], which starts
    /// the pager when the table does not fit.
    fn open_output(&self, schema: &SchemaRef) -> Result<(Output, Option<PagerSlot>), String> {
        let paged = self.format == Format::Table
            && !schema.fields().is_empty()
            && std::io::stdout().is_terminal();
        let (out, slot): (Box<dyn Write + Send>, _) = match &self.pager {
            Some(command) if paged => {
                let slot = PagerSlot::default();
                let screen = Screen::new(command.clone(), self.screen, slot.clone());
                (Box::new(screen), Some(slot))
            }
            _ => (Box::new(std::io::stdout()), None),
        };
        let writer = ResultWriter::with_max_rows(
            self.format,
            schema.clone(),
            BufWriter::new(out),
            self.max_rows,
        );
        Ok((writer, slot))
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
    fn start(command: &str) -> std::io::Result<Self> {
        Command::new("sh")
            .args(["-c", command])
            .stdin(Stdio::piped())
            .spawn()
            .map(Pager)
            .map_err(|e| {
                std::io::Error::other(format!(
                    "cannot start the pager '{command}': {e} (set BRAID_PAGER)"
                ))
            })
    }

    /// Waits (off the async threads) for the reader to quit the pager.
    async fn wait(mut self) {
        drop(self.0.stdin.take());
        let _ = tokio::task::spawn_blocking(move || self.0.wait()).await;
    }
}

/// Where a [`Screen`] puts its pager once it starts one.
#[derive(Clone, Default)]
struct PagerSlot(Arc<Mutex<Option<Pager>>>);

impl PagerSlot {
    fn is_started(&self) -> bool {
        self.0.lock().is_ok_and(|pager| pager.is_some())
    }

    fn started(self) -> Option<Pager> {
        self.0.lock().ok()?.take()
    }
}

/// A table on its way to a terminal of `size` (columns, rows): held until it is longer or
/// wider than the terminal, then handed to the pager; printed as it is when it fits (as psql
/// does). A pager started for a short table would read — and lose — the keys typed ahead of
/// the next prompt, such as a second statement pasted with the first. With no size known, the
/// pager starts with the first output.
struct Screen {
    command: String,
    size: Option<(usize, usize)>,
    held: Vec<u8>,
    /// Lines ended so far, and the characters of the current one.
    lines: usize,
    column: usize,
    slot: PagerSlot,
    /// The pager's standard input, once it runs.
    paged: Option<std::process::ChildStdin>,
}

impl Screen {
    fn new(command: String, size: Option<(usize, usize)>, slot: PagerSlot) -> Self {
        Self {
            command,
            size,
            held: Vec::new(),
            lines: 0,
            column: 0,
            slot,
            paged: None,
        }
    }

    /// Whether what is held no longer fits: wider than the terminal, or taller than it less
    /// the row-count line and the next prompt.
    fn overflows(&mut self, bytes: &[u8]) -> bool {
        let Some((columns, rows)) = self.size else {
            return true;
        };
        for &byte in bytes {
            match byte {
                b'\n' => {
                    self.lines += 1;
                    self.column = 0;
                }
                // A character starts at every byte that does not continue one (UTF-8).
                b if b & 0xC0 != 0x80 => self.column += 1,
                _ => {}
            }
            if self.column > columns {
                return true;
            }
        }
        self.lines > rows.saturating_sub(2)
    }
}

impl Write for Screen {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(paged) = &mut self.paged {
            return paged.write(buf);
        }
        self.held.extend_from_slice(buf);
        if self.overflows(buf) {
            let mut pager = Pager::start(&self.command)?;
            let mut input = pager
                .0
                .stdin
                .take()
                .ok_or_else(|| std::io::Error::other("the pager has no input"))?;
            if let Ok(mut slot) = self.slot.0.lock() {
                *slot = Some(pager);
            }
            input.write_all(&std::mem::take(&mut self.held))?;
            self.paged = Some(input);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.paged {
            Some(paged) => paged.flush(),
            // Held until the table ends or overflows.
            None => Ok(()),
        }
    }
}

impl Drop for Screen {
    /// The end of the table: what fits is printed.
    fn drop(&mut self) {
        if self.paged.is_none() && !self.held.is_empty() {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&self.held);
            let _ = out.flush();
        }
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
