//! `braid bench postgres`: reads one PostgreSQL table whole through Braid (split reads on the
//! workers, rows streamed to this client) and with `psql -c "\copy (SELECT ...) to '/dev/null'"`
//! in the same run, and prints rows/s for both.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use braid_catalogs::load_catalog_file;
use braid_connector_postgres::{PostgresConfig, qualified, quote_ident, quote_literal};
use futures::StreamExt;
use secrecy::ExposeSecret;

use crate::client::BraidClient;

/// Options of `braid bench postgres`.
#[derive(Debug, Clone, clap::Args)]
pub struct PostgresBenchArgs {
    /// The postgres catalog; its file in the catalog directory tells psql where to connect.
    #[arg(long, default_value = "pg")]
    pub catalog: String,
    /// The table to read, `schema.table`, both names as PostgreSQL stores them (case and all).
    #[arg(long, default_value = "public.braid_bench")]
    pub table: String,
    /// First (re)create the table with this many rows: a bigint key, an int, a numeric(12,2)
    /// and a 32-character text column. Only a table this command created is ever dropped.
    #[arg(long)]
    pub create_rows: Option<u64>,
    /// Runs per reader; the fastest counts.
    #[arg(long, default_value_t = 3)]
    pub iterations: usize,
}

fn psql(config: &PostgresConfig, sql: &str) -> Result<Duration, String> {
    let started = Instant::now();
    let mut command = Command::new("psql");
    command
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1"])
        .args(["-h", &config.host, "-p", &config.port.to_string()])
        .args(["-U", &config.user, "-d", &config.database, "-c", sql]);
    if let Some(password) = &config.password {
        command.env("PGPASSWORD", password.expose_secret());
    }
    let out = command
        .output()
        .map_err(|e| format!("cannot run psql (is postgresql-client installed?): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "psql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(started.elapsed())
}

/// The comment that marks a table as this command's, so that it never drops another.
const BENCH_TABLE_COMMENT: &str = "created by braid bench postgres";

/// (Re)creates the bench table with `rows` rows. A table of that name that this command did
/// not create is left alone, with an error.
pub async fn create_table(
    pool: &std::sync::Arc<braid_connector_postgres::Pool>,
    schema: &str,
    table: &str,
    rows: u64,
) -> Result<(), String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    let pg_error = |e: tokio_postgres::Error| braid_connector_postgres::error_message(&e);
    let existing = client
        .query_opt(
            "SELECT coalesce(obj_description(c.oid, 'pg_class'), '') FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
            &[&schema, &table],
        )
        .await
        .map_err(pg_error)?;
    let pg_table = qualified(schema, table);
    match existing {
        Some(row) if row.get::<_, String>(0) != BENCH_TABLE_COMMENT => {
            return Err(format!(
                "{pg_table} exists and was not created by braid bench: choose another --table (it is never dropped)"
            ));
        }
        Some(_) => {
            client
                .batch_execute(&format!("DROP TABLE {pg_table}"))
                .await
                .map_err(pg_error)?;
        }
        None => {}
    }
    client
        .batch_execute(&format!(
            "CREATE TABLE {pg_table} (id bigint PRIMARY KEY, v int, amount numeric(12,2), note text); \
             COMMENT ON TABLE {pg_table} IS {comment}; \
             INSERT INTO {pg_table} SELECT g, g % 1000, (g % 100000) / 100.0, md5(g::text) \
             FROM generate_series(1, {rows}) g; ANALYZE {pg_table}",
            comment = quote_literal(BENCH_TABLE_COMMENT)
        ))
        .await
        .map_err(pg_error)
}

/// Runs the benchmark against the catalog files in `catalog_dir`.
pub async fn run(
    client: &mut BraidClient,
    catalog_dir: &Path,
    args: &PostgresBenchArgs,
) -> Result<(), String> {
    let file = catalog_dir.join(format!("{}.toml", args.catalog));
    let (_, spec) = load_catalog_file(&file).map_err(|e| e.to_string())?;
    if spec.kind != braid_connector_postgres::KIND {
        return Err(format!("{} is not a postgres catalog", file.display()));
    }
    let config: PostgresConfig = spec
        .options
        .parse()
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let (schema, table) = args
        .table
        .split_once('.')
        .ok_or_else(|| format!("--table {}: expected schema.table", args.table))?;
    let pool = std::sync::Arc::new(braid_connector_postgres::Pool::new(
        "bench".into(),
        std::sync::Arc::new(config.clone()),
    ));
    let pg_table = qualified(schema, table);
    if let Some(rows) = args.create_rows {
        println!("creating {pg_table} with {rows} rows");
        create_table(&pool, schema, table, rows).await?;
    }
    let relation = format!(
        "{}.{}.{}",
        quote_ident(&args.catalog),
        quote_ident(schema),
        quote_ident(table)
    );
    let (_, plan) = client
        .query_all(&format!("EXPLAIN SELECT * FROM {relation}"))
        .await
        .map_err(|e| e.to_string())?;
    let plan = arrow::util::pretty::pretty_format_batches(&plan)
        .map_err(|e| e.to_string())?
        .to_string();
    let splits = plan
        .split("splits=")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap_or("?")
        .to_string();
    let workers = client
        .action(braid_scheduler::flight_sql::WORKERS_ACTION, "")
        .await
        .map_err(|e| e.to_string())?;

    let (mut braid_best, mut rows) = (Duration::MAX, 0usize);
    for _ in 0..args.iterations.max(1) {
        let started = Instant::now();
        let (_, mut batches) = client
            .query(&format!("SELECT * FROM {relation}"))
            .await
            .map_err(|e| e.to_string())?;
        let mut count = 0;
        while let Some(batch) = batches.next().await {
            count += batch.map_err(|e| e.to_string())?.num_rows();
        }
        braid_best = braid_best.min(started.elapsed());
        rows = count;
    }
    let mut psql_best = Duration::MAX;
    for _ in 0..args.iterations.max(1) {
        psql_best = psql_best.min(psql(
            &config,
            &format!("\\copy (SELECT * FROM {pg_table}) to '/dev/null'"),
        )?);
    }
    let (copy_best, query_best) = transfer_formats(&pool, &pg_table, args.iterations).await?;
    let rate = |d: Duration| rows as f64 / d.as_secs_f64();
    println!(
        "{rows} rows of {relation}: Braid {} splits on {} workers",
        splits, workers["workers"]
    );
    println!(
        "Braid: {:>8.0} ms, {:>12.0} rows/s",
        braid_best.as_secs_f64() * 1e3,
        rate(braid_best)
    );
    println!(
        "psql \\copy: {:>8.0} ms, {:>12.0} rows/s",
        psql_best.as_secs_f64() * 1e3,
        rate(psql_best)
    );
    println!(
        "Braid / psql throughput: {:.2}x",
        rate(braid_best) / rate(psql_best)
    );
    println!(
        "one connection, rows not decoded: binary COPY {:.0} rows/s, binary rows of a query (as a cursor fetches them) {:.0} rows/s",
        rate(copy_best),
        rate(query_best)
    );
    Ok(())
}

/// How fast one connection receives the table as binary COPY and as binary result rows (the
/// extended protocol, which cursors use), without decoding: why the connector reads with COPY.
async fn transfer_formats(
    pool: &std::sync::Arc<braid_connector_postgres::Pool>,
    pg_table: &str,
    iterations: usize,
) -> Result<(Duration, Duration), String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    let select = format!("SELECT * FROM {pg_table}");
    let (mut copy_best, mut query_best) = (Duration::MAX, Duration::MAX);
    for _ in 0..iterations.max(1) {
        let started = Instant::now();
        let copy = client
            .copy_out(format!("COPY ({select}) TO STDOUT (FORMAT binary)").as_str())
            .await
            .map_err(|e| e.to_string())?;
        let mut copy = std::pin::pin!(copy);
        while let Some(chunk) = copy.next().await {
            chunk.map_err(|e| e.to_string())?;
        }
        copy_best = copy_best.min(started.elapsed());

        let started = Instant::now();
        let rows = client
            .query_raw(select.as_str(), std::iter::empty::<i32>())
            .await
            .map_err(|e| e.to_string())?;
        let mut rows = std::pin::pin!(rows);
        while let Some(row) = rows.next().await {
            row.map_err(|e| e.to_string())?;
        }
        query_best = query_best.min(started.elapsed());
    }
    Ok((copy_best, query_best))
}
