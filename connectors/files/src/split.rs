//! Splits of a files table: the coordinator takes the files a scan reads (partitions already
//! pruned), cuts large Parquet files into byte ranges and packs the pieces
//! into about as many splits as the cluster has task slots ([`plan_splits`]); a worker reads
//! one [`FilesSplit`].

use serde::{Deserialize, Serialize};

/// A file, or a byte range of one, that a split reads. Parquet reads the row groups whose
/// middle lies in the range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChunk {
    /// The object's path in its store (percent-encoded, as `object_store` keeps it).
    pub path: String,
    /// The whole file's size.
    pub size: u64,
    /// Last modification, milliseconds since the epoch (part of the cache key of the file's
    /// footer on the worker).
    pub modified_ms: i64,
    /// `[start, end)`; `None` reads the whole file.
    pub range: Option<(u64, u64)>,
    /// The file's values of the table's partition columns, as written in its path.
    pub partition_values: Vec<String>,
}

impl FileChunk {
    /// The bytes this piece reads.
    pub fn len(&self) -> u64 {
        self.range.map_or(self.size, |(start, end)| end - start)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What one task reads: a few files or pieces of files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilesSplit {
    pub chunks: Vec<FileChunk>,
}

/// The smallest byte range a file is cut into: smaller ones would hold no row group.
pub const MIN_RANGE: u64 = 8 << 20;

/// The splits of `files`: about `target` of them (one per task slot), none reading more than
/// `max_split_size` bytes. Files larger than a split's share (and than [`MIN_RANGE`]) are cut
/// into ranges when `splittable` (Parquet); pieces are packed in order, so neighbouring files
/// go together.
pub fn plan_splits(
    files: Vec<FileChunk>,
    target: usize,
    max_split_size: u64,
    splittable: bool,
) -> Vec<FilesSplit> {
    let total: u64 = files.iter().map(FileChunk::len).sum();
    let share = total
        .div_ceil(target.max(1) as u64)
        .clamp(1, max_split_size.max(1));
    let range = share.max(MIN_RANGE.min(max_split_size));
    let pieces = files.into_iter().flat_map(|file| {
        // Even pieces of about `range` bytes, none over `max_split_size`.
        let mut count = (file.size / range).max(1);
        while file.size.div_ceil(count) > max_split_size.max(1) {
            count += 1;
        }
        if !splittable || count == 1 {
            return vec![file];
        }
        let len = file.size.div_ceil(count);
        (0..count)
            .map(|i| FileChunk {
                range: Some((i * len, ((i + 1) * len).min(file.size))),
                ..file.clone()
            })
            .collect()
    });
    let mut splits = Vec::new();
    let mut current = FilesSplit { chunks: Vec::new() };
    let mut bytes = 0;
    for piece in pieces {
        if !current.chunks.is_empty() && bytes + piece.len() > share {
            splits.push(std::mem::replace(
                &mut current,
                FilesSplit { chunks: Vec::new() },
            ));
            bytes = 0;
        }
        bytes += piece.len();
        current.chunks.push(piece);
    }
    if !current.chunks.is_empty() {
        splits.push(current);
    }
    splits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, size: u64) -> FileChunk {
        FileChunk {
            path: name.into(),
            size,
            modified_ms: 0,
            range: None,
            partition_values: vec![],
        }
    }

    /// A split as (path, range) pieces.
    type Shape = Vec<(String, Option<(u64, u64)>)>;

    fn shape(splits: &[FilesSplit]) -> Vec<Shape> {
        splits
            .iter()
            .map(|s| s.chunks.iter().map(|c| (c.path.clone(), c.range)).collect())
            .collect()
    }

    #[test]
    fn small_files_are_packed_into_one_split_per_slot() {
        let files: Vec<_> = (0..16).map(|i| file(&format!("f{i}"), 100)).collect();
        let splits = plan_splits(files, 4, 1 << 20, true);
        assert_eq!(splits.len(), 4);
        assert!(splits.iter().all(|s| s.chunks.len() == 4));
        assert_eq!(splits[1].chunks[0].path, "f4");
    }

    #[test]
    fn a_large_parquet_file_is_cut_into_ranges_covering_it_once() {
        let size = 30 * MIN_RANGE;
        let splits = plan_splits(vec![file("big", size)], 3, u64::MAX, true);
        let third = 10 * MIN_RANGE;
        assert_eq!(
            shape(&splits),
            vec![
                vec![("big".to_string(), Some((0, third)))],
                vec![("big".to_string(), Some((third, 2 * third)))],
                vec![("big".to_string(), Some((2 * third, size)))],
            ]
        );
        // Never into ranges too small to hold a row group.
        let splits = plan_splits(vec![file("small", MIN_RANGE + 1)], 4, u64::MAX, true);
        assert_eq!(shape(&splits), vec![vec![("small".to_string(), None)]]);
    }

    #[test]
    fn csv_files_stay_whole_and_max_split_size_bounds_a_split() {
        let splits = plan_splits(vec![file("a.csv", 1000), file("b.csv", 10)], 1, 400, false);
        assert_eq!(
            shape(&splits),
            vec![
                vec![("a.csv".to_string(), None)],
                vec![("b.csv".to_string(), None)]
            ]
        );
        let splits = plan_splits(vec![file("big", 1000)], 1, 400, true);
        assert_eq!(splits.len(), 3);
        assert!(
            splits
                .iter()
                .all(|s| s.chunks.iter().all(|c| c.len() <= 400))
        );
    }

    #[test]
    fn no_files_no_splits() {
        assert!(plan_splits(vec![], 4, 100, true).is_empty());
    }
}
