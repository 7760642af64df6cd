//! Braid's integration tests: one test binary, so that it links once, with a module per area.
//! Each test starts what it needs (a coordinator and workers as separate OS processes) and
//! uses the services `scripts/services.sh` starts (PostgreSQL, tansu, s3s-fs); a test whose
//! service is missing fails.

mod adbc;
mod auth;
mod cancel;
mod connector_spi;
mod delta;
mod errors;
mod files;
mod flight_sql;
mod iceberg;
mod kafka;
mod memory;
mod network;
mod postgres;
mod repl;
mod resources;
mod tpch;
mod trino_http;
mod web_ui;
mod worker_failure;
