//! Trino's time travel, `t FOR VERSION AS OF <snapshot id>` and `t FOR TIMESTAMP AS OF
//! TIMESTAMP '<time>'`, which DataFusion's parser does not know: [`rewrite`] edits the statement
//! by byte spans (see `sql_text`) before it is parsed. The table's last name part becomes the
//! quoted name a lake connector resolves to that version — `"t@<id>"` or `"t@ts=<epoch ms>"` —
//! followed by `AS "t"` when the statement gave no alias, so `t.col` still names its columns.
//! Everything else reaches the planner byte for byte.

use std::ops::Range;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

use crate::sql_text::{Run, is_ident_byte, runs};

/// One token of a statement: a word, a quoted run, or one punctuation byte.
#[derive(Debug)]
struct Token {
    range: Range<usize>,
    quoted: bool,
}

fn tokens(sql: &str) -> Vec<Token> {
    let mut out = Vec::new();
    for (kind, span) in runs(sql) {
        match kind {
            Run::Comment => {}
            Run::Quoted => out.push(Token {
                range: span,
                quoted: true,
            }),
            Run::Code => {
                let bytes = sql.as_bytes();
                let mut i = span.start;
                while i < span.end {
                    let b = bytes[i];
                    if b.is_ascii_whitespace() {
                        i += 1;
                    } else if is_ident_byte(b) {
                        let start = i;
                        while i < span.end && is_ident_byte(bytes[i]) {
                            i += 1;
                        }
                        out.push(Token {
                            range: start..i,
                            quoted: false,
                        });
                    } else {
                        out.push(Token {
                            range: i..i + 1,
                            quoted: false,
                        });
                        i += 1;
                    }
                }
            }
        }
    }
    out
}

/// Words after which a table reference has no alias.
const NOT_AN_ALIAS: &[&str] = &[
    "WHERE",
    "JOIN",
    "INNER",
    "LEFT",
    "RIGHT",
    "FULL",
    "CROSS",
    "NATURAL",
    "ON",
    "USING",
    "GROUP",
    "ORDER",
    "LIMIT",
    "OFFSET",
    "HAVING",
    "UNION",
    "EXCEPT",
    "INTERSECT",
    "WINDOW",
    "FETCH",
    "QUALIFY",
];

/// `sql` with its `FOR VERSION AS OF` / `FOR TIMESTAMP AS OF` clauses rewritten, or `None` when
/// it has none. An error says what is wrong with a clause.
pub fn rewrite(sql: &str) -> Result<Option<String>, String> {
    let tokens = tokens(sql);
    let text = |t: &Token| &sql[t.range.clone()];
    let word = |i: usize, expected: &str| {
        tokens
            .get(i)
            .is_some_and(|t| !t.quoted && text(t).eq_ignore_ascii_case(expected))
    };
    let mut edits: Vec<(Range<usize>, String)> = Vec::new();
    let mut i = 1;
    while i < tokens.len() {
        let kind = if word(i, "FOR") && word(i + 2, "AS") && word(i + 3, "OF") {
            if word(i + 1, "VERSION") {
                Some(true)
            } else if word(i + 1, "TIMESTAMP") {
                Some(false)
            } else {
                None
            }
        } else {
            None
        };
        let Some(by_version) = kind else {
            i += 1;
            continue;
        };
        let name = &tokens[i - 1];
        let table = if name.quoted {
            let inner = &text(name)[1..text(name).len() - 1];
            inner.replace("\"\"", "\"")
        } else {
            text(name).to_lowercase()
        };
        // The version: a number, or [TIMESTAMP] '<time>'.
        let mut next = i + 4;
        let version = if by_version {
            let value = tokens
                .get(next)
                .filter(|t| !t.quoted)
                .map(text)
                .and_then(|v| v.parse::<i64>().ok())
                .ok_or_else(|| {
                    format!("FOR VERSION AS OF on '{table}' takes a snapshot id (a number)")
                })?;
            next += 1;
            value.to_string()
        } else {
            if word(next, "TIMESTAMP") {
                next += 1;
            }
            let literal = tokens
                .get(next)
                .filter(|t| t.quoted && text(t).starts_with('\''))
                .map(text)
                .ok_or_else(|| {
                    format!("FOR TIMESTAMP AS OF on '{table}' takes TIMESTAMP '<time>'")
                })?;
            next += 1;
            let time = literal[1..literal.len() - 1].replace("''", "'");
            format!("ts={}", epoch_millis(&time)?)
        };
        let aliased = tokens.get(next).is_some_and(|t| {
            t.quoted
                || (is_ident_byte(sql.as_bytes()[t.range.start])
                    && !NOT_AN_ALIAS.iter().any(|w| text(t).eq_ignore_ascii_case(w)))
        });
        let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        let mut replacement = quote(&format!("{table}@{version}"));
        if !aliased {
            replacement.push_str(" AS ");
            replacement.push_str(&quote(&table));
        }
        edits.push((name.range.clone(), replacement));
        let end = tokens[next - 1].range.end;
        edits.push((tokens[i].range.start..end, String::new()));
        i = next;
    }
    if edits.is_empty() {
        return Ok(None);
    }
    let mut out = String::with_capacity(sql.len() + 32);
    let mut copied = 0;
    for (range, replacement) in edits {
        out.push_str(&sql[copied..range.start]);
        out.push_str(&replacement);
        copied = range.end;
    }
    out.push_str(&sql[copied..]);
    Ok(Some(out))
}

/// `2024-05-01 10:00:00[.123][ UTC|Z|+02:00]` (no zone: UTC) as milliseconds since the epoch.
fn epoch_millis(time: &str) -> Result<i64, String> {
    let time = time.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(&time.replacen(' ', "T", 1)) {
        return Ok(t.timestamp_millis());
    }
    for zone in [" UTC", "Z", ""] {
        if let Some(local) = time.strip_suffix(zone) {
            for format in [
                "%Y-%m-%d %H:%M:%S%.f",
                "%Y-%m-%dT%H:%M:%S%.f",
                "%Y-%m-%d %H:%M",
            ] {
                if let Ok(t) = NaiveDateTime::parse_from_str(local, format) {
                    return Ok(Utc.from_utc_datetime(&t).timestamp_millis());
                }
            }
        }
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f %z", "%Y-%m-%d %H:%M:%S%.f%:z"] {
        if let Ok(t) = DateTime::parse_from_str(time, format) {
            return Ok(t.timestamp_millis());
        }
    }
    Err(format!(
        "'{time}' is not a time (use 'YYYY-MM-DD HH:MM:SS[.fff][ UTC|+hh:mm]')"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_clauses_become_quoted_names_and_the_rest_stays() {
        let cases = [
            (
                "SELECT count(*) FROM ice.s.orders FOR VERSION AS OF 42",
                "SELECT count(*) FROM ice.s.\"orders@42\" AS \"orders\" ",
            ),
            (
                "SELECT o.id FROM ice.s.Orders FOR VERSION AS OF 42 o WHERE o.name = 'O''Brien FOR VERSION AS OF 1'",
                "SELECT o.id FROM ice.s.\"orders@42\"  o WHERE o.name = 'O''Brien FOR VERSION AS OF 1'",
            ),
            (
                "SELECT * FROM \"My Schema\".\"Mixed \"\"T\"\"\" for version as of 7 WHERE x = 1",
                "SELECT * FROM \"My Schema\".\"Mixed \"\"T\"\"@7\" AS \"Mixed \"\"T\"\"\"  WHERE x = 1",
            ),
            (
                "SELECT * FROM t FOR TIMESTAMP AS OF TIMESTAMP '2026-01-01 00:00:01.5 UTC' JOIN u ON true",
                "SELECT * FROM \"t@ts=1767225601500\" AS \"t\"  JOIN u ON true",
            ),
        ];
        for (sql, expected) in cases {
            assert_eq!(
                rewrite(sql).expect("rewrite").as_deref(),
                Some(expected),
                "{sql}"
            );
        }
        assert_eq!(
            rewrite("SELECT 'FOR VERSION AS OF 1' FROM t").expect("none"),
            None
        );
        let err = rewrite("SELECT * FROM t FOR VERSION AS OF x").expect_err("not a number");
        assert!(err.contains("snapshot id"), "{err}");
        let err =
            rewrite("SELECT * FROM t FOR TIMESTAMP AS OF TIMESTAMP 'soon'").expect_err("time");
        assert!(err.contains("'soon' is not a time"), "{err}");
        assert_eq!(
            epoch_millis("2026-01-01 02:00:00+02:00").expect("offset"),
            epoch_millis("2026-01-01 00:00:00").expect("utc")
        );
    }
}
