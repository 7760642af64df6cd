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

/// What a reader does with a record at `offset` of its split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordStep {
    /// Before the split (left over from a fetch): skip it.
    Skip,
    /// In the split; `last` when nothing after it is in the split.
    Take { last: bool },
    /// Past the split's end (the offsets before it held no record): the split is read.
    Done,
}

impl KafkaSplit {
    /// Where a record at `offset` stands. Offsets have gaps (compacted records, transaction
    /// markers, aborted records), so the split ends at its end offset, never after a count.
    pub fn step(&self, offset: i64) -> RecordStep {
        if offset >= self.end {
            RecordStep::Done
        } else if offset < self.start {
            RecordStep::Skip
        } else {
            RecordStep::Take {
                last: offset + 1 >= self.end,
            }
        }
    }

    /// Whether the split is read when its partition has no more records now and holds
    /// offsets up to `high`: if `high` reaches the split's end, the offsets left held no
    /// record (a compacted tail, transaction markers); if not, the partition lost offsets
    /// since planning and the split cannot be read whole.
    pub fn read_at_partition_end(&self, high: i64) -> bool {
        high >= self.end
    }
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

    /// Records as a compacted partition with transaction markers hands them over: offsets
    /// 2 (compacted away), 5 and 6 (commit markers) hold no record; the high watermark is 7.
    #[test]
    fn a_split_ends_at_its_end_offset_across_gaps() {
        let delivered = [0i64, 1, 3, 4];
        let read = |split: KafkaSplit| {
            let mut taken = Vec::new();
            for offset in delivered {
                match split.step(offset) {
                    RecordStep::Skip => {}
                    RecordStep::Take { last } => {
                        taken.push(offset);
                        if last {
                            return (taken, "last record");
                        }
                    }
                    RecordStep::Done => return (taken, "past the end"),
                }
            }
            // The partition's end: the split is read if the brokers hold its offsets.
            if split.read_at_partition_end(7) {
                (taken, "partition end")
            } else {
                (taken, "lost offsets")
            }
        };
        let split = |start, end| KafkaSplit {
            partition: 0,
            start,
            end,
        };
        assert_eq!(read(split(0, 2)), (vec![0, 1], "last record"));
        // The gap at 2: the record at 3 is past [0, 3).
        assert_eq!(read(split(0, 3)), (vec![0, 1], "past the end"));
        assert_eq!(read(split(2, 5)), (vec![3, 4], "last record"));
        // The markers at 5 and 6: no record ends [3, 7); the partition's end does.
        assert_eq!(read(split(3, 7)), (vec![3, 4], "partition end"));
        // Planned up to 9 but the partition now ends at 7: an error, not a short result.
        assert_eq!(read(split(3, 9)), (vec![3, 4], "lost offsets"));
        // A fetch may start before the split (a batch fetched whole): those are skipped.
        assert_eq!(split(3, 7).step(1), RecordStep::Skip);
    }

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
