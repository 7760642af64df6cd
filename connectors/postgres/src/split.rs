//! Splits: a large table is read as several ranges, each its own query on its own connection —
//! ranges of a single-column integer primary key, else ranges of pages (`ctid`, which
//! PostgreSQL 14+ reads with a TID range scan). Views and small tables are one split.

use braid_connector_spi::ConnectorError;

use crate::metadata::{Metadata, TableMeta};
use crate::pushdown::quote_ident;

/// The WHERE condition of each split (`None`: the whole table).
pub async fn plan_splits(
    metadata: &Metadata,
    table: &TableMeta,
    wanted: usize,
    min_rows_per_split: u64,
) -> Result<Vec<Option<String>>, ConnectorError> {
    let by_size = table
        .row_estimate
        .div_ceil(min_rows_per_split.max(1))
        .max(1);
    let count = (wanted as u64).min(by_size).max(1);
    if count == 1 || table.is_view {
        return Ok(vec![None]);
    }
    if let Some(key) = &table.integer_key {
        let Some((lo, hi)) = metadata.key_range(&table.schema, &table.name, key).await? else {
            return Ok(vec![None]);
        };
        return Ok(ranges(lo as i128, hi as i128 + 1, count)
            .into_iter()
            .map(|(from, to)| {
                Some(bounds(
                    &quote_ident(key),
                    from.map(|v| v.to_string()),
                    to.map(|v| v.to_string()),
                ))
            })
            .collect());
    }
    let pages = metadata.pages(&table.schema, &table.name).await?;
    if pages < 2 {
        return Ok(vec![None]);
    }
    Ok(ranges(0, pages as i128, count)
        .into_iter()
        .map(|(from, to)| {
            let tid = |page: i128| format!("'({page},0)'::tid");
            Some(bounds("ctid", from.map(tid), to.map(tid)))
        })
        .collect())
}

/// `count` consecutive ranges covering `[lo, hi)`; the first has no lower bound and the last no
/// upper bound, so rows outside the range seen at planning are still read exactly once.
fn ranges(lo: i128, hi: i128, count: u64) -> Vec<(Option<i128>, Option<i128>)> {
    let count = count.min((hi - lo).max(1) as u64) as i128;
    let step = ((hi - lo) + count - 1) / count;
    (0..count)
        .map(|i| {
            let from = (i > 0).then(|| lo + i * step);
            let to = (i < count - 1).then(|| lo + (i + 1) * step);
            (from, to)
        })
        .collect()
}

fn bounds(column: &str, from: Option<String>, to: Option<String>) -> String {
    match (from, to) {
        (Some(from), Some(to)) => format!("{column} >= {from} AND {column} < {to}"),
        (Some(from), None) => format!("{column} >= {from}"),
        (None, Some(to)) => format!("{column} < {to}"),
        (None, None) => "TRUE".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_everything_once() {
        assert_eq!(
            ranges(1, 11, 3),
            vec![(None, Some(5)), (Some(5), Some(9)), (Some(9), None)]
        );
        assert_eq!(ranges(5, 6, 4), vec![(None, None)]);
        assert_eq!(bounds("\"k\"", None, Some("5".into())), "\"k\" < 5");
    }
}
