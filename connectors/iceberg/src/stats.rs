//! [`snapshot_columns`]: what a snapshot's manifests say of each column — its null count and
//! bounds merged over the snapshot's live data files — as DataFusion's column statistics, for
//! the optimizer (filter selectivity, join order, the broadcast decision).
//!
//! The bounds are inexact: Iceberg writers truncate long ones (to 16 characters by default)
//! and the bounds of the files a filter keeps lie inside them. Null counts are exact sums;
//! the scan makes them inexact when filters or delete files may skip rows.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Schema as ArrowSchema};
use datafusion::common::stats::Precision;
use datafusion::common::{ColumnStatistics, ScalarValue};
use futures::StreamExt;
use iceberg::spec::{
    DataContentType, DataFile, Datum, ManifestContentType, PrimitiveLiteral, PrimitiveType, Schema,
    Snapshot, Type,
};
use iceberg::table::Table;

/// The most manifests read at once.
const MANIFEST_READS: usize = 8;

/// The statistics of `arrow`'s columns (the Arrow form of `schema`, column for column) over
/// the live data files of `snapshot` of `table`. A column a file gives no count or bound for
/// has none; a column of a nested type has none.
pub async fn snapshot_columns(
    table: &Table,
    snapshot: &Arc<Snapshot>,
    schema: &Schema,
    arrow: &ArrowSchema,
) -> iceberg::Result<Vec<ColumnStatistics>> {
    let fields = schema.as_struct().fields();
    let mut merged: Vec<Merged> = fields.iter().map(|_| Merged::default()).collect();
    let list = table.manifest_list_reader(snapshot).load().await?;
    // The reads are made before they are streamed: a stream holding the closures would make
    // the caller's future not `Send` for every lifetime.
    let reads: Vec<_> = list
        .entries()
        .iter()
        .filter(|m| m.content == ManifestContentType::Data)
        .map(|m| m.load_manifest(table.file_io()))
        .collect();
    let mut manifests = futures::stream::iter(reads).buffer_unordered(MANIFEST_READS);
    while let Some(manifest) = manifests.next().await {
        let manifest = manifest?;
        for entry in manifest.entries().iter().filter(|e| e.is_alive()) {
            let file = entry.data_file();
            if file.content_type() != DataContentType::Data {
                continue;
            }
            for (field, merged) in fields.iter().zip(&mut merged) {
                merged.add(field.id, file);
            }
        }
    }
    Ok(fields
        .iter()
        .zip(merged)
        .zip(arrow.fields())
        .map(|((field, merged), column)| match *field.field_type {
            Type::Primitive(_) => merged.statistics(column.data_type()),
            _ => ColumnStatistics::new_unknown(),
        })
        .collect())
}

/// One column's null count and bounds over the files seen so far; `None` (unknown) once a
/// file had no count.
#[derive(Debug)]
struct Merged {
    nulls: Option<u64>,
    lower: Bound,
    upper: Bound,
}

impl Default for Merged {
    fn default() -> Self {
        Self {
            nulls: Some(0),
            lower: Bound::Unseen,
            upper: Bound::Unseen,
        }
    }
}

impl Merged {
    fn add(&mut self, id: i32, file: &DataFile) {
        let nulls = file.null_value_counts().get(&id).copied();
        self.nulls = self.nulls.zip(nulls).map(|(sum, n)| sum + n);
        // A file where the column is all nulls has no bounds for it, and needs none.
        if nulls == Some(file.record_count()) {
            return;
        }
        let lower = std::mem::replace(&mut self.lower, Bound::Unknown);
        self.lower = lower.merge(file.lower_bounds().get(&id), Ordering::Less);
        let upper = std::mem::replace(&mut self.upper, Bound::Unknown);
        self.upper = upper.merge(file.upper_bounds().get(&id), Ordering::Greater);
    }

    fn statistics(self, column: &DataType) -> ColumnStatistics {
        let bound = |bound: Bound| match bound {
            Bound::Known(datum) => {
                scalar(&datum, column).map_or(Precision::Absent, Precision::Inexact)
            }
            Bound::Unseen | Bound::Unknown => Precision::Absent,
        };
        ColumnStatistics {
            null_count: self
                .nulls
                .map_or(Precision::Absent, |n| Precision::Exact(n as usize)),
            min_value: bound(self.lower),
            max_value: bound(self.upper),
            ..ColumnStatistics::new_unknown()
        }
    }
}

/// A lower or upper bound over the files seen so far.
#[derive(Debug)]
enum Bound {
    /// No file with a value seen yet.
    Unseen,
    Known(Datum),
    /// A file had no bound, or one not comparable with the others (another type, after the
    /// column's type was promoted).
    Unknown,
}

impl Bound {
    /// This bound and a file's `bound`: the one that is `wider` than the other.
    fn merge(self, bound: Option<&Datum>, wider: Ordering) -> Self {
        match (self, bound) {
            (Bound::Unknown, _) | (_, None) => Bound::Unknown,
            (Bound::Unseen, Some(bound)) => Bound::Known(bound.clone()),
            (Bound::Known(known), Some(bound)) => match bound.partial_cmp(&known) {
                Some(order) if order == wider => Bound::Known(bound.clone()),
                Some(_) => Bound::Known(known),
                None => Bound::Unknown,
            },
        }
    }
}

/// `datum` as a value of the Arrow type `column` (the type Braid reads the column as), if it
/// is a type whose bounds mean the same in both.
fn scalar(datum: &Datum, column: &DataType) -> Option<ScalarValue> {
    use PrimitiveLiteral as L;
    let value = match (datum.data_type(), datum.literal()) {
        (PrimitiveType::Boolean, L::Boolean(v)) => ScalarValue::Boolean(Some(*v)),
        (PrimitiveType::Int, L::Int(v)) => ScalarValue::Int32(Some(*v)),
        (PrimitiveType::Long, L::Long(v)) => ScalarValue::Int64(Some(*v)),
        (PrimitiveType::Float, L::Float(v)) => ScalarValue::Float32(Some(v.0)),
        (PrimitiveType::Double, L::Double(v)) => ScalarValue::Float64(Some(v.0)),
        (PrimitiveType::Date, L::Int(v)) => ScalarValue::Date32(Some(*v)),
        (PrimitiveType::Decimal { precision, scale }, L::Int128(v)) => ScalarValue::Decimal128(
            Some(*v),
            u8::try_from(*precision).ok()?,
            i8::try_from(*scale).ok()?,
        ),
        (PrimitiveType::Timestamp, L::Long(v)) => ScalarValue::TimestampMicrosecond(Some(*v), None),
        (PrimitiveType::Timestamptz, L::Long(v)) => {
            ScalarValue::TimestampMicrosecond(Some(*v), Some("+00:00".into()))
        }
        (PrimitiveType::TimestampNs, L::Long(v)) => {
            ScalarValue::TimestampNanosecond(Some(*v), None)
        }
        (PrimitiveType::TimestamptzNs, L::Long(v)) => {
            ScalarValue::TimestampNanosecond(Some(*v), Some("+00:00".into()))
        }
        (PrimitiveType::String, L::String(v)) => ScalarValue::Utf8(Some(v.clone())),
        _ => return None,
    };
    value.cast_to(column).ok()
}

/// A table's uuid, a snapshot id and a schema id.
pub type SnapshotKey = (uuid::Uuid, i64, i32);

/// The statistics of a snapshot's columns.
pub type SnapshotColumns = Arc<Vec<ColumnStatistics>>;

/// Column statistics of the snapshots last asked for, by (table uuid, snapshot, schema): a snapshot's files
/// never change, so an entry is never stale; the oldest goes once there are [`Self::CAPACITY`].
#[derive(Debug, Default)]
pub struct SnapshotColumnsCache {
    /// Each entry with its age (the order of insertion).
    entries: parking_lot::Mutex<HashMap<SnapshotKey, (u64, SnapshotColumns)>>,
    next: std::sync::atomic::AtomicU64,
}

impl SnapshotColumnsCache {
    const CAPACITY: usize = 256;

    pub fn get(&self, key: &SnapshotKey) -> Option<SnapshotColumns> {
        self.entries.lock().get(key).map(|(_, c)| c.clone())
    }

    pub fn insert(&self, key: SnapshotKey, columns: SnapshotColumns) {
        let age = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut entries = self.entries.lock();
        if entries.len() >= Self::CAPACITY && !entries.contains_key(&key) {
            let oldest = entries
                .iter()
                .min_by_key(|(_, (age, _))| *age)
                .map(|(k, _)| *k);
            if let Some(oldest) = oldest {
                entries.remove(&oldest);
            }
        }
        entries.insert(key, (age, columns));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::TimeUnit;

    #[test]
    fn bounds_become_values_of_the_column_type() {
        let cases = [
            (Datum::long(7), DataType::Int64, ScalarValue::Int64(Some(7))),
            (Datum::int(7), DataType::Int32, ScalarValue::Int32(Some(7))),
            (
                Datum::date(20_000),
                DataType::Date32,
                ScalarValue::Date32(Some(20_000)),
            ),
            (
                Datum::string("O'Brien"),
                DataType::Utf8View,
                ScalarValue::Utf8View(Some("O'Brien".into())),
            ),
            (
                Datum::timestamptz_micros(5),
                DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
                ScalarValue::TimestampMicrosecond(Some(5), Some("+00:00".into())),
            ),
        ];
        for (datum, column, expected) in cases {
            assert_eq!(scalar(&datum, &column), Some(expected), "{datum}");
        }
        let decimal = Datum::decimal_from_str("12.34").expect("a decimal datum");
        assert_eq!(
            scalar(&decimal, &DataType::Decimal128(15, 2)),
            Some(ScalarValue::Decimal128(Some(1234), 15, 2))
        );
        // A bound that does not convert is unknown, not wrong.
        assert_eq!(scalar(&Datum::string("x"), &DataType::Int64), None);
    }

    #[test]
    fn bounds_widen_and_become_unknown_when_a_file_has_none() {
        let lower = Bound::Unseen
            .merge(Some(&Datum::long(5)), Ordering::Less)
            .merge(Some(&Datum::long(3)), Ordering::Less)
            .merge(Some(&Datum::long(4)), Ordering::Less);
        assert!(
            matches!(&lower, Bound::Known(d) if *d == Datum::long(3)),
            "{lower:?}"
        );
        let upper = Bound::Unseen
            .merge(Some(&Datum::long(5)), Ordering::Greater)
            .merge(Some(&Datum::long(9)), Ordering::Greater);
        assert!(
            matches!(&upper, Bound::Known(d) if *d == Datum::long(9)),
            "{upper:?}"
        );
        let missing = upper.merge(None, Ordering::Greater);
        assert!(matches!(missing, Bound::Unknown));
        let promoted = Bound::Known(Datum::int(1)).merge(Some(&Datum::long(2)), Ordering::Less);
        assert!(matches!(promoted, Bound::Unknown), "{promoted:?}");
    }

    #[test]
    fn the_cache_drops_its_oldest_entry_when_full() {
        let cache = SnapshotColumnsCache::default();
        let table = uuid::Uuid::now_v7();
        let key = |i: i64| (table, i, 0);
        for i in 0..=SnapshotColumnsCache::CAPACITY as i64 {
            cache.insert(key(i), Arc::new(Vec::new()));
        }
        assert!(cache.get(&key(0)).is_none());
        assert!(cache.get(&key(1)).is_some());
        assert!(
            cache
                .get(&key(SnapshotColumnsCache::CAPACITY as i64))
                .is_some()
        );
    }
}
