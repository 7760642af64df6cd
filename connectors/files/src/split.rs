//! Splits of a files table: the coordinator takes the files a scan reads (partitions already
//! pruned), cuts large Parquet files into byte ranges and packs the pieces
//! into about as many splits as the cluster has task slots ([`plan_splits`]); a worker reads
//! one [`FilesSplit`].

use braid_connector_spi::{FilePiece, pack_files};
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
    /// The file's values of the table's partition columns, as text (`None` is null).
    pub partition_values: Vec<Option<String>>,
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

impl FilePiece for FileChunk {
    fn file_size(&self) -> u64 {
        self.size
    }

    fn bytes(&self) -> u64 {
        FileChunk::len(self)
    }

    fn splittable(&self) -> bool {
        true
    }

    fn with_range(&self, start: u64, end: u64) -> Self {
        FileChunk {
            range: Some((start, end)),
            ..self.clone()
        }
    }
}

/// The splits of `files` ([`pack_files`]): about `target` of them, none over `max_split_size`
/// bytes; files are cut into byte ranges only when `splittable` (Parquet, not CSV).
pub fn plan_splits(
    files: Vec<FileChunk>,
    target: usize,
    max_split_size: u64,
    splittable: bool,
) -> Vec<FilesSplit> {
    let pieces = if splittable {
        pack_files(files, target, max_split_size)
    } else {
        pack_files(
            files.into_iter().map(Whole).collect(),
            target,
            max_split_size,
        )
        .into_iter()
        .map(|split| split.into_iter().map(|Whole(chunk)| chunk).collect())
        .collect()
    };
    pieces
        .into_iter()
        .map(|chunks| FilesSplit { chunks })
        .collect()
}

/// A file that is never cut (CSV).
#[derive(Clone)]
struct Whole(FileChunk);

impl FilePiece for Whole {
    fn file_size(&self) -> u64 {
        self.0.size
    }

    fn bytes(&self) -> u64 {
        self.0.len()
    }

    fn splittable(&self) -> bool {
        false
    }

    fn with_range(&self, _start: u64, _end: u64) -> Self {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use braid_connector_spi::MIN_RANGE;

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
