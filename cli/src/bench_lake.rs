//! `braid bench lake`: TPC-H written once as Parquet files (cached under `--dir`), then, in the
//! same run, a full scan of `lineitem` and the 22 TPC-H queries through Braid's `files`
//! connector (an embedded cluster whose catalog `lake` points at the files) and through plain
//! single-process DataFusion reading the same files directly, with the ratios.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use braid_connector_tpch::{TpchCatalog, TpchConfig};
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
    let catalogs = dir.join("catalog");
    std::fs::create_dir_all(&catalogs)
        .map_err(|e| format!("cannot create {}: {e}", catalogs.display()))?;
    std::fs::write(
        catalogs.join("lake.toml"),
        format!(
            "connector = \"files\"\nlocation = {}\n",
            toml_string(&parquet)?
        ),
    )
    .map_err(|e| format!("cannot write the lake catalog: {e}"))?;

    let cluster = EmbeddedCluster::start(Some(catalogs)).await?;
    let mut client = cluster.client().await.map_err(|e| e.to_string())?;
    client
        .query_all("USE lake.tpch")
        .await
        .map_err(|e| e.to_string())?;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let plain = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(cores));
    for table in TABLES {
        let path = parquet.join("tpch").join(table);
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
        "TPC-H SF {} as Parquet in {} — Braid `files` connector (embedded cluster) vs plain DataFusion ({cores} partitions) on the same files, best of {}",
        args.sf,
        parquet.display(),
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
