//! [`RecordFilter`]: what a query's filters say of `_partition_id`, `_partition_offset` and
//! `_timestamp`, as ranges that narrow which partitions and offsets are read before any
//! record is. The filters stay in the plan too (DataFusion's `Inexact`): narrowing only skips
//! records no filter would keep.
//!
//! `_timestamp` ranges become offsets through Kafka's `offsetsForTimes`, as in Trino: that
//! assumes a partition's timestamps grow with its offsets (`LogAppendTime`, or producers
//! stamping records in order).

use std::collections::BTreeSet;

use datafusion::common::ScalarValue;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Operator};

use crate::columns::InternalColumn;

/// A range of integers: `low` inclusive, `high` exclusive; `None` is unbounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bounds {
    pub low: Option<i64>,
    pub high: Option<i64>,
}

impl Bounds {
    fn at_least(&mut self, low: i64) {
        self.low = Some(self.low.map_or(low, |l| l.max(low)));
    }

    fn below(&mut self, high: i64) {
        self.high = Some(self.high.map_or(high, |h| h.min(high)));
    }

    pub fn contains(&self, value: i64) -> bool {
        self.low.is_none_or(|l| value >= l) && self.high.is_none_or(|h| value < h)
    }
}

/// The partitions, offsets and timestamps the filters allow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordFilter {
    pub partitions: Bounds,
    /// From `_partition_id IN (...)` or `= ...`.
    pub partition_set: Option<BTreeSet<i64>>,
    pub offsets: Bounds,
    /// Milliseconds since the epoch.
    pub timestamps: Bounds,
}

impl RecordFilter {
    /// What `filters` (ANDed) allow; conjuncts it does not understand allow everything.
    pub fn of(filters: &[Expr]) -> Self {
        let mut filter = Self::default();
        for conjunct in filters.iter().flat_map(split_conjunction) {
            filter.add(conjunct);
        }
        filter
    }

    /// Whether `expr` narrows what is read.
    pub fn narrows(expr: &Expr) -> bool {
        let mut filter = Self::default();
        split_conjunction(expr).into_iter().all(|e| filter.add(e))
    }

    /// Whether partition `partition` may hold matching records.
    pub fn allows_partition(&self, partition: i32) -> bool {
        let partition = i64::from(partition);
        self.partitions.contains(partition)
            && self
                .partition_set
                .as_ref()
                .is_none_or(|set| set.contains(&partition))
    }

    /// Adds one conjunct; whether it was understood.
    fn add(&mut self, expr: &Expr) -> bool {
        match expr {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                match (
                    internal(left),
                    literal(right),
                    internal(right),
                    literal(left),
                ) {
                    (Some(column), Some(value), _, _) => self.compare(column, *op, value),
                    (_, _, Some(column), Some(value)) => match op.swap() {
                        Some(op) => self.compare(column, op, value),
                        None => false,
                    },
                    _ => false,
                }
            }
            Expr::Between(Between {
                expr,
                negated: false,
                low,
                high,
            }) => match (internal(expr), literal(low), literal(high)) {
                (Some(column), Some(low), Some(high)) => {
                    self.compare(column, Operator::GtEq, low)
                        && self.compare(column, Operator::LtEq, high)
                }
                _ => false,
            },
            Expr::InList(list) if !list.negated => {
                if internal(&list.expr) != Some(InternalColumn::PartitionId) {
                    return false;
                }
                let values: Option<BTreeSet<i64>> = list
                    .list
                    .iter()
                    .map(|e| literal(e).and_then(|v| v.exact()))
                    .collect();
                let Some(values) = values else { return false };
                self.partition_set = Some(match self.partition_set.take() {
                    Some(set) => set.intersection(&values).copied().collect(),
                    None => values,
                });
                true
            }
            _ => false,
        }
    }

    fn compare(&mut self, column: InternalColumn, op: Operator, value: Number) -> bool {
        let bounds = match column {
            InternalColumn::PartitionId => &mut self.partitions,
            InternalColumn::PartitionOffset => &mut self.offsets,
            InternalColumn::Timestamp => &mut self.timestamps,
            _ => return false,
        };
        // The column holds integers (milliseconds for `_timestamp`); `value` may be finer.
        match op {
            Operator::Eq => {
                bounds.at_least(value.ceil());
                bounds.below(value.floor().saturating_add(1));
            }
            Operator::GtEq => bounds.at_least(value.ceil()),
            Operator::Gt => bounds.at_least(value.floor().saturating_add(1)),
            Operator::Lt => bounds.below(value.ceil()),
            Operator::LtEq => bounds.below(value.floor().saturating_add(1)),
            _ => return false,
        }
        true
    }
}

/// The internal column `expr` reads (through an order-keeping cast of `_timestamp`).
fn internal(expr: &Expr) -> Option<InternalColumn> {
    match expr {
        Expr::Column(column) => InternalColumn::named(&column.name).filter(|c| {
            matches!(
                c,
                InternalColumn::PartitionId
                    | InternalColumn::PartitionOffset
                    | InternalColumn::Timestamp
            )
        }),
        Expr::Cast(cast) if cast.data_type.is_temporal() || cast.data_type.is_integer() => {
            internal(&cast.expr)
        }
        _ => None,
    }
}

/// A literal as a number of units, `per_milli` units making one integer of the column.
#[derive(Debug, Clone, Copy)]
struct Number {
    value: i128,
    per_unit: i128,
}

impl Number {
    fn floor(self) -> i64 {
        clamp(self.value.div_euclid(self.per_unit))
    }

    fn ceil(self) -> i64 {
        clamp(-(-self.value).div_euclid(self.per_unit))
    }

    fn exact(self) -> Option<i64> {
        (self.value % self.per_unit == 0).then(|| self.floor())
    }
}

fn clamp(value: i128) -> i64 {
    value.clamp(i64::MIN.into(), i64::MAX.into()) as i64
}

fn literal(expr: &Expr) -> Option<Number> {
    let Expr::Literal(value, _) = expr else {
        return None;
    };
    let (value, per_unit): (i128, i128) = match value {
        ScalarValue::Int8(Some(v)) => ((*v).into(), 1),
        ScalarValue::Int16(Some(v)) => ((*v).into(), 1),
        ScalarValue::Int32(Some(v)) => ((*v).into(), 1),
        ScalarValue::Int64(Some(v)) => ((*v).into(), 1),
        ScalarValue::UInt8(Some(v)) => ((*v).into(), 1),
        ScalarValue::UInt16(Some(v)) => ((*v).into(), 1),
        ScalarValue::UInt32(Some(v)) => ((*v).into(), 1),
        ScalarValue::UInt64(Some(v)) => ((*v).into(), 1),
        ScalarValue::TimestampSecond(Some(v), _) => (i128::from(*v) * 1000, 1),
        ScalarValue::TimestampMillisecond(Some(v), _) => ((*v).into(), 1),
        ScalarValue::TimestampMicrosecond(Some(v), _) => ((*v).into(), 1000),
        ScalarValue::TimestampNanosecond(Some(v), _) => ((*v).into(), 1_000_000),
        _ => return None,
    };
    Some(Number { value, per_unit })
}

#[cfg(test)]
mod tests {
    use datafusion::logical_expr::{col, lit};

    use super::*;

    fn ts_nanos(nanos: i64) -> Expr {
        lit(ScalarValue::TimestampNanosecond(Some(nanos), None))
    }

    #[test]
    fn partitions_offsets_and_times_become_ranges() {
        let filters = [
            col("_partition_id").eq(lit(2i64)),
            col("_partition_offset")
                .gt_eq(lit(10i64))
                .and(col("_partition_offset").lt(lit(20i32))),
            lit(1_500_000i64).lt_eq(col("_timestamp")), // flipped
            col("_timestamp").lt(ts_nanos(2_000_000_500_000)), // 2000000.5 ms
            col("name").eq(lit("O'Brien")),
        ];
        let filter = RecordFilter::of(&filters);
        assert!(filter.allows_partition(2) && !filter.allows_partition(1));
        assert_eq!(
            filter.offsets,
            Bounds {
                low: Some(10),
                high: Some(20)
            }
        );
        assert_eq!(
            filter.timestamps,
            Bounds {
                low: Some(1_500_000),
                high: Some(2_000_001)
            }
        );
        assert!(RecordFilter::narrows(&filters[1]));
        assert!(!RecordFilter::narrows(&filters[4]));
    }

    #[test]
    fn in_lists_between_and_or() {
        let filter = RecordFilter::of(&[
            col("_partition_id").in_list(vec![lit(0i64), lit(3i64)], false),
            col("_partition_offset").between(lit(5i64), lit(7i64)),
        ]);
        assert!(filter.allows_partition(3) && !filter.allows_partition(1));
        assert_eq!(filter.offsets.low, Some(5));
        assert_eq!(filter.offsets.high, Some(8));
        let or = col("_partition_id")
            .eq(lit(1i64))
            .or(col("_partition_id").eq(lit(2i64)));
        assert!(!RecordFilter::narrows(&or));
        assert_eq!(RecordFilter::of(&[or]), RecordFilter::default());
        let gt = RecordFilter::of(&[col("_timestamp").gt(ts_nanos(999_999))]);
        assert_eq!(gt.timestamps.low, Some(1), "> 0.999999 ms is >= 1 ms");
    }
}
