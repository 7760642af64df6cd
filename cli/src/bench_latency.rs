//! `braid bench latency`: what a statement costs apart from its work, through Flight SQL:
//! p50/p99 of `SELECT 1`, of a metadata statement and of a `tpch.tiny` point query (as SQL, and
//! prepared once and executed with a new key each time), and the
//! time to the first batch of a large scan against the time of the whole stream.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, Int64Array, RecordBatch};
use futures::{StreamExt, TryStreamExt};

use crate::client::BraidClient;

/// Options of `braid bench latency`.
#[derive(Debug, Clone, clap::Args)]
pub struct LatencyBenchArgs {
    /// Runs of each small statement (after 5 warm-up runs).
    #[arg(long, default_value_t = 200)]
    pub iterations: usize,
    /// Runs of the large scan; the median counts.
    #[arg(long, default_value_t = 3)]
    pub stream_iterations: usize,
    /// The table whose whole scan is streamed.
    #[arg(long, default_value = "tpch.sf1.lineitem")]
    pub stream_table: String,
    /// Session properties, e.g. `--session single_task_max_input_rows=0`.
    #[arg(long, value_name = "NAME=VALUE")]
    pub session: Vec<String>,
}

/// Runs the benchmark and prints one line per statement.
pub async fn run(client: &mut BraidClient, args: &LatencyBenchArgs) -> Result<(), String> {
    crate::bench::set_session(client, &args.session).await?;
    let small = [
        ("SELECT 1", "SELECT 1".to_string()),
        ("SHOW CATALOGS", "SHOW CATALOGS".to_string()),
        (
            "point query",
            "SELECT o_orderkey, o_totalprice FROM tpch.tiny.orders WHERE o_orderkey = 7"
                .to_string(),
        ),
    ];
    println!(
        "{:>14} {:>10} {:>10} {:>10}   ({} runs each, through Flight SQL)",
        "statement", "p50 ms", "p99 ms", "max ms", args.iterations
    );
    for (label, sql) in &small {
        for _ in 0..5 {
            time_statement(client, sql).await?;
        }
        let mut times = Vec::with_capacity(args.iterations);
        for _ in 0..args.iterations.max(1) {
            times.push(time_statement(client, sql).await?.0);
        }
        times.sort();
        println!(
            "{:>14} {:>10.2} {:>10.2} {:>10.2}",
            label,
            ms(percentile(&times, 0.50)),
            ms(percentile(&times, 0.99)),
            ms(*times.last().unwrap_or(&Duration::ZERO)),
        );
    }

    prepared_point_queries(client, args.iterations).await?;

    let sql = format!("SELECT * FROM {}", args.stream_table);
    let mut runs = Vec::new();
    for _ in 0..args.stream_iterations.max(1) {
        runs.push(time_statement(client, &sql).await?);
    }
    runs.sort_by_key(|(total, _)| *total);
    let (total, first) = runs[runs.len() / 2];
    println!(
        "{sql}: first batch after {:.1} ms, whole stream {:.1} ms: ratio {:.3} (median of {})",
        ms(first),
        ms(total),
        first.as_secs_f64() / total.as_secs_f64().max(1e-9),
        runs.len()
    );
    Ok(())
}

/// The point query prepared once, then executed with a different key each time (bind,
/// execute, fetch), as an application's lookups are.
async fn prepared_point_queries(client: &mut BraidClient, iterations: usize) -> Result<(), String> {
    let sql = "SELECT o_orderkey, o_totalprice FROM tpch.tiny.orders WHERE o_orderkey = ?";
    let failed = |e: crate::client::ClientError| format!("{sql}: {e}");
    let mut statement = client.prepare(sql).await.map_err(failed)?;
    let mut times = Vec::with_capacity(iterations);
    // TPC-H's order keys are sparse: 1..=8, 33..=40, ... (15,000 orders in tpch.tiny).
    let keys = (0..).map(|i: i64| 1 + (i % 1_000) * 32);
    for (run, key) in keys.take(iterations.max(1) + 5).enumerate() {
        let parameters =
            RecordBatch::try_from_iter([("$1", Arc::new(Int64Array::from(vec![key])) as ArrayRef)])
                .map_err(|e| format!("{sql}: {e}"))?;
        let started = Instant::now();
        let (_, batches) = client
            .execute_prepared(&mut statement, Some(parameters))
            .await
            .map_err(failed)?;
        let rows: usize = batches
            .map(|b| b.map(|b| b.num_rows()))
            .try_collect::<Vec<_>>()
            .await
            .map_err(failed)?
            .into_iter()
            .sum();
        if rows != 1 {
            return Err(format!("{sql} with {key}: {rows} rows, expected 1"));
        }
        if run >= 5 {
            times.push(started.elapsed());
        }
    }
    times.sort();
    println!(
        "{:>14} {:>10.2} {:>10.2} {:>10.2}",
        "prepared point",
        ms(percentile(&times, 0.50)),
        ms(percentile(&times, 0.99)),
        ms(*times.last().unwrap_or(&Duration::ZERO)),
    );
    Ok(())
}

/// Runs `sql` to the end: the time of the whole statement and the time to its first batch
/// (the whole time if it has none). Nothing is kept.
async fn time_statement(
    client: &mut BraidClient,
    sql: &str,
) -> Result<(Duration, Duration), String> {
    let started = Instant::now();
    let (_, mut batches) = client.query(sql).await.map_err(|e| format!("{sql}: {e}"))?;
    let mut first = None;
    while let Some(batch) = batches.next().await {
        batch.map_err(|e| format!("{sql}: {e}"))?;
        first.get_or_insert_with(|| started.elapsed());
    }
    let total = started.elapsed();
    Ok((total, first.unwrap_or(total)))
}

/// The `q` quantile of sorted `times` (nearest rank).
fn percentile(times: &[Duration], q: f64) -> Duration {
    if times.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((times.len() as f64 * q).ceil() as usize).clamp(1, times.len());
    times[rank - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let times: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&times, 0.5), Duration::from_millis(50));
        assert_eq!(percentile(&times, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&times[..1], 0.99), Duration::from_millis(1));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }
}
