//! [`FieldType`]: the SQL types a table description gives its fields, spelled as in Trino
//! (`BIGINT`, `VARCHAR(20)`, `TIMESTAMP(3) WITH TIME ZONE`, ...), and their Arrow types.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, TimeUnit};

/// A field's SQL type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Boolean,
    TinyInt,
    SmallInt,
    Integer,
    BigInt,
    Real,
    Double,
    /// `VARCHAR` or `VARCHAR(n)`; the length is not enforced on read.
    Varchar,
    Varbinary,
    Date,
    /// `TIME` with milliseconds.
    Time,
    /// `TIMESTAMP` (milliseconds, no time zone).
    Timestamp,
    /// `TIMESTAMP WITH TIME ZONE` (milliseconds, read as UTC).
    TimestampTz,
}

impl FieldType {
    /// A date, time or timestamp: only the json and avro decoders read them.
    pub fn is_temporal(self) -> bool {
        matches!(
            self,
            FieldType::Date | FieldType::Time | FieldType::Timestamp | FieldType::TimestampTz
        )
    }

    /// The Arrow type of the column.
    pub fn data_type(self) -> DataType {
        match self {
            FieldType::Boolean => DataType::Boolean,
            FieldType::TinyInt => DataType::Int8,
            FieldType::SmallInt => DataType::Int16,
            FieldType::Integer => DataType::Int32,
            FieldType::BigInt => DataType::Int64,
            FieldType::Real => DataType::Float32,
            FieldType::Double => DataType::Float64,
            FieldType::Varchar => DataType::Utf8,
            FieldType::Varbinary => DataType::Binary,
            FieldType::Date => DataType::Date32,
            FieldType::Time => DataType::Time32(TimeUnit::Millisecond),
            FieldType::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, None),
            FieldType::TimestampTz => {
                DataType::Timestamp(TimeUnit::Millisecond, Some(Arc::from("UTC")))
            }
        }
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FieldType::Boolean => "boolean",
            FieldType::TinyInt => "tinyint",
            FieldType::SmallInt => "smallint",
            FieldType::Integer => "integer",
            FieldType::BigInt => "bigint",
            FieldType::Real => "real",
            FieldType::Double => "double",
            FieldType::Varchar => "varchar",
            FieldType::Varbinary => "varbinary",
            FieldType::Date => "date",
            FieldType::Time => "time(3)",
            FieldType::Timestamp => "timestamp(3)",
            FieldType::TimestampTz => "timestamp(3) with time zone",
        })
    }
}

/// The types a description may name.
pub const SUPPORTED: &str = "boolean, tinyint, smallint, integer, bigint, real, double, varchar[(n)], \
     varbinary, date, time[(3)], timestamp[(3)], timestamp[(3)] with time zone";

impl FromStr for FieldType {
    type Err = String;

    /// Case-insensitive, with any spacing; a precision other than milliseconds is refused.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let unsupported = || format!("unsupported type '{text}' (supported: {SUPPORTED})");
        let spelled = text.to_ascii_lowercase();
        // A length (`varchar(n)`) or a precision (`timestamp(3)`) is checked, then dropped.
        let without_argument = match (spelled.find('('), spelled.find(')')) {
            (None, None) => spelled.clone(),
            (Some(open), Some(close)) if open < close => {
                let base = spelled[..open].trim();
                let argument = spelled[open + 1..close].trim();
                let fits = match base {
                    "varchar" => argument.parse::<u32>().is_ok_and(|n| n > 0),
                    "time" | "timestamp" => argument == "3",
                    _ => false,
                };
                if !fits {
                    return Err(unsupported());
                }
                format!("{base} {}", &spelled[close + 1..])
            }
            _ => return Err(unsupported()),
        };
        let words: Vec<&str> = without_argument.split_whitespace().collect();
        Ok(match words.join(" ").as_str() {
            "boolean" => FieldType::Boolean,
            "tinyint" => FieldType::TinyInt,
            "smallint" => FieldType::SmallInt,
            "integer" | "int" => FieldType::Integer,
            "bigint" => FieldType::BigInt,
            "real" => FieldType::Real,
            "double" => FieldType::Double,
            "varchar" => FieldType::Varchar,
            "varbinary" => FieldType::Varbinary,
            "date" => FieldType::Date,
            "time" => FieldType::Time,
            "timestamp" => FieldType::Timestamp,
            "timestamp with time zone" => FieldType::TimestampTz,
            _ => return Err(unsupported()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trino_spellings_parse() {
        for (text, expected) in [
            ("BIGINT", FieldType::BigInt),
            ("varchar", FieldType::Varchar),
            ("VARCHAR(25)", FieldType::Varchar),
            ("Integer", FieldType::Integer),
            ("TIMESTAMP", FieldType::Timestamp),
            ("timestamp(3)", FieldType::Timestamp),
            ("TIMESTAMP WITH TIME ZONE", FieldType::TimestampTz),
            ("timestamp(3)  with time zone", FieldType::TimestampTz),
            ("TIME(3)", FieldType::Time),
            ("VARBINARY", FieldType::Varbinary),
        ] {
            assert_eq!(text.parse::<FieldType>(), Ok(expected), "{text}");
        }
    }

    #[test]
    fn unsupported_types_name_the_supported_ones() {
        for text in [
            "DECIMAL(10,2)",
            "VARCHAR(0)",
            "TIMESTAMP(6)",
            "MAP",
            "varchar(",
            "JSON",
        ] {
            let error = text.parse::<FieldType>().expect_err(text);
            assert!(
                error.contains(text) && error.contains("supported: boolean"),
                "{error}"
            );
        }
    }
}
