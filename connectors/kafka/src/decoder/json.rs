//! The `json` decoder: a record is one JSON object; `mapping` is the path of a field's value
//! (`order/customer/name`, a number indexes an array). Dates and times say how they are
//! written in `dataFormat`: `iso8601`, `rfc2822`, `custom-date-time` (with a Joda-style
//! `formatHint` such as `yyyy-MM-dd HH:mm:ss`), `milliseconds-since-epoch`,
//! `seconds-since-epoch`. A missing value is NULL; a record that is no JSON is corrupt.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use serde_json::Value as Json;

use super::Value;
use crate::description::FieldDescription;
use crate::types::FieldType;

#[derive(Debug, Clone)]
pub struct JsonDecoder {
    fields: Vec<JsonField>,
}

#[derive(Debug, Clone)]
struct JsonField {
    name: String,
    path: Vec<String>,
    field_type: FieldType,
    time_format: Option<TimeFormat>,
}

/// How a date or time is written.
#[derive(Debug, Clone, PartialEq)]
enum TimeFormat {
    Iso8601,
    Rfc2822,
    /// A chrono pattern, translated from the description's Joda-style hint.
    Custom(String),
    MillisecondsSinceEpoch,
    SecondsSinceEpoch,
}

impl JsonDecoder {
    pub fn new(fields: &[FieldDescription]) -> Result<Self, String> {
        Ok(Self {
            fields: super::per_field(fields, JsonField::new)?,
        })
    }

    pub fn decode<'a>(&self, bytes: &'a [u8], out: &mut Vec<Value<'a>>) -> Result<(), String> {
        let record: Json =
            serde_json::from_slice(bytes).map_err(|e| format!("the record is no JSON: {e}"))?;
        for field in &self.fields {
            let value = field
                .path
                .iter()
                .try_fold(&record, |node, step| match node {
                    Json::Object(map) => map.get(step),
                    Json::Array(items) => step.parse::<usize>().ok().and_then(|i| items.get(i)),
                    _ => None,
                })
                .unwrap_or(&Json::Null);
            out.push(field.value(value)?);
        }
        Ok(())
    }
}

impl JsonDecoder {
    /// One JSON object with each value at its field's path (objects made on the way);
    /// dates and times written in the field's `dataFormat` (ISO 8601 without one).
    pub fn encode(&self, values: &[Value<'_>]) -> Result<Vec<u8>, String> {
        let mut record = Json::Object(serde_json::Map::new());
        for (field, value) in self.fields.iter().zip(values) {
            let json = field.json(value)?;
            let (last, parents) = field.path.split_last().ok_or("an empty mapping")?;
            let mut node = &mut record;
            for step in parents {
                let Json::Object(map) = node else {
                    return Err(format!("field '{}': mapping crosses a value", field.name));
                };
                node = map
                    .entry(step.clone())
                    .or_insert_with(|| Json::Object(serde_json::Map::new()));
            }
            let Json::Object(map) = node else {
                return Err(format!("field '{}': mapping crosses a value", field.name));
            };
            map.insert(last.clone(), json);
        }
        serde_json::to_vec(&record).map_err(|e| e.to_string())
    }
}

impl JsonField {
    /// `value` as this field writes it.
    fn json(&self, value: &Value<'_>) -> Result<Json, String> {
        let millis = match value {
            Value::Null => return Ok(Json::Null),
            Value::Bool(b) => return Ok(Json::Bool(*b)),
            Value::Int(i) => return Ok(Json::from(*i)),
            Value::Float(f) => return Ok(Json::from(*f)),
            Value::Text(t) => return Ok(Json::String(t.to_string())),
            Value::Bytes(_) => {
                return Err(format!("field '{}': bytes have no JSON form", self.name));
            }
            Value::Date(days) => i64::from(*days) * 86_400_000,
            Value::Time(ms) => i64::from(*ms),
            Value::Timestamp(ms) => *ms,
        };
        let format = self.time_format.as_ref().unwrap_or(&TimeFormat::Iso8601);
        let at = DateTime::from_timestamp_millis(millis)
            .ok_or_else(|| format!("field '{}': {millis} ms is out of range", self.name))?;
        Ok(match format {
            TimeFormat::MillisecondsSinceEpoch => Json::from(millis),
            TimeFormat::SecondsSinceEpoch => Json::from(millis.div_euclid(1000)),
            TimeFormat::Rfc2822 => Json::String(at.to_rfc2822()),
            TimeFormat::Custom(pattern) => Json::String(at.naive_utc().format(pattern).to_string()),
            TimeFormat::Iso8601 => Json::String(match value {
                Value::Date(_) => at.format("%Y-%m-%d").to_string(),
                Value::Time(_) => at.format("%H:%M:%S%.3f").to_string(),
                _ if self.field_type == FieldType::Timestamp => {
                    at.naive_utc().format("%Y-%m-%dT%H:%M:%S%.3f").to_string()
                }
                _ => at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            }),
        })
    }

    fn new(field: &FieldDescription) -> Result<Self, String> {
        let mapping = field.mapping.as_deref().unwrap_or_default();
        let path: Vec<String> = mapping.split('/').map(str::to_string).collect();
        let temporal = field.field_type.is_temporal();
        let time_format = match (field.data_format.as_deref(), temporal) {
            (None, false) => None,
            (None, true) => {
                return Err(format!(
                    "a {} needs a 'dataFormat' (iso8601, rfc2822, custom-date-time, milliseconds-since-epoch, seconds-since-epoch)",
                    field.field_type
                ));
            }
            (Some(format), _) => {
                let format = match format {
                    "iso8601" => TimeFormat::Iso8601,
                    "rfc2822" => TimeFormat::Rfc2822,
                    "milliseconds-since-epoch" => TimeFormat::MillisecondsSinceEpoch,
                    "seconds-since-epoch" => TimeFormat::SecondsSinceEpoch,
                    "custom-date-time" => {
                        let hint = field.format_hint.as_deref().ok_or(
                            "custom-date-time needs a 'formatHint' (yyyy-MM-dd HH:mm:ss, ...)",
                        )?;
                        TimeFormat::Custom(chrono_pattern(hint)?)
                    }
                    other => return Err(format!("unknown dataFormat '{other}'")),
                };
                if !temporal {
                    return Err(format!(
                        "dataFormat '{}' is for dates and times, not {}",
                        field.data_format.as_deref().unwrap_or_default(),
                        field.field_type
                    ));
                }
                Some(format)
            }
        };
        Ok(Self {
            name: field.name.clone(),
            path,
            field_type: field.field_type,
            time_format,
        })
    }

    fn value<'a>(&self, json: &Json) -> Result<Value<'a>, String> {
        if json.is_null() {
            return Ok(Value::Null);
        }
        let Some(format) = &self.time_format else {
            return Ok(match json {
                Json::Bool(b) => Value::Bool(*b),
                Json::Number(n) => match n.as_i64() {
                    Some(i) => Value::Int(i),
                    None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
                },
                Json::String(s) => Value::Text(Cow::Owned(s.clone())),
                other if self.field_type == FieldType::Varchar => {
                    Value::Text(Cow::Owned(other.to_string()))
                }
                other => return Err(format!("{other} is no {}", self.field_type)),
            });
        };
        let bad = || {
            format!(
                "'{json}' is no {} in {format:?} for field '{}'",
                self.field_type, self.name
            )
        };
        let millis = match format {
            TimeFormat::MillisecondsSinceEpoch | TimeFormat::SecondsSinceEpoch => {
                let number = match json {
                    Json::Number(n) => n.as_i64(),
                    Json::String(s) => s.trim().parse().ok(),
                    _ => None,
                }
                .ok_or_else(bad)?;
                if *format == TimeFormat::SecondsSinceEpoch {
                    number.checked_mul(1000).ok_or_else(bad)?
                } else {
                    number
                }
            }
            TimeFormat::Iso8601 | TimeFormat::Rfc2822 | TimeFormat::Custom(_) => {
                let text = json.as_str().ok_or_else(bad)?;
                return self.parse_text(text, format).ok_or_else(bad);
            }
        };
        Ok(match self.field_type {
            FieldType::Date => Value::Date(millis.div_euclid(86_400_000) as i32),
            FieldType::Time => Value::Time(millis.rem_euclid(86_400_000) as i32),
            _ => Value::Timestamp(millis),
        })
    }

    /// A date or time written as text.
    fn parse_text<'a>(&self, text: &str, format: &TimeFormat) -> Option<Value<'a>> {
        let text = text.trim();
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
        let of_time = |t: NaiveTime| {
            Value::Time((t.num_seconds_from_midnight() * 1000 + t.nanosecond() / 1_000_000) as i32)
        };
        let of_datetime = |dt: NaiveDateTime| match self.field_type {
            FieldType::Date => Value::Date((dt.date() - epoch).num_days() as i32),
            FieldType::Time => of_time(dt.time()),
            _ => Value::Timestamp(dt.and_utc().timestamp_millis()),
        };
        match format {
            TimeFormat::Iso8601 => match self.field_type {
                FieldType::Date => NaiveDate::parse_from_str(text, "%Y-%m-%d")
                    .ok()
                    .map(|d| Value::Date((d - epoch).num_days() as i32))
                    .or_else(|| {
                        DateTime::parse_from_rfc3339(text)
                            .ok()
                            .map(|dt| of_datetime(dt.naive_utc()))
                    }),
                FieldType::Time => NaiveTime::parse_from_str(text, "%H:%M:%S%.f")
                    .ok()
                    .map(of_time),
                _ => DateTime::parse_from_rfc3339(text)
                    .map(|dt| dt.naive_utc())
                    .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f"))
                    .ok()
                    .map(of_datetime),
            },
            TimeFormat::Rfc2822 => DateTime::parse_from_rfc2822(text)
                .ok()
                .map(|dt| of_datetime(dt.naive_utc())),
            TimeFormat::Custom(pattern) => NaiveDateTime::parse_from_str(text, pattern)
                .ok()
                .or_else(|| {
                    NaiveDate::parse_from_str(text, pattern)
                        .ok()
                        .and_then(|d| d.and_hms_opt(0, 0, 0))
                })
                .map(of_datetime),
            TimeFormat::MillisecondsSinceEpoch | TimeFormat::SecondsSinceEpoch => None,
        }
    }
}

/// A Joda-style pattern (`yyyy-MM-dd HH:mm:ss.SSS`) as a chrono pattern; letters chrono has
/// no equivalent for are refused.
fn chrono_pattern(joda: &str) -> Result<String, String> {
    let mut out = String::new();
    let chars: Vec<char> = joda.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let run = chars[i..].iter().take_while(|&&x| x == c).count();
        if c.is_ascii_alphabetic() {
            let piece = match (c, run) {
                ('y', 2) => "%y",
                ('y', _) => "%Y",
                ('M', 1 | 2) => "%m",
                ('M', 3) => "%b",
                ('M', _) => "%B",
                ('d', _) => "%d",
                ('H', _) => "%H",
                ('h', _) => "%I",
                ('m', _) => "%M",
                ('s', _) => "%S",
                ('S', _) => "%3f",
                ('a', _) => "%p",
                ('Z', _) => "%z",
                ('E', 1..=3) => "%a",
                ('E', _) => "%A",
                _ => return Err(format!("formatHint '{joda}': '{c}' is not supported")),
            };
            out.push_str(piece);
        } else if c == '\'' {
            // A quoted literal.
            let end = chars[i + 1..]
                .iter()
                .position(|&x| x == '\'')
                .ok_or_else(|| format!("formatHint '{joda}': a quote is not closed"))?;
            out.extend(chars[i + 1..i + 1 + end].iter());
            i += end + 2;
            continue;
        } else if c == '%' {
            out.push_str(&"%%".repeat(run));
        } else {
            out.extend(std::iter::repeat_n(c, run));
        }
        i += run;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(
        name: &str,
        field_type: FieldType,
        mapping: &str,
        format: Option<&str>,
        hint: Option<&str>,
    ) -> FieldDescription {
        FieldDescription {
            name: name.into(),
            field_type,
            mapping: Some(mapping.into()),
            data_format: format.map(Into::into),
            format_hint: hint.map(Into::into),
            hidden: false,
            comment: None,
        }
    }

    #[test]
    fn paths_types_and_time_formats() {
        let decoder = JsonDecoder::new(&[
            field("id", FieldType::BigInt, "id", None, None),
            field("name", FieldType::Varchar, "customer/name", None, None),
            field("first", FieldType::Double, "items/0/price", None, None),
            field("missing", FieldType::Integer, "customer/age", None, None),
            field("at", FieldType::Timestamp, "at", Some("iso8601"), None),
            field("day", FieldType::Date, "day", Some("iso8601"), None),
            field("mail", FieldType::Timestamp, "mail", Some("rfc2822"), None),
            field(
                "ms",
                FieldType::Timestamp,
                "ms",
                Some("milliseconds-since-epoch"),
                None,
            ),
            field("s", FieldType::Date, "s", Some("seconds-since-epoch"), None),
            field(
                "custom",
                FieldType::Timestamp,
                "custom",
                Some("custom-date-time"),
                Some("dd/MM/yyyy HH:mm"),
            ),
            field("clock", FieldType::Time, "clock", Some("iso8601"), None),
        ])
        .expect("decoder");
        let record = br#"{"id": 7, "customer": {"name": "O'Brien"}, "items": [{"price": 2.5}],
            "at": "2024-02-29T13:45:10.5Z", "day": "2024-02-29",
            "mail": "Thu, 29 Feb 2024 13:45:10 +0100", "ms": 1709214310500, "s": "86400",
            "custom": "29/02/2024 13:45", "clock": "13:45:10.5"}"#;
        let mut out = Vec::new();
        decoder.decode(record, &mut out).expect("decode");
        assert_eq!(
            out,
            [
                Value::Int(7),
                Value::Text("O'Brien".into()),
                Value::Float(2.5),
                Value::Null,
                Value::Timestamp(1_709_214_310_500),
                Value::Date(19_782),
                Value::Timestamp(1_709_210_710_000),
                Value::Timestamp(1_709_214_310_500),
                Value::Date(1),
                Value::Timestamp(1_709_214_300_000),
                Value::Time(49_510_500),
            ]
        );
        let error = decoder.decode(b"{\"id\": ", &mut out).expect_err("no JSON");
        assert!(error.contains("no JSON"), "{error}");
        let error = decoder
            .decode(br#"{"at": "yesterday"}"#, &mut out)
            .expect_err("bad date");
        assert!(
            error.contains("'\"yesterday\"' is no timestamp(3)"),
            "{error}"
        );
    }

    #[test]
    fn descriptions_that_cannot_decode_are_refused() {
        for (f, expected) in [
            (
                field("t", FieldType::Timestamp, "t", None, None),
                "needs a 'dataFormat'",
            ),
            (
                field("t", FieldType::BigInt, "t", Some("iso8601"), None),
                "is for dates and times",
            ),
            (
                field("t", FieldType::Date, "t", Some("julian"), None),
                "unknown dataFormat 'julian'",
            ),
            (
                field("t", FieldType::Date, "t", Some("custom-date-time"), None),
                "needs a 'formatHint'",
            ),
            (
                field(
                    "t",
                    FieldType::Date,
                    "t",
                    Some("custom-date-time"),
                    Some("yyyy-ww"),
                ),
                "'w' is not supported",
            ),
        ] {
            let error = JsonDecoder::new(&[f]).expect_err(expected);
            assert!(
                error.starts_with("field 't': ") && error.contains(expected),
                "{error}"
            );
        }
        assert_eq!(
            chrono_pattern("yyyy-MM-dd'T'HH:mm:ss.SSS").unwrap(),
            "%Y-%m-%dT%H:%M:%S.%3f"
        );
    }
}
