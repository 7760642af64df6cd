//! The interactive REPL: line editing, a history file, statements spanning lines until `;`,
//! `\q` to quit. An error is printed and the REPL goes on.

use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;

use crate::runner::{Runner, split_statements};

/// Reads statements until `\q`, `quit`, `exit` or end of input.
pub async fn run(runner: &mut Runner) -> Result<(), String> {
    let mut editor = DefaultEditor::new().map_err(|e| e.to_string())?;
    let history =
        std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".braid_history"));
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() {
            "braid> "
        } else {
            "    -> "
        };
        match editor.readline(prompt) {
            Ok(line) => {
                let trimmed = line.trim();
                if buffer.is_empty()
                    && matches!(trimmed, "\\q" | "quit" | "exit" | "quit;" | "exit;")
                {
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
                    if let Err(e) = runner.run(&statement).await {
                        eprintln!("Query failed: {e}");
                    }
                }
                buffer.clear();
            }
            Err(ReadlineError::Interrupted) => buffer.clear(),
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.to_string()),
        }
    }
    if let Some(path) = &history {
        let _ = editor.save_history(path);
    }
    Ok(())
}
