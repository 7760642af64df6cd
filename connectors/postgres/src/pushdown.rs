//! What Braid asks PostgreSQL to do: filters rendered as PostgreSQL SQL ([`render`]), with
//! identifiers and literals quoted so that no name or value can change the statement.
//!
//! Only expressions on an allow-list are rendered — comparisons, `AND`/`OR`/`NOT`, `IS [NOT]
//! NULL`, `IN` lists, `BETWEEN`, `LIKE` without an escape clause, `+ - *`, casts between
//! numeric, text, date and timestamp types, and the functions in [`FUNCTIONS`] — so a
//! function PostgreSQL lacks or computes differently is never sent; such filters stay in Braid.

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Between, BinaryExpr, Cast, Expr, Like, Operator};

/// Scalar functions PostgreSQL computes exactly as DataFusion does.
pub const FUNCTIONS: &[&str] = &["lower", "upper", "abs"];

/// `"name"`, with embedded quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `"schema"."table"`.
pub fn qualified(schema: &str, table: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(table))
}

/// `'text'`, with embedded quotes doubled (connections set `standard_conforming_strings`, so
/// a backslash is an ordinary character).
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `expr` as PostgreSQL SQL over the table's columns, or `None` if it cannot be sent.
pub fn render(expr: &Expr) -> Option<String> {
    Some(match expr {
        Expr::Column(column) => quote_ident(&column.name),
        Expr::Literal(value, _) => literal(value)?,
        Expr::Alias(alias) => render(&alias.expr)?,
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let op = match op {
                Operator::Eq => "=",
                Operator::NotEq => "<>",
                Operator::Lt => "<",
                Operator::LtEq => "<=",
                Operator::Gt => ">",
                Operator::GtEq => ">=",
                Operator::And => "AND",
                Operator::Or => "OR",
                Operator::Plus => "+",
                Operator::Minus => "-",
                Operator::Multiply => "*",
                _ => return None,
            };
            format!("({} {op} {})", render(left)?, render(right)?)
        }
        Expr::Not(inner) => format!("(NOT {})", render(inner)?),
        Expr::IsNull(inner) => format!("({} IS NULL)", render(inner)?),
        Expr::IsNotNull(inner) => format!("({} IS NOT NULL)", render(inner)?),
        Expr::IsTrue(inner) => format!("({} IS TRUE)", render(inner)?),
        Expr::IsFalse(inner) => format!("({} IS FALSE)", render(inner)?),
        Expr::Between(Between {
            expr,
            negated,
            low,
            high,
        }) => format!(
            "({} {}BETWEEN {} AND {})",
            render(expr)?,
            if *negated { "NOT " } else { "" },
            render(low)?,
            render(high)?
        ),
        Expr::InList(list) => {
            let items = list.list.iter().map(render).collect::<Option<Vec<_>>>()?;
            if items.is_empty() {
                return None;
            }
            format!(
                "({} {}IN ({}))",
                render(&list.expr)?,
                if list.negated { "NOT " } else { "" },
                items.join(", ")
            )
        }
        Expr::Like(Like {
            negated,
            expr,
            pattern,
            escape_char: None,
            case_insensitive,
        }) => {
            // PostgreSQL's LIKE treats a backslash as an escape; DataFusion's does not.
            if let Expr::Literal(ScalarValue::Utf8(Some(p)), _) = pattern.as_ref()
                && p.contains('\\')
            {
                return None;
            }
            format!(
                "({} {}{} {})",
                render(expr)?,
                if *negated { "NOT " } else { "" },
                if *case_insensitive { "ILIKE" } else { "LIKE" },
                render(pattern)?
            )
        }
        Expr::Cast(Cast { expr, data_type }) => {
            format!("CAST({} AS {})", render(expr)?, type_name(data_type)?)
        }
        Expr::ScalarFunction(function) if FUNCTIONS.contains(&function.name()) => {
            let args = function
                .args
                .iter()
                .map(render)
                .collect::<Option<Vec<_>>>()?;
            format!("{}({})", function.name(), args.join(", "))
        }
        _ => return None,
    })
}

fn type_name(data_type: &DataType) -> Option<String> {
    Some(match data_type {
        DataType::Boolean => "boolean".into(),
        DataType::Int16 => "smallint".into(),
        DataType::Int32 => "integer".into(),
        DataType::Int64 => "bigint".into(),
        DataType::Float32 => "real".into(),
        DataType::Float64 => "double precision".into(),
        DataType::Decimal128(p, s) if *s >= 0 => format!("numeric({p}, {s})"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text".into(),
        DataType::Date32 => "date".into(),
        DataType::Timestamp(TimeUnit::Microsecond, None) => "timestamp".into(),
        _ => return None,
    })
}

fn literal(value: &ScalarValue) -> Option<String> {
    if value.is_null() {
        return Some("NULL".into());
    }
    Some(match value {
        ScalarValue::Boolean(Some(b)) => b.to_string().to_uppercase(),
        ScalarValue::Int8(Some(v)) => v.to_string(),
        ScalarValue::Int16(Some(v)) => v.to_string(),
        ScalarValue::Int32(Some(v)) => v.to_string(),
        ScalarValue::Int64(Some(v)) => v.to_string(),
        ScalarValue::UInt8(Some(v)) => v.to_string(),
        ScalarValue::UInt16(Some(v)) => v.to_string(),
        ScalarValue::UInt32(Some(v)) => v.to_string(),
        ScalarValue::Float64(Some(v)) if v.is_finite() => format!("{v:?}::float8"),
        ScalarValue::Float32(Some(v)) if v.is_finite() => format!("{v:?}::float4"),
        ScalarValue::Decimal128(Some(v), p, s) => {
            format!("{}::numeric({p}, {s})", decimal_text(*v, *s))
        }
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => quote_literal(s),
        ScalarValue::Date32(Some(_)) => format!("DATE {}", quote_literal(&value.to_string())),
        _ => return None,
    })
}

/// An unscaled decimal as text: `12345`, scale 2 → `123.45`.
fn decimal_text(value: i128, scale: i8) -> String {
    if scale <= 0 {
        return format!("{value}{}", "0".repeat((-scale) as usize));
    }
    let digits = value.unsigned_abs().to_string();
    let scale = scale as usize;
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{}{int}.{frac}", if value < 0 { "-" } else { "" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::{col, lit};

    #[test]
    fn identifiers_and_literals_cannot_escape_their_quotes() {
        assert_eq!(quote_ident("We\"ird Name"), "\"We\"\"ird Name\"");
        assert_eq!(quote_literal("it's \\ fine"), "'it''s \\ fine'");
        let filter = col("My Col").eq(lit("x'); DROP TABLE t; --"));
        assert_eq!(
            render(&filter).unwrap(),
            "(\"My Col\" = 'x''); DROP TABLE t; --')"
        );
    }

    #[test]
    fn only_allowed_expressions_are_rendered() {
        let filter = col("a")
            .gt(lit(5))
            .and(col("b").in_list(vec![lit("x"), lit("y")], false));
        assert_eq!(
            render(&filter).unwrap(),
            "((\"a\" > 5) AND (\"b\" IN ('x', 'y')))"
        );
        assert!(render(&(col("a") / lit(2))).is_none());
        assert!(render(&col("s").like(lit("a\\%"))).is_none());
        assert_eq!(
            render(&Expr::Literal(
                ScalarValue::Decimal128(Some(12345), 15, 2),
                None
            ))
            .unwrap(),
            "123.45::numeric(15, 2)"
        );
        assert_eq!(decimal_text(-5, 2), "-0.05");
        assert_eq!(
            render(&Expr::Literal(ScalarValue::Date32(Some(9131)), None)).unwrap(),
            "DATE '1995-01-01'"
        );
    }
}
