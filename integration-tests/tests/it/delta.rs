//! The `delta` connector on a coordinator and two workers, over tables an independent writer
//! (the `deltalake` Python package and hand-written logs, `delta/write.py`) made on local disk.
//! Braid's answers are compared with deltalake's own reads of the same versions:
//!
//! - a partitioned table of 16 files in 5 versions (4 appends, a delete), row for row; both
//!   workers read it in one query; partitions and files skipped by the log (files opened in
//!   EXPLAIN ANALYZE);
//! - time travel by version and by time; `$history`;
//! - names with a space and capitals, `'O''Brien'`, a non-ASCII value;
//! - deletion vectors and column mapping refused with an error naming the table feature; a
//!   missing data file, a corrupt commit, wrong S3 keys and an S3 endpoint with no server each
//!   an error naming the catalog and the table or file — and the cluster keeps serving;
//! - `INSERT INTO`, `CREATE SCHEMA` and `CREATE TABLE AS`: deltalake reads exactly what Braid
//!   committed.

use std::path::Path;

use braid_integration_tests::{
    Cluster, analyze, json_lines, metric, python_json, query, service_env, sorted_rows,
};

fn delta_py(args: &[&str]) -> serde_json::Value {
    python_json("delta/write.py", args)
}

const COLUMNS: &str = "id, name, amount, day, region, year";

#[tokio::test(flavor = "multi_thread")]
async fn local_tables_match_deltalake_with_skipping_time_travel_history_and_writes() {
    let _serial = braid_integration_tests::serial().await;
    let data = tempfile::tempdir().expect("data dir");
    let root = data.path().to_str().expect("utf-8");
    let answers = delta_py(&["write", root]);
    let catalogs = tempfile::tempdir().expect("catalog dir");
    std::fs::write(
        catalogs.path().join("lake.toml"),
        format!("connector = \"delta\"\nlocation = \"{root}\"\ntimeout_seconds = 10\n"),
    )
    .expect("catalog");
    let cluster = Cluster::start(2, 2, Some(catalogs.path())).await;
    let mut c = cluster.client().await;

    let schemas = query(&mut c, "SHOW SCHEMAS FROM lake").await;
    assert!(
        schemas.contains(&"sales".to_string()) && schemas.contains(&"My Schema".to_string()),
        "{schemas:?}"
    );
    assert!(
        query(&mut c, "SHOW TABLES FROM lake.sales")
            .await
            .contains(&"orders".to_string())
    );

    // The latest version (after a delete), row for row, read by both workers.
    let orders = "lake.sales.orders";
    let now = sorted_rows(query(&mut c, &format!("SELECT {COLUMNS} FROM {orders}")).await);
    assert_eq!(now, json_lines(&answers["orders_now"]));
    assert!(
        cluster.both_workers_ran_one_job(),
        "both workers read the table"
    );
    let plan = query(&mut c, &format!("EXPLAIN SELECT count(*) FROM {orders}"))
        .await
        .join("\n");
    assert!(
        plan.contains(&format!("files={}", answers["live_files"])),
        "{plan}"
    );
    // The estimate is the log's record counts of those files.
    assert!(
        plan.contains(&format!("Rows=Inexact({})", answers["live_records"])),
        "the scan's estimate: {plan}"
    );
    // And the columns' bounds and null counts are the log's per-file statistics, merged.
    let bounds = query(&mut c, &format!("SELECT min(id), max(id) FROM {orders}")).await;
    let (min, max) = bounds[0].split_once('|').expect("two values");
    let plan = query(&mut c, &format!("EXPLAIN SELECT id FROM {orders}"))
        .await
        .join("\n");
    let expected = format!("Min=Inexact(Int64({min})) Max=Inexact(Int64({max})) Null=Exact(0)");
    assert!(plan.contains(&expected), "{expected} in {plan}");

    // Time travel, by version and by time.
    let first = sorted_rows(
        query(
            &mut c,
            &format!("SELECT {COLUMNS} FROM {orders} FOR VERSION AS OF 0 o"),
        )
        .await,
    );
    assert_eq!(first, json_lines(&answers["first"]));
    let ms = answers["version1_ms"].as_i64().expect("ms");
    let time = chrono::DateTime::from_timestamp_millis(ms)
        .expect("time")
        .format("%Y-%m-%d %H:%M:%S%.3f UTC");
    assert_eq!(
        query(
            &mut c,
            &format!("SELECT count(*) FROM {orders} FOR TIMESTAMP AS OF TIMESTAMP '{time}' o"),
        )
        .await,
        [answers["version1_count"].to_string()]
    );
    let err = c
        .query_all(&format!("SELECT * FROM {orders} FOR VERSION AS OF 99"))
        .await
        .expect_err("no such version")
        .to_string();
    assert!(err.contains("has no version 99"), "{err}");
    let err = c
        .query_all(&format!(
            "SELECT * FROM {orders} FOR TIMESTAMP AS OF TIMESTAMP '2020-01-01 00:00:00 UTC'"
        ))
        .await
        .expect_err("before the first commit")
        .to_string();
    assert!(
        err.contains("has no version at or before 2020-01-01T00:00:00"),
        "{err}"
    );

    // $history, as deltalake reports it.
    assert_eq!(
        sorted_rows(
            query(
                &mut c,
                "SELECT version, operation FROM lake.sales.\"orders$history\""
            )
            .await
        ),
        sorted_rows(json_lines(&answers["history"]))
    );

    // Partition pruning: the files of one partition are read, no others.
    let sql = format!("SELECT count(*) FROM {orders} WHERE year = 2025 AND region = 'EU'");
    let eu = now.iter().filter(|l| l.ends_with("|EU|2025")).count();
    assert_eq!(query(&mut c, &sql).await, [eu.to_string()]);
    let analyzed = analyze(&mut c, &sql).await;
    assert_eq!(
        metric(&analyzed, "files_opened"),
        answers["eu_2025_files"].as_u64().expect("count"),
        "{analyzed}"
    );
    // File skipping by the log's statistics: ids 110..=115 are in one file.
    let sql = format!("SELECT count(*) FROM {orders} WHERE id BETWEEN 110 AND 115");
    assert_eq!(query(&mut c, &sql).await, ["6"]);
    assert_eq!(metric(&analyze(&mut c, &sql).await, "files_opened"), 1);

    // Quoted names, a quote in a value, a non-ASCII value.
    let codes = "lake.\"My Schema\".\"Customer Codes\"";
    assert_eq!(
        sorted_rows(query(&mut c, &format!("SELECT code, owner FROM {codes}")).await),
        json_lines(&answers["codes"])
    );
    assert_eq!(
        query(
            &mut c,
            &format!("SELECT code FROM {codes} WHERE owner = 'O''Brien'")
        )
        .await,
        ["EU1"]
    );

    // Table features Braid does not read: a clear error, and the cluster keeps serving.
    for (table, feature) in [
        ("deleted_rows", "deletionVectors"),
        ("mapped", "columnMapping"),
    ] {
        let err = c
            .query_all(&format!("SELECT count(*) FROM lake.features.{table}"))
            .await
            .expect_err("unsupported feature")
            .to_string();
        assert!(
            err.contains("lake")
                && err.contains(&format!("features.{table}"))
                && err.contains(feature),
            "{err}"
        );
    }
    // Faults: a missing data file, a commit that is not JSON.
    let missing = answers["missing_file"].as_str().expect("file name");
    for (table, what) in [("missing_file", missing), ("corrupt_log", "_delta_log/")] {
        let err = c
            .query_all(&format!("SELECT count(*) FROM lake.faults.{table}"))
            .await
            .expect_err("a broken table")
            .to_string();
        println!("lake.faults.{table}: {err}");
        assert!(
            err.contains("lake") && err.contains(&format!("faults.{table}")) && err.contains(what),
            "{err}"
        );
        assert!(!err.contains("with_backtrace"), "{err}");
    }
    assert_eq!(query(&mut c, "SELECT 1").await, ["1"]);

    // INSERT INTO appends a version deltalake reads.
    query(
        &mut c,
        &format!(
            "INSERT INTO {orders} VALUES (1000, 'Zoë O''Hara', 7, DATE '2025-03-01', 'EU', 2025)"
        ),
    )
    .await;
    let read = delta_py(&["read", &format!("{root}/sales/orders")]);
    let mut expected = json_lines(&answers["orders_now"]);
    expected.push("1000|Zoë O'Hara|7|2025-03-01|EU|2025".into());
    assert_eq!(json_lines(&read["rows"]), sorted_rows(expected));
    assert_eq!(
        query(&mut c, &format!("SELECT count(*) FROM {orders}")).await,
        [(now.len() + 1).to_string()]
    );

    // CREATE TABLE AS: a new table deltalake reads row for row.
    query(
        &mut c,
        &format!(
            "CREATE TABLE lake.sales.eu_2024 AS SELECT id, name, day FROM {orders} WHERE region = 'EU' AND year = 2024"
        ),
    )
    .await;
    let braid = sorted_rows(query(&mut c, "SELECT id, name, day FROM lake.sales.eu_2024").await);
    let read = delta_py(&["read", &format!("{root}/sales/eu_2024")]);
    assert_eq!(json_lines(&read["rows"]), braid);
    assert_eq!(
        braid.len(),
        now.iter().filter(|l| l.ends_with("|EU|2024")).count()
    );
    let columns = json_lines(&read["columns"]);
    assert_eq!(columns, ["id int64", "name string", "day date32[day]"]);
    let err = c
        .query_all("CREATE TABLE lake.sales.eu_2024 AS SELECT 1 AS x")
        .await
        .expect_err("exists")
        .to_string();
    assert!(err.contains("eu_2024"), "{err}");

    // CREATE SCHEMA, and a table with a quoted name in it.
    query(&mut c, "CREATE SCHEMA lake.\"Sales Marts\"").await;
    query(
        &mut c,
        "CREATE TABLE lake.\"Sales Marts\".\"Top Owners\" AS SELECT 'O''Brien' AS owner, 1 AS n",
    )
    .await;
    let read = delta_py(&["read", &format!("{root}/Sales Marts/Top Owners")]);
    assert_eq!(json_lines(&read["rows"]), ["O'Brien|1"]);
    // Rows typed otherwise than the table stores them (strings as Utf8View, as DataFusion
    // reads them from Parquet) are written with the table's types.
    query(
        &mut c,
        "CREATE TABLE lake.\"Sales Marts\".views AS SELECT arrow_cast('Zoë', 'Utf8View') AS name",
    )
    .await;
    let read = delta_py(&["read", &format!("{root}/Sales Marts/views")]);
    assert_eq!(json_lines(&read["rows"]), ["Zoë"]);
    assert!(
        query(&mut c, "SHOW SCHEMAS FROM lake")
            .await
            .contains(&"Sales Marts".to_string())
    );
}

/// The same tables on the S3-protocol server (s3s-fs serves a directory per bucket: the
/// writer writes them there), read and appended to through S3; wrong keys fail clearly.
#[tokio::test(flavor = "multi_thread")]
async fn s3_tables_read_and_append_through_the_s3_server_and_bad_keys_fail_clearly() {
    let _serial = braid_integration_tests::serial().await;
    let bucket = format!("delta{}", std::process::id());
    let dir = Path::new(&service_env("BRAID_S3_DIR")).join(&bucket);
    let root = dir.join("lake");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&root).expect("bucket");
    let answers = delta_py(&["write", root.to_str().expect("utf-8")]);
    let catalogs = tempfile::tempdir().expect("catalog dir");
    let catalog = |name: &str, secret: &str| {
        std::fs::write(
            catalogs.path().join(format!("{name}.toml")),
            format!(
                "connector = \"delta\"\nlocation = \"s3://{bucket}/lake\"\ntimeout_seconds = 10\n[s3]\nendpoint = \"{}\"\naws_access_key = \"${{ENV:BRAID_S3_ACCESS_KEY}}\"\naws_secret_key = \"{secret}\"\npath_style_access = true\ntimeout_seconds = 5\n",
                service_env("BRAID_S3_ENDPOINT")
            ),
        )
        .expect("catalog");
    };
    catalog("lake", "${ENV:BRAID_S3_SECRET_KEY}");
    catalog("badkeys", "not-the-secret");
    let nobody = format!("127.0.0.1:{}", braid_integration_tests::free_port());
    std::fs::write(
        catalogs.path().join("down.toml"),
        format!(
            "connector = \"delta\"\nlocation = \"s3://{bucket}/lake\"\n[s3]\nendpoint = \"http://{nobody}\"\npath_style_access = true\ntimeout_seconds = 2\n"
        ),
    )
    .expect("catalog");
    let cluster = Cluster::start(2, 2, Some(catalogs.path())).await;
    let mut c = cluster.client().await;

    let orders = "lake.sales.orders";
    let now = sorted_rows(query(&mut c, &format!("SELECT {COLUMNS} FROM {orders}")).await);
    assert_eq!(now, json_lines(&answers["orders_now"]));
    let sql = format!("SELECT count(*) FROM {orders} WHERE year = 2025 AND region = 'EU'");
    assert_eq!(
        metric(&analyze(&mut c, &sql).await, "files_opened"),
        answers["eu_2025_files"].as_u64().expect("count")
    );
    assert_eq!(
        sorted_rows(
            query(
                &mut c,
                "SELECT code, owner FROM lake.\"My Schema\".\"Customer Codes\""
            )
            .await
        ),
        json_lines(&answers["codes"])
    );

    // An append committed through S3 (a conditional put of the next version).
    query(
        &mut c,
        &format!("INSERT INTO {orders} VALUES (2000, 'S3', 1, DATE '2024-01-02', 'US', 2024)"),
    )
    .await;
    let read = delta_py(&["read", root.join("sales/orders").to_str().expect("utf-8")]);
    let mut expected = json_lines(&answers["orders_now"]);
    expected.push("2000|S3|1|2024-01-02|US|2024".into());
    assert_eq!(json_lines(&read["rows"]), sorted_rows(expected));

    let err = c
        .query_all("SELECT count(*) FROM badkeys.sales.orders")
        .await
        .expect_err("wrong keys")
        .to_string();
    assert!(err.contains("badkeys") && err.contains(&bucket), "{err}");
    assert!(!err.contains("not-the-secret"), "{err}");
    let err = c
        .query_all("SELECT count(*) FROM down.sales.orders")
        .await
        .expect_err("no S3 server there")
        .to_string();
    assert!(err.contains("down") && err.contains(&nobody), "{err}");
    assert_eq!(
        query(&mut c, &format!("SELECT count(*) FROM {orders}")).await,
        [(now.len() + 1).to_string()]
    );
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}
