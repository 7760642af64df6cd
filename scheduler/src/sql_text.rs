//! Edits of SQL text by byte spans, never by re-printing parser tokens: [`runs`] cuts a
//! statement into code, quoted text and comments, and the edits below touch only the code, so
//! every literal and quoted name reaches the planner byte for byte.
//!
//! Recognised, as PostgreSQL and DataFusion's parser read them: `'...'` with `''`, `E'...'`
//! with backslash escapes, `"..."` with `""`, `` `...` ``, `$tag$...$tag$`, `-- ...` to the end of
//! the line and nested `/* ... */`. An unterminated one runs to the end of the text (the planner
//! then reports the syntax error).

use std::ops::Range;

/// What a stretch of SQL text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    /// Keywords, names, operators, numbers, white space.
    Code,
    /// A string literal or a quoted identifier, quotes included.
    Quoted,
    /// A `--` or `/* */` comment.
    Comment,
}

/// `sql` cut into consecutive runs of code, quoted text and comments.
pub fn runs(sql: &str) -> Vec<(Run, Range<usize>)> {
    let bytes = sql.as_bytes();
    let mut runs = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let other = match bytes[i] {
            b'\'' => Some((Run::Quoted, quoted_end(bytes, i, b'\'', false))),
            b'E' | b'e'
                if bytes.get(i + 1) == Some(&b'\'') && (i == 0 || !is_ident_byte(bytes[i - 1])) =>
            {
                Some((Run::Quoted, quoted_end(bytes, i + 1, b'\'', true)))
            }
            b'"' | b'`' => Some((Run::Quoted, quoted_end(bytes, i, bytes[i], false))),
            b'-' if bytes.get(i + 1) == Some(&b'-') => Some((
                Run::Comment,
                bytes[i..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(bytes.len(), |p| i + p + 1),
            )),
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                Some((Run::Comment, block_comment_end(bytes, i)))
            }
            b'$' => dollar_quote_end(sql, i).map(|end| (Run::Quoted, end)),
            _ => None,
        };
        match other {
            Some((kind, end)) => {
                if start < i {
                    runs.push((Run::Code, start..i));
                }
                runs.push((kind, i..end));
                start = end;
                i = end;
            }
            None => i += 1,
        }
    }
    if start < bytes.len() {
        runs.push((Run::Code, start..bytes.len()));
    }
    runs
}

/// The byte ranges of `sql` that are code: outside literals, quoted identifiers and comments.
pub fn code_spans(sql: &str) -> Vec<Range<usize>> {
    runs(sql)
        .into_iter()
        .filter_map(|(kind, range)| (kind == Run::Code).then_some(range))
        .collect()
}

/// `sql` with its `?` placeholders numbered `$1`, `$2`, ... (JDBC and ADBC send `?`; DataFusion
/// plans `$n`). Nothing else changes.
pub fn number_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut copied = 0;
    let mut next = 0;
    for span in code_spans(sql) {
        for (offset, _) in sql[span.clone()].match_indices('?') {
            let at = span.start + offset;
            next += 1;
            out.push_str(&sql[copied..at]);
            out.push('$');
            out.push_str(&next.to_string());
            copied = at + 1;
        }
    }
    out.push_str(&sql[copied..]);
    out
}

/// The first `n` code words of `sql` with their byte ranges, comments skipped, up to the first
/// literal or quoted name: enough to recognise a statement by its leading keywords.
pub fn leading_words(sql: &str, n: usize) -> Vec<(&str, Range<usize>)> {
    let mut words = Vec::new();
    for (kind, span) in runs(sql) {
        match kind {
            Run::Comment => continue,
            Run::Quoted => break,
            Run::Code => {}
        }
        let text = &sql[span.clone()];
        let mut offset = 0;
        for word in text.split(|c: char| c.is_whitespace() || c == ';') {
            if !word.is_empty() {
                let start = span.start + offset;
                words.push((word, start..start + word.len()));
                if words.len() == n {
                    return words;
                }
            }
            offset += word.len() + 1;
        }
    }
    words
}

/// Every code word of `sql` (split at whitespace and `;`) with its byte range: comments are
/// skipped, and a literal or quoted name ends a word without being one.
pub fn code_words(sql: &str) -> Vec<(&str, Range<usize>)> {
    let mut words = Vec::new();
    for span in code_spans(sql) {
        let mut start = None;
        for (offset, c) in sql[span.clone()].char_indices() {
            let at = span.start + offset;
            match (c.is_whitespace() || c == ';', start) {
                (true, Some(from)) => {
                    words.push((&sql[from..at], from..at));
                    start = None;
                }
                (false, None) => start = Some(at),
                _ => {}
            }
        }
        if let Some(from) = start {
            words.push((&sql[from..span.end], from..span.end));
        }
    }
    words
}

/// Whether `b` can be part of an unquoted word (ASCII letters and digits, `_`, and any byte of
/// a non-ASCII character).
pub(crate) fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// The end (exclusive) of a quoted run opened at `open`; a doubled quote stays inside, and with
/// `backslash` a backslash escapes the next byte.
fn quoted_end(bytes: &[u8], open: usize, quote: u8, backslash: bool) -> usize {
    let mut i = open + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if backslash => i += 2,
            b if b == quote && bytes.get(i + 1) == Some(&quote) => i += 2,
            b if b == quote => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

fn block_comment_end(bytes: &[u8], open: usize) -> usize {
    let mut depth = 0;
    let mut i = open;
    while i + 1 < bytes.len() {
        match (bytes[i], bytes[i + 1]) {
            (b'/', b'*') => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    bytes.len()
}

/// `$tag$ ... $tag$` opened at `open`, or `None` when the `$` starts no dollar quote (`$1`).
fn dollar_quote_end(sql: &str, open: usize) -> Option<usize> {
    let rest = &sql[open + 1..];
    let tag_len = rest.find('$')?;
    let tag = &rest[..tag_len];
    let valid = tag
        .bytes()
        .next()
        .is_none_or(|b| !b.is_ascii_digit() && is_ident_byte(b))
        && tag.bytes().all(is_ident_byte);
    if !valid {
        return None;
    }
    let delimiter = &sql[open..open + tag_len + 2];
    let body = open + delimiter.len();
    Some(
        sql[body..]
            .find(delimiter)
            .map_or(sql.len(), |p| body + p + delimiter.len()),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn code_words_skip_literals_quoted_names_and_comments() {
        let sql =
            "CREATE VIEW \"a b\".v /* security definer */ SECURITY -- x\n INVOKER AS SELECT 'as';";
        let words: Vec<&str> = super::code_words(sql).into_iter().map(|(w, _)| w).collect();
        assert_eq!(
            words,
            [
                "CREATE", "VIEW", ".v", "SECURITY", "INVOKER", "AS", "SELECT"
            ]
        );
        for (word, range) in super::code_words(sql) {
            assert_eq!(&sql[range], word);
        }
    }

    use super::*;

    #[test]
    fn question_marks_are_numbered_only_in_code() {
        let cases = [
            (
                "SELECT '?', \"a?\" FROM t WHERE x = ? AND y IN (?, ?)",
                "SELECT '?', \"a?\" FROM t WHERE x = $1 AND y IN ($2, $3)",
            ),
            (
                "SELECT 'O''Brien?' WHERE n = ?",
                "SELECT 'O''Brien?' WHERE n = $1",
            ),
            (
                "SELECT 'x'' OR ''1''=''1' = ?",
                "SELECT 'x'' OR ''1''=''1' = $1",
            ),
            (
                "SELECT E'it\\'s ?', e'\\\\' , ? -- why ?\n, ? /* or ? /* nested ? */ ? */ , ?",
                "SELECT E'it\\'s ?', e'\\\\' , $1 -- why ?\n, $2 /* or ? /* nested ? */ ? */ , $3",
            ),
            (
                "SELECT $$ a ? $$, $q$ ? $q$, ?",
                "SELECT $$ a ? $$, $q$ ? $q$, $1",
            ),
            ("SELECT `a?`, ?", "SELECT `a?`, $1"),
            // A word ending in E is no escape-string prefix.
            (
                "SELECT 'a' FROM tablE WHERE x = 'b\\' AND ?",
                "SELECT 'a' FROM tablE WHERE x = 'b\\' AND $1",
            ),
            ("SELECT 'unterminated ?", "SELECT 'unterminated ?"),
            ("SELECT 'é?' , ?", "SELECT 'é?' , $1"),
        ];
        for (sql, expected) in cases {
            assert_eq!(number_placeholders(sql), expected, "{sql}");
        }
    }

    #[test]
    fn leading_words_stop_at_literals() {
        let sql = "  SET  SESSION a.b = 'x y' -- c";
        let words: Vec<_> = leading_words(sql, 10).into_iter().map(|(w, _)| w).collect();
        assert_eq!(words, ["SET", "SESSION", "a.b", "="]);
        let (_, range) = &leading_words(sql, 2)[1];
        assert_eq!(&sql[range.clone()], "SESSION");
        let words: Vec<_> = leading_words("-- why\nRESET /* x */ SESSION a", 9)
            .into_iter()
            .map(|(w, _)| w)
            .collect();
        assert_eq!(words, ["RESET", "SESSION", "a"]);
    }
}
