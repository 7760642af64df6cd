//! [`KafkaSplit`]: one partition's offsets [`start`, `end`), fixed when the coordinator plans
//! the query, so a retried split reads the same records; [`cut`] makes splits of at most
//! `messages_per_split` offsets.
//!
//! [`start`]: KafkaSplit::start
//! [`end`]: KafkaSplit::end

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KafkaSplit {
    pub partition: i32,
    pub start: i64,
    pub end: i64,
}

/// One partition's planned offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetRange {
    pub partition: i32,
    pub start: i64,
    pub end: i64,
}

impl fmt::Display for OffsetRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:[{}, {})", self.partition, self.start, self.end)
    }
}

/// `ranges` cut into splits of at most `per_split` offsets; empty ranges have none.
pub fn cut(ranges: &[OffsetRange], per_split: u64) -> Vec<KafkaSplit> {
    let per_split = i64::try_from(per_split.max(1)).unwrap_or(i64::MAX);
    let mut splits = Vec::new();
    for range in ranges {
        let mut start = range.start;
        while start < range.end {
            let end = start.saturating_add(per_split).min(range.end);
            splits.push(KafkaSplit {
                partition: range.partition,
                start,
                end,
            });
            start = end;
        }
    }
    splits
}

/// The splits' offsets, one range per partition where splits follow each other (EXPLAIN).
pub fn ranges(splits: &[KafkaSplit]) -> Vec<OffsetRange> {
    let mut ranges: Vec<OffsetRange> = Vec::new();
    for split in splits {
        match ranges.last_mut() {
            Some(last) if last.partition == split.partition && last.end == split.start => {
                last.end = split.end;
            }
            _ => ranges.push(OffsetRange {
                partition: split.partition,
                start: split.start,
                end: split.end,
            }),
        }
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cut_into_bounded_splits_and_merge_back() {
        let planned = [
            OffsetRange {
                partition: 0,
                start: 5,
                end: 30,
            },
            OffsetRange {
                partition: 1,
                start: 7,
                end: 7,
            },
            OffsetRange {
                partition: 2,
                start: 0,
                end: 10,
            },
        ];
        let splits = cut(&planned, 10);
        let bounds: Vec<_> = splits
            .iter()
            .map(|s| (s.partition, s.start, s.end))
            .collect();
        assert_eq!(bounds, [(0, 5, 15), (0, 15, 25), (0, 25, 30), (2, 0, 10)]);
        assert_eq!(ranges(&splits), [planned[0], planned[2]]);
        assert_eq!(planned[0].to_string(), "0:[5, 30)");
    }
}
