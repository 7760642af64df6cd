//! # braid-optimizer-rules
//!
//! Planning and runtime policies shared by the coordinator and the workers.
//!
//! - [`memory`]: the workers' memory-pool policy ([`memory::WorkerMemoryPool`]). Ballista 53
//!   installs no pool by default (unbounded); Braid bounds every worker.

pub mod memory;
