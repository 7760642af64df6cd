//! The worker memory policy: one bounded pool per worker process, shared by all its tasks.
//!
//! Ballista 53 builds a runtime per task and, by default, gives it an unbounded pool. Braid
//! instead creates one [`FairSpillPool`] per worker, wrapped in a [`TrackConsumersPool`] so that
//! an out-of-memory error names the operators holding the most memory, and hands the same pool
//! to every task: spilling operators share the budget fairly, and the worker as a whole stays
//! within it.

use std::num::NonZeroUsize;
use std::sync::Arc;

use datafusion::execution::memory_pool::{FairSpillPool, MemoryPool, TrackConsumersPool};

/// How many of the largest consumers an out-of-memory error names.
const REPORTED_CONSUMERS: usize = 5;

/// A worker's memory budget.
#[derive(Debug, Clone)]
pub struct WorkerMemoryPool {
    pool: Arc<dyn MemoryPool>,
    limit: usize,
}

impl WorkerMemoryPool {
    /// A pool of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        let top = NonZeroUsize::new(REPORTED_CONSUMERS).unwrap_or(NonZeroUsize::MIN);
        let pool = Arc::new(TrackConsumersPool::new(FairSpillPool::new(limit), top));
        Self { pool, limit }
    }

    /// The default budget: 60% of the machine's memory, leaving room for what the pool does not
    /// account (Flight buffers, shuffle reads, Arrow buffers outside reservations).
    pub fn default_limit() -> usize {
        let total = total_memory_bytes().unwrap_or(4 << 30);
        total / 10 * 6
    }

    pub fn pool(&self) -> Arc<dyn MemoryPool> {
        self.pool.clone()
    }

    pub fn limit(&self) -> usize {
        self.limit
    }
}

/// Total physical memory from `/proc/meminfo`, if readable.
fn total_memory_bytes() -> Option<usize> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Parses a size like `512MB`, `4GiB`, `1g` or a plain byte count.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a size (examples: 512MB, 4GB, 1073741824)"))?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "'{text}': unknown size unit '{other}' (use B, KB, MB, GB, TB)"
            ));
        }
    };
    Ok((number * factor) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::execution::memory_pool::MemoryConsumer;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("2KB"), Ok(2048));
        assert_eq!(parse_size("1.5g"), Ok(1536 * 1024 * 1024));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("3 parsecs").is_err());
    }

    #[test]
    fn the_pool_is_bounded_and_shared() {
        let pool = WorkerMemoryPool::new(1000);
        let a = MemoryConsumer::new("a").register(&pool.pool());
        let b = MemoryConsumer::new("b").register(&pool.pool());
        a.try_grow(600).expect("within the limit");
        let err = b
            .try_grow(600)
            .expect_err("over the shared limit")
            .to_string();
        assert!(err.contains("Resources exhausted"), "{err}");
    }
}
