//! `braid bench tpch`: the 22 TPC-H queries on the embedded cluster and on plain
//! single-process DataFusion over the same generated data, in one run, with the ratio.

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
}

/// The schema name of a scale factor: `tiny` for 0.01, else `sfN`.
fn schema_of(sf: f64) -> String {
    if (sf - 0.01).abs() < 1e-9 {
        "tiny".into()
    } else {
        format!("\"sf{sf}\"")
    }
}

/// Runs the benchmark; prints one line per query and the totals.
pub async fn run(client: &mut BraidClient, args: &BenchArgs) -> Result<(), String> {
    let schema = schema_of(args.sf);
    let queries: Vec<usize> = if args.queries.is_empty() {
        (1..=22).collect()
    } else {
        args.queries.clone()
    };
    if let Some(bad) = queries.iter().find(|q| !(1..=22).contains(*q)) {
        return Err(format!("there is no TPC-H query {bad} (1 to 22)"));
    }
    client
        .query_all(&format!("USE tpch.{schema}"))
        .await
        .map_err(|e| e.to_string())?;

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
        "TPC-H SF {} — Braid embedded cluster vs plain DataFusion ({} partitions), best of {}",
        args.sf,
        cores,
        args.iterations.max(1)
    );
    println!(
        "{:>5} {:>12} {:>12} {:>8} {:>8}",
        "query", "braid ms", "datafusion ms", "ratio", "rows"
    );
    let (mut braid_total, mut plain_total) = (Duration::ZERO, Duration::ZERO);
    for q in queries {
        let sql = QUERIES[q - 1];
        let (mut braid, mut datafusion) = (Duration::MAX, Duration::MAX);
        let (mut braid_rows, mut rows) = (0, 0);
        for _ in 0..args.iterations.max(1) {
            let started = Instant::now();
            let (_, batches) = client
                .query_all(sql)
                .await
                .map_err(|e| format!("Q{q} on Braid: {e}"))?;
            braid = braid.min(started.elapsed());
            braid_rows = batches.iter().map(|b| b.num_rows()).sum();

            let started = Instant::now();
            rows = run_plain(&plain, sql)
                .await
                .map_err(|e| format!("Q{q} on DataFusion: {e}"))?;
            datafusion = datafusion.min(started.elapsed());
        }
        if rows != braid_rows {
            return Err(format!(
                "Q{q}: Braid returned {braid_rows} rows, DataFusion {rows}"
            ));
        }
        braid_total += braid;
        plain_total += datafusion;
        println!(
            "{:>5} {:>12.1} {:>12.1} {:>8.2} {:>8}",
            format!("Q{q}"),
            braid.as_secs_f64() * 1e3,
            datafusion.as_secs_f64() * 1e3,
            braid.as_secs_f64() / datafusion.as_secs_f64().max(1e-9),
            rows
        );
    }
    println!(
        "{:>5} {:>12.1} {:>12.1} {:>8.2}",
        "total",
        braid_total.as_secs_f64() * 1e3,
        plain_total.as_secs_f64() * 1e3,
        braid_total.as_secs_f64() / plain_total.as_secs_f64().max(1e-9)
    );
    Ok(())
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
