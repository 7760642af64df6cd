//! The `files` connector on a coordinator and two workers, over tables an independent writer
//! (pyarrow, `files/write.py`) wrote on local disk and on a real S3-protocol server (s3s-fs,
//! started by `scripts/services.sh`, found through `BRAID_S3_*`; a missing server fails the
//! tests). Braid's answers are compared with pyarrow's own read of the same files, and with
//! plain DataFusion for a join across catalogs:
//!
//! - a Hive-partitioned table of 16 Parquet files, row for row; partition pruning (4 of 16
//!   files opened) and row-group pruning (1 of 64 row groups read) in EXPLAIN ANALYZE; both
//!   workers read it in one query;
//! - schema evolution (a later file adds a column), CSV with quotes, names with spaces, dots
//!   and mixed case;
//! - a join of `files`, `tpch`, `memory` and `postgres` tables;
//! - `CREATE EXTERNAL TABLE` (Parquet and CSV) seen by another session, `DROP TABLE`;
//! - faults: a corrupt file, a missing one, wrong S3 keys, an unreachable S3 endpoint — each
//!   an error naming the catalog and the table or location, and the cluster keeps serving.

use std::path::Path;
use std::process::Command;

use braid_integration_tests::{
    Cluster, analyze, json_lines, metric, python, query, rows, service_env, test_postgres,
    write_postgres_catalog,
};

/// Runs `write.py write <dir> [--s3 <bucket>]`; what pyarrow read back, as JSON.
fn write_tables(dir: &str, bucket: Option<&str>) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/files/write.py");
    let mut command = Command::new(python());
    command.arg(script).args(["write", dir]);
    if let Some(bucket) = bucket {
        command.args(["--s3", bucket]);
    }
    let out = command.output().expect("run write.py");
    assert!(
        out.status.success(),
        "write.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("write.py prints JSON")
}

/// The checks both storages share: the orders table row for row and its aggregates, the
/// pruning, and both workers reading it.
async fn check_orders(
    cluster: &Cluster,
    c: &mut braid_cli::client::BraidClient,
    catalog: &str,
    answers: &serde_json::Value,
) {
    let orders = format!("{catalog}.sales.orders");
    assert_eq!(
        query(
            c,
            &format!(
                "SELECT id, name, amount, nation, day, year, region FROM {orders} ORDER BY id"
            )
        )
        .await,
        json_lines(&answers["orders"])
    );
    assert_eq!(
        query(c, &format!("SELECT count(*), sum(amount) FROM {orders}")).await,
        [format!(
            "{}|{}",
            answers["orders_count"], answers["orders_amount"]
        )]
    );
    assert!(
        cluster.both_workers_ran_one_job(),
        "both workers read the 16 files"
    );
    let plan = query(c, &format!("EXPLAIN SELECT sum(amount) FROM {orders}"))
        .await
        .join("\n");
    assert!(plan.contains("files=16"), "{plan}");
    // The files' footers give the row count: `count(*)` without filters reads no file.
    let plan = query(c, &format!("EXPLAIN SELECT count(*) FROM {orders}"))
        .await
        .join("\n");
    let counted = format!("expr=[{} as count(*)]", answers["orders_count"]);
    assert!(plan.contains(&counted), "{plan}");
    assert!(!plan.contains("FilesScanExec"), "{plan}");

    // Partition pruning: one year and one region are 4 files of 16.
    let sql =
        format!("SELECT count(*), sum(amount) FROM {orders} WHERE year = 2025 AND region = 'EU'");
    let eu = &answers["eu_2025"];
    assert_eq!(query(c, &sql).await, [format!("{}|{}", eu[0], eu[1])]);
    let analyzed = analyze(c, &sql).await;
    assert_eq!(metric(&analyzed, "files_opened"), 4, "{analyzed}");

    // Row-group pruning: ids are sorted, 25 to a row group; 110..=115 is in one of 64.
    let sql = format!("SELECT count(*) FROM {orders} WHERE id BETWEEN 110 AND 115");
    assert_eq!(query(c, &sql).await, ["6"]);
    let analyzed = analyze(c, &sql).await;
    assert_eq!(metric(&analyzed, "row_groups_matched"), 1, "{analyzed}");
    assert_eq!(metric(&analyzed, "row_groups_pruned"), 63, "{analyzed}");
    let everything = analyze(
        c,
        &format!("SELECT count(*) FROM {orders} WHERE amount >= 0"),
    )
    .await;
    assert!(
        metric(&analyzed, "bytes_scanned") * 8 < metric(&everything, "bytes_scanned"),
        "pruned: {analyzed}\nall: {everything}"
    );

    // A quote in a literal.
    assert_eq!(
        query(
            c,
            &format!("SELECT count(*) FROM {orders} WHERE name = 'O''Brien'")
        )
        .await,
        [answers["obrien"].to_string()]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn local_tables_match_pyarrow_with_pruning_splits_and_a_join_across_catalogs() {
    let _serial = braid_integration_tests::serial().await;
    let data = tempfile::tempdir().expect("data dir");
    let root = data.path().join("lake");
    let answers = write_tables(root.to_str().expect("utf-8 path"), None);
    // A corrupt file in a table of its own.
    std::fs::create_dir_all(root.join("sales/broken")).expect("dir");
    std::fs::write(root.join("sales/broken/bad.parquet"), b"not parquet at all").expect("file");

    let catalogs = tempfile::tempdir().expect("catalog dir");
    std::fs::write(
        catalogs.path().join("files.toml"),
        format!(
            "connector = \"files\"\nlocation = \"{}\"\n[tables.\"sales.gone\"]\nlocation = \"{}\"\n",
            root.display(),
            root.join("nowhere/gone.parquet").display()
        ),
    )
    .expect("catalog");
    std::fs::write(
        catalogs.path().join("csvfiles.toml"),
        format!(
            "connector = \"files\"\nformat = \"csv\"\nlocation = \"{}\"\n",
            root.display()
        ),
    )
    .expect("catalog");
    write_postgres_catalog(catalogs.path(), "pg");
    let cluster = Cluster::start(2, 2, Some(catalogs.path())).await;
    let mut c = cluster.client().await;

    let schemas = query(&mut c, "SHOW SCHEMAS FROM files").await.join("\n");
    assert!(
        schemas.contains("My Schema") && schemas.contains("sales"),
        "{schemas}"
    );
    let tables = query(&mut c, "SHOW TABLES FROM files.sales")
        .await
        .join("\n");
    for table in ["orders", "evolving", "notes", "broken", "gone"] {
        assert!(tables.contains(table), "{table} in {tables}");
    }

    check_orders(&cluster, &mut c, "files", &answers).await;

    // A later file adds a column: earlier rows have none.
    assert_eq!(
        query(
            &mut c,
            "SELECT k, v, extra FROM files.sales.evolving ORDER BY k"
        )
        .await,
        json_lines(&answers["evolving"])
    );
    // CSV, a comma and a quote inside values.
    assert_eq!(
        query(
            &mut c,
            "SELECT id, author, stars FROM csvfiles.sales.notes ORDER BY id"
        )
        .await,
        ["1|O'Brien|5", "2|Smith, Jr.|3", "3|Zoë|4"]
    );
    // A CSV table's estimate is its files' size.
    let csv_bytes = std::fs::metadata(root.join("sales/notes/notes.csv"))
        .expect("notes.csv")
        .len();
    let plan = query(&mut c, "EXPLAIN SELECT * FROM csvfiles.sales.notes")
        .await
        .join("\n");
    assert!(
        plan.contains(&format!("Bytes=Inexact({csv_bytes})")),
        "the scan's estimate: {plan}"
    );
    assert_eq!(
        query(
            &mut c,
            "SELECT stars FROM csvfiles.sales.notes WHERE author = 'O''Brien'"
        )
        .await,
        ["5"]
    );
    // A space, a dot and capitals in names.
    assert_eq!(
        query(
            &mut c,
            "SELECT \"Customer Name\", \"Total\" FROM files.\"My Schema\".\"Mixed Table.v1\" ORDER BY 2"
        )
        .await,
        ["Ann|1", "Bob|2"]
    );

    // files x tpch x memory x postgres, against plain DataFusion over the same data.
    let pg = test_postgres().await;
    pg.batch_execute(
        "DROP TABLE IF EXISTS files_regions; CREATE TABLE files_regions (region text, manager text);
         INSERT INTO files_regions VALUES ('EU', 'O''Brien'), ('US', 'Smith')",
    )
    .await
    .expect("postgres table");
    query(
        &mut c,
        "CREATE TABLE memory.default.files_vip AS VALUES (3), (7), (11)",
    )
    .await;
    let join = "SELECT n.n_name, r.manager, count(*), sum(o.amount) \
        FROM {orders} o JOIN tpch.tiny.nation n ON o.nation = n.n_nationkey \
        JOIN {regions} r ON r.region = o.region \
        WHERE o.nation IN (SELECT column1 FROM {vip}) AND o.year = 2024 \
        GROUP BY n.n_name, r.manager ORDER BY 1, 2";
    let braid = query(
        &mut c,
        &join
            .replace("{orders}", "files.sales.orders")
            .replace("{regions}", "pg.public.files_regions")
            .replace("{vip}", "memory.default.files_vip"),
    )
    .await;
    let plain = datafusion::prelude::SessionContext::new();
    plain.register_catalog(
        "tpch",
        std::sync::Arc::new(braid_connector_tpch::TpchCatalog::new(
            "tpch".into(),
            braid_connector_tpch::TpchConfig::default(),
        )),
    );
    plain
        .register_listing_table(
            "orders",
            root.join("sales/orders").to_str().expect("utf-8"),
            datafusion::datasource::listing::ListingOptions::new(std::sync::Arc::new(
                datafusion::datasource::file_format::parquet::ParquetFormat::default(),
            ))
            .with_table_partition_cols(vec![
                ("year".into(), datafusion::arrow::datatypes::DataType::Int64),
                (
                    "region".into(),
                    datafusion::arrow::datatypes::DataType::Utf8,
                ),
            ]),
            None,
            None,
        )
        .await
        .expect("plain orders");
    for ddl in [
        "CREATE TABLE regions AS SELECT * FROM (VALUES ('EU', 'O''Brien'), ('US', 'Smith')) AS v(region, manager)",
        "CREATE TABLE vip AS VALUES (3), (7), (11)",
    ] {
        plain.sql(ddl).await.expect("plain table");
    }
    let expected = plain
        .sql(
            &join
                .replace("{orders}", "orders")
                .replace("{regions}", "regions")
                .replace("{vip}", "vip"),
        )
        .await
        .expect("plain join")
        .collect()
        .await
        .expect("plain join rows");
    assert_eq!(braid, rows(&expected));
    assert_eq!(braid.len(), 6, "3 nations x 2 regions: {braid:?}");

    // CREATE EXTERNAL TABLE as in DataFusion: the table joins the catalog, for every session.
    let mixed = root.join("My Schema/Mixed Table.v1");
    let create = format!(
        "CREATE EXTERNAL TABLE files.sales.ext STORED AS PARQUET LOCATION '{}/'",
        mixed.display()
    );
    query(&mut c, &create).await;
    let mut other = cluster.client().await;
    assert_eq!(
        query(
            &mut other,
            "SELECT \"Customer Name\" FROM files.sales.ext ORDER BY 1"
        )
        .await,
        ["Ann", "Bob"]
    );
    query(
        &mut c,
        &format!(
            "CREATE EXTERNAL TABLE files.sales.ext_notes STORED AS CSV LOCATION '{}' OPTIONS ('format.has_header' 'true')",
            root.join("sales/notes/notes.csv").display()
        ),
    )
    .await;
    assert_eq!(
        query(
            &mut c,
            "SELECT author FROM files.sales.ext_notes WHERE stars = 5"
        )
        .await,
        ["O'Brien"]
    );
    let err = c.query_all(&create).await.expect_err("exists").to_string();
    assert!(err.contains("already exists"), "{err}");
    query(&mut c, "DROP TABLE files.sales.ext").await;
    let tables = query(&mut c, "SHOW TABLES FROM files.sales").await;
    assert!(
        tables.contains(&"ext_notes".to_string()) && !tables.contains(&"ext".to_string()),
        "{tables:?}"
    );
    // Refused whether or not the schema's tables were listed before (csvfiles' never were).
    let err = c
        .query_all("DROP TABLE csvfiles.sales.notes")
        .await
        .expect_err("a directory's table")
        .to_string();
    assert!(err.contains("DROP TABLE of 'sales.notes'"), "{err}");
    let err = c
        .query_all("DROP TABLE files.sales.orders")
        .await
        .expect_err("a directory's table")
        .to_string();
    assert!(err.contains("DROP TABLE of 'sales.orders'"), "{err}");

    // Faults name the catalog and the table or file; the cluster keeps serving.
    let err = c
        .query_all("SELECT * FROM files.sales.broken")
        .await
        .expect_err("a corrupt file")
        .to_string();
    assert!(
        err.contains("files") && err.contains("sales.broken") && err.contains("bad.parquet"),
        "{err}"
    );
    let err = c
        .query_all("SELECT * FROM files.sales.gone")
        .await
        .expect_err("a missing file")
        .to_string();
    assert!(
        err.contains("sales.gone") && err.contains("gone.parquet"),
        "{err}"
    );
    assert_eq!(
        query(&mut c, "SELECT count(*) FROM files.sales.orders").await,
        [answers["orders_count"].to_string()]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_tables_match_pyarrow_and_bad_keys_or_endpoints_fail_clearly() {
    let _serial = braid_integration_tests::serial().await;
    let bucket = format!("lake{}", std::process::id());
    let answers = write_tables("warehouse", Some(&bucket));
    let catalogs = tempfile::tempdir().expect("catalog dir");
    let catalog = |name: &str, endpoint: &str, secret: &str, extra: &str| {
        std::fs::write(
            catalogs.path().join(format!("{name}.toml")),
            format!(
                "connector = \"files\"\nlocation = \"s3://{bucket}/warehouse\"\n[s3]\nendpoint = \"{endpoint}\"\naws_access_key = \"${{ENV:BRAID_S3_ACCESS_KEY}}\"\naws_secret_key = \"{secret}\"\npath_style_access = true\n{extra}"
            ),
        )
        .expect("catalog");
    };
    let endpoint = service_env("BRAID_S3_ENDPOINT");
    catalog("lake", &endpoint, "${ENV:BRAID_S3_SECRET_KEY}", "");
    catalog("badkeys", &endpoint, "not-the-secret", "");
    let nobody = format!("http://127.0.0.1:{}", braid_integration_tests::free_port());
    catalog("down", &nobody, "x", "timeout_seconds = 2\n");
    let cluster = Cluster::start(2, 2, Some(catalogs.path())).await;
    let mut c = cluster.client().await;

    // The first statement of a new cluster: nothing is listed yet.
    let err = c
        .query_all("DROP TABLE lake.sales.orders")
        .await
        .expect_err("a table of the location")
        .to_string();
    assert!(err.contains("DROP TABLE of 'sales.orders'"), "{err}");

    check_orders(&cluster, &mut c, "lake", &answers).await;
    assert_eq!(
        query(
            &mut c,
            "SELECT k, v, extra FROM lake.sales.evolving ORDER BY k"
        )
        .await,
        json_lines(&answers["evolving"])
    );

    let err = c
        .query_all("SELECT count(*) FROM badkeys.sales.orders")
        .await
        .expect_err("wrong keys")
        .to_string();
    assert!(
        err.contains("badkeys") && err.contains(&format!("s3://{bucket}/warehouse")),
        "{err}"
    );
    assert!(!err.contains("not-the-secret"), "{err}");
    let err = c
        .query_all("SELECT count(*) FROM down.sales.orders")
        .await
        .expect_err("no server")
        .to_string();
    assert!(err.contains("down") && err.contains(&nobody), "{err}");
    assert_eq!(
        query(&mut c, "SELECT count(*) FROM lake.sales.orders").await,
        [answers["orders_count"].to_string()]
    );
}
