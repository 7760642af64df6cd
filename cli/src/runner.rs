//! Running statements for the REPL, `-c` and `-f`: output, the row-count-and-time line, and a
//! live progress line while a query runs on an interactive terminal.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use futures::TryStreamExt;

use crate::client::BraidClient;
use crate::output::{Format, render};

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

    /// Runs one statement and prints its result; the error is the message to show.
    pub async fn run(&mut self, sql: &str) -> Result<(), String> {
        let started = Instant::now();
        let progress = self.progress.then(|| spawn_progress(self.client.clone()));
        let result = async {
            let (schema, batches) = self.client.query(sql).await?;
            let batches: Vec<_> = batches.try_collect().await?;
            Ok::<_, crate::client::ClientError>((schema, batches))
        }
        .await;
        if let Some(progress) = progress {
            progress.abort();
            eprint!("\r\x1b[2K");
        }
        let (schema, batches) = result.map_err(|e| e.to_string())?;
        let text = render(self.format, &schema, &batches).map_err(|e| e.to_string())?;
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(text.as_bytes());
        let _ = stdout.flush();
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        if !schema.fields().is_empty() {
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
            if p.get("job_id").is_none() {
                continue;
            }
            eprint!(
                "\r\x1b[2K[{:.1}s] query {}: stages {}/{}, tasks {}/{}, rows {}",
                started.elapsed().as_secs_f64(),
                p["job_id"].as_str().unwrap_or("?"),
                p["stages_done"],
                p["stages_total"],
                p["tasks_done"],
                p["tasks_total"],
                p["rows"],
            );
        }
    })
}

/// Splits a script into statements on `;`, ignoring those inside quotes and `--` comments.
pub fn split_statements(text: &str) -> Vec<String> {
    let mut statements = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                current.push(c);
                if c == q {
                    quote = None;
                }
            }
            None => match c {
                '\'' | '"' => {
                    quote = Some(c);
                    current.push(c);
                }
                '-' if chars.peek() == Some(&'-') => {
                    for c in chars.by_ref() {
                        if c == '\n' {
                            current.push('\n');
                            break;
                        }
                    }
                }
                ';' => {
                    if !current.trim().is_empty() {
                        statements.push(current.trim().to_string());
                    }
                    current.clear();
                }
                _ => current.push(c),
            },
        }
    }
    if !current.trim().is_empty() {
        statements.push(current.trim().to_string());
    }
    statements
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
            vec!["select 1", "select ';' as s", "select \"a;b\" from t"]
        );
        assert!(split_statements("  ;; ").is_empty());
    }
}
