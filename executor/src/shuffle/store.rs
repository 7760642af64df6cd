//! [`ShuffleStore`]: the shuffle outputs a worker holds in memory, by the key Ballista names a
//! shuffle file with.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ballista_core::serde::scheduler::PartitionLocation;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::execution::memory_pool::MemoryReservation;
use parking_lot::Mutex;

/// How long a job's outputs stay after the coordinator last listed the job as running. A task
/// can commit between the moment the coordinator lists its running jobs and the moment this
/// worker reads the list, so a job missing from one list is not yet taken for ended.
pub const RELEASE_GRACE: Duration = Duration::from_secs(5);

/// Which shuffle output: the parts of Ballista's shuffle path (`<job>/<stage>/<partition>/
/// data-<file_id>.arrow`), so the writer, the readers and the Flight service name it alike.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ShuffleKey {
    pub job_id: String,
    pub stage_id: usize,
    /// The output partition.
    pub partition_id: usize,
    /// The input partition that wrote it, when the stage repartitions.
    pub file_id: Option<u64>,
}

impl ShuffleKey {
    pub fn of(location: &PartitionLocation) -> Self {
        Self {
            job_id: location.partition_id.job_id.clone(),
            stage_id: location.partition_id.stage_id,
            partition_id: location.partition_id.partition_id,
            file_id: location.file_id,
        }
    }
}

/// One output partition of one task, held in memory.
#[derive(Debug)]
pub struct StoredPartition {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub bytes: usize,
    /// Its share of the worker's memory pool, given back when the partition is dropped.
    _reservation: MemoryReservation,
}

impl StoredPartition {
    pub fn new(
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
        bytes: usize,
        reservation: MemoryReservation,
    ) -> Self {
        Self {
            schema,
            batches,
            bytes,
            _reservation: reservation,
        }
    }
}

/// The shuffle outputs a worker holds in memory, bounded by `budget` bytes (which its memory
/// pool must also grant), until the coordinator no longer lists their job as running
/// ([`ShuffleStore::retain_jobs`]).
#[derive(Debug)]
pub struct ShuffleStore {
    /// The worker's Flight port: a location is this worker's when it names that port.
    port: u16,
    budget: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    partitions: HashMap<ShuffleKey, Arc<StoredPartition>>,
    /// Bytes held by stored partitions and promised to writers still running.
    used: usize,
    /// When each job with stored outputs was last known to run.
    jobs: HashMap<String, Instant>,
}

impl ShuffleStore {
    pub fn new(port: u16, budget: usize) -> Self {
        Self {
            port,
            budget,
            state: Mutex::default(),
        }
    }

    /// Whether shuffles may be kept in memory at all.
    pub fn enabled(&self) -> bool {
        self.budget > 0
    }

    /// Promises `bytes` more to a writer, within the budget. False when it does not fit: the
    /// writer then puts its output on disk.
    pub fn try_take(&self, bytes: usize) -> bool {
        let mut state = self.state.lock();
        let fits = state.used + bytes <= self.budget;
        if fits {
            state.used += bytes;
        }
        fits
    }

    /// Gives back `bytes` promised by [`ShuffleStore::try_take`] and not kept.
    pub fn give_back(&self, bytes: usize) {
        let mut state = self.state.lock();
        state.used = state.used.saturating_sub(bytes);
    }

    /// Keeps a finished task's output partitions; their bytes were taken before.
    pub fn commit(&self, partitions: Vec<(ShuffleKey, StoredPartition)>) {
        let mut state = self.state.lock();
        for (key, partition) in partitions {
            state.jobs.insert(key.job_id.clone(), Instant::now());
            // A task run again (its stage retried) replaces what the first run wrote.
            if let Some(old) = state.partitions.insert(key, Arc::new(partition)) {
                state.used = state.used.saturating_sub(old.bytes);
            }
        }
    }

    /// The partition at `location`, if this worker holds it in memory.
    pub fn get(&self, location: &PartitionLocation) -> Option<Arc<StoredPartition>> {
        if location.executor_meta.port != self.port {
            return None;
        }
        self.get_key(&ShuffleKey::of(location))
    }

    pub fn get_key(&self, key: &ShuffleKey) -> Option<Arc<StoredPartition>> {
        self.state.lock().partitions.get(key).cloned()
    }

    /// Drops the outputs of every job that is not in `running` and was last seen running
    /// more than [`RELEASE_GRACE`] ago. Returns the bytes freed.
    pub fn retain_jobs(&self, running: &HashSet<String>) -> usize {
        self.retain_jobs_at(running, Instant::now())
    }

    fn retain_jobs_at(&self, running: &HashSet<String>, now: Instant) -> usize {
        let mut state = self.state.lock();
        let State {
            partitions,
            used,
            jobs,
        } = &mut *state;
        jobs.retain(|job, seen| {
            if running.contains(job) {
                *seen = now;
            }
            now.saturating_duration_since(*seen) < RELEASE_GRACE
        });
        let mut freed = 0;
        partitions.retain(|key, partition| {
            let keep = jobs.contains_key(&key.job_id);
            if !keep {
                freed += partition.bytes;
            }
            keep
        });
        *used = used.saturating_sub(freed);
        freed
    }

    /// Bytes held, and the number of partitions.
    #[cfg(test)]
    fn held(&self) -> (usize, usize) {
        let state = self.state.lock();
        (state.used, state.partitions.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::execution::memory_pool::{GreedyMemoryPool, MemoryConsumer, MemoryPool};

    fn partition(pool: &Arc<dyn MemoryPool>, store: &ShuffleStore) -> StoredPartition {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from(vec![1, 2, 3]))],
        )
        .unwrap();
        let bytes = batch.get_array_memory_size();
        assert!(store.try_take(bytes));
        let reservation = MemoryConsumer::new("test").register(pool);
        reservation.grow(bytes);
        StoredPartition::new(schema, vec![batch], bytes, reservation)
    }

    fn key(job: &str, partition_id: usize) -> ShuffleKey {
        ShuffleKey {
            job_id: job.into(),
            stage_id: 1,
            partition_id,
            file_id: Some(0),
        }
    }

    #[test]
    fn outputs_of_ended_jobs_go_after_the_grace_and_give_back_their_memory() {
        let pool: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(1 << 20));
        let store = ShuffleStore::new(50051, 1 << 20);
        let held = vec![
            (key("a", 0), partition(&pool, &store)),
            (key("a", 1), partition(&pool, &store)),
            (key("b", 0), partition(&pool, &store)),
        ];
        store.commit(held);
        let (used, count) = store.held();
        assert_eq!(count, 3);
        assert!(
            used > 0 && pool.reserved() == used,
            "{used} vs {}",
            pool.reserved()
        );

        let running: HashSet<String> = ["a".to_string()].into();
        // Within the grace, a job missing from the list keeps its outputs.
        assert_eq!(store.retain_jobs_at(&running, Instant::now()), 0);
        assert_eq!(store.held().1, 3);
        // After it, only the running job's remain, and the pool has the rest back.
        let later = Instant::now() + RELEASE_GRACE;
        let freed = store.retain_jobs_at(&running, later);
        assert!(freed > 0);
        assert!(store.get_key(&key("b", 0)).is_none());
        assert!(store.get_key(&key("a", 1)).is_some());
        assert_eq!(store.held(), (used - freed, 2));
        assert_eq!(pool.reserved(), used - freed);
        // A running job is never dropped.
        store.retain_jobs_at(&running, later + RELEASE_GRACE);
        assert_eq!(store.held().1, 2);
    }

    #[test]
    fn the_budget_bounds_what_writers_take() {
        let store = ShuffleStore::new(50051, 100);
        assert!(store.try_take(60));
        assert!(!store.try_take(50), "over the budget");
        store.give_back(60);
        assert!(store.try_take(100));
        assert!(!ShuffleStore::new(50051, 0).enabled());
    }
}
