//! The interactive REPL: line editing, a history file (`~/.braid_history`), statements
//! spanning lines until `;`, meta-commands ([`META_HELP`]), tab completion of keywords and of
//! the cluster's catalogs, schemas, tables and columns (`completion.rs`), and a `~/.braidrc`
//! of statements run at start. Ctrl-C at the prompt clears the line; during a query it cancels
//! the query on the cluster and returns to the prompt. An error is printed and the REPL goes
//! on.

use std::path::PathBuf;

use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{CompletionType, Config, Editor};

use crate::completion::Completion;
use crate::output::Format;
use crate::runner::{RunError, Runner, split_statements};

/// What `\?` prints.
pub const META_HELP: &str = "\
\\?                 this help
\\l                 list catalogs (SHOW CATALOGS)
\\d                 list the tables of the current schema (SHOW TABLES)
\\d NAME            describe table NAME (DESCRIBE NAME)
\\timing            show or hide the time each statement took
\\pset format NAME  print results as table, csv, tsv or json (ndjson)
\\q                 quit (also: quit, exit, Ctrl-D)
Statements end with ';'. Ctrl-C cancels the running query.";

/// Where the REPL's start-up statements and history live.
pub struct ReplFiles {
    /// Statements run before the first prompt (`~/.braidrc`), if the file exists.
    pub rc: Option<PathBuf>,
    pub history: Option<PathBuf>,
}

impl ReplFiles {
    /// `~/.braidrc` and `~/.braid_history`.
    pub fn in_home() -> Self {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        Self {
            rc: home.as_ref().map(|h| h.join(".braidrc")),
            history: home.map(|h| h.join(".braid_history")),
        }
    }
}

/// Reads statements until `\q`, `quit`, `exit` or end of input.
pub async fn run(runner: &mut Runner, files: ReplFiles) -> Result<(), String> {
    if let Some(rc) = files.rc.as_ref().filter(|path| path.is_file()) {
        let text = std::fs::read_to_string(rc)
            .map_err(|e| format!("cannot read {}: {e}", rc.display()))?;
        for statement in split_statements(&text) {
            if let Err(e) = runner.run(&statement).await {
                eprintln!("{}: {e}", rc.display());
            }
        }
    }
    let completion = Completion::new(runner.client());
    // As a shell does: Tab completes what all candidates share, and lists them when asked again.
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .build();
    let mut editor: Editor<Completion, DefaultHistory> =
        Editor::with_config(config).map_err(|e| e.to_string())?;
    editor.set_helper(Some(completion.clone()));
    if let Some(path) = &files.history {
        let _ = editor.load_history(path);
    }
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() {
            "braid> "
        } else {
            "    -> "
        };
        // Line editing waits on the terminal: off the async threads, which the embedded
        // cluster uses.
        let (returned, line) = tokio::task::spawn_blocking(move || {
            let line = editor.readline(prompt);
            (editor, line)
        })
        .await
        .map_err(|e| e.to_string())?;
        editor = returned;
        // Tables that fit the terminal (as it is now) skip the pager.
        runner.screen = editor.dimensions();
        match line {
            Ok(line) => {
                let trimmed = line.trim();
                if buffer.is_empty() && trimmed.starts_with('\\') {
                    let _ = editor.add_history_entry(trimmed);
                    if meta_command(runner, trimmed).await == Meta::Quit {
                        break;
                    }
                    continue;
                }
                if buffer.is_empty() && matches!(trimmed, "quit" | "exit" | "quit;" | "exit;") {
                    break;
                }
                if trimmed.is_empty() && buffer.is_empty() {
                    continue;
                }
                buffer.push_str(&line);
                buffer.push('\n');
                if !trimmed.ends_with(';') {
                    continue;
                }
                let _ = editor.add_history_entry(buffer.trim());
                for statement in split_statements(&buffer) {
                    match runner.run(&statement).await {
                        Ok(()) if changes_names(&statement) => completion.refresh(),
                        Ok(()) => {}
                        Err(RunError::Interrupted) => {
                            eprintln!("Query was canceled (Ctrl-C)");
                            break;
                        }
                        Err(e) => eprintln!("Query failed: {e}"),
                    }
                }
                buffer.clear();
            }
            Err(ReadlineError::Interrupted) => buffer.clear(),
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.to_string()),
        }
    }
    if let Some(path) = &files.history {
        let _ = editor.save_history(path);
    }
    Ok(())
}

/// What a meta-command asks of the REPL.
#[derive(PartialEq)]
enum Meta {
    Quit,
    Done,
}

/// Runs one `\` command. Its table names are the user's own text, passed on as typed.
async fn meta_command(runner: &mut Runner, line: &str) -> Meta {
    let mut words = line.split_whitespace();
    let command = words.next().unwrap_or_default();
    let rest = line[command.len()..].trim().trim_end_matches(';').trim();
    let statement = match (command, rest) {
        ("\\q", _) => return Meta::Quit,
        ("\\?" | "\\h" | "\\help", _) => {
            println!("{META_HELP}");
            return Meta::Done;
        }
        ("\\l", "") => "SHOW CATALOGS".to_string(),
        ("\\d", "") => "SHOW TABLES".to_string(),
        ("\\d", table) => format!("DESCRIBE {table}"),
        ("\\timing", "") => {
            runner.timing = !runner.timing;
            println!("Timing is {}.", if runner.timing { "on" } else { "off" });
            return Meta::Done;
        }
        ("\\pset", setting) => {
            let mut parts = setting.split_whitespace();
            match (
                parts.next(),
                parts.next().and_then(Format::parse),
                parts.next(),
            ) {
                (Some("format"), Some(format), None) => {
                    runner.format = format;
                    println!("Output format is {format:?}.");
                }
                _ => eprintln!("usage: \\pset format table|csv|tsv|json|ndjson"),
            }
            return Meta::Done;
        }
        _ => {
            eprintln!("unknown command {line}: \\? lists the commands");
            return Meta::Done;
        }
    };
    match runner.run(&statement).await {
        Ok(()) => {}
        Err(RunError::Interrupted) => eprintln!("Query was canceled (Ctrl-C)"),
        Err(e) => eprintln!("Query failed: {e}"),
    }
    Meta::Done
}

/// Whether `statement` may change the names completion offers.
fn changes_names(statement: &str) -> bool {
    let first = statement
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    matches!(first.as_str(), "USE" | "CREATE" | "DROP" | "ALTER")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_that_change_names() {
        assert!(changes_names("use memory.default"));
        assert!(changes_names("CREATE TABLE t AS SELECT 1"));
        assert!(!changes_names("SELECT 'USE'"));
    }
}
