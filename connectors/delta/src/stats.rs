//! [`LogColumns`]: a Delta scan's column statistics as the log gives them — each kept file's
//! `add` statistics (`nullCount`, `minValues`, `maxValues`, JSON) merged per column — for join
//! ordering and the broadcast decision on the coordinator. Bounds are inexact (the log
//! truncates long strings); null counts are exact where every file has them.

use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::common::stats::Precision;
use datafusion::common::{ColumnStatistics, ScalarValue, Statistics};
use serde_json::Value;

/// The statistics of the table's columns over the files added so far.
#[derive(Debug)]
pub struct LogColumns {
    columns: Vec<ColumnStatistics>,
    files: usize,
}

impl LogColumns {
    pub fn new(schema: &Schema) -> Self {
        Self {
            columns: Statistics::unknown_column(schema),
            files: 0,
        }
    }

    /// Merges one file's statistics (its `add` action's `stats` JSON; `None` when it has
    /// none) of the columns of `schema` (the table's).
    pub fn add(&mut self, schema: &Schema, stats: Option<&str>) {
        let stats: Value = stats
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or(Value::Null);
        for (column, field) in self.columns.iter_mut().zip(schema.fields()) {
            let name = field.name();
            let nulls = stats["nullCount"][name.as_str()]
                .as_u64()
                .and_then(|n| usize::try_from(n).ok());
            let bound = |key: &str| {
                value(&stats[key][name.as_str()], field.data_type())
                    .map_or(Precision::Absent, Precision::Inexact)
            };
            let this = ColumnStatistics::new_unknown()
                .with_null_count(nulls.map_or(Precision::Absent, Precision::Exact))
                .with_min_value(bound("minValues"))
                .with_max_value(bound("maxValues"));
            *column = if self.files == 0 {
                this
            } else {
                ColumnStatistics::new_unknown()
                    .with_null_count(column.null_count.add(&this.null_count))
                    .with_min_value(column.min_value.min(&this.min_value))
                    .with_max_value(column.max_value.max(&this.max_value))
            };
        }
        self.files += 1;
    }

    /// The merged statistics, one per column of the table.
    pub fn finish(self) -> Vec<ColumnStatistics> {
        self.columns
    }
}

/// A bound as the log writes it (a JSON string or number) as a value of the column's type;
/// `None` for nested values, nulls and what does not cast.
fn value(json: &Value, data_type: &DataType) -> Option<ScalarValue> {
    let text = match json {
        Value::String(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        Value::Bool(flag) => flag.to_string(),
        _ => return None,
    };
    ScalarValue::try_from_string(text, data_type).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::Field;

    #[test]
    fn files_merge_into_bounds_and_counts_and_a_missing_stat_makes_them_unknown() {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8View, true),
            Field::new("day", DataType::Date32, true),
            Field::new("note", DataType::Utf8View, true),
        ]);
        let file = |nulls: u64, low: i64, high: i64, name: &str, day: &str| {
            serde_json::json!({
                "numRecords": 10,
                "nullCount": {"id": 0, "name": nulls, "day": 0},
                "minValues": {"id": low, "name": name, "day": day},
                "maxValues": {"id": high, "name": name, "day": day},
            })
            .to_string()
        };
        let mut columns = LogColumns::new(&schema);
        columns.add(&schema, Some(&file(2, 10, 20, "b", "2024-01-31")));
        columns.add(&schema, Some(&file(3, 1, 15, "a", "2024-02-01")));
        let columns = columns.finish();
        assert_eq!(columns[0].null_count, Precision::Exact(0));
        assert_eq!(
            columns[0].min_value,
            Precision::Inexact(ScalarValue::Int64(Some(1)))
        );
        assert_eq!(
            columns[0].max_value,
            Precision::Inexact(ScalarValue::Int64(Some(20)))
        );
        assert_eq!(columns[1].null_count, Precision::Exact(5));
        assert_eq!(
            columns[1].min_value,
            Precision::Inexact(ScalarValue::Utf8View(Some("a".into())))
        );
        assert_eq!(
            columns[2].max_value,
            Precision::Inexact(ScalarValue::Date32(Some(19754)))
        );
        // `note` has no statistics in the log.
        assert_eq!(columns[3], ColumnStatistics::new_unknown());

        // A file without statistics makes every column's unknown.
        let mut columns = LogColumns::new(&schema);
        columns.add(&schema, Some(&file(2, 10, 20, "b", "2024-01-31")));
        columns.add(&schema, None);
        assert_eq!(columns.finish()[0], ColumnStatistics::new_unknown());
    }
}
