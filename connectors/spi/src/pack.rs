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
/// `max_split_size` bytes. The files are laid end to end and cut where a split's share of the
/// bytes ends, as DataFusion cuts a scan's files into partitions, so splits are even however
/// the bytes are spread over the files; neighbouring files go together. A splittable file is
/// never cut into a piece smaller than [`MIN_RANGE`] (unless it is smaller itself); a file
/// that is not splittable stays whole.
pub fn pack_files<T: FilePiece>(files: Vec<T>, target: usize, max_split_size: u64) -> Vec<Vec<T>> {
    let max_split_size = max_split_size.max(1);
    let total: u64 = files.iter().map(FilePiece::bytes).sum();
    let share = total
        .div_ceil(target.max(1) as u64)
        .clamp(1, max_split_size);
    let min_piece = MIN_RANGE.min(max_split_size);
    let mut splits = Vec::new();
    let mut current = Vec::new();
    let mut used = 0;
    let mut close = |current: &mut Vec<T>, used: &mut u64| {
        if !current.is_empty() {
            splits.push(std::mem::take(current));
        }
        *used = 0;
    };
    for file in files {
        if !file.splittable() {
            if used + file.bytes() > share {
                close(&mut current, &mut used);
            }
            used += file.bytes();
            current.push(file);
            continue;
        }
        let size = file.file_size();
        let mut start = 0;
        while start < size {
            let rest = size - start;
            // Too little room left for a piece: the split takes the rest of the file whole if
            // most of it fits, else the next split starts with it.
            let room = share.saturating_sub(used);
            if room < min_piece.min(rest) && (room < rest / 2 || used + rest > max_split_size) {
                close(&mut current, &mut used);
            }
            let room = share.saturating_sub(used);
            let mut len = rest.min(room.max(min_piece));
            // No sliver of the file left behind for the next split.
            if rest - len < min_piece && used + rest <= max_split_size {
                len = rest;
            }
            current.push(if len == size {
                file.clone()
            } else {
                file.with_range(start, start + len)
            });
            used += len;
            start += len;
            if used >= share {
                close(&mut current, &mut used);
            }
        }
    }
    close(&mut current, &mut used);
    splits
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file of `size` bytes, or the range of it.
    #[derive(Debug, Clone, PartialEq)]
    struct Piece(&'static str, u64, Option<(u64, u64)>);

    impl FilePiece for Piece {
        fn file_size(&self) -> u64 {
            self.1
        }
        fn bytes(&self) -> u64 {
            self.2.map_or(self.1, |(start, end)| end - start)
        }
        fn splittable(&self) -> bool {
            true
        }
        fn with_range(&self, start: u64, end: u64) -> Self {
            Piece(self.0, self.1, Some((start, end)))
        }
    }

    #[test]
    fn uneven_files_are_cut_into_even_splits() {
        const MB: u64 = 1 << 20;
        // Two files of 134 and 74 MB (as two writer tasks left a table) on two slots.
        let splits = pack_files(
            vec![Piece("a", 134 * MB, None), Piece("b", 74 * MB, None)],
            2,
            128 * MB,
        );
        assert_eq!(
            splits,
            vec![
                vec![Piece("a", 134 * MB, Some((0, 104 * MB)))],
                vec![
                    Piece("a", 134 * MB, Some((104 * MB, 134 * MB))),
                    Piece("b", 74 * MB, None)
                ],
            ]
        );
        // Every byte once, in order.
        let bytes: Vec<u64> = splits
            .iter()
            .map(|s| s.iter().map(FilePiece::bytes).sum())
            .collect();
        assert_eq!(bytes, vec![104 * MB, 104 * MB]);
    }

    #[test]
    fn small_files_fill_their_splits_evenly() {
        const MB: u64 = 1 << 20;
        // Four files just under a row group's bytes, on two slots: two files each, though
        // the second file overfills the first split's share a little.
        let sizes = [7_704_730, 7_613_794, 7_371_924, 7_319_272];
        let names = ["a", "b", "c", "d"];
        let files = names
            .iter()
            .zip(sizes)
            .map(|(n, s)| Piece(n, s, None))
            .collect();
        let splits = pack_files(files, 2, 128 * MB);
        let shape: Vec<Vec<&str>> = splits
            .iter()
            .map(|s| s.iter().map(|p| p.0).collect())
            .collect();
        assert_eq!(shape, vec![vec!["a", "b"], vec!["c", "d"]]);
    }

    #[test]
    fn no_piece_is_smaller_than_a_row_group_can_be() {
        const MB: u64 = 1 << 20;
        // The second split's share ends 2 MB into `b`: `b` is not cut there.
        let splits = pack_files(
            vec![Piece("a", 98 * MB, None), Piece("b", 102 * MB, None)],
            2,
            u64::MAX,
        );
        assert_eq!(
            splits,
            vec![
                vec![Piece("a", 98 * MB, None)],
                vec![Piece("b", 102 * MB, None)],
            ]
        );
    }
}
