//! Arrow values as Trino's client protocol writes them: each column's Trino type name and
//! `typeSignature`, and each value in JSON the way Trino encodes that type (decimals, dates and
//! times as strings in Trino's formats, `varbinary` in base64, arrays and rows as JSON arrays,
//! maps as JSON objects, non-finite floats as `"NaN"` / `"Infinity"`).

use std::sync::Arc;

use arrow::array::timezone::Tz;
use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, GenericListArray, OffsetSizeTrait, RecordBatch,
};
use arrow::datatypes::{
    ArrowTemporalType, DataType, Date32Type, Date64Type, DurationMicrosecondType,
    DurationMillisecondType, DurationNanosecondType, DurationSecondType, Field, Float16Type,
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, IntervalUnit,
    Time32MillisecondType, Time32SecondType, Time64MicrosecondType, Time64NanosecondType, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow::temporal_conversions::{as_datetime, as_datetime_with_timezone};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use base64::Engine as _;
use chrono::{NaiveDateTime, NaiveTime, Timelike};
use datafusion::error::Result;
use serde::Serialize;
use serde_json::{Map, Value, json};

use braid_connector_spi::char_length;

use crate::trino::{trino_field_type, trino_type};

/// A result column as the protocol describes it.
#[derive(Debug, Clone, Serialize)]
pub struct Column {
    pub name: String,
    /// Trino's type name: `varchar`, `decimal(12,2)`, `array(bigint)`.
    #[serde(rename = "type")]
    pub type_name: String,
    #[serde(rename = "typeSignature")]
    pub type_signature: Value,
}

impl Column {
    pub fn of(field: &Field) -> Self {
        let type_signature = match char_length(field) {
            Some(length) => json!({"rawType": "char", "arguments": [
                {"kind": "LONG", "value": length},
            ]}),
            None => type_signature(field.data_type()),
        };
        Self {
            name: field.name().clone(),
            type_name: trino_field_type(field),
            type_signature,
        }
    }
}

/// Trino's `typeSignature` of an Arrow type: the raw type name and its arguments (lengths,
/// precisions, element types, named fields).
pub fn type_signature(data_type: &DataType) -> Value {
    let long = |value: i64| json!({"kind": "LONG", "value": value});
    let of_type =
        |data_type: &DataType| json!({"kind": "TYPE", "value": type_signature(data_type)});
    let (raw, arguments): (&str, Vec<Value>) = match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            ("varchar", vec![long(i64::from(i32::MAX))])
        }
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s) => ("decimal", vec![long((*p).into()), long((*s).into())]),
        DataType::UInt64 => ("decimal", vec![long(20), long(0)]),
        DataType::Time32(unit) | DataType::Time64(unit) => ("time", vec![long(precision(unit))]),
        DataType::Timestamp(unit, None) => ("timestamp", vec![long(precision(unit))]),
        DataType::Timestamp(unit, Some(_)) => {
            ("timestamp with time zone", vec![long(precision(unit))])
        }
        DataType::Interval(IntervalUnit::YearMonth) => ("interval year to month", vec![]),
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::ListView(f)
        | DataType::LargeListView(f)
        | DataType::FixedSizeList(f, _) => ("array", vec![of_type(f.data_type())]),
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => (
                "map",
                vec![of_type(kv[0].data_type()), of_type(kv[1].data_type())],
            ),
            _ => ("map", vec![]),
        },
        DataType::Struct(fields) => (
            "row",
            fields
                .iter()
                .map(|f| {
                    json!({"kind": "NAMED_TYPE", "value": {
                        "fieldName": {"name": f.name()},
                        "typeSignature": type_signature(f.data_type()),
                    }})
                })
                .collect(),
        ),
        DataType::Dictionary(_, value) => return type_signature(value),
        other => {
            let name = trino_type(other);
            return json!({"rawType": name, "arguments": []});
        }
    };
    json!({"rawType": raw, "arguments": arguments})
}

fn precision(unit: &TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 3,
        TimeUnit::Microsecond => 6,
        TimeUnit::Nanosecond => 9,
    }
}

/// Appends the rows of `batch` to `out` as JSON arrays separated by commas (`[1,"a"],[2,"b"]`),
/// each value encoded as Trino encodes its type. `char_lengths` has the `n` of each `char(n)`
/// column (see [`char_length`]), whose values Trino pads with spaces to `n` characters.
pub fn write_rows(
    batch: &RecordBatch,
    char_lengths: &[Option<usize>],
    out: &mut String,
) -> Result<()> {
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|c| match c.data_type() {
            // Dictionaries are written as their values.
            DataType::Dictionary(_, value) => arrow::compute::cast(c, value),
            _ => Ok(c.clone()),
        })
        .collect::<std::result::Result<_, _>>()?;
    for row in 0..batch.num_rows() {
        let values: Vec<Value> = columns
            .iter()
            .enumerate()
            .map(
                |(i, column)| match (value(column, row)?, char_lengths.get(i)) {
                    (Value::String(text), Some(Some(length))) => {
                        Ok(Value::String(padded(text, *length)))
                    }
                    (other, _) => Ok(other),
                },
            )
            .collect::<Result<_>>()?;
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(&Value::Array(values).to_string());
    }
    Ok(())
}

/// `text` padded with spaces to `length` characters, as Trino writes a `char(length)` value.
fn padded(mut text: String, length: usize) -> String {
    let missing = length.saturating_sub(text.chars().count());
    text.extend(std::iter::repeat_n(' ', missing));
    text
}

/// The value at `row` of `array` in Trino's JSON encoding.
pub fn value(array: &ArrayRef, row: usize) -> Result<Value> {
    if array.is_null(row) {
        return Ok(Value::Null);
    }
    Ok(match array.data_type() {
        DataType::Null => Value::Null,
        DataType::Boolean => {
            let array: &BooleanArray = array.as_boolean();
            Value::Bool(array.value(row))
        }
        DataType::Int8 => array.as_primitive::<Int8Type>().value(row).into(),
        DataType::Int16 => array.as_primitive::<Int16Type>().value(row).into(),
        DataType::Int32 => array.as_primitive::<Int32Type>().value(row).into(),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(row).into(),
        DataType::UInt8 => array.as_primitive::<UInt8Type>().value(row).into(),
        DataType::UInt16 => array.as_primitive::<UInt16Type>().value(row).into(),
        DataType::UInt32 => array.as_primitive::<UInt32Type>().value(row).into(),
        // decimal(20,0): a string, as every decimal.
        DataType::UInt64 => array
            .as_primitive::<UInt64Type>()
            .value(row)
            .to_string()
            .into(),
        DataType::Float16 => float(array.as_primitive::<Float16Type>().value(row).to_f64()),
        DataType::Float32 => float(array.as_primitive::<Float32Type>().value(row).into()),
        DataType::Float64 => float(array.as_primitive::<Float64Type>().value(row)),
        DataType::Utf8 => array.as_string::<i32>().value(row).into(),
        DataType::LargeUtf8 => array.as_string::<i64>().value(row).into(),
        DataType::Utf8View => array.as_string_view().value(row).into(),
        DataType::Binary => base64(array.as_binary::<i32>().value(row)),
        DataType::LargeBinary => base64(array.as_binary::<i64>().value(row)),
        DataType::BinaryView => base64(array.as_binary_view().value(row)),
        DataType::FixedSizeBinary(_) => base64(array.as_fixed_size_binary().value(row)),
        DataType::Date32 => date(as_datetime::<Date32Type>(
            array.as_primitive::<Date32Type>().value(row).into(),
        )),
        DataType::Date64 => date(as_datetime::<Date64Type>(
            array.as_primitive::<Date64Type>().value(row),
        )),
        DataType::Time32(TimeUnit::Second) => time_value::<Time32SecondType>(array, row, 0),
        DataType::Time32(_) => time_value::<Time32MillisecondType>(array, row, 3),
        DataType::Time64(TimeUnit::Microsecond) => {
            time_value::<Time64MicrosecondType>(array, row, 6)
        }
        DataType::Time64(_) => time_value::<Time64NanosecondType>(array, row, 9),
        DataType::Timestamp(unit, zone) => {
            let zone = zone.as_deref();
            match unit {
                TimeUnit::Second => timestamp::<TimestampSecondType>(array, row, 0, zone)?,
                TimeUnit::Millisecond => {
                    timestamp::<TimestampMillisecondType>(array, row, 3, zone)?
                }
                TimeUnit::Microsecond => {
                    timestamp::<TimestampMicrosecondType>(array, row, 6, zone)?
                }
                TimeUnit::Nanosecond => timestamp::<TimestampNanosecondType>(array, row, 9, zone)?,
            }
        }
        DataType::Duration(unit) => {
            let nanos = match unit {
                TimeUnit::Second => {
                    i128::from(array.as_primitive::<DurationSecondType>().value(row))
                        * 1_000_000_000
                }
                TimeUnit::Millisecond => {
                    i128::from(array.as_primitive::<DurationMillisecondType>().value(row))
                        * 1_000_000
                }
                TimeUnit::Microsecond => {
                    i128::from(array.as_primitive::<DurationMicrosecondType>().value(row)) * 1_000
                }
                TimeUnit::Nanosecond => {
                    i128::from(array.as_primitive::<DurationNanosecondType>().value(row))
                }
            };
            day_to_second(nanos)
        }
        DataType::Interval(IntervalUnit::YearMonth) => {
            let months = array
                .as_primitive::<arrow::datatypes::IntervalYearMonthType>()
                .value(row);
            let sign = if months < 0 { "-" } else { "" };
            let months = months.unsigned_abs();
            format!("{sign}{}-{}", months / 12, months % 12).into()
        }
        DataType::Interval(IntervalUnit::DayTime) => {
            let value = array
                .as_primitive::<arrow::datatypes::IntervalDayTimeType>()
                .value(row);
            day_to_second(
                i128::from(value.days) * NANOS_PER_DAY + i128::from(value.milliseconds) * 1_000_000,
            )
        }
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let value = array
                .as_primitive::<arrow::datatypes::IntervalMonthDayNanoType>()
                .value(row);
            if value.months == 0 {
                day_to_second(
                    i128::from(value.days) * NANOS_PER_DAY + i128::from(value.nanoseconds),
                )
            } else {
                // Months have no fixed length in days: Arrow's own wording.
                formatted(array, row)?
            }
        }
        DataType::List(_) => list(array.as_list::<i32>(), row)?,
        DataType::LargeList(_) => list(array.as_list::<i64>(), row)?,
        DataType::FixedSizeList(_, _) => {
            let elements = array.as_fixed_size_list().value(row);
            (0..elements.len())
                .map(|i| value(&elements, i))
                .collect::<Result<Vec<_>>>()?
                .into()
        }
        DataType::Struct(_) => {
            let fields = array.as_struct();
            fields
                .columns()
                .iter()
                .map(|column| value(column, row))
                .collect::<Result<Vec<_>>>()?
                .into()
        }
        DataType::Map(_, _) => {
            let entries = array.as_map().value(row);
            let (keys, values) = (entries.column(0), entries.column(1));
            let mut object = Map::new();
            for i in 0..entries.len() {
                let key = match value(keys, i)? {
                    Value::String(key) => key,
                    other => other.to_string(),
                };
                object.insert(key, value(values, i)?);
            }
            Value::Object(object)
        }
        DataType::Decimal32(_, _)
        | DataType::Decimal64(_, _)
        | DataType::Decimal128(_, _)
        | DataType::Decimal256(_, _) => formatted(array, row)?,
        DataType::Dictionary(_, value_type) => {
            let values = arrow::compute::cast(&array.slice(row, 1), value_type)?;
            value(&values, 0)?
        }
        _ => formatted(array, row)?,
    })
}

const NANOS_PER_DAY: i128 = 86_400 * 1_000_000_000;

/// A double as Trino writes it: non-finite values as strings.
fn float(value: f64) -> Value {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number)
    }
}

fn base64(bytes: &[u8]) -> Value {
    base64::engine::general_purpose::STANDARD
        .encode(bytes)
        .into()
}

/// Arrow's own display of a value, for types Trino has no other encoding of.
fn formatted(array: &ArrayRef, row: usize) -> Result<Value> {
    let formatter = ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default())?;
    Ok(formatter.value(row).to_string().into())
}

fn date(value: Option<NaiveDateTime>) -> Value {
    value.map_or(Value::Null, |v| v.format("%Y-%m-%d").to_string().into())
}

/// `HH:MM:SS` and `digits` digits of fraction, as Trino writes `time(p)`.
fn clock(time: NaiveTime, digits: u32) -> String {
    let mut text = time.format("%H:%M:%S").to_string();
    if digits > 0 {
        let fraction = time.nanosecond() % 1_000_000_000 / 10u32.pow(9 - digits);
        text.push_str(&format!(".{fraction:0width$}", width = digits as usize));
    }
    text
}

fn time_value<T: ArrowTemporalType>(array: &ArrayRef, row: usize, digits: u32) -> Value
where
    i64: From<T::Native>,
{
    let raw = i64::from(array.as_primitive::<T>().value(row));
    arrow::temporal_conversions::as_time::<T>(raw)
        .map_or(Value::Null, |time| clock(time, digits).into())
}

/// `timestamp(p)` as `2024-01-31 12:34:56.789`; with a time zone, the local time there and the
/// zone: `2024-01-31 12:34:56.789 Europe/Berlin`.
fn timestamp<T: ArrowTemporalType>(
    array: &ArrayRef,
    row: usize,
    digits: u32,
    zone: Option<&str>,
) -> Result<Value>
where
    i64: From<T::Native>,
{
    let raw = i64::from(array.as_primitive::<T>().value(row));
    let text = match zone {
        None => as_datetime::<T>(raw).map(|local| {
            format!(
                "{} {}",
                local.format("%Y-%m-%d"),
                clock(local.time(), digits)
            )
        }),
        Some(zone) => {
            let tz: Tz = zone.parse()?;
            as_datetime_with_timezone::<T>(raw, tz).map(|local| {
                format!(
                    "{} {} {zone}",
                    local.format("%Y-%m-%d"),
                    clock(local.time(), digits)
                )
            })
        }
    };
    Ok(text.map_or(Value::Null, Value::String))
}

/// `interval day to second` as Trino writes it: `2 03:04:05.678`.
fn day_to_second(nanos: i128) -> Value {
    let sign = if nanos < 0 { "-" } else { "" };
    let nanos = nanos.unsigned_abs();
    let millis = nanos / 1_000_000;
    let (days, rest) = (millis / 86_400_000, millis % 86_400_000);
    let (hours, rest) = (rest / 3_600_000, rest % 3_600_000);
    let (minutes, rest) = (rest / 60_000, rest % 60_000);
    let (seconds, millis) = (rest / 1000, rest % 1000);
    format!("{sign}{days} {hours:02}:{minutes:02}:{seconds:02}.{millis:03}").into()
}

fn list<O: OffsetSizeTrait>(array: &GenericListArray<O>, row: usize) -> Result<Value> {
    let elements: Arc<dyn Array> = array.value(row);
    Ok((0..elements.len())
        .map(|i| value(&elements, i))
        .collect::<Result<Vec<_>>>()?
        .into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        BinaryArray, Date32Array, Decimal128Array, Float64Array, ListArray, StringArray,
        StructArray, Time64MicrosecondArray, TimestampMillisecondArray,
    };
    use arrow::datatypes::{Fields, Schema};

    fn row_of(columns: Vec<(&str, ArrayRef)>) -> String {
        let batch = RecordBatch::try_from_iter(columns).expect("a batch");
        let mut out = String::new();
        write_rows(&batch, &[], &mut out).expect("rows");
        out
    }

    #[test]
    fn char_columns_are_named_and_padded_as_trino_does() {
        let field = braid_connector_spi::char_field(Field::new("code", DataType::Utf8, true), 5);
        let column = Column::of(&field);
        assert_eq!(column.type_name, "char(5)");
        assert_eq!(
            column.type_signature,
            json!({"rawType": "char", "arguments": [{"kind": "LONG", "value": 5}]})
        );
        let codes = StringArray::from(vec![Some("AB"), None, Some("zoë"), Some("ABCDE")]);
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(vec![field])),
            vec![Arc::new(codes) as ArrayRef],
        )
        .expect("a batch");
        let mut out = String::new();
        write_rows(&batch, &[char_length(batch.schema().field(0))], &mut out).expect("rows");
        assert_eq!(out, r#"["AB   "],[null],["zoë  "],["ABCDE"]"#);
    }

    #[test]
    fn values_are_written_as_trino_writes_them() {
        let decimal = Decimal128Array::from(vec![Some(12345), None])
            .with_precision_and_scale(12, 2)
            .expect("decimal");
        let struct_array = StructArray::from(vec![(
            Arc::new(Field::new("name", DataType::Utf8, true)),
            Arc::new(StringArray::from(vec!["O'Brien", "Zoë"])) as ArrayRef,
        )]);
        let list = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(1), None]),
            None,
        ]);
        let text = row_of(vec![
            ("d", Arc::new(decimal)),
            ("day", Arc::new(Date32Array::from(vec![19753, 0]))),
            (
                "ts",
                Arc::new(TimestampMillisecondArray::from(vec![1_706_704_496_789, 0])),
            ),
            (
                "tz",
                Arc::new(
                    TimestampMillisecondArray::from(vec![1_706_704_496_789, 0])
                        .with_timezone("Europe/Berlin"),
                ),
            ),
            (
                "t",
                Arc::new(Time64MicrosecondArray::from(vec![45_296_000_001, 0])),
            ),
            (
                "x",
                Arc::new(Float64Array::from(vec![f64::NAN, f64::NEG_INFINITY])),
            ),
            (
                "b",
                Arc::new(BinaryArray::from_vec(vec![b"\x00\xff", b"hi"])),
            ),
            ("r", Arc::new(struct_array)),
            ("l", Arc::new(list)),
        ]);
        assert_eq!(
            text,
            r#"["123.45","2024-01-31","2024-01-31 12:34:56.789","2024-01-31 13:34:56.789 Europe/Berlin","12:34:56.000001","NaN","AP8=",["O'Brien"],[1,null]],"#
                .to_string()
                + r#"[null,"1970-01-01","1970-01-01 00:00:00.000","1970-01-01 01:00:00.000 Europe/Berlin","00:00:00.000000","-Infinity","aGk=",["Zoë"],null]"#
        );
    }

    #[test]
    fn type_signatures_carry_their_arguments() {
        let row = DataType::Struct(Fields::from(vec![Field::new(
            "Owner Name",
            DataType::Utf8,
            true,
        )]));
        let schema = Schema::new(vec![
            Field::new("d", DataType::Decimal128(12, 2), true),
            Field::new(
                "l",
                DataType::List(Arc::new(Field::new("item", row, true))),
                true,
            ),
        ]);
        let columns: Vec<Column> = schema.fields().iter().map(|f| Column::of(f)).collect();
        assert_eq!(columns[0].type_name, "decimal(12,2)");
        assert_eq!(
            columns[0].type_signature,
            json!({"rawType": "decimal", "arguments": [
                {"kind": "LONG", "value": 12}, {"kind": "LONG", "value": 2}]})
        );
        assert_eq!(columns[1].type_name, "array(row(Owner Name varchar))");
        let element = &columns[1].type_signature["arguments"][0]["value"];
        assert_eq!(element["rawType"], "row");
        assert_eq!(
            element["arguments"][0]["value"]["fieldName"]["name"],
            "Owner Name"
        );
        assert_eq!(
            element["arguments"][0]["value"]["typeSignature"]["rawType"],
            "varchar"
        );
    }
}
