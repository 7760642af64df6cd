//! What every Braid process configures the same way: the session config (so options set on
//! the coordinator reach the workers), the full function set, how daemon settings layer, and
//! how a daemon program logs and exits ([`run_daemon`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ballista_core::extension::{
    SessionConfigExt, ballista_aggregate_functions, ballista_scalar_functions,
    ballista_window_functions,
};
use ballista_core::registry::BallistaFunctionRegistry;
use braid_optimizer_rules::properties::QueryProperties;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::SessionConfig;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The session config of coordinator and workers alike: Ballista's settings with hash joins,
/// the `information_schema`, Braid's `braid.` session properties ([`QueryProperties`]), and
/// `tpch.tiny` as the starting schema.
///
/// Ballista prefers sort-merge joins; partitioned hash joins skip the sorts (TPC-H SF1 on
/// the embedded cluster: 1.77x of plain DataFusion with sort-merge joins, see
/// `braid bench tpch`). Broadcast joins are chosen by Braid's `BroadcastJoins` rule alone
/// (`braid-optimizer-rules`, Trino's `join_distribution_type`): DataFusion's size thresholds for
/// `CollectLeft` are 0, and Ballista's own promotion is off, as it checks no join type and a
/// semi/anti/outer join then loses the build-side rows that only the last probe partition of
/// one process may emit (TPC-H Q4 returned no rows on two workers).
pub fn session_config() -> SessionConfig {
    let mut config = SessionConfig::new_with_ballista()
        .with_ballista_broadcast_join_threshold_bytes(0)
        .with_information_schema(true)
        .with_create_default_catalog_and_schema(false)
        .with_default_catalog_and_schema("tpch", "tiny")
        .with_option_extension(QueryProperties::default());
    let optimizer = &mut config.options_mut().optimizer;
    optimizer.prefer_hash_join = true;
    optimizer.hash_join_single_partition_threshold = 0;
    optimizer.hash_join_single_partition_threshold_rows = 0;
    config
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

/// A daemon's settings. Precedence, lowest first: `defaults`, the `[section]` table of the
/// settings file (`config_file`, else `./braid.toml` if present), `BRAID_<SECTION>_*`
/// environment variables, then `flags` (only the flags given).
pub fn layered_settings<T: Serialize + DeserializeOwned>(
    defaults: T,
    flags: &impl Serialize,
    config_file: Option<&Path>,
    section: &str,
) -> Result<T, String> {
    let file = config_file.map_or_else(|| PathBuf::from("braid.toml"), Path::to_path_buf);
    if config_file.is_some() && !file.is_file() {
        return Err(format!("settings file {} does not exist", file.display()));
    }
    Figment::from(Serialized::defaults(defaults))
        .merge(Toml::file(&file).nested())
        // Env and flags are global: they win over the selected [section] profile.
        .merge(Env::prefixed(&format!("BRAID_{}_", section.to_uppercase())).global())
        .merge(Serialized::globals(flags))
        .select(section)
        .extract()
        .map_err(|e| format!("{e} ({})", file.display()))
}

/// Runs the daemon `program`: logs to stdout (`RUST_LOG`, else `default_filter`), runs `body`
/// until it ends, and reports a failure on stderr and in the exit code.
pub async fn run_daemon<E: std::fmt::Display>(
    program: &str,
    default_filter: &str,
    body: impl std::future::Future<Output = Result<(), E>>,
) -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_filter.into()),
        )
        .init();
    match body.await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{program}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
    struct Settings {
        port: u16,
        host: String,
        slots: usize,
    }

    #[derive(Serialize)]
    struct Flags {
        #[serde(skip_serializing_if = "Option::is_none")]
        slots: Option<usize>,
    }

    #[test]
    fn flags_beat_the_file_which_beats_the_defaults() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("braid.toml");
        std::fs::write(&file, "[worker]\nport = 7\nslots = 3\n[other]\nport = 9\n").expect("write");
        let defaults = Settings {
            port: 1,
            host: "h".into(),
            slots: 1,
        };
        let resolved = layered_settings(defaults, &Flags { slots: Some(5) }, Some(&file), "worker")
            .expect("valid settings");
        assert_eq!(
            resolved,
            Settings {
                port: 7,
                host: "h".into(),
                slots: 5
            }
        );

        let missing = layered_settings(
            Settings {
                port: 1,
                host: "h".into(),
                slots: 1,
            },
            &Flags { slots: None },
            Some(&dir.path().join("nope.toml")),
            "worker",
        );
        assert!(missing.expect_err("missing file").contains("nope.toml"));
    }
}
