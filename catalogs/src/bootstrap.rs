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
/// `information_schema`, and Trino's default of no default catalog.
pub fn session_config() -> SessionConfig {
    SessionConfig::new_with_ballista()
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
