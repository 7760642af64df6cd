//! # braid-cli
//!
//! The `braid` client: a Flight SQL [`client::BraidClient`] with its own session, the
//! [`embedded::EmbeddedCluster`] it starts when no `--connect` is given, the [`repl`] (with
//! tab [`completion`]), the statement [`runner`] behind it and `-c`/`-f`, result [`output`]
//! formats, and the benchmarks: TPC-H
//! ([`bench`]), PostgreSQL ([`bench_postgres`]) and Kafka ([`bench_kafka`]) reads, lake files
//! ([`bench_lake`]) and per-statement latency ([`bench_latency`]).

pub mod bench;
pub mod bench_kafka;
pub mod bench_lake;
pub mod bench_latency;
pub mod bench_postgres;
pub mod client;
pub mod completion;
pub mod embedded;
pub mod output;
pub mod repl;
pub mod runner;
