//! What every Braid process configures the same way: the session config (so options set on
//! the coordinator reach the workers) and the full function set.

use std::sync::Arc;

use ballista_core::extension::{
    SessionConfigExt, ballista_aggregate_functions, ballista_scalar_functions,
    ballista_window_functions,
};
use ballista_core::registry::BallistaFunctionRegistry;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::SessionConfig;

/// The session config of coordinator and workers alike: Ballista's settings, the
/// `information_schema`, `tpch.tiny` as the starting schema, and hash joins.
///
/// Ballista turns hash joins off in favour of sort-merge joins; both sides of a partitioned
/// hash join are shuffled by key anyway, and measured on TPC-H SF1 the sorts cost more than
/// they save (see `braid bench tpch`).
pub fn session_config() -> SessionConfig {
    let mut config = SessionConfig::new_with_ballista();
    config.options_mut().optimizer.prefer_hash_join = true;
    config
        .with_information_schema(true)
        .with_create_default_catalog_and_schema(false)
        .with_default_catalog_and_schema("tpch", "tiny")
}

/// Every scalar, aggregate and window function, nested (array/map) ones included: the worker's
/// default registry lacks them.
pub fn function_registry() -> Arc<BallistaFunctionRegistry> {
    let state = SessionStateBuilder::new()
        .with_config(session_config())
        .with_default_features()
        .with_scalar_functions(ballista_scalar_functions())
        .with_aggregate_functions(ballista_aggregate_functions())
        .with_window_functions(ballista_window_functions())
        .build();
    Arc::new(BallistaFunctionRegistry::from(&state))
}
