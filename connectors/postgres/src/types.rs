//! PostgreSQL types → Arrow types, and the decoding of PostgreSQL's binary format into Arrow
//! arrays ([`ColumnBuilder`]). The mapping table is in the connector's README.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, IntervalMonthDayNanoBuilder,
    ListArray, StringBuilder, Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::datatypes::{DataType, Field, IntervalMonthDayNano, TimeUnit};

/// Days from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// A column type Braid reads.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum PgKind {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    /// `numeric(p, s)`; unconstrained numeric uses the catalog's scale and rounds.
    Numeric {
        precision: u8,
        scale: i8,
    },
    /// text, varchar, name, enum, json, xml, ... (UTF-8 text in binary format too).
    Text,
    /// `char(n)`: text whose trailing spaces PostgreSQL treats as insignificant; they are
    /// stripped on read (as PostgreSQL's own cast to text does), so `'FRANCE'::char(25)` reads
    /// as `FRANCE` and compares equal to it in Braid. `length` is `n` (`None` for `bpchar`
    /// without one); the column's field carries it ([`braid_connector_spi::char_field`]), so
    /// Trino's clients see `char(n)`.
    Bpchar {
        length: Option<u32>,
    },
    Jsonb,
    Uuid,
    Bytea,
    Date,
    Time,
    Timestamp,
    Timestamptz,
    Interval,
    Array(Box<PgKind>),
}

impl PgKind {
    /// The kind of a column from `pg_type`: its name, `typtype`, the element type of an array,
    /// and the type modifier. `None` for types Braid cannot map.
    pub fn from_catalog(
        type_name: &str,
        typtype: &str,
        element: Option<&str>,
        typmod: i32,
        unconstrained_numeric_scale: i8,
    ) -> Option<PgKind> {
        if let Some(element) = element {
            let inner =
                PgKind::from_catalog(element, "b", None, typmod, unconstrained_numeric_scale)?;
            return Some(PgKind::Array(Box::new(inner)));
        }
        if typtype == "e" {
            return Some(PgKind::Text);
        }
        Some(match type_name {
            "bool" => PgKind::Bool,
            "int2" => PgKind::Int2,
            "int4" => PgKind::Int4,
            "int8" => PgKind::Int8,
            "float4" => PgKind::Float4,
            "float8" => PgKind::Float8,
            "numeric" if typmod < 4 => PgKind::Numeric {
                precision: 38,
                scale: unconstrained_numeric_scale,
            },
            "numeric" => numeric_kind(typmod)?,
            // The type modifier of `char(n)` is `n + 4`.
            "bpchar" => PgKind::Bpchar {
                length: u32::try_from(typmod - 4).ok(),
            },
            "text" | "varchar" | "name" | "json" | "xml" | "citext" | "char" => PgKind::Text,
            "jsonb" => PgKind::Jsonb,
            "uuid" => PgKind::Uuid,
            "bytea" => PgKind::Bytea,
            "date" => PgKind::Date,
            "time" => PgKind::Time,
            "timestamp" => PgKind::Timestamp,
            "timestamptz" => PgKind::Timestamptz,
            "interval" => PgKind::Interval,
            _ => return None,
        })
    }

    /// The kind of a column PostgreSQL describes by its type name alone (a query's result
    /// column), when it decodes differently from `fallback`, the kind Braid's type implies.
    pub fn for_result_column(type_name: &str, fallback: PgKind) -> PgKind {
        match (type_name, fallback) {
            ("bpchar", PgKind::Text) => PgKind::Bpchar { length: None },
            ("_bpchar", PgKind::Array(inner)) if *inner == PgKind::Text => {
                PgKind::Array(Box::new(PgKind::Bpchar { length: None }))
            }
            (_, fallback) => fallback,
        }
    }

    /// The Arrow field of a column of this kind: [`Self::arrow_type`], and `char(n)`'s length.
    pub fn field(&self, name: &str, nullable: bool) -> Field {
        let field = Field::new(name, self.arrow_type(), nullable);
        match self {
            PgKind::Bpchar {
                length: Some(length),
            } => braid_connector_spi::char_field(field, *length),
            _ => field,
        }
    }

    /// The Arrow type of the column.
    pub fn arrow_type(&self) -> DataType {
        match self {
            PgKind::Bool => DataType::Boolean,
            PgKind::Int2 => DataType::Int16,
            PgKind::Int4 => DataType::Int32,
            PgKind::Int8 => DataType::Int64,
            PgKind::Float4 => DataType::Float32,
            PgKind::Float8 => DataType::Float64,
            PgKind::Numeric { precision, scale } => DataType::Decimal128(*precision, *scale),
            PgKind::Text | PgKind::Bpchar { .. } | PgKind::Jsonb | PgKind::Uuid => DataType::Utf8,
            PgKind::Bytea => DataType::Binary,
            PgKind::Date => DataType::Date32,
            PgKind::Time => DataType::Time64(TimeUnit::Microsecond),
            PgKind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            PgKind::Timestamptz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            PgKind::Interval => {
                DataType::Interval(datafusion::arrow::datatypes::IntervalUnit::MonthDayNano)
            }
            PgKind::Array(inner) => {
                DataType::List(Arc::new(Field::new("item", inner.arrow_type(), true)))
            }
        }
    }

    /// The SQL that reads the column in a form [`ColumnBuilder`] decodes: the column itself, or
    /// a cast to text for columns mapped to text from an unsupported type.
    pub fn select_expr(&self, quoted_column: &str, as_text: bool) -> String {
        if as_text {
            format!("{quoted_column}::text")
        } else {
            quoted_column.to_string()
        }
    }
}

/// `numeric(p, s)` as an exact Arrow decimal, or `None` when it needs more than 38 digits.
///
/// PostgreSQL 15 allows a scale above the precision (`numeric(3, 5)`: |v| < 0.01) and a
/// negative scale (`numeric(5, -2)`: multiples of 100), which Arrow's `Decimal128(p, s)` with
/// `0 <= s <= p` cannot state as such: the first widens the precision to the scale, the second
/// becomes scale 0 with `-s` more digits. Both hold every value exactly.
fn numeric_kind(typmod: i32) -> Option<PgKind> {
    let precision = ((typmod - 4) >> 16) & 0xffff;
    // The scale is an 11-bit two's-complement number (-1000..=1000).
    let scale = (((typmod - 4) & 0x7ff) ^ 1024) - 1024;
    let (precision, scale) = if scale < 0 {
        (precision - scale, 0)
    } else {
        (precision.max(scale), scale)
    };
    (1..=38).contains(&precision).then_some(PgKind::Numeric {
        precision: precision as u8,
        scale: scale as i8,
    })
}

/// Builds one Arrow column from binary field values.
pub enum ColumnBuilder {
    Bool(BooleanBuilder),
    Int2(Int16Builder),
    Int4(Int32Builder),
    Int8(Int64Builder),
    Float4(Float32Builder),
    Float8(Float64Builder),
    Numeric(Decimal128Builder, u8, i8),
    Text(StringBuilder),
    Bpchar(StringBuilder),
    Jsonb(StringBuilder),
    Uuid(StringBuilder),
    Bytea(BinaryBuilder),
    Date(Date32Builder),
    Time(Time64MicrosecondBuilder),
    Timestamp(TimestampMicrosecondBuilder, bool),
    Interval(IntervalMonthDayNanoBuilder),
    Array {
        field: Arc<Field>,
        offsets: Vec<i32>,
        valid: Vec<bool>,
        values: Box<ColumnBuilder>,
    },
}

/// A value PostgreSQL sent that Braid cannot represent.
pub type DecodeError = String;

impl ColumnBuilder {
    pub fn new(kind: &PgKind) -> Self {
        match kind {
            PgKind::Bool => ColumnBuilder::Bool(BooleanBuilder::new()),
            PgKind::Int2 => ColumnBuilder::Int2(Int16Builder::new()),
            PgKind::Int4 => ColumnBuilder::Int4(Int32Builder::new()),
            PgKind::Int8 => ColumnBuilder::Int8(Int64Builder::new()),
            PgKind::Float4 => ColumnBuilder::Float4(Float32Builder::new()),
            PgKind::Float8 => ColumnBuilder::Float8(Float64Builder::new()),
            PgKind::Numeric { precision, scale } => {
                ColumnBuilder::Numeric(Decimal128Builder::new(), *precision, *scale)
            }
            PgKind::Text => ColumnBuilder::Text(StringBuilder::new()),
            PgKind::Bpchar { .. } => ColumnBuilder::Bpchar(StringBuilder::new()),
            PgKind::Jsonb => ColumnBuilder::Jsonb(StringBuilder::new()),
            PgKind::Uuid => ColumnBuilder::Uuid(StringBuilder::new()),
            PgKind::Bytea => ColumnBuilder::Bytea(BinaryBuilder::new()),
            PgKind::Date => ColumnBuilder::Date(Date32Builder::new()),
            PgKind::Time => ColumnBuilder::Time(Time64MicrosecondBuilder::new()),
            PgKind::Timestamp => {
                ColumnBuilder::Timestamp(TimestampMicrosecondBuilder::new(), false)
            }
            PgKind::Timestamptz => {
                ColumnBuilder::Timestamp(TimestampMicrosecondBuilder::new(), true)
            }
            PgKind::Interval => ColumnBuilder::Interval(IntervalMonthDayNanoBuilder::new()),
            PgKind::Array(inner) => ColumnBuilder::Array {
                field: Arc::new(Field::new("item", inner.arrow_type(), true)),
                offsets: vec![0],
                valid: Vec::new(),
                values: Box::new(ColumnBuilder::new(inner)),
            },
        }
    }

    /// Appends one value: `None` is SQL NULL, else the field's binary representation.
    pub fn append(&mut self, value: Option<&[u8]>) -> Result<(), DecodeError> {
        let Some(raw) = value else {
            self.append_null();
            return Ok(());
        };
        match self {
            ColumnBuilder::Bool(b) => b.append_value(raw.first().is_some_and(|v| *v != 0)),
            ColumnBuilder::Int2(b) => b.append_value(i16::from_be_bytes(fixed(raw)?)),
            ColumnBuilder::Int4(b) => b.append_value(i32::from_be_bytes(fixed(raw)?)),
            ColumnBuilder::Int8(b) => b.append_value(i64::from_be_bytes(fixed(raw)?)),
            ColumnBuilder::Float4(b) => b.append_value(f32::from_be_bytes(fixed(raw)?)),
            ColumnBuilder::Float8(b) => b.append_value(f64::from_be_bytes(fixed(raw)?)),
            ColumnBuilder::Numeric(b, precision, scale) => {
                b.append_value(numeric(raw, *precision, *scale)?)
            }
            ColumnBuilder::Text(b) => b.append_value(utf8(raw)?),
            ColumnBuilder::Bpchar(b) => b.append_value(utf8(raw)?.trim_end_matches(' ')),
            ColumnBuilder::Jsonb(b) => match raw.split_first() {
                Some((1, text)) => b.append_value(utf8(text)?),
                _ => return Err("unknown jsonb version".into()),
            },
            ColumnBuilder::Uuid(b) => {
                let bytes: [u8; 16] = fixed(raw)?;
                let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                b.append_value(format!(
                    "{}-{}-{}-{}-{}",
                    &hex[0..8],
                    &hex[8..12],
                    &hex[12..16],
                    &hex[16..20],
                    &hex[20..32]
                ))
            }
            ColumnBuilder::Bytea(b) => b.append_value(raw),
            ColumnBuilder::Date(b) => {
                let days = i32::from_be_bytes(fixed(raw)?);
                if days == i32::MAX || days == i32::MIN {
                    return Err("infinite dates cannot be read".into());
                }
                b.append_value(days + PG_EPOCH_DAYS)
            }
            ColumnBuilder::Time(b) => b.append_value(i64::from_be_bytes(fixed(raw)?)),
            ColumnBuilder::Timestamp(b, _) => {
                let micros = i64::from_be_bytes(fixed(raw)?);
                if micros == i64::MAX || micros == i64::MIN {
                    return Err("infinite timestamps cannot be read".into());
                }
                b.append_value(micros + PG_EPOCH_MICROS)
            }
            ColumnBuilder::Interval(b) => {
                let bytes: [u8; 16] = fixed(raw)?;
                let micros = i64::from_be_bytes(fixed(&bytes[0..8])?);
                let days = i32::from_be_bytes(fixed(&bytes[8..12])?);
                let months = i32::from_be_bytes(fixed(&bytes[12..16])?);
                b.append_value(IntervalMonthDayNano::new(months, days, micros * 1000))
            }
            ColumnBuilder::Array {
                offsets,
                valid,
                values,
                ..
            } => {
                let count = array_elements(raw, |element| values.append(element))?;
                let last = offsets.last().copied().unwrap_or(0);
                offsets.push(last + count as i32);
                valid.push(true);
            }
        }
        Ok(())
    }

    fn append_null(&mut self) {
        match self {
            ColumnBuilder::Bool(b) => b.append_null(),
            ColumnBuilder::Int2(b) => b.append_null(),
            ColumnBuilder::Int4(b) => b.append_null(),
            ColumnBuilder::Int8(b) => b.append_null(),
            ColumnBuilder::Float4(b) => b.append_null(),
            ColumnBuilder::Float8(b) => b.append_null(),
            ColumnBuilder::Numeric(b, ..) => b.append_null(),
            ColumnBuilder::Text(b)
            | ColumnBuilder::Bpchar(b)
            | ColumnBuilder::Jsonb(b)
            | ColumnBuilder::Uuid(b) => b.append_null(),
            ColumnBuilder::Bytea(b) => b.append_null(),
            ColumnBuilder::Date(b) => b.append_null(),
            ColumnBuilder::Time(b) => b.append_null(),
            ColumnBuilder::Timestamp(b, _) => b.append_null(),
            ColumnBuilder::Interval(b) => b.append_null(),
            ColumnBuilder::Array { offsets, valid, .. } => {
                let last = offsets.last().copied().unwrap_or(0);
                offsets.push(last);
                valid.push(false);
            }
        }
    }

    /// The column so far; the builder starts over.
    pub fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::Bool(b) => Arc::new(b.finish()),
            ColumnBuilder::Int2(b) => Arc::new(b.finish()),
            ColumnBuilder::Int4(b) => Arc::new(b.finish()),
            ColumnBuilder::Int8(b) => Arc::new(b.finish()),
            ColumnBuilder::Float4(b) => Arc::new(b.finish()),
            ColumnBuilder::Float8(b) => Arc::new(b.finish()),
            ColumnBuilder::Numeric(b, precision, scale) => Arc::new(
                b.finish()
                    .with_precision_and_scale(*precision, *scale)
                    .expect("precision and scale were checked when the column was mapped"),
            ),
            ColumnBuilder::Text(b)
            | ColumnBuilder::Bpchar(b)
            | ColumnBuilder::Jsonb(b)
            | ColumnBuilder::Uuid(b) => Arc::new(b.finish()),
            ColumnBuilder::Bytea(b) => Arc::new(b.finish()),
            ColumnBuilder::Date(b) => Arc::new(b.finish()),
            ColumnBuilder::Time(b) => Arc::new(b.finish()),
            ColumnBuilder::Timestamp(b, utc) => {
                let array = b.finish();
                if *utc {
                    Arc::new(array.with_timezone("UTC"))
                } else {
                    Arc::new(array)
                }
            }
            ColumnBuilder::Interval(b) => Arc::new(b.finish()),
            ColumnBuilder::Array {
                field,
                offsets,
                valid,
                values,
            } => {
                let offsets = OffsetBuffer::new(std::mem::replace(offsets, vec![0]).into());
                let nulls = NullBuffer::from(std::mem::take(valid));
                Arc::new(ListArray::new(
                    field.clone(),
                    offsets,
                    values.finish(),
                    Some(nulls),
                ))
            }
        }
    }
}

fn fixed<const N: usize>(raw: &[u8]) -> Result<[u8; N], DecodeError> {
    raw.try_into()
        .map_err(|_| format!("expected {N} bytes, got {}", raw.len()))
}

fn utf8(raw: &[u8]) -> Result<&str, DecodeError> {
    std::str::from_utf8(raw).map_err(|e| format!("invalid UTF-8: {e}"))
}

/// A binary `numeric` as an unscaled `i128` of `scale`, rounded half away from zero.
fn numeric(raw: &[u8], precision: u8, scale: i8) -> Result<i128, DecodeError> {
    let word = |i: usize| -> Result<i16, DecodeError> {
        raw.get(i * 2..i * 2 + 2)
            .map(|b| i16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "truncated numeric".to_string())
    };
    let ndigits = word(0)? as i32;
    let weight = word(1)? as i32;
    let sign = word(2)? as u16;
    if sign == 0xC000 {
        return Err("NaN cannot be read as a decimal".into());
    }
    if sign == 0xD000 || sign == 0xF000 {
        return Err("infinity cannot be read as a decimal".into());
    }
    let overflow = || format!("value does not fit decimal({precision}, {scale})");
    let mut value: i128 = 0;
    for i in 0..ndigits {
        let digit = word(4 + i as usize)? as i128;
        value = value
            .checked_mul(10_000)
            .and_then(|v| v.checked_add(digit))
            .ok_or_else(overflow)?;
    }
    // value = number × 10^(4 × (ndigits − 1 − weight))
    let fraction_digits = 4 * (ndigits - 1 - weight);
    let shift = scale as i32 - fraction_digits;
    if shift >= 0 {
        value = 10i128
            .checked_pow(shift as u32)
            .and_then(|p| value.checked_mul(p))
            .ok_or_else(overflow)?;
    } else {
        let divisor = 10i128.checked_pow((-shift) as u32).ok_or_else(overflow)?;
        let (quotient, remainder) = (value / divisor, value % divisor);
        value = quotient + i128::from(remainder * 2 >= divisor);
    }
    if value >= 10i128.pow(precision as u32) {
        return Err(overflow());
    }
    Ok(if sign == 0x4000 { -value } else { value })
}

/// Calls `element` for each element of a binary array (flattened when multi-dimensional);
/// returns how many there were.
fn array_elements(
    raw: &[u8],
    mut element: impl FnMut(Option<&[u8]>) -> Result<(), DecodeError>,
) -> Result<usize, DecodeError> {
    let int = |at: usize| -> Result<i32, DecodeError> {
        raw.get(at..at + 4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| "truncated array".to_string())
    };
    let dims = int(0)?.max(0) as usize;
    let mut count = 1usize;
    for d in 0..dims {
        count *= int(12 + d * 8)?.max(0) as usize;
    }
    if dims == 0 {
        return Ok(0);
    }
    let mut at = 12 + dims * 8;
    for _ in 0..count {
        let len = int(at)?;
        at += 4;
        if len < 0 {
            element(None)?;
        } else {
            let end = at + len as usize;
            element(Some(raw.get(at..end).ok_or("truncated array element")?))?;
            at = end;
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_bytes(ndigits: i16, weight: i16, sign: u16, dscale: u16, digits: &[i16]) -> Vec<u8> {
        let mut out = Vec::new();
        for w in [ndigits, weight, sign as i16, dscale as i16] {
            out.extend(w.to_be_bytes());
        }
        for d in digits {
            out.extend(d.to_be_bytes());
        }
        out
    }

    #[test]
    fn numerics_decode_exactly_and_round_half_away() {
        // 12345.67 = [1, 2345, 6700], weight 1
        let raw = numeric_bytes(3, 1, 0, 2, &[1, 2345, 6700]);
        assert_eq!(numeric(&raw, 15, 2).unwrap(), 1_234_567);
        assert_eq!(numeric(&raw, 15, 4).unwrap(), 123_456_700);
        assert_eq!(numeric(&raw, 15, 1).unwrap(), 123_457);
        // -0.05 = [500], weight -1
        let raw = numeric_bytes(1, -1, 0x4000, 2, &[500]);
        assert_eq!(numeric(&raw, 15, 2).unwrap(), -5);
        // 0
        assert_eq!(numeric(&numeric_bytes(0, 0, 0, 0, &[]), 10, 2).unwrap(), 0);
        // 1e8 = [1], weight 2 → too big for decimal(5,2)
        assert!(numeric(&numeric_bytes(1, 2, 0, 0, &[1]), 5, 2).is_err());
        assert!(numeric(&numeric_bytes(0, 0, 0xC000, 0, &[]), 10, 2).is_err());
    }

    #[test]
    fn catalog_types_map() {
        assert_eq!(
            PgKind::from_catalog("numeric", "b", None, ((15 << 16) | 2) + 4, 10),
            Some(PgKind::Numeric {
                precision: 15,
                scale: 2
            })
        );
        let typmod = |p: i32, s: i32| ((p << 16) | (s & 0x7ff)) + 4;
        let mapped = |p, s| match PgKind::from_catalog("numeric", "b", None, typmod(p, s), 10) {
            Some(PgKind::Numeric { precision, scale }) => Some((precision, scale)),
            _ => None,
        };
        assert_eq!(mapped(3, 5), Some((5, 5)), "scale above precision");
        assert_eq!(mapped(5, -2), Some((7, 0)), "negative scale");
        assert_eq!(mapped(38, -1), None, "needs 39 digits");
        assert_eq!(mapped(10, 40), None, "scale over 38");
        assert_eq!(mapped(38, 38), Some((38, 38)));
        // Every mapped decimal is one Arrow accepts.
        for (p, s) in [(3, 5), (5, -2), (1, 0), (38, 0), (20, 38)] {
            if let Some((precision, scale)) = mapped(p, s) {
                let mut builder = ColumnBuilder::new(&PgKind::Numeric { precision, scale });
                assert_eq!(builder.finish().len(), 0);
            }
        }
        assert_eq!(
            PgKind::from_catalog("numeric", "b", None, -1, 10),
            Some(PgKind::Numeric {
                precision: 38,
                scale: 10
            })
        );
        assert_eq!(
            PgKind::from_catalog("mood", "e", None, -1, 10),
            Some(PgKind::Text)
        );
        assert_eq!(
            PgKind::from_catalog("_int4", "b", Some("int4"), -1, 10),
            Some(PgKind::Array(Box::new(PgKind::Int4)))
        );
        assert_eq!(PgKind::from_catalog("point", "b", None, -1, 10), None);
    }

    #[test]
    fn char_columns_carry_their_length() {
        use datafusion::arrow::array::AsArray;
        // char(5): type modifier 9; a bare bpchar has none.
        let kind = PgKind::from_catalog("bpchar", "b", None, 9, 10).expect("mapped");
        assert_eq!(kind, PgKind::Bpchar { length: Some(5) });
        let field = kind.field("code", true);
        assert_eq!(field.data_type(), &DataType::Utf8);
        assert_eq!(braid_connector_spi::char_length(&field), Some(5));
        let bare = PgKind::from_catalog("bpchar", "b", None, -1, 10).expect("mapped");
        assert_eq!(
            braid_connector_spi::char_length(&bare.field("code", true)),
            None
        );
        // The padding PostgreSQL sends is not kept.
        let mut builder = ColumnBuilder::new(&kind);
        builder.append(Some(b"AB   ")).expect("text");
        let column = builder.finish();
        assert_eq!(column.as_string::<i32>().value(0), "AB");
    }
}
