//! `braid bench tpch`: the 22 TPC-H queries on the embedded cluster (or the cluster of
//! `--connect`) and on plain single-process DataFusion over the same generated data, in one
//! run, with the ratio.

use std::sync::Arc;
use std::time::{Duration, Instant};

use braid_connector_tpch::queries::QUERIES;
use braid_connector_tpch::{TpchCatalog, TpchConfig};
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::TryStreamExt;

use crate::client::BraidClient;

/// Options of `braid bench tpch`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Scale factor (0.01 = tiny, 1 = sf1, ...).
    #[arg(long, default_value_t = 1.0)]
    pub sf: f64,
    /// Queries to run, e.g. 1,3,18 (default: all 22).
    #[arg(long, value_delimiter = ',')]
    pub queries: Vec<usize>,
    /// Runs per query and engine; the fastest run counts (the first one warms caches).
    #[arg(long, default_value_t = 3)]
    pub iterations: usize,
    /// Session properties for Braid's side, e.g. `--session join_distribution_type=PARTITIONED`.
    #[arg(long, value_name = "NAME=VALUE")]
    pub session: Vec<String>,
}

/// The schema name of a scale factor: `tiny` for 0.01, else `sfN`.
fn schema_of(sf: f64) -> String {
    if (sf - 0.01).abs() < 1e-9 {
        "tiny".into()
    } else {
        format!("\"sf{sf}\"")
    }
}

/// Sets each `NAME=VALUE` of `properties` (`--session`) as a session property of `client`.
pub async fn set_session(client: &mut BraidClient, properties: &[String]) -> Result<(), String> {
    for property in properties {
        let (name, value) = property
            .split_once('=')
            .ok_or_else(|| format!("--session {property}: expected NAME=VALUE"))?;
        let name = name.trim();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            return Err(format!(
                "--session {property}: '{name}' is not a property name"
            ));
        }
        let value = value.replace('\'', "''");
        client
            .query_all(&format!("SET SESSION {name} = '{value}'"))
            .await
            .map_err(|e| format!("--session {property}: {e}"))?;
    }
    Ok(())
}

/// Runs the benchmark on `cluster` (as the heading names it) through `client`; prints one
/// line per query and the totals.
pub async fn run(client: &mut BraidClient, cluster: &str, args: &BenchArgs) -> Result<(), String> {
    let schema = schema_of(args.sf);
    let queries = tpch_queries(&args.queries)?;
    client
        .query_all(&format!("USE tpch.{schema}"))
        .await
        .map_err(|e| e.to_string())?;
    set_session(client, &args.session).await?;

    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let config = SessionConfig::new()
        .with_target_partitions(cores)
        .with_default_catalog_and_schema("tpch", schema.trim_matches('"'));
    let plain = SessionContext::new_with_config(config);
    plain.register_catalog(
        "tpch",
        Arc::new(TpchCatalog::new("tpch".into(), TpchConfig::default())),
    );

    println!(
        "TPC-H SF {} — Braid on {cluster} vs plain DataFusion ({} partitions), best of {}",
        args.sf,
        cores,
        args.iterations.max(1)
    );
    compare(client, &plain, &queries, args.iterations).await?;
    Ok(())
}

/// The TPC-H queries numbered `numbers` (all 22 when empty), labelled `Q<n>`.
pub fn tpch_queries(numbers: &[usize]) -> Result<Vec<(String, &'static str)>, String> {
    let numbers: Vec<usize> = if numbers.is_empty() {
        (1..=22).collect()
    } else {
        numbers.to_vec()
    };
    numbers
        .into_iter()
        .map(|q| match q {
            1..=22 => Ok((format!("Q{q}"), QUERIES[q - 1])),
            bad => Err(format!("there is no TPC-H query {bad} (1 to 22)")),
        })
        .collect()
}

/// Runs each of `queries` (label, SQL) `iterations` times on Braid (through `client`) and on
/// `plain` DataFusion, alternating; prints one line per query with the best times and their
/// ratio, then the totals, and returns the totals. Both must return as many rows.
pub async fn compare(
    client: &mut BraidClient,
    plain: &SessionContext,
    queries: &[(String, &str)],
    iterations: usize,
) -> Result<(Duration, Duration), String> {
    println!(
        "{:>7} {:>12} {:>12} {:>8} {:>8}",
        "query", "braid ms", "datafusion ms", "ratio", "rows"
    );
    let (mut braid_total, mut plain_total) = (Duration::ZERO, Duration::ZERO);
    for (label, sql) in queries {
        let (mut braid, mut datafusion) = (Duration::MAX, Duration::MAX);
        let (mut braid_rows, mut rows) = (0, 0);
        for _ in 0..iterations.max(1) {
            let started = Instant::now();
            let (_, batches) = client
                .query_all(sql)
                .await
                .map_err(|e| format!("{label} on Braid: {e}"))?;
            braid = braid.min(started.elapsed());
            braid_rows = batches.iter().map(|b| b.num_rows()).sum();

            let started = Instant::now();
            rows = run_plain(plain, sql)
                .await
                .map_err(|e| format!("{label} on DataFusion: {e}"))?;
            datafusion = datafusion.min(started.elapsed());
        }
        if rows != braid_rows {
            return Err(format!(
                "{label}: Braid returned {braid_rows} rows, DataFusion {rows}"
            ));
        }
        braid_total += braid;
        plain_total += datafusion;
        println!(
            "{:>7} {:>12.1} {:>12.1} {:>8.2} {:>8}",
            label,
            braid.as_secs_f64() * 1e3,
            datafusion.as_secs_f64() * 1e3,
            braid.as_secs_f64() / datafusion.as_secs_f64().max(1e-9),
            rows
        );
    }
    println!(
        "{:>7} {:>12.1} {:>12.1} {:>8.2}",
        "total",
        braid_total.as_secs_f64() * 1e3,
        plain_total.as_secs_f64() * 1e3,
        braid_total.as_secs_f64() / plain_total.as_secs_f64().max(1e-9)
    );
    Ok((braid_total, plain_total))
}

/// Runs `sql` on plain DataFusion; returns the row count.
async fn run_plain(ctx: &SessionContext, sql: &str) -> datafusion::error::Result<usize> {
    ctx.sql(sql)
        .await?
        .execute_stream()
        .await?
        .try_fold(0, |n, b| async move { Ok(n + b.num_rows()) })
        .await
}
