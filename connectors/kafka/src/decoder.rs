//! Decoders: a record's key or message bytes into the values of its description's fields.
//!
//! A [`RowDecoder`] (`raw`, `csv`, `json`, `avro`) turns one record's bytes into one
//! [`Value`] per field; [`FieldColumns`] converts them to the fields' types and builds the Arrow
//! columns. A record that does not decode, or a value that does not fit its field's type, is
//! *corrupt*: all its fields are NULL and the caller sets `_key_corrupt` / `_message_corrupt`.
//! A corrupt record never fails the query.

mod avro;
mod csv;
mod json;
mod raw;

use std::borrow::Cow;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Float32Builder, Float64Builder,
    Int8Builder, Int16Builder, Int32Builder, Int64Builder, StringBuilder, Time32MillisecondBuilder,
    TimestampMillisecondBuilder,
};

use crate::description::{DataFormat, FieldGroup};
use crate::types::FieldType;

/// One decoded value, before it takes its field's type.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(Cow<'a, str>),
    Bytes(&'a [u8]),
    /// Days since 1970-01-01.
    Date(i32),
    /// Milliseconds since midnight.
    Time(i32),
    /// Milliseconds since 1970-01-01 00:00 UTC.
    Timestamp(i64),
}

/// Decodes the key or the message of records for one group of fields.
#[derive(Debug, Clone)]
pub enum RowDecoder {
    Raw(raw::RawDecoder),
    Csv(csv::CsvDecoder),
    Json(json::JsonDecoder),
    Avro(avro::AvroDecoder),
}

impl RowDecoder {
    /// The decoder of `group`; an error names the field whose mapping or format it cannot use.
    /// `avro_schema` is the text of the group's `dataSchema` file (`avro` only).
    pub fn new(group: &FieldGroup, avro_schema: Option<&str>) -> Result<Self, String> {
        match group.data_format {
            DataFormat::Raw => raw::RawDecoder::new(&group.fields).map(RowDecoder::Raw),
            DataFormat::Csv => csv::CsvDecoder::new(&group.fields).map(RowDecoder::Csv),
            DataFormat::Json => json::JsonDecoder::new(&group.fields).map(RowDecoder::Json),
            DataFormat::Avro => {
                let schema = avro_schema.ok_or("the avro decoder needs the dataSchema file")?;
                avro::AvroDecoder::new(&group.fields, schema).map(RowDecoder::Avro)
            }
        }
    }

    /// One value per field of `bytes`, into `out` (cleared first); an error if the record is
    /// corrupt.
    pub fn decode<'a>(&self, bytes: &'a [u8], out: &mut Vec<Value<'a>>) -> Result<(), String> {
        out.clear();
        match self {
            RowDecoder::Raw(decoder) => decoder.decode(bytes, out),
            RowDecoder::Csv(decoder) => decoder.decode(bytes, out),
            RowDecoder::Json(decoder) => decoder.decode(bytes, out),
            RowDecoder::Avro(decoder) => decoder.decode(bytes, out),
        }
    }

    /// The bytes of a key or message holding `values`, one per field (inserts): the same
    /// layout the decoder reads.
    pub fn encode(&self, values: &[Value<'_>]) -> Result<Vec<u8>, String> {
        match self {
            RowDecoder::Raw(codec) => codec.encode(values),
            RowDecoder::Csv(codec) => codec.encode(values),
            RowDecoder::Json(codec) => codec.encode(values),
            RowDecoder::Avro(codec) => codec.encode(values),
        }
    }
}

/// `make` applied to each field; an error names the field.
fn per_field<T>(
    fields: &[crate::description::FieldDescription],
    make: impl Fn(&crate::description::FieldDescription) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    fields
        .iter()
        .map(|field| make(field).map_err(|e| format!("field '{}': {e}", field.name)))
        .collect()
}

/// A value converted to its field's type, ready to append.
#[derive(Debug)]
enum Cell<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(Cow<'a, str>),
    Bytes(Cow<'a, [u8]>),
    Date(i32),
    Time(i32),
    Timestamp(i64),
}

/// `value` as a value of `field_type`; an error if it does not fit.
fn convert<'a>(value: Value<'a>, field_type: FieldType) -> Result<Cell<'a>, String> {
    let out_of_range = |v: i64| format!("{v} does not fit {field_type}");
    let not_a = |what: &str| format!("{what} is not a {field_type}");
    Ok(match (field_type, value) {
        (_, Value::Null) => Cell::Null,
        (FieldType::Boolean, Value::Bool(b)) => Cell::Bool(b),
        (FieldType::Boolean, Value::Int(i)) => Cell::Bool(i != 0),
        (FieldType::Boolean, Value::Text(t)) => match t.trim().to_ascii_lowercase().as_str() {
            "true" => Cell::Bool(true),
            "false" => Cell::Bool(false),
            _ => return Err(not_a(&format!("'{t}'"))),
        },
        (FieldType::TinyInt, Value::Int(i)) => {
            Cell::Int(i8::try_from(i).map_err(|_| out_of_range(i))?.into())
        }
        (FieldType::SmallInt, Value::Int(i)) => {
            Cell::Int(i16::try_from(i).map_err(|_| out_of_range(i))?.into())
        }
        (FieldType::Integer, Value::Int(i)) => {
            Cell::Int(i32::try_from(i).map_err(|_| out_of_range(i))?.into())
        }
        (FieldType::BigInt, Value::Int(i)) => Cell::Int(i),
        (
            FieldType::TinyInt | FieldType::SmallInt | FieldType::Integer | FieldType::BigInt,
            Value::Text(t),
        ) => {
            let i = t
                .trim()
                .parse::<i64>()
                .map_err(|_| not_a(&format!("'{t}'")))?;
            return convert(Value::Int(i), field_type);
        }
        (FieldType::Real | FieldType::Double, Value::Float(f)) => Cell::Float(f),
        (FieldType::Real | FieldType::Double, Value::Int(i)) => Cell::Float(i as f64),
        (FieldType::Real | FieldType::Double, Value::Text(t)) => Cell::Float(
            t.trim()
                .parse::<f64>()
                .map_err(|_| not_a(&format!("'{t}'")))?,
        ),
        (FieldType::Varchar, Value::Text(t)) => Cell::Text(t),
        (FieldType::Varchar, Value::Bytes(b)) => Cell::Text(
            std::str::from_utf8(b)
                .map(Cow::Borrowed)
                .map_err(|_| "the bytes are not UTF-8".to_string())?,
        ),
        (FieldType::Varchar, Value::Int(i)) => Cell::Text(Cow::Owned(i.to_string())),
        (FieldType::Varchar, Value::Float(f)) => Cell::Text(Cow::Owned(f.to_string())),
        (FieldType::Varchar, Value::Bool(b)) => Cell::Text(Cow::Owned(b.to_string())),
        (FieldType::Varbinary, Value::Bytes(b)) => Cell::Bytes(Cow::Borrowed(b)),
        (FieldType::Varbinary, Value::Text(t)) => Cell::Bytes(match t {
            Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
            Cow::Owned(s) => Cow::Owned(s.into_bytes()),
        }),
        (FieldType::Date, Value::Date(d)) => Cell::Date(d),
        (FieldType::Time, Value::Time(t)) => Cell::Time(t),
        (FieldType::Timestamp | FieldType::TimestampTz, Value::Timestamp(ms)) => {
            Cell::Timestamp(ms)
        }
        (FieldType::Date, Value::Timestamp(ms)) => Cell::Date(
            ms.div_euclid(86_400_000)
                .try_into()
                .map_err(|_| out_of_range(ms))?,
        ),
        (_, other) => return Err(format!("{other:?} is not a {field_type}")),
    })
}

/// One field's Arrow column being built.
#[derive(Debug)]
enum Column {
    Bool(BooleanBuilder),
    Int8(Int8Builder),
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Text(StringBuilder),
    Bytes(BinaryBuilder),
    Date(Date32Builder),
    Time(Time32MillisecondBuilder),
    Timestamp(TimestampMillisecondBuilder),
}

impl Column {
    fn new(field_type: FieldType) -> Self {
        match field_type {
            FieldType::Boolean => Column::Bool(BooleanBuilder::new()),
            FieldType::TinyInt => Column::Int8(Int8Builder::new()),
            FieldType::SmallInt => Column::Int16(Int16Builder::new()),
            FieldType::Integer => Column::Int32(Int32Builder::new()),
            FieldType::BigInt => Column::Int64(Int64Builder::new()),
            FieldType::Real => Column::Float32(Float32Builder::new()),
            FieldType::Double => Column::Float64(Float64Builder::new()),
            FieldType::Varchar => Column::Text(StringBuilder::new()),
            FieldType::Varbinary => Column::Bytes(BinaryBuilder::new()),
            FieldType::Date => Column::Date(Date32Builder::new()),
            FieldType::Time => Column::Time(Time32MillisecondBuilder::new()),
            FieldType::Timestamp => Column::Timestamp(TimestampMillisecondBuilder::new()),
            FieldType::TimestampTz => {
                Column::Timestamp(TimestampMillisecondBuilder::new().with_timezone("UTC"))
            }
        }
    }

    /// Appends `cell`, which [`convert`] made for this column's type.
    fn append(&mut self, cell: Cell<'_>) {
        match (self, cell) {
            (Column::Bool(b), Cell::Bool(v)) => b.append_value(v),
            (Column::Int8(b), Cell::Int(v)) => b.append_value(v as i8),
            (Column::Int16(b), Cell::Int(v)) => b.append_value(v as i16),
            (Column::Int32(b), Cell::Int(v)) => b.append_value(v as i32),
            (Column::Int64(b), Cell::Int(v)) => b.append_value(v),
            (Column::Float32(b), Cell::Float(v)) => b.append_value(v as f32),
            (Column::Float64(b), Cell::Float(v)) => b.append_value(v),
            (Column::Text(b), Cell::Text(v)) => b.append_value(v),
            (Column::Bytes(b), Cell::Bytes(v)) => b.append_value(v),
            (Column::Date(b), Cell::Date(v)) => b.append_value(v),
            (Column::Time(b), Cell::Time(v)) => b.append_value(v),
            (Column::Timestamp(b), Cell::Timestamp(v)) => b.append_value(v),
            (column, _) => column.append_null(),
        }
    }

    fn append_null(&mut self) {
        match self {
            Column::Bool(b) => b.append_null(),
            Column::Int8(b) => b.append_null(),
            Column::Int16(b) => b.append_null(),
            Column::Int32(b) => b.append_null(),
            Column::Int64(b) => b.append_null(),
            Column::Float32(b) => b.append_null(),
            Column::Float64(b) => b.append_null(),
            Column::Text(b) => b.append_null(),
            Column::Bytes(b) => b.append_null(),
            Column::Date(b) => b.append_null(),
            Column::Time(b) => b.append_null(),
            Column::Timestamp(b) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Column::Bool(b) => Arc::new(b.finish()),
            Column::Int8(b) => Arc::new(b.finish()),
            Column::Int16(b) => Arc::new(b.finish()),
            Column::Int32(b) => Arc::new(b.finish()),
            Column::Int64(b) => Arc::new(b.finish()),
            Column::Float32(b) => Arc::new(b.finish()),
            Column::Float64(b) => Arc::new(b.finish()),
            Column::Text(b) => Arc::new(b.finish()),
            Column::Bytes(b) => Arc::new(b.finish()),
            Column::Date(b) => Arc::new(b.finish()),
            Column::Time(b) => Arc::new(b.finish()),
            Column::Timestamp(b) => Arc::new(b.finish()),
        }
    }
}

/// Whether each of `values` fits the type of its field in `types` (a record whose values do
/// not all fit is corrupt, whichever of its fields a query reads).
pub fn fits(values: &[Value<'_>], types: &[FieldType]) -> bool {
    values
        .iter()
        .zip(types)
        .all(|(value, &field_type)| convert(value.clone(), field_type).is_ok())
}

/// A field of `field_type` at `mapping`, as the decoders' tests describe them.
#[cfg(test)]
pub(crate) fn test_field(
    name: &str,
    field_type: FieldType,
    mapping: &str,
) -> crate::description::FieldDescription {
    crate::description::FieldDescription {
        name: name.into(),
        field_type,
        mapping: Some(mapping.into()),
        data_format: None,
        format_hint: None,
        hidden: false,
        comment: None,
    }
}

/// The Arrow columns of one group's fields, built record by record.
#[derive(Debug)]
pub struct FieldColumns {
    columns: Vec<(FieldType, Column)>,
}

impl FieldColumns {
    /// The columns of fields of `types`.
    pub fn new(types: &[FieldType]) -> Self {
        Self {
            columns: types.iter().map(|&t| (t, Column::new(t))).collect(),
        }
    }

    /// Appends one record's values, one per field. If one does not fit its field's type, the
    /// record gets NULLs and the error says why (it is corrupt).
    pub fn append(&mut self, values: Vec<Value<'_>>) -> Result<(), String> {
        let cells: Vec<Cell<'_>> = match values
            .into_iter()
            .zip(&self.columns)
            .map(|(value, (t, _))| convert(value, *t))
            .collect()
        {
            Ok(cells) => cells,
            Err(e) => {
                self.append_nulls();
                return Err(e);
            }
        };
        for (cell, (_, column)) in cells.into_iter().zip(&mut self.columns) {
            column.append(cell);
        }
        Ok(())
    }

    /// Appends NULL to every column (a corrupt record, or one without a key).
    pub fn append_nulls(&mut self) {
        for (_, column) in &mut self.columns {
            column.append_null();
        }
    }

    /// The columns built so far; the builders start again empty.
    pub fn finish(&mut self) -> Vec<ArrayRef> {
        self.columns.iter_mut().map(|(_, c)| c.finish()).collect()
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::{Int8Type, Int64Type};

    use super::*;

    /// Inserts write with the layout the decoders read: what is encoded decodes back.
    #[test]
    fn encoders_write_what_decoders_read() {
        use crate::description::{DataFormat, FieldGroup};
        let raw = |name: &str, t: FieldType, mapping: &str, format: Option<&str>| {
            let mut field = test_field(name, t, mapping);
            field.data_format = format.map(str::to_string);
            field
        };
        let group = FieldGroup {
            data_format: DataFormat::Raw,
            data_schema: None,
            fields: vec![
                raw("id", FieldType::BigInt, "0:8", Some("LONG")),
                raw("qty", FieldType::Integer, "8:12", Some("INT")),
                raw("label", FieldType::Varchar, "12", None),
            ],
        };
        let codec = RowDecoder::new(&group, None).expect("raw");
        let bytes = codec
            .encode(&[
                Value::Int(7),
                Value::Int(-300),
                Value::Text("O'Brien".into()),
            ])
            .expect("encode");
        assert_eq!(bytes.len(), 12 + 7);
        let mut out = Vec::new();
        codec.decode(&bytes, &mut out).expect("decode");
        assert_eq!(
            out,
            [Value::Int(7), Value::Int(-300), Value::Bytes(b"O'Brien")]
        );
        let error = codec
            .encode(&[Value::Int(1), Value::Int(1 << 40), Value::Null])
            .expect_err("too wide");
        assert!(error.contains("qty"), "{error}");

        let group = FieldGroup {
            data_format: DataFormat::Csv,
            data_schema: None,
            fields: vec![
                test_field("id", FieldType::BigInt, "0"),
                test_field("name", FieldType::Varchar, "2"),
            ],
        };
        let codec = RowDecoder::new(&group, None).expect("csv");
        let bytes = codec
            .encode(&[Value::Int(1), Value::Text("a, \"b\"".into())])
            .expect("encode");
        assert_eq!(bytes, b"1,,\"a, \"\"b\"\"\"");
        codec.decode(&bytes, &mut out).expect("decode");
        assert_eq!(out[1], Value::Text("a, \"b\"".into()));
    }

    #[test]
    fn a_value_that_does_not_fit_makes_the_record_corrupt_and_null() {
        let mut columns =
            FieldColumns::new(&[FieldType::BigInt, FieldType::TinyInt, FieldType::Varchar]);
        columns
            .append(vec![
                Value::Text("12".into()),
                Value::Int(-3),
                Value::Bytes(b"O'Brien"),
            ])
            .expect("fits");
        let error = columns
            .append(vec![
                Value::Int(1),
                Value::Int(300),
                Value::Text("x".into()),
            ])
            .expect_err("300 is no tinyint");
        assert!(error.contains("300 does not fit tinyint"), "{error}");
        let error = columns
            .append(vec![Value::Int(1), Value::Int(1), Value::Bytes(&[0xff])])
            .expect_err("not UTF-8");
        assert!(error.contains("not UTF-8"), "{error}");
        columns.append_nulls();
        let arrays = columns.finish();
        let ids = arrays[0].as_primitive::<Int64Type>();
        let small = arrays[1].as_primitive::<Int8Type>();
        let text = arrays[2].as_string::<i32>();
        assert_eq!((ids.len(), ids.value(0), small.value(0)), (4, 12, -3));
        assert_eq!(text.value(0), "O'Brien");
        for row in 1..4 {
            assert!(
                ids.is_null(row) && small.is_null(row) && text.is_null(row),
                "row {row}"
            );
        }
    }
}
