//! The `csv` decoder: a record is one line of comma-separated values, `"`-quoted with `""`
//! for a quote inside; `mapping` is the column index. A missing column or an empty value is
//! NULL (an empty `varchar` is the empty string).

use std::borrow::Cow;

use super::Value;
use crate::description::FieldDescription;
use crate::types::FieldType;

#[derive(Debug, Clone)]
pub struct CsvDecoder {
    /// Per field: its column index and whether it is text.
    fields: Vec<(usize, bool)>,
}

impl CsvDecoder {
    pub fn new(fields: &[FieldDescription]) -> Result<Self, String> {
        let fields = super::per_field(fields, |field| {
            let index = field
                .mapping
                .as_deref()
                .and_then(|m| m.trim().parse::<usize>().ok())
                .ok_or("mapping is no column index")?;
            if field.field_type.is_temporal() {
                return Err(format!(
                    "the csv decoder reads no {} (use json or avro)",
                    field.field_type
                ));
            }
            Ok((index, field.field_type == FieldType::Varchar))
        })?;
        Ok(Self { fields })
    }

    /// One CSV line with each value at its field's column; quoted where needed.
    pub fn encode(&self, values: &[Value<'_>]) -> Result<Vec<u8>, String> {
        let width = self
            .fields
            .iter()
            .map(|&(index, _)| index + 1)
            .max()
            .unwrap_or(0);
        let mut columns = vec![String::new(); width];
        for (&(index, _), value) in self.fields.iter().zip(values) {
            columns[index] = match value {
                Value::Null => String::new(),
                Value::Bool(b) => b.to_string(),
                Value::Int(i) => i.to_string(),
                Value::Float(f) => f.to_string(),
                Value::Text(t) => t.to_string(),
                other => return Err(format!("{other:?} cannot be written as csv")),
            };
        }
        let quoted: Vec<String> = columns
            .into_iter()
            .map(|c| {
                if c.contains([',', '"', '\n', '\r']) {
                    format!("\"{}\"", c.replace('"', "\"\""))
                } else {
                    c
                }
            })
            .collect();
        Ok(quoted.join(",").into_bytes())
    }

    pub fn decode<'a>(&self, bytes: &'a [u8], out: &mut Vec<Value<'a>>) -> Result<(), String> {
        let line = std::str::from_utf8(bytes).map_err(|_| "the record is not UTF-8 text")?;
        let columns = split(line.trim_end_matches(['\r', '\n']))?;
        for &(index, text) in &self.fields {
            out.push(match columns.get(index) {
                Some(value) if !value.is_empty() || text => Value::Text(value.clone()),
                _ => Value::Null,
            });
        }
        Ok(())
    }
}

/// The values of one CSV line.
fn split(line: &str) -> Result<Vec<Cow<'_, str>>, String> {
    let mut values = Vec::new();
    let mut rest = line;
    loop {
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let after = loop {
                match chars.next() {
                    Some((i, '"')) => {
                        if quoted[i + 1..].starts_with('"') {
                            value.push('"');
                            chars.next();
                        } else {
                            break &quoted[i + 1..];
                        }
                    }
                    Some((_, c)) => value.push(c),
                    None => return Err("a quoted value is not closed".into()),
                }
            };
            values.push(Cow::Owned(value));
            match after.strip_prefix(',') {
                Some(next) => rest = next,
                None if after.is_empty() => return Ok(values),
                None => return Err("text after a closing quote".into()),
            }
        } else {
            match rest.split_once(',') {
                Some((value, next)) => {
                    values.push(Cow::Borrowed(value));
                    rest = next;
                }
                None => {
                    values.push(Cow::Borrowed(rest));
                    return Ok(values);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::decoder::test_field as field;

    #[test]
    fn quoted_values_missing_columns_and_empty_values() {
        let decoder = CsvDecoder::new(&[
            field("id", FieldType::BigInt, "0"),
            field("name", FieldType::Varchar, "1"),
            field("note", FieldType::Varchar, "2"),
            field("qty", FieldType::Integer, "3"),
            field("extra", FieldType::Integer, "9"),
        ])
        .expect("decoder");
        let mut out = Vec::new();
        decoder
            .decode(b"7,\"O'Brien, \"\"Jr\"\"\",,\n", &mut out)
            .expect("decode");
        assert_eq!(
            out,
            [
                Value::Text("7".into()),
                Value::Text("O'Brien, \"Jr\"".into()),
                Value::Text("".into()),
                Value::Null,
                Value::Null,
            ]
        );
        assert!(decoder.decode(b"1,\"open", &mut out).is_err());
        assert!(decoder.decode(b"1,\"a\"b", &mut out).is_err());
        assert!(decoder.decode(&[0xff, 0xfe], &mut out).is_err());
    }
}
