//! Running statements for the REPL, `-c` and `-f`: output, the row-count-and-time line, and a
//! live progress line while a query runs on an interactive terminal.

use std::io::{BufWriter, IsTerminal};
use std::time::{Duration, Instant};

use futures::TryStreamExt;

use braid_scheduler::sql_text::code_spans;

use crate::client::BraidClient;
use crate::output::{Format, ResultWriter};

/// Runs statements against one session.
pub struct Runner {
    client: BraidClient,
    format: Format,
    progress: bool,
}

impl Runner {
    pub fn new(client: BraidClient, format: Format) -> Self {
        Self {
            client,
            format,
            progress: std::io::stderr().is_terminal(),
        }
    }

    /// Runs one statement and prints its rows as they arrive; the error is the message to show.
    pub async fn run(&mut self, sql: &str) -> Result<(), String> {
        let started = Instant::now();
        let progress = self.progress.then(|| spawn_progress(self.client.clone()));
        let result = self.client.query(sql).await;
        if let Some(progress) = progress {
            progress.abort();
            eprint!("\r\x1b[2K");
        }
        let (schema, mut batches) = result.map_err(|e| e.to_string())?;
        let has_columns = !schema.fields().is_empty();
        let mut output = ResultWriter::new(self.format, schema, BufWriter::new(std::io::stdout()));
        let mut rows = 0;
        while let Some(batch) = batches.try_next().await.map_err(|e| e.to_string())? {
            rows += batch.num_rows();
            output.write(&batch).map_err(|e| e.to_string())?;
        }
        output.finish().map_err(|e| e.to_string())?;
        if has_columns {
            eprintln!(
                "({rows} row{} in {:.3}s)",
                if rows == 1 { "" } else { "s" },
                started.elapsed().as_secs_f64()
            );
        } else {
            eprintln!("(done in {:.3}s)", started.elapsed().as_secs_f64());
        }
        Ok(())
    }

    /// Runs every statement of a script; stops at the first error.
    pub async fn run_script(&mut self, text: &str) -> Result<(), String> {
        for statement in split_statements(text) {
            self.run(&statement).await?;
        }
        Ok(())
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
