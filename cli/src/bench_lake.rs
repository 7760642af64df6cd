//! `braid bench lake`: TPC-H written once (cached under `--dir`) as plain Parquet files, as
//! Iceberg tables (an Iceberg SQL catalog on SQLite) and as Delta Lake tables (both written by
//! Braid's own `CREATE TABLE AS`), then, in the same run, a full scan of `lineitem` and the 22
//! TPC-H queries through each connector on an embedded cluster — `files` (catalog `lake`),
//! `iceberg` (catalog `ice`) and `delta` (catalog `dl`) —
//! and through plain single-process DataFusion reading the same Parquet files directly, with
//! the ratios.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use braid_connector_tpch::{TpchCatalog, TpchConfig};
use datafusion::arrow::array::StringArray;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};

use crate::bench::{compare, tpch_queries};
use crate::embedded::EmbeddedCluster;

/// The TPC-H tables.
const TABLES: [&str; 8] = [
    "customer", "lineitem", "nation", "orders", "part", "partsupp", "region", "supplier",
];

/// A full scan of `lineitem`: every column read, little sent back.
const LINEITEM_SCAN: &str = "SELECT count(*), sum(l_quantity), sum(l_extendedprice), \
    sum(l_discount), sum(l_tax), min(l_shipdate), max(l_commitdate), max(l_receiptdate), \
    count(DISTINCT l_returnflag), count(DISTINCT l_linestatus), max(l_shipinstruct), \
    max(l_shipmode), max(l_comment), max(l_orderkey), max(l_partkey), max(l_suppkey), \
    max(l_linenumber) FROM lineitem";

/// Options of `braid bench lake`.
#[derive(Debug, Clone, clap::Args)]
pub struct LakeBenchArgs {
    /// Scale factor of the data written.
    #[arg(long, default_value_t = 1.0)]
    pub sf: f64,
    /// Where the data is written once and kept (default: ~/.cache/braid/lake/sf<N>).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Queries to run, e.g. 1,3,18 (default: all 22).
    #[arg(long, value_delimiter = ',')]
    pub queries: Vec<usize>,
    /// Runs per query and engine; the fastest counts.
    #[arg(long, default_value_t = 2)]
    pub iterations: usize,
}

/// Runs the benchmark on its own embedded cluster.
pub async fn run(args: &LakeBenchArgs) -> Result<(), String> {
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => PathBuf::from(std::env::var_os("HOME").ok_or("HOME is not set: pass --dir")?)
            .join(format!(".cache/braid/lake/sf{}", args.sf)),
    };
    let parquet = dir.join("parquet");
    write_parquet_once(&parquet.join("tpch"), args.sf).await?;
    let iceberg = dir.join("iceberg");
    std::fs::create_dir_all(iceberg.join("warehouse"))
        .map_err(|e| format!("cannot create {}: {e}", iceberg.display()))?;
    let delta = dir.join("delta");
    std::fs::create_dir_all(&delta)
        .map_err(|e| format!("cannot create {}: {e}", delta.display()))?;
    let catalogs = dir.join("catalog");
    std::fs::create_dir_all(&catalogs)
        .map_err(|e| format!("cannot create {}: {e}", catalogs.display()))?;
    let catalog_files = [
        (
            "lake.toml",
            format!(
                "connector = \"files\"\nlocation = {}\n",
                toml_string(&parquet)?
            ),
        ),
        (
            "ice.toml",
            format!(
                "connector = \"iceberg\"\ncatalog_type = \"sql\"\nuri = {}\nwarehouse = {}\n",
                // `mode=rwc`: SQLite creates the database on the first run.
                toml::Value::String(format!(
                    "sqlite://{}?mode=rwc",
                    iceberg.join("catalog.db").display()
                )),
                toml_string(&iceberg.join("warehouse"))?
            ),
        ),
        (
            "dl.toml",
            format!(
                "connector = \"delta\"\nlocation = {}\n",
                toml_string(&delta)?
            ),
        ),
    ];
    for (name, text) in catalog_files {
        std::fs::write(catalogs.join(name), text)
            .map_err(|e| format!("cannot write the catalog file {name}: {e}"))?;
    }

    let cluster = EmbeddedCluster::start(Some(catalogs)).await?;
    let mut client = cluster.client().await.map_err(|e| e.to_string())?;
    write_once(&mut client, "ice", "an Iceberg").await?;
    write_once(&mut client, "dl", "a Delta Lake").await?;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let connectors = [
        ("files", "lake", parquet.join("tpch")),
        ("iceberg", "ice", iceberg.join("warehouse/tpch")),
        ("delta", "dl", delta.join("tpch")),
    ];
    for (connector, catalog, files) in connectors {
        client
            .query_all(&format!("USE {catalog}.tpch"))
            .await
            .map_err(|e| e.to_string())?;
        let plain =
            SessionContext::new_with_config(SessionConfig::new().with_target_partitions(cores));
        for table in TABLES {
            // Iceberg keeps a table's Parquet files under `data/`, beside its metadata.
            let mut path = files.join(table);
            if connector == "iceberg" {
                path = path.join("data");
            }
            plain
                .register_parquet(
                    table,
                    path.to_str().ok_or("the data directory is not UTF-8")?,
                    ParquetReadOptions::default(),
                )
                .await
                .map_err(|e| format!("plain DataFusion cannot read {}: {e}", path.display()))?;
        }
        println!(
            "TPC-H SF {} — Braid `{connector}` connector (embedded cluster) vs plain DataFusion ({cores} partitions) on the same Parquet files ({}), best of {}",
            args.sf,
            files.display(),
            args.iterations.max(1)
        );
        println!("lineitem full scan:");
        compare(
            &mut client,
            &plain,
            &[("scan".to_string(), LINEITEM_SCAN)],
            args.iterations,
        )
        .await?;
        println!("TPC-H queries:");
        compare(
            &mut client,
            &plain,
            &tpch_queries(&args.queries)?,
            args.iterations,
        )
        .await?;
    }
    Ok(())
}

/// Copies each TPC-H table from the `lake` catalog into `catalog` (of the table format
/// `format`, for the progress lines) with `CREATE TABLE AS`, unless it is there from an earlier
/// run (a failed `CREATE TABLE AS` leaves no table behind).
async fn write_once(
    client: &mut crate::client::BraidClient,
    catalog: &str,
    format: &str,
) -> Result<(), String> {
    let run = |e: crate::client::ClientError| e.to_string();
    client
        .query_all(&format!("CREATE SCHEMA IF NOT EXISTS {catalog}.tpch"))
        .await
        .map_err(run)?;
    let (_, batches) = client
        .query_all(&format!("SHOW TABLES FROM {catalog}.tpch"))
        .await
        .map_err(run)?;
    let existing: Vec<String> = batches
        .iter()
        .flat_map(|b| {
            let names = b.column(0).as_any().downcast_ref::<StringArray>();
            (0..b.num_rows())
                .filter_map(move |i| names.map(|n| n.value(i).to_string()))
                .collect::<Vec<_>>()
        })
        .collect();
    for table in TABLES {
        if existing.iter().any(|t| t == table) {
            continue;
        }
        println!("writing TPC-H {table} as {format} table ({catalog}.tpch.{table})");
        client
            .query_all(&format!(
                "CREATE TABLE {catalog}.tpch.{table} AS SELECT * FROM lake.tpch.{table}"
            ))
            .await
            .map_err(|e| format!("writing {catalog}.tpch.{table}: {e}"))?;
    }
    Ok(())
}

/// Writes each TPC-H table to `dir/<table>/` as Parquet, unless it is there from an earlier
/// run (a table is written to a scratch directory and renamed, so a half-written one is never
/// taken for done).
async fn write_parquet_once(dir: &Path, sf: f64) -> Result<(), String> {
    let schema = if (sf - 0.01).abs() < 1e-9 {
        "tiny".to_string()
    } else {
        format!("sf{sf}")
    };
    let ctx = SessionContext::new();
    ctx.register_catalog(
        "tpch",
        Arc::new(TpchCatalog::new("tpch".into(), TpchConfig::default())),
    );
    for table in TABLES {
        let target = dir.join(table);
        if target.is_dir() {
            continue;
        }
        let scratch = dir.join(format!(".{table}.writing"));
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(&scratch)
            .map_err(|e| format!("cannot create {}: {e}", scratch.display()))?;
        println!("writing TPC-H SF {sf} {table} to {}", target.display());
        let location = format!(
            "{}/",
            scratch.to_str().ok_or("the data directory is not UTF-8")?
        );
        let sql = format!(
            "COPY (SELECT * FROM tpch.\"{schema}\".{table}) TO '{}' STORED AS PARQUET",
            location.replace('\'', "''")
        );
        ctx.sql(&sql)
            .await
            .map_err(|e| format!("writing {table}: {e}"))?
            .collect()
            .await
            .map_err(|e| format!("writing {table}: {e}"))?;
        std::fs::rename(&scratch, &target)
            .map_err(|e| format!("cannot rename {}: {e}", scratch.display()))?;
    }
    Ok(())
}

/// `path` as a TOML string.
fn toml_string(path: &Path) -> Result<String, String> {
    let text = path.to_str().ok_or("the data directory is not UTF-8")?;
    Ok(toml::Value::String(text.to_string()).to_string())
}
