//! How a TPC-H scan is split: part *i+1* of *n* per partition.

use crate::metadata::TpchTableKind;

/// The number of splits for a scan of `table`: nation and region are one split (their
/// generators ignore parts), other tables `wanted`, but never more splits than rows.
pub(crate) fn split_count(table: TpchTableKind, scale_factor: f64, wanted: usize) -> usize {
    if table.is_fixed_size() {
        return 1;
    }
    wanted.clamp(1, table.row_count(scale_factor).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_tables_are_one_split() {
        assert_eq!(split_count(TpchTableKind::Nation, 1.0, 16), 1);
        assert_eq!(split_count(TpchTableKind::Region, 1.0, 16), 1);
        assert_eq!(split_count(TpchTableKind::LineItem, 1.0, 16), 16);
        assert_eq!(split_count(TpchTableKind::Orders, 1.0, 0), 1);
    }
}
