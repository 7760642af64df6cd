//! Packing the files of a scan into splits, one shape for every connector that reads files
//! (`files`, `iceberg`, `delta`): [`pack_files`] cuts files larger than a split's share into
//! byte ranges (when the format allows it) and packs the pieces, in order, into about as many
//! splits as the cluster has task slots.

/// The smallest byte range a file is cut into: smaller ones would hold no Parquet row group.
pub const MIN_RANGE: u64 = 8 << 20;

/// A file, or a byte range of one, that a split reads.
pub trait FilePiece: Clone {
    /// The whole file's size in bytes.
    fn file_size(&self) -> u64;
    /// The bytes this piece reads.
    fn bytes(&self) -> u64;
    /// Whether the file may be read in byte ranges (Parquet reads the row groups whose middle
    /// lies in the range).
    fn splittable(&self) -> bool;
    /// This piece reading `[start, end)` of its file only.
    fn with_range(&self, start: u64, end: u64) -> Self;
}

/// The splits of `files`: about `target` of them (one per task slot), none reading more than
/// `max_split_size` bytes. Splittable files larger than a split's share (and than
/// [`MIN_RANGE`]) are cut into even ranges; pieces are packed in order, so neighbouring files
/// go together.
pub fn pack_files<T: FilePiece>(files: Vec<T>, target: usize, max_split_size: u64) -> Vec<Vec<T>> {
    let max_split_size = max_split_size.max(1);
    let total: u64 = files.iter().map(FilePiece::bytes).sum();
    let share = total
        .div_ceil(target.max(1) as u64)
        .clamp(1, max_split_size);
    let range = share.max(MIN_RANGE.min(max_split_size));
    let pieces = files.into_iter().flat_map(|file| {
        let size = file.file_size();
        // Even pieces of about `range` bytes, none over `max_split_size`.
        let mut count = (size / range).max(1);
        while size.div_ceil(count) > max_split_size {
            count += 1;
        }
        if !file.splittable() || count == 1 {
            return vec![file];
        }
        let len = size.div_ceil(count);
        (0..count)
            .map(|i| file.with_range(i * len, ((i + 1) * len).min(size)))
            .collect()
    });
    let mut splits = Vec::new();
    let mut current = Vec::new();
    let mut bytes = 0;
    for piece in pieces {
        if !current.is_empty() && bytes + piece.bytes() > share {
            splits.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += piece.bytes();
        current.push(piece);
    }
    if !current.is_empty() {
        splits.push(current);
    }
    splits
}
