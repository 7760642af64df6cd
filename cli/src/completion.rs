//! Tab completion in the REPL: SQL keywords, and the names the coordinator knows — catalogs,
//! the current catalog's schemas, the current schema's tables and their columns. The names
//! load in the background at start and after a statement that may change them
//! ([`Completion::refresh`]); a completion never waits on the network.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::DataType;
use rustyline::Context;
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;

use crate::client::BraidClient;

/// Keywords offered everywhere.
const KEYWORDS: &[&str] = &[
    "ALL",
    "ALTER",
    "ANALYZE",
    "AND",
    "AS",
    "ASC",
    "AVG",
    "BETWEEN",
    "BY",
    "CALL",
    "CASE",
    "CAST",
    "CATALOGS",
    "COLUMNS",
    "COUNT",
    "CREATE",
    "CROSS",
    "DATE",
    "DEALLOCATE",
    "DESC",
    "DESCRIBE",
    "DISTINCT",
    "DROP",
    "ELSE",
    "END",
    "EXCEPT",
    "EXECUTE",
    "EXPLAIN",
    "FALSE",
    "FIRST",
    "FROM",
    "FULL",
    "GROUP",
    "HAVING",
    "IN",
    "INNER",
    "INSERT",
    "INTERSECT",
    "INTERVAL",
    "INTO",
    "IS",
    "JOIN",
    "LAST",
    "LEFT",
    "LIKE",
    "LIMIT",
    "MAX",
    "MIN",
    "NOT",
    "NULL",
    "NULLS",
    "ON",
    "OR",
    "ORDER",
    "OUTER",
    "OVER",
    "PARTITION",
    "PREPARE",
    "RESET",
    "RIGHT",
    "SCHEMAS",
    "SELECT",
    "SESSION",
    "SET",
    "SHOW",
    "SUM",
    "TABLE",
    "TABLES",
    "THEN",
    "TIMESTAMP",
    "TRUE",
    "UNION",
    "USE",
    "USING",
    "VALUES",
    "VIEW",
    "WHEN",
    "WHERE",
    "WITH",
];

/// How long loading the names may take.
const LOAD_TIMEOUT: Duration = Duration::from_secs(10);

/// The REPL's completion helper; clones share their names.
#[derive(Clone)]
pub struct Completion {
    client: BraidClient,
    names: Arc<RwLock<Vec<String>>>,
}

impl Completion {
    /// A helper whose names start loading now.
    pub fn new(client: BraidClient) -> Self {
        let completion = Self {
            client,
            names: Arc::new(RwLock::new(Vec::new())),
        };
        completion.refresh();
        completion
    }

    /// Reloads the names in the background; on failure the old ones stay.
    pub fn refresh(&self) {
        let (mut client, names) = (self.client.clone(), self.names.clone());
        tokio::spawn(async move {
            if let Ok(Ok(loaded)) = tokio::time::timeout(LOAD_TIMEOUT, load(&mut client)).await
                && let Ok(mut names) = names.write()
            {
                *names = loaded;
            }
        });
    }
}

/// The completions among keywords and `names` of the word that ends at `pos`, and where that
/// word starts. A name that is not a plain lower-case identifier is offered quoted, and a word
/// that opens a quote completes only such names.
fn candidates(names: &[String], line: &str, pos: usize) -> (usize, Vec<String>) {
    let before = &line[..pos];
    // Inside a quoted name: the word is from its opening quote.
    if before.matches('"').count() % 2 == 1 {
        let start = before.rfind('"').unwrap_or(0);
        let word = &before[start..];
        let mut found: Vec<String> = names
            .iter()
            .map(|n| quoted(n))
            .filter(|n| n.starts_with(word))
            .collect();
        found.sort();
        found.dedup();
        return (start, found);
    }
    // A word: letters, digits, `_`; a dotted name completes its last part.
    let start = before
        .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    let word = &before[start..];
    if word.is_empty() {
        return (pos, Vec::new());
    }
    let lower = word.chars().next().is_some_and(char::is_lowercase);
    let matches = |candidate: &str| {
        candidate.len() >= word.len()
            && candidate.is_char_boundary(word.len())
            && candidate[..word.len()].eq_ignore_ascii_case(word)
    };
    let mut found: Vec<String> = KEYWORDS
        .iter()
        .filter(|k| matches(k))
        .map(|k| {
            if lower {
                k.to_ascii_lowercase()
            } else {
                k.to_string()
            }
        })
        .chain(names.iter().filter(|n| matches(n)).map(|n| quoted(n)))
        .collect();
    found.sort();
    found.dedup();
    (start, found)
}

/// `name` as SQL must spell it: as it is when it is a plain lower-case identifier, else
/// between double quotes (a quote in it doubled).
fn quoted(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// Catalogs, schemas, tables and columns of the session's current catalog and schema.
async fn load(client: &mut BraidClient) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    for sql in ["SHOW CATALOGS", "SHOW SCHEMAS", "SHOW TABLES"] {
        names.extend(strings(client, sql, 0).await?);
    }
    let schema = strings(client, "SHOW datafusion.catalog.default_schema", 1).await?;
    if let Some(schema) = schema.first() {
        let literal = schema.replace('\'', "''");
        names.extend(
            strings(
                client,
                &format!(
                    "SELECT column_name FROM information_schema.columns \
                     WHERE table_schema = '{literal}'"
                ),
                0,
            )
            .await?,
        );
    }
    names.sort();
    names.dedup();
    Ok(names)
}

/// The text values of column `column` of a statement's rows.
async fn strings(
    client: &mut BraidClient,
    sql: &str,
    column: usize,
) -> Result<Vec<String>, String> {
    let (_, batches) = client.query_all(sql).await.map_err(|e| e.to_string())?;
    Ok(batches.iter().flat_map(|b| texts(b, column)).collect())
}

fn texts(batch: &RecordBatch, column: usize) -> Vec<String> {
    let Some(array) = batch.columns().get(column) else {
        return Vec::new();
    };
    let Ok(array) = arrow::compute::cast(array, &DataType::Utf8) else {
        return Vec::new();
    };
    let array = array.as_string::<i32>();
    (0..array.len())
        .filter(|&i| array.is_valid(i))
        .map(|i| array.value(i).to_string())
        .collect()
}

impl Completer for Completion {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, found) = match self.names.read() {
            Ok(names) => candidates(&names, line, pos),
            Err(_) => candidates(&[], line, pos),
        };
        let pairs = found
            .into_iter()
            .map(|name| Pair {
                display: name.clone(),
                replacement: name,
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for Completion {
    type Hint = String;
}

impl Highlighter for Completion {}

impl Validator for Completion {}

impl rustyline::Helper for Completion {}

#[cfg(test)]
mod tests {
    use super::*;

    fn offered(names: &[&str], line: &str) -> (usize, Vec<String>) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        candidates(&names, line, line.len())
    }

    #[test]
    fn completes_keywords_in_the_typed_case_and_names_as_they_are() {
        let names = ["lineitem", "l_orderkey", "Mixed Name", "tpch"];
        assert_eq!(offered(&names, "sel"), (0, vec!["select".to_string()]));
        assert_eq!(offered(&names, "SEL"), (0, vec!["SELECT".to_string()]));
        assert_eq!(
            offered(&names, "SELECT l_"),
            (7, vec!["l_orderkey".to_string()])
        );
        assert_eq!(
            offered(&names, "FROM tpch.tiny.line"),
            (15, vec!["lineitem".to_string()])
        );
        assert_eq!(offered(&names, "SELECT "), (7, vec![]));
        assert_eq!(offered(&names, "mi").1, vec!["\"Mixed Name\"", "min"]);
    }

    #[test]
    fn names_that_need_quotes_complete_quoted() {
        let names = ["Mixed Name", "O\"Brien", "orders", "a.b"];
        assert_eq!(
            offered(&names, "SELECT * FROM \"Mi"),
            (14, vec!["\"Mixed Name\"".to_string()])
        );
        assert_eq!(
            offered(&names, "SELECT \"O"),
            (7, vec!["\"O\"\"Brien\"".to_string()])
        );
        assert_eq!(offered(&names, "FROM tpch.\"a").1, vec!["\"a.b\""]);
        // A quote typed and closed before the word does not count.
        assert_eq!(
            offered(&names, "FROM \"Mixed Name\" JOIN orde").1,
            vec!["order", "orders"]
        );
    }
}
