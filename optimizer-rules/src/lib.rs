//! # braid-optimizer-rules
//!
//! Planning and runtime policies: pushdown rules connectors build on, and memory-pool policies.
//!
//! - [`subtree`]: [`subtree::SubtreePushdown`], the rule that runs the largest single-source
//!   subtree of a plan in that source; a connector supplies a [`subtree::SubtreeSource`]
//!   (its tables, what it computes as Braid does, its SQL dialect, a table that runs the SQL).
//! - [`memory`]: the workers' memory ([`memory::WorkerMemory`], one pool per worker with a
//!   [`memory::QueryPool`] per query, policies `fair`, `greedy`, `reserved`). Ballista 53
//!   installs no pool by default (unbounded); Braid bounds every worker and every query.
//! - [`joins`]: [`joins::BroadcastJoins`] and [`joins::SingleProbe`], which choose broadcast
//!   joins by statistics and keep every join correct when Ballista splits its probe side.
//! - [`single_task`]: [`single_task::input_rows`], the rows a query's tables hold by their
//!   statistics; under `single_task_max_input_rows` the coordinator plans it as one task.
//! - [`local_build`]: [`local_build::LocalBuildJoins`], which has each task of a broadcast
//!   join build a small build side itself ([`local_build::LocalBuildJoinExec`]) instead of
//!   reading it from a stage of its own.
//! - [`topk`]: [`topk::SpillingTopK`], which turns a TopK with a large `LIMIT` into a sort
//!   that can spill.
//! - [`properties`]: the `braid.` session properties ([`properties::QueryProperties`]): the
//!   query id every job carries and Trino's per-query limits (`query_max_run_time`, ...).

pub mod joins;
pub mod local_build;
pub mod memory;
pub mod properties;
pub mod single_task;
pub mod subtree;
#[cfg(test)]
mod test_tables;
pub mod topk;
