//! [`to_kernel_predicate`]: a statement's filters as a Delta kernel predicate, with which the
//! kernel skips the files whose partition values or log statistics (min, max, null count)
//! cannot match. Only what it can use is turned over — comparisons, `IS [NOT] NULL`, `IN`,
//! `BETWEEN`, `AND`, `OR` and `NOT` of a column and a constant — and a filter it cannot take
//! is left out (never a file too few; the plan still applies every filter).

use buoyant_kernel::expressions::{ColumnName, DecimalData, Expression, Predicate, Scalar};
use buoyant_kernel::schema::DecimalType;
use datafusion::arrow::datatypes::{DataType, Schema, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Operator, expr::InList};

/// The conjunction of what `filters` (over `schema`'s columns) tell the kernel; `None` when
/// no filter can skip a file.
pub fn to_kernel_predicate(filters: &[Expr], schema: &Schema) -> Option<Predicate> {
    let parts: Vec<Predicate> = filters
        .iter()
        .filter_map(|f| predicate(f, schema))
        .collect();
    match parts.len() {
        0 => None,
        1 => parts.into_iter().next(),
        _ => Some(Predicate::and_from(parts)),
    }
}

fn predicate(expr: &Expr, schema: &Schema) -> Option<Predicate> {
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
            // A conjunct the kernel cannot take only loosens the skipping.
            Operator::And => match (predicate(left, schema), predicate(right, schema)) {
                (Some(l), Some(r)) => Some(Predicate::and(l, r)),
                (l, r) => l.or(r),
            },
            Operator::Or => Some(Predicate::or(
                predicate(left, schema)?,
                predicate(right, schema)?,
            )),
            _ => comparison(left, *op, right, schema),
        },
        Expr::Not(inner) => Some(Predicate::not(predicate(inner, schema)?)),
        Expr::IsNull(inner) => Some(Predicate::is_null(column(inner, schema)?.0)),
        Expr::IsNotNull(inner) => Some(Predicate::is_not_null(column(inner, schema)?.0)),
        Expr::InList(InList {
            expr,
            list,
            negated: false,
        }) => {
            let (column, data_type) = column(expr, schema)?;
            let options = list
                .iter()
                .map(|item| Some(Predicate::eq(column.clone(), literal(item, &data_type)?)))
                .collect::<Option<Vec<_>>>()?;
            Some(Predicate::or_from(options))
        }
        Expr::Between(Between {
            expr,
            negated: false,
            low,
            high,
        }) => {
            let (column, data_type) = column(expr, schema)?;
            Some(Predicate::and(
                Predicate::ge(column.clone(), literal(low, &data_type)?),
                Predicate::le(column, literal(high, &data_type)?),
            ))
        }
        _ => None,
    }
}

/// `column op constant`, in either order.
fn comparison(left: &Expr, op: Operator, right: &Expr, schema: &Schema) -> Option<Predicate> {
    let (column, constant, op) = match column(left, schema) {
        Some(column) => (column, right, op),
        None => (column(right, schema)?, left, op.swap()?),
    };
    let (column, data_type) = column;
    let value = literal(constant, &data_type)?;
    Some(match op {
        Operator::Eq => Predicate::eq(column, value),
        Operator::NotEq => Predicate::ne(column, value),
        Operator::Lt => Predicate::lt(column, value),
        Operator::LtEq => Predicate::le(column, value),
        Operator::Gt => Predicate::gt(column, value),
        Operator::GtEq => Predicate::ge(column, value),
        _ => return None,
    })
}

/// A top-level column of the table, with its type.
fn column(expr: &Expr, schema: &Schema) -> Option<(Expression, DataType)> {
    let Expr::Column(column) = expr else {
        return None;
    };
    let field = schema.field_with_name(&column.name).ok()?;
    let name = ColumnName::new([column.name.clone()]);
    Some((Expression::Column(name), field.data_type().clone()))
}

/// A constant as a kernel scalar of the column's type (the kernel compares like with like).
fn literal(expr: &Expr, data_type: &DataType) -> Option<Expression> {
    let Expr::Literal(value, _) = expr else {
        return None;
    };
    let value = value.cast_to(data_type).ok()?;
    let scalar = match value {
        ScalarValue::Int8(Some(v)) => Scalar::from(v),
        ScalarValue::Int16(Some(v)) => Scalar::from(v),
        ScalarValue::Int32(Some(v)) => Scalar::from(v),
        ScalarValue::Int64(Some(v)) => Scalar::from(v),
        ScalarValue::Float32(Some(v)) => Scalar::from(v),
        ScalarValue::Float64(Some(v)) => Scalar::from(v),
        ScalarValue::Boolean(Some(v)) => Scalar::from(v),
        ScalarValue::Utf8(Some(v))
        | ScalarValue::LargeUtf8(Some(v))
        | ScalarValue::Utf8View(Some(v)) => Scalar::from(v),
        ScalarValue::Date32(Some(v)) => Scalar::Date(v),
        ScalarValue::TimestampMicrosecond(Some(v), tz) => match (tz, data_type) {
            (Some(_), DataType::Timestamp(TimeUnit::Microsecond, Some(_))) => Scalar::Timestamp(v),
            (None, DataType::Timestamp(TimeUnit::Microsecond, None)) => Scalar::TimestampNtz(v),
            _ => return None,
        },
        ScalarValue::Decimal128(Some(v), precision, scale) => {
            let scale = u8::try_from(scale).ok()?;
            let ty = DecimalType::try_new(precision, scale).ok()?;
            Scalar::Decimal(DecimalData::try_new(v, ty).ok()?)
        }
        _ => return None,
    };
    Some(Expression::Literal(scalar))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::Field;
    use datafusion::logical_expr::{col, lit};

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("region", DataType::Utf8, true),
            Field::new("day", DataType::Date32, true),
        ])
    }

    fn text(filters: &[Expr]) -> Option<String> {
        to_kernel_predicate(filters, &schema()).map(|p| p.to_string())
    }

    #[test]
    fn comparisons_of_columns_and_constants_are_turned_over() {
        // The constant takes the column's type.
        let got = text(&[col("id").gt(lit(5i32)), lit("EU").eq(col("region"))]).expect("both");
        assert!(got.contains("Column(id) > 5"), "{got}");
        assert!(got.contains("Column(region) = 'EU'"), "{got}");
        let got = text(&[col("id").in_list(vec![lit(1i64), lit(2i64)], false)]).expect("in");
        assert!(got.contains("OR"), "{got}");
        assert!(text(&[col("region").is_null()]).is_some());
    }

    #[test]
    fn what_the_kernel_cannot_use_is_left_out() {
        // A function of a column, an unknown column, an OR with one side unusable.
        assert_eq!(text(&[(col("id") + lit(1i64)).gt(lit(5i64))]), None);
        assert_eq!(text(&[col("nope").eq(lit(1i64))]), None);
        assert_eq!(
            text(&[col("id")
                .eq(lit(1i64))
                .or((col("id") * lit(2i64)).eq(lit(4i64)))]),
            None
        );
        // An AND keeps its usable side.
        let got = text(&[col("id")
            .eq(lit(1i64))
            .and((col("id") * lit(2i64)).eq(lit(2i64)))]);
        assert!(got.expect("one side").contains("Column(id) = 1"));
    }
}
