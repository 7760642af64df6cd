//! How a memory table scan is split: partition *i* of *n* reads batches *i*, *i+n*, *i+2n*, ...
//! of the first `batch_count` batches (the snapshot taken at planning).

/// The number of splits for a table of `batch_count` batches when `wanted` are asked for.
pub(crate) fn split_count(batch_count: usize, wanted: usize) -> usize {
    wanted.clamp(1, batch_count.max(1))
}

/// The batch positions split `part` of `parts` reads.
pub(crate) fn batches_of_split(
    batch_count: usize,
    part: usize,
    parts: usize,
) -> impl Iterator<Item = usize> {
    (part..batch_count).step_by(parts.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_cover_every_batch_once() {
        let parts = split_count(10, 4);
        let mut seen: Vec<_> = (0..parts)
            .flat_map(|p| batches_of_split(10, p, parts))
            .collect();
        seen.sort();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        assert_eq!(split_count(0, 16), 1);
        assert_eq!(split_count(3, 16), 3);
    }
}
