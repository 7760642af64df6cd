//! What Braid asks PostgreSQL to do: expressions rendered as PostgreSQL SQL ([`render`]), with
//! identifiers and literals quoted so that no name or value can change the statement.
//!
//! Only expressions on an allow-list are rendered — comparisons, `AND`/`OR`/`NOT`, `IS [NOT]
//! NULL`, `IN` lists, `BETWEEN`, `LIKE` without an escape clause, `+ - *`, the functions in
//! [`FUNCTIONS`] and the casts both engines compute alike — so a function PostgreSQL lacks or
//! computes differently is never sent; such filters stay in Braid. Text is compared in
//! PostgreSQL only where its collation gives Braid's answer ([`PgColumns`], as Trino does): a
//! range predicate, a sort or `min`/`max` on text needs the `C` collation (or
//! `enable_varchar_inequality_pushdown`), an equality a deterministic one (or
//! `enable_varchar_equality_pushdown`).
//!
//! `subtree.rs` ([`PostgresSubtree`], for the generic `SubtreePushdown` rule of
//! `braid-optimizer-rules`) goes further: the largest subtree of a plan that reads only one
//! PostgreSQL catalog and holds a join, an aggregate or a limit runs as one query in PostgreSQL.

mod subtree;

use std::collections::HashMap;

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::logical_expr::{Between, BinaryExpr, Cast, Expr, ExprSchemable, Like, Operator};

use crate::config::PostgresConfig;
use crate::metadata::{Collation, TableMeta};
use crate::types::PgKind;

pub use subtree::{PostgresSubtree, PostgresSubtreePushdown, subtree_pushdown};

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

/// The text collations of the PostgreSQL columns an expression may read, by column name, and
/// the catalog's escape hatches for text pushdown.
#[derive(Debug, Clone, Default)]
pub struct PgColumns {
    /// `None`: tables of one subtree disagree on a column of this name.
    collations: HashMap<String, Option<Collation>>,
    varchar_equality: bool,
    varchar_inequality: bool,
}

impl PgColumns {
    /// The columns of one table, under its catalog's options.
    pub fn of_table(meta: &TableMeta, config: &PostgresConfig) -> Self {
        Self {
            collations: meta
                .columns
                .iter()
                .map(|c| (c.name.clone(), Some(c.collation)))
                .collect(),
            varchar_equality: config.enable_varchar_equality_pushdown,
            varchar_inequality: config.enable_varchar_inequality_pushdown,
        }
    }

    /// Adds another table's columns (a join); a name whose collations differ becomes unknown.
    pub fn merge(&mut self, other: PgColumns) {
        for (name, collation) in other.collations {
            self.collations
                .entry(name)
                .and_modify(|known| {
                    if *known != collation {
                        *known = None;
                    }
                })
                .or_insert(collation);
        }
    }

    /// Whether a text comparison over `column` gives Braid's answer in PostgreSQL: an
    /// ordering (`<`, sorts, `min`) or an equality (`=`, `IN`, grouping).
    fn compares_like_braid(&self, column: &str, ordering: bool) -> bool {
        match self.collations.get(column) {
            Some(Some(Collation::C)) => true,
            Some(Some(Collation::Deterministic)) => !ordering || self.varchar_inequality,
            Some(Some(Collation::NonDeterministic)) => {
                if ordering {
                    self.varchar_inequality
                } else {
                    self.varchar_equality
                }
            }
            // Not a column of a PostgreSQL table here (or two disagree): no telling.
            Some(None) | None => false,
        }
    }
}

/// What rendering an expression needs besides the expression: the schema it is evaluated
/// against (for the types of its parts) and the PostgreSQL columns it reads.
#[derive(Debug, Clone, Copy)]
pub struct RenderContext<'a> {
    pub schema: &'a DFSchema,
    pub columns: &'a PgColumns,
}

impl RenderContext<'_> {
    fn data_type(&self, expr: &Expr) -> Option<DataType> {
        expr.get_type(self.schema).ok()
    }

    /// Whether comparing `expr` (an ordering, or an equality) in PostgreSQL gives Braid's
    /// answer: true for anything but text; for text, every column it reads must allow it.
    pub fn compares_like_braid(&self, expr: &Expr, ordering: bool) -> bool {
        match self.data_type(expr) {
            Some(DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) => expr
                .column_refs()
                .iter()
                .all(|c| self.columns.compares_like_braid(&c.name, ordering)),
            Some(_) => true,
            None => false,
        }
    }

    /// Whether PostgreSQL casts `inner` to `target` as DataFusion does. Casts to integers
    /// (PostgreSQL rounds, DataFusion truncates) and to text (different formats) are not, but
    /// from an integer; widening a decimal and between dates and timestamps are.
    fn same_cast(&self, inner: &Expr, target: &DataType) -> bool {
        let Some(source) = self.data_type(inner) else {
            return false;
        };
        match target {
            DataType::Int16 | DataType::Int32 | DataType::Int64 => source.is_integer(),
            DataType::Float32 | DataType::Float64 => source.is_integer() || source.is_floating(),
            DataType::Decimal128(_, to) => match source {
                DataType::Decimal128(_, from) => from <= *to,
                other => other.is_integer(),
            },
            DataType::Date32 | DataType::Timestamp(TimeUnit::Microsecond, None) => matches!(
                source,
                DataType::Date32 | DataType::Timestamp(TimeUnit::Microsecond, None)
            ),
            _ => false,
        }
    }
}

/// `expr` as PostgreSQL SQL, or `None` if it cannot be sent.
pub fn render(expr: &Expr, ctx: RenderContext<'_>) -> Option<String> {
    let go = |e: &Expr| render(e, ctx);
    Some(match expr {
        Expr::Column(column) => quote_ident(&column.name),
        Expr::Literal(value, _) => literal(value)?,
        Expr::Alias(alias) => go(&alias.expr)?,
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (sql_op, comparison) = match op {
                Operator::Eq => ("=", Some(false)),
                Operator::NotEq => ("<>", Some(false)),
                Operator::Lt => ("<", Some(true)),
                Operator::LtEq => ("<=", Some(true)),
                Operator::Gt => (">", Some(true)),
                Operator::GtEq => (">=", Some(true)),
                Operator::And => ("AND", None),
                Operator::Or => ("OR", None),
                Operator::Plus => ("+", None),
                Operator::Minus => ("-", None),
                Operator::Multiply => ("*", None),
                _ => return None,
            };
            if let Some(ordering) = comparison
                && !(ctx.compares_like_braid(left, ordering)
                    && ctx.compares_like_braid(right, ordering))
            {
                return None;
            }
            format!("({} {sql_op} {})", go(left)?, go(right)?)
        }
        Expr::Not(inner) => format!("(NOT {})", go(inner)?),
        Expr::IsNull(inner) => format!("({} IS NULL)", go(inner)?),
        Expr::IsNotNull(inner) => format!("({} IS NOT NULL)", go(inner)?),
        Expr::IsTrue(inner) => format!("({} IS TRUE)", go(inner)?),
        Expr::IsFalse(inner) => format!("({} IS FALSE)", go(inner)?),
        Expr::Between(Between {
            expr,
            negated,
            low,
            high,
        }) => {
            if ![expr, low, high]
                .iter()
                .all(|e| ctx.compares_like_braid(e, true))
            {
                return None;
            }
            format!(
                "({} {}BETWEEN {} AND {})",
                go(expr)?,
                if *negated { "NOT " } else { "" },
                go(low)?,
                go(high)?
            )
        }
        Expr::InList(list) => {
            if !std::iter::once(list.expr.as_ref())
                .chain(&list.list)
                .all(|e| ctx.compares_like_braid(e, false))
            {
                return None;
            }
            let items = list.list.iter().map(go).collect::<Option<Vec<_>>>()?;
            if items.is_empty() {
                return None;
            }
            format!(
                "({} {}IN ({}))",
                go(&list.expr)?,
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
            // PostgreSQL refuses LIKE under a nondeterministic collation.
            if !ctx.compares_like_braid(expr, false) {
                return None;
            }
            format!(
                "({} {}{} {})",
                go(expr)?,
                if *negated { "NOT " } else { "" },
                if *case_insensitive { "ILIKE" } else { "LIKE" },
                go(pattern)?
            )
        }
        Expr::Cast(Cast { expr, data_type }) => {
            if !ctx.same_cast(expr, data_type) {
                return None;
            }
            format!("CAST({} AS {})", go(expr)?, type_name(data_type)?)
        }
        Expr::ScalarFunction(function) if FUNCTIONS.contains(&function.name()) => {
            let args = function.args.iter().map(go).collect::<Option<Vec<_>>>()?;
            format!("{}({})", function.name(), args.join(", "))
        }
        _ => return None,
    })
}

/// The PostgreSQL type whose values decode as `data_type`.
pub fn pg_type(data_type: &DataType) -> Option<String> {
    match data_type {
        DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => Some("timestamptz".into()),
        DataType::Binary => Some("bytea".into()),
        other => type_name(other),
    }
}

/// The decoding of a column PostgreSQL returns as [`pg_type`]`(data_type)`.
pub(crate) fn kind_of(data_type: &DataType) -> Option<PgKind> {
    Some(match data_type {
        DataType::Boolean => PgKind::Bool,
        DataType::Int16 => PgKind::Int2,
        DataType::Int32 => PgKind::Int4,
        DataType::Int64 => PgKind::Int8,
        DataType::Float32 => PgKind::Float4,
        DataType::Float64 => PgKind::Float8,
        DataType::Decimal128(p, s) if *s >= 0 => PgKind::Numeric {
            precision: *p,
            scale: *s,
        },
        DataType::Utf8 => PgKind::Text,
        DataType::Date32 => PgKind::Date,
        DataType::Timestamp(TimeUnit::Microsecond, None) => PgKind::Timestamp,
        DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => PgKind::Timestamptz,
        DataType::Binary => PgKind::Bytea,
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
    use crate::metadata::Column;
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::functions_aggregate::expr_fn::max;
    use datafusion::prelude::{cast, col, lit};

    fn table(columns: &[(&str, PgKind, Collation)]) -> (DFSchema, PgColumns) {
        let meta = TableMeta {
            schema: "s".into(),
            name: "t".into(),
            columns: columns
                .iter()
                .map(|(name, kind, collation)| Column {
                    name: name.to_string(),
                    kind: kind.clone(),
                    as_text: false,
                    nullable: true,
                    collation: *collation,
                    estimate: None,
                })
                .collect(),
            arrow_schema: std::sync::Arc::new(Schema::new(
                columns
                    .iter()
                    .map(|(n, k, _)| Field::new(*n, k.arrow_type(), true))
                    .collect::<Vec<_>>(),
            )),
            is_view: false,
            row_estimate: 0,
            integer_key: None,
        };
        let schema = DFSchema::try_from(meta.arrow_schema.as_ref().clone()).expect("schema");
        let config: PostgresConfig =
            serde_json::from_str(r#"{"host": "h", "database": "d", "user": "u"}"#).expect("config");
        (schema, PgColumns::of_table(&meta, &config))
    }

    fn sample() -> (DFSchema, PgColumns) {
        table(&[
            ("a", PgKind::Int4, Collation::C),
            ("b", PgKind::Text, Collation::C),
            ("My Col", PgKind::Text, Collation::C),
            ("s", PgKind::Text, Collation::C),
            ("en", PgKind::Text, Collation::Deterministic),
            ("ci", PgKind::Text, Collation::NonDeterministic),
            (
                "d",
                PgKind::Numeric {
                    precision: 15,
                    scale: 2,
                },
                Collation::C,
            ),
            ("f", PgKind::Float8, Collation::C),
        ])
    }

    #[test]
    fn identifiers_and_literals_cannot_escape_their_quotes() {
        let (schema, columns) = sample();
        let ctx = RenderContext {
            schema: &schema,
            columns: &columns,
        };
        assert_eq!(quote_ident("We\"ird Name"), "\"We\"\"ird Name\"");
        assert_eq!(quote_literal("it's \\ fine"), "'it''s \\ fine'");
        let filter = col("\"My Col\"").eq(lit("x'); DROP TABLE t; --"));
        assert_eq!(
            render(&filter, ctx).unwrap(),
            "(\"My Col\" = 'x''); DROP TABLE t; --')"
        );
    }

    #[test]
    fn only_allowed_expressions_are_rendered() {
        let (schema, columns) = sample();
        let ctx = RenderContext {
            schema: &schema,
            columns: &columns,
        };
        let filter = col("a")
            .gt(lit(5))
            .and(col("b").in_list(vec![lit("x"), lit("y")], false));
        assert_eq!(
            render(&filter, ctx).unwrap(),
            "((\"a\" > 5) AND (\"b\" IN ('x', 'y')))"
        );
        assert!(render(&(col("a") / lit(2)), ctx).is_none());
        assert!(render(&col("s").like(lit("a\\%")), ctx).is_none());
        assert_eq!(
            render(
                &Expr::Literal(ScalarValue::Decimal128(Some(12345), 15, 2), None),
                ctx
            )
            .unwrap(),
            "123.45::numeric(15, 2)"
        );
        assert_eq!(decimal_text(-5, 2), "-0.05");
        assert_eq!(
            render(&Expr::Literal(ScalarValue::Date32(Some(9131)), None), ctx).unwrap(),
            "DATE '1995-01-01'"
        );
    }

    #[test]
    fn text_is_compared_in_postgresql_only_where_the_collation_agrees() {
        let (schema, columns) = sample();
        let ctx = RenderContext {
            schema: &schema,
            columns: &columns,
        };
        // C collation: everything.
        assert!(render(&col("b").lt(lit("m")), ctx).is_some());
        // A deterministic non-C collation (en_US): equality yes, ranges no.
        assert!(render(&col("en").eq(lit("x")), ctx).is_some());
        assert!(render(&col("en").in_list(vec![lit("x")], true), ctx).is_some());
        assert!(render(&col("en").lt(lit("m")), ctx).is_none());
        assert!(render(&col("en").between(lit("a"), lit("m")), ctx).is_none());
        assert!(render(&lit("m").gt_eq(col("en")), ctx).is_none());
        assert!(
            render(&col("a").lt(lit(3)), ctx).is_some(),
            "numbers are no text"
        );
        // A nondeterministic collation (case-insensitive ICU): neither.
        assert!(render(&col("ci").eq(lit("x")), ctx).is_none());
        assert!(render(&col("ci").like(lit("x%")), ctx).is_none());
        assert!(ctx.compares_like_braid(&max(col("b")), true));
        assert!(!ctx.compares_like_braid(&max(col("en")), true));

        // The catalog's escape hatches push them anyway.
        let (schema, mut columns) = sample();
        columns.varchar_equality = true;
        columns.varchar_inequality = true;
        let ctx = RenderContext {
            schema: &schema,
            columns: &columns,
        };
        assert!(render(&col("en").lt(lit("m")), ctx).is_some());
        assert!(render(&col("ci").eq(lit("x")), ctx).is_some());
    }

    #[test]
    fn casts_are_pushed_only_where_both_engines_agree() {
        let (schema, columns) = sample();
        let ctx = RenderContext {
            schema: &schema,
            columns: &columns,
        };
        let pushed = |e: Expr| render(&e.eq(lit(1i64)), ctx).is_some();
        assert!(
            pushed(cast(col("a"), DataType::Int64)),
            "widening an integer"
        );
        assert!(
            !pushed(cast(col("d"), DataType::Int64)),
            "PostgreSQL rounds, DataFusion truncates"
        );
        assert!(!pushed(cast(col("f"), DataType::Int32)));
        assert!(render(&cast(col("a"), DataType::Utf8).eq(lit("1")), ctx).is_none());
        assert!(
            pushed(cast(col("d"), DataType::Decimal128(20, 4))),
            "a wider decimal"
        );
        assert!(
            !pushed(cast(col("d"), DataType::Decimal128(20, 1))),
            "a rounding decimal"
        );
    }
}
