//! The `raw` decoder: fixed byte ranges of the record (`mapping` = `start[:end]`), read as
//! big-endian `BYTE`, `SHORT`, `INT`, `LONG`, `FLOAT` or `DOUBLE` (`dataFormat`, default `BYTE`),
//! or as text / bytes for `varchar` / `varbinary` fields (to the end of the record without an
//! `end`).

use super::Value;
use crate::description::FieldDescription;
use crate::types::FieldType;

#[derive(Debug, Clone)]
pub struct RawDecoder {
    fields: Vec<RawField>,
}

#[derive(Debug, Clone)]
struct RawField {
    name: String,
    start: usize,
    /// Exclusive; `None`: the end of the record.
    end: Option<usize>,
    format: Option<RawFormat>,
}

/// How a number is stored; `None` on a field means text or bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum RawFormat {
    Byte,
    Short,
    Int,
    Long,
    Float,
    Double,
}

impl RawFormat {
    fn width(self) -> usize {
        match self {
            RawFormat::Byte => 1,
            RawFormat::Short => 2,
            RawFormat::Int | RawFormat::Float => 4,
            RawFormat::Long | RawFormat::Double => 8,
        }
    }
}

impl RawDecoder {
    pub fn new(fields: &[FieldDescription]) -> Result<Self, String> {
        Ok(Self {
            fields: super::per_field(fields, RawField::new)?,
        })
    }

    pub fn decode<'a>(&self, bytes: &'a [u8], out: &mut Vec<Value<'a>>) -> Result<(), String> {
        for field in &self.fields {
            out.push(field.read(bytes)?);
        }
        Ok(())
    }

    /// The record holding `values` (one per field) at the fields' byte ranges; bytes no field
    /// covers are zero. A NULL cannot be written in raw.
    pub fn encode(&self, values: &[Value<'_>]) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        for (field, value) in self.fields.iter().zip(values) {
            let bytes: Vec<u8> = match (field.format, value) {
                (_, Value::Null) => {
                    return Err(format!("field '{}' is NULL: raw has no NULL", field.name));
                }
                (None, Value::Text(text)) => text.as_bytes().to_vec(),
                (None, Value::Bytes(bytes)) => bytes.to_vec(),
                (Some(format), Value::Int(i)) => {
                    let width = format.width();
                    let fits = match format {
                        RawFormat::Byte => i8::try_from(*i).is_ok(),
                        RawFormat::Short => i16::try_from(*i).is_ok(),
                        RawFormat::Int => i32::try_from(*i).is_ok(),
                        _ => true,
                    };
                    if !fits {
                        return Err(format!(
                            "field '{}': {i} does not fit raw {format:?}",
                            field.name
                        ));
                    }
                    i.to_be_bytes()[8 - width..].to_vec()
                }
                (Some(RawFormat::Float), Value::Float(f)) => (*f as f32).to_be_bytes().to_vec(),
                (Some(RawFormat::Double), Value::Float(f)) => f.to_be_bytes().to_vec(),
                (_, other) => {
                    return Err(format!(
                        "field '{}': {other:?} cannot be written as raw",
                        field.name
                    ));
                }
            };
            if let Some(end) = field.end
                && end - field.start != bytes.len()
            {
                return Err(format!(
                    "field '{}' has {} bytes for its {} bytes {}..{end}",
                    field.name,
                    bytes.len(),
                    end - field.start,
                    field.start
                ));
            }
            let end = field.start + bytes.len();
            if out.len() < end {
                out.resize(end, 0);
            }
            out[field.start..end].copy_from_slice(&bytes);
        }
        Ok(out)
    }
}

impl RawField {
    fn new(field: &FieldDescription) -> Result<Self, String> {
        let text = matches!(field.field_type, FieldType::Varchar | FieldType::Varbinary);
        let format = match field.data_format.as_deref().map(str::to_ascii_uppercase) {
            None => RawFormat::Byte,
            Some(f) => match f.as_str() {
                "BYTE" => RawFormat::Byte,
                "SHORT" => RawFormat::Short,
                "INT" => RawFormat::Int,
                "LONG" => RawFormat::Long,
                "FLOAT" => RawFormat::Float,
                "DOUBLE" => RawFormat::Double,
                other => {
                    return Err(format!(
                        "dataFormat '{other}' is not one of BYTE, SHORT, INT, LONG, FLOAT, DOUBLE"
                    ));
                }
            },
        };
        let fits = match field.field_type {
            FieldType::Varchar | FieldType::Varbinary => format == RawFormat::Byte,
            FieldType::Real | FieldType::Double => {
                matches!(format, RawFormat::Float | RawFormat::Double)
            }
            FieldType::Boolean
            | FieldType::TinyInt
            | FieldType::SmallInt
            | FieldType::Integer
            | FieldType::BigInt => !matches!(format, RawFormat::Float | RawFormat::Double),
            _ => false,
        };
        if !fits {
            return Err(format!(
                "a {} field cannot be read as raw {format:?}",
                field.field_type
            ));
        }
        let (start, end) = match field.mapping.as_deref() {
            None => (0, None),
            Some(mapping) => match mapping.split_once(':') {
                Some((start, end)) => (number(start)?, Some(number(end)?)),
                None => (number(mapping)?, None),
            },
        };
        if text {
            return Ok(Self {
                name: field.name.clone(),
                start,
                end,
                format: None,
            });
        }
        let width = format.width();
        if let Some(end) = end
            && end != start + width
        {
            return Err(format!(
                "mapping {start}:{end} is not the {width} bytes of a {format:?}"
            ));
        }
        Ok(Self {
            name: field.name.clone(),
            start,
            end: Some(start + width),
            format: Some(format),
        })
    }

    fn read<'a>(&self, bytes: &'a [u8]) -> Result<Value<'a>, String> {
        let end = self.end.unwrap_or(bytes.len());
        let slice = bytes.get(self.start..end).ok_or_else(|| {
            format!(
                "a record of {} bytes has no bytes {}..{} for field '{}'",
                bytes.len(),
                self.start,
                end,
                self.name
            )
        })?;
        let Some(format) = self.format else {
            return Ok(Value::Bytes(slice));
        };
        let mut be = [0u8; 8];
        be[8 - slice.len()..].copy_from_slice(slice);
        Ok(match format {
            RawFormat::Byte => Value::Int(i8::from_be_bytes([slice[0]]).into()),
            RawFormat::Short => Value::Int(i16::from_be_bytes([slice[0], slice[1]]).into()),
            RawFormat::Int => {
                Value::Int(i32::from_be_bytes([slice[0], slice[1], slice[2], slice[3]]).into())
            }
            RawFormat::Long => Value::Int(i64::from_be_bytes(be)),
            RawFormat::Float => {
                Value::Float(f32::from_be_bytes([slice[0], slice[1], slice[2], slice[3]]).into())
            }
            RawFormat::Double => Value::Float(f64::from_be_bytes(be)),
        })
    }
}

fn number(text: &str) -> Result<usize, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("mapping position '{text}' is not a byte offset"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(
        name: &str,
        field_type: FieldType,
        format: Option<&str>,
        mapping: Option<&str>,
    ) -> FieldDescription {
        FieldDescription {
            name: name.into(),
            field_type,
            mapping: mapping.map(Into::into),
            data_format: format.map(Into::into),
            format_hint: None,
            hidden: false,
            comment: None,
        }
    }

    #[test]
    fn numbers_and_text_at_their_offsets() {
        let decoder = RawDecoder::new(&[
            field("id", FieldType::BigInt, Some("LONG"), Some("0")),
            field("qty", FieldType::Integer, Some("SHORT"), Some("8:10")),
            field("price", FieldType::Double, Some("DOUBLE"), Some("10")),
            field("flag", FieldType::Boolean, None, Some("18")),
            field("note", FieldType::Varchar, None, Some("19")),
        ])
        .expect("decoder");
        let mut record = Vec::new();
        record.extend_from_slice(&(-7i64).to_be_bytes());
        record.extend_from_slice(&300i16.to_be_bytes());
        record.extend_from_slice(&2.5f64.to_be_bytes());
        record.push(1);
        record.extend_from_slice("O'Brien".as_bytes());
        let mut out = Vec::new();
        decoder.decode(&record, &mut out).expect("decode");
        assert_eq!(
            out,
            [
                Value::Int(-7),
                Value::Int(300),
                Value::Float(2.5),
                Value::Int(1),
                Value::Bytes(b"O'Brien"),
            ]
        );
        let error = decoder.decode(&record[..9], &mut out).expect_err("short");
        assert!(
            error.contains("a record of 9 bytes has no bytes 8..10 for field 'qty'"),
            "{error}"
        );
    }

    #[test]
    fn formats_that_do_not_fit_are_refused() {
        for (f, expected) in [
            (
                field("a", FieldType::BigInt, Some("LONG"), Some("0:4")),
                "not the 8 bytes of a Long",
            ),
            (
                field("a", FieldType::BigInt, Some("DOUBLE"), None),
                "cannot be read as raw Double",
            ),
            (
                field("a", FieldType::Varchar, Some("INT"), None),
                "cannot be read as raw Int",
            ),
            (
                field("a", FieldType::BigInt, Some("QUAD"), None),
                "dataFormat 'QUAD'",
            ),
        ] {
            let error = RawDecoder::new(&[f]).expect_err(expected);
            assert!(
                error.starts_with("field 'a': ") && error.contains(expected),
                "{error}"
            );
        }
    }
}
