//! Trino's prepared statements, which live in the client: `PREPARE name FROM statement`
//! answers with the statement for the client to keep (`X-Trino-Added-Prepare`), the client
//! sends it back with every request (`X-Trino-Prepared-Statement`), and `EXECUTE name USING
//! …` / `EXECUTE IMMEDIATE '…' USING …` run it with the parameters bound. The texts are cut by
//! byte spans ([`crate::sql_text`]): every literal reaches the planner as the client wrote it.

use crate::queries::{ErrorCode, QueryFailure};
use crate::sql_text::{Run, leading_words, runs};

/// What a statement asks of the protocol layer.
#[derive(Debug, PartialEq, Eq)]
pub enum ClientStatement<'a> {
    /// `PREPARE name FROM statement`.
    Prepare { name: String, statement: &'a str },
    /// `EXECUTE name [USING …]` or `EXECUTE IMMEDIATE '…' [USING …]`: the statement to run and
    /// the text of its parameter list.
    Execute {
        statement: String,
        using: Option<&'a str>,
    },
    /// `DEALLOCATE PREPARE name`.
    Deallocate { name: String },
    /// Anything else: planned as it is.
    Plain,
}

/// What `sql` is, with the client's prepared statements (`prepared`, names in lower case).
pub fn classify<'a>(
    sql: &'a str,
    prepared: &std::collections::BTreeMap<String, String>,
) -> Result<ClientStatement<'a>, QueryFailure> {
    let words = leading_words(sql, 3);
    let word = |i: usize| words.get(i).map(|(w, _)| w.to_ascii_uppercase());
    let syntax = |message: &str| QueryFailure::new(ErrorCode::SyntaxError, message);
    match (word(0).as_deref(), word(1).as_deref(), word(2).as_deref()) {
        (Some("PREPARE"), Some(_), Some("FROM")) => {
            let statement = trim_statement(&sql[words[2].1.end..]);
            if statement.is_empty() {
                return Err(syntax("PREPARE needs a statement after FROM"));
            }
            Ok(ClientStatement::Prepare {
                name: words[1].0.to_ascii_lowercase(),
                statement,
            })
        }
        (Some("DEALLOCATE"), Some("PREPARE"), Some(_)) => Ok(ClientStatement::Deallocate {
            name: words[2].0.to_ascii_lowercase(),
        }),
        (Some("EXECUTE"), Some("IMMEDIATE"), _) => {
            let after = words[1].1.end;
            let literal = runs(sql)
                .into_iter()
                .find(|(kind, span)| *kind == Run::Quoted && span.start >= after)
                .map(|(_, span)| span)
                .filter(|span| {
                    let text = &sql[span.clone()];
                    sql[after..span.start].trim().is_empty()
                        && text.len() >= 2
                        && text.starts_with('\'')
                        && text.ends_with('\'')
                });
            let Some(span) = literal else {
                return Err(syntax(
                    "EXECUTE IMMEDIATE needs the statement as a string literal",
                ));
            };
            let statement = sql[span.start + 1..span.end - 1].replace("''", "'");
            let end = span.end;
            Ok(ClientStatement::Execute {
                statement,
                using: using_list(&sql[end..])?,
            })
        }
        (Some("EXECUTE"), Some(_), _) => {
            let name = words[1].0.to_ascii_lowercase();
            let statement = prepared.get(&name).ok_or_else(|| {
                QueryFailure::new(
                    ErrorCode::NotFound,
                    format!("Prepared statement not found: {name}"),
                )
            })?;
            Ok(ClientStatement::Execute {
                statement: statement.clone(),
                using: using_list(&sql[words[1].1.end..])?,
            })
        }
        _ => Ok(ClientStatement::Plain),
    }
}

/// The parameter list after `USING` in `rest` (the text after the statement's name).
fn using_list(rest: &str) -> Result<Option<&str>, QueryFailure> {
    let rest = trim_statement(rest);
    if rest.is_empty() {
        return Ok(None);
    }
    let keyword = rest.get(..5).filter(|k| k.eq_ignore_ascii_case("USING"));
    match keyword {
        Some(_) if rest[5..].starts_with(char::is_whitespace) => {
            Ok(Some(rest[5..].trim()).filter(|list| !list.is_empty()))
        }
        _ => Err(QueryFailure::new(
            ErrorCode::SyntaxError,
            format!("expected USING and the parameters, found: {rest}"),
        )),
    }
}

/// `text` without surrounding white space and a final `;`.
fn trim_statement(text: &str) -> &str {
    text.trim().trim_end_matches(';').trim_end()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn prepared_statements_are_cut_by_spans() {
        let none = BTreeMap::new();
        assert_eq!(
            classify("prepare My_Query FROM SELECT 'a;b' = ?;", &none).expect("valid"),
            ClientStatement::Prepare {
                name: "my_query".into(),
                statement: "SELECT 'a;b' = ?"
            }
        );
        assert_eq!(
            classify(
                "EXECUTE IMMEDIATE 'SELECT * FROM t WHERE n = ''O''''Brien'' AND x = ?' USING 'O''Brien', 2",
                &none
            )
            .expect("valid"),
            ClientStatement::Execute {
                statement: "SELECT * FROM t WHERE n = 'O''Brien' AND x = ?".into(),
                using: Some("'O''Brien', 2")
            }
        );
        let prepared = BTreeMap::from([("st_1".to_string(), "SELECT ?".to_string())]);
        assert_eq!(
            classify("EXECUTE st_1 USING DATE '2024-01-31'", &prepared).expect("valid"),
            ClientStatement::Execute {
                statement: "SELECT ?".into(),
                using: Some("DATE '2024-01-31'")
            }
        );
        assert_eq!(
            classify("execute ST_1", &prepared).expect("valid"),
            ClientStatement::Execute {
                statement: "SELECT ?".into(),
                using: None
            }
        );
        assert_eq!(
            classify("EXECUTE nope USING 1", &prepared)
                .expect_err("not prepared")
                .code,
            ErrorCode::NotFound
        );
        assert_eq!(
            classify("EXECUTE st_1 WITH 1", &prepared)
                .expect_err("no USING")
                .code,
            ErrorCode::SyntaxError
        );
        assert_eq!(
            classify("DEALLOCATE PREPARE St_1", &none).expect("valid"),
            ClientStatement::Deallocate {
                name: "st_1".into()
            }
        );
        assert_eq!(
            classify("SELECT 'EXECUTE x'", &none).expect("valid"),
            ClientStatement::Plain
        );
    }
}
