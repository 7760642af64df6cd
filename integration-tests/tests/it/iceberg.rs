//! The `iceberg` connector on a coordinator and two workers, over tables an independent writer
//! (pyiceberg, `iceberg/write.py`) committed to an Iceberg SQL catalog: on SQLite with the data
//! on local disk, and on the test PostgreSQL with the data on a real S3-protocol server (s3s-fs,
//! from `scripts/services.sh`; a missing service fails the tests). Braid's answers are compared
//! with pyiceberg's own reads of the same snapshots:
//!
//! - a table of 16 data files in 4 snapshots, then a delete and an overwrite, row for row;
//!   partition pruning and file skipping (files opened in EXPLAIN ANALYZE); both workers read
//!   it in one query;
//! - position and equality deletes (merge-on-read), row for row;
//! - time travel by snapshot id and by time; `$snapshots`, `$history`, `$files`,
//!   `$manifests`, `$partitions`;
//! - schema evolution (a column added, one renamed), names with a space and capitals, `'O''Brien'`;
//! - `CREATE SCHEMA`, `CREATE TABLE [AS]`, `INSERT` (into pyiceberg's partitioned table too), `DROP TABLE`:
//!   pyiceberg reads exactly what Braid committed;
//! - a join of `iceberg`, `delta` (tables deltalake wrote), `tpch`, `memory` and `postgres` tables;
//! - faults: a missing data file, a corrupt metadata file, an unreachable catalog database,
//!   wrong S3 keys — each an error naming the catalog and the table or file, and the cluster
//!   keeps serving.

use std::collections::BTreeMap;
use std::path::Path;

use braid_integration_tests::{
    Cluster, analyze, json_lines, metric, python_json, query, service_env, sorted_rows,
    test_postgres, write_postgres_catalog,
};

/// Runs `write.py write <uri> <warehouse> [--s3]`; what pyiceberg read back, as JSON.
fn write_tables(uri: &str, warehouse: &str, s3: bool) -> serde_json::Value {
    pyiceberg(&["write", uri, warehouse], s3)
}

/// pyiceberg's read of `table` (what Braid wrote): `rows` and `columns` ("name type").
fn read_table(uri: &str, warehouse: &str, table: &str) -> serde_json::Value {
    pyiceberg(&["read", uri, warehouse, table], false)
}

fn pyiceberg(args: &[&str], s3: bool) -> serde_json::Value {
    let mut args = args.to_vec();
    if s3 {
        args.push("--s3");
    }
    python_json("iceberg/write.py", &args)
}

const COLUMNS: &str = "id, name, amount, nation, day, year, region";

/// What both catalogs show of the tables `write.py` wrote.
async fn check_tables(
    cluster: &Cluster,
    c: &mut braid_cli::client::BraidClient,
    catalog: &str,
    answers: &serde_json::Value,
) {
    let orders = format!("{catalog}.sales.orders");
    let schemas = query(c, &format!("SHOW SCHEMAS FROM {catalog}")).await;
    assert!(
        schemas.contains(&"sales".to_string()) && schemas.contains(&"My Schema".to_string()),
        "{schemas:?}"
    );
    let tables = query(c, &format!("SHOW TABLES FROM {catalog}.sales")).await;
    assert!(
        tables.contains(&"orders".to_string()) && tables.contains(&"evolving".to_string()),
        "{tables:?}"
    );

    // The current snapshot (after a delete and an overwrite), row for row; read by both
    // workers, however small the table (its snapshot summary counts its rows).
    query(c, "SET SESSION single_task_max_input_rows = 0").await;
    let now = sorted_rows(query(c, &format!("SELECT {COLUMNS} FROM {orders}")).await);
    assert_eq!(now, json_lines(&answers["orders_now"]));
    assert!(
        cluster.both_workers_ran_one_job(),
        "both workers read the table"
    );
    let plan = query(c, &format!("EXPLAIN SELECT count(*) FROM {orders}"))
        .await
        .join("\n");
    assert!(
        plan.contains(&format!("data_files={}", answers["live_files"])),
        "{plan}"
    );
    // The estimate is the manifests' record counts (deletes not subtracted).
    assert!(
        plan.contains(&format!("Rows=Inexact({})", answers["live_records"])),
        "the scan's estimate: {plan}"
    );
    // And the columns' bounds and null counts are the manifests' per-file statistics, merged
    // (pyiceberg's overwrite rewrote files rather than write delete files: the counts are exact).
    let bounds = query(
        c,
        &format!("SELECT min(id), max(id), min(name), max(name) FROM {orders}"),
    )
    .await;
    let bounds: Vec<&str> = bounds[0].split('|').collect();
    let plan = query(c, &format!("EXPLAIN SELECT id, name FROM {orders}"))
        .await
        .join("\n");
    let expected = [
        format!(
            "Min=Inexact(Int64({})) Max=Inexact(Int64({})) Null=Exact(0)",
            bounds[0], bounds[1]
        ),
        format!(
            "Min=Inexact(Utf8(\"{}\")) Max=Inexact(Utf8(\"{}\")) Null=Exact(0)",
            bounds[2], bounds[3]
        ),
    ];
    for expected in expected {
        assert!(plan.contains(&expected), "{expected} in {plan}");
    }

    // Time travel, by snapshot id and by time; the first snapshot as pyiceberg read it.
    let first = answers["first_snapshot"].as_i64().expect("id");
    let at_first = sorted_rows(
        query(
            c,
            &format!("SELECT {COLUMNS} FROM {orders} FOR VERSION AS OF {first} o"),
        )
        .await,
    );
    assert_eq!(at_first, json_lines(&answers["first"]));
    let ms = answers["second_snapshot_ms"].as_i64().expect("ms");
    let time = chrono::DateTime::from_timestamp_millis(ms)
        .expect("time")
        .format("%Y-%m-%d %H:%M:%S%.3f UTC");
    assert_eq!(
        query(
            c,
            &format!(
                "SELECT count(*) FROM {orders} FOR TIMESTAMP AS OF TIMESTAMP '{time}' WHERE orders.id >= 0"
            )
        )
        .await,
        [answers["second_count"].to_string()]
    );
    let err = c
        .query_all(&format!("SELECT * FROM {orders} FOR VERSION AS OF 12345"))
        .await
        .expect_err("no such snapshot")
        .to_string();
    assert!(err.contains("has no snapshot 12345"), "{err}");

    // Metadata tables, as pyiceberg's inspect reports them.
    let meta = |kind: &str| format!("{catalog}.sales.\"orders${kind}\"");
    assert_eq!(
        sorted_rows(
            query(
                c,
                &format!("SELECT snapshot_id, operation FROM {}", meta("snapshots"))
            )
            .await
        ),
        sorted_rows(json_lines(&answers["snapshot_operations"]))
    );
    assert_eq!(
        sorted_rows(
            query(
                c,
                &format!(
                    "SELECT snapshot_id, parent_id, is_current_ancestor FROM {}",
                    meta("history")
                )
            )
            .await
        ),
        sorted_rows(json_lines(&answers["history"]))
    );
    assert_eq!(
        query(
            c,
            &format!("SELECT count(*), sum(record_count) FROM {}", meta("files"))
        )
        .await,
        [format!(
            "{}|{}",
            answers["live_files"], answers["live_records"]
        )]
    );
    assert_eq!(
        query(c, &format!("SELECT count(*) FROM {}", meta("manifests"))).await,
        [answers["manifests"].to_string()]
    );
    let partitions = sorted_rows(
        query(
            c,
            &format!(
                "SELECT partition, record_count, file_count FROM {}",
                meta("partitions")
            ),
        )
        .await,
    );
    assert_eq!(partitions, json_lines(&answers["partitions"]));

    // Partition pruning: the files of one partition are read, no others.
    let eu_files = eu_files_now(answers);
    let sql = format!("SELECT count(*) FROM {orders} WHERE year = 2025 AND region = 'EU'");
    let eu_rows: usize = now.iter().filter(|l| l.ends_with("|2025|EU")).count();
    assert_eq!(query(c, &sql).await, [eu_rows.to_string()]);
    let analyzed = analyze(c, &sql).await;
    assert_eq!(metric(&analyzed, "files_opened"), eu_files, "{analyzed}");

    // File skipping by the manifests' column bounds: ids 110..=115 are in one file.
    let sql = format!("SELECT count(*) FROM {orders} WHERE id BETWEEN 110 AND 115");
    assert_eq!(query(c, &sql).await, ["6"]);
    let analyzed = analyze(c, &sql).await;
    assert_eq!(metric(&analyzed, "files_opened"), 1, "{analyzed}");
    let everything = analyze(
        c,
        &format!("SELECT count(*) FROM {orders} WHERE amount >= 0"),
    )
    .await;
    assert!(
        metric(&analyzed, "bytes_scanned") * 8 < metric(&everything, "bytes_scanned"),
        "pruned: {analyzed}\nall: {everything}"
    );

    // Merge-on-read deletes: position deletes as pyiceberg applies them, equality deletes.
    for table in ["pos_deleted", "eq_deleted"] {
        let table = format!("{catalog}.sales.{table}");
        let name = table.rsplit('.').next().expect("name");
        assert_eq!(
            sorted_rows(query(c, &format!("SELECT id, label FROM {table}")).await),
            json_lines(&answers[name]),
            "{table}"
        );
        let plan = query(c, &format!("EXPLAIN SELECT * FROM {table}"))
            .await
            .join("\n");
        assert!(plan.contains("delete_files=1"), "{plan}");
    }

    // A quote in a literal; schema evolution; a space and capitals in names.
    assert_eq!(
        query(
            c,
            &format!("SELECT count(*) FROM {orders} WHERE name = 'O''Brien'")
        )
        .await,
        [now.iter()
            .filter(|l| l.contains("|O'Brien|"))
            .count()
            .to_string()]
    );
    assert_eq!(
        sorted_rows(
            query(
                c,
                &format!("SELECT k, label, extra FROM {catalog}.sales.evolving")
            )
            .await
        ),
        json_lines(&answers["evolving"])
    );
    assert_eq!(
        query(
            c,
            &format!(
                "SELECT \"Customer Name\", \"Total\" FROM {catalog}.\"My Schema\".\"Mixed Table\" WHERE \"Customer Name\" = 'O''Brien'"
            )
        )
        .await,
        ["O'Brien|2"]
    );
}

/// How many data files of the partition `{year=2025, region=EU}` pyiceberg reported.
fn eu_files_now(answers: &serde_json::Value) -> u64 {
    json_lines(&answers["partitions"])
        .iter()
        .find(|p| p.starts_with("{year=2025, region=EU}"))
        .and_then(|p| p.rsplit('|').next())
        .and_then(|n| n.parse().ok())
        .expect("EU 2025 files")
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_catalog_on_local_disk_matches_pyiceberg_with_pruning_time_travel_and_a_join() {
    let _serial = braid_integration_tests::serial().await;
    let data = tempfile::tempdir().expect("data dir");
    let db = data.path().join("catalog.db");
    let warehouse = data.path().join("warehouse");
    let uri = format!("sqlite:///{}", db.display());
    let answers = write_tables(&uri, warehouse.to_str().expect("utf-8"), false);

    let catalogs = tempfile::tempdir().expect("catalog dir");
    let write_catalog = |name: &str, uri: &str| {
        std::fs::write(
            catalogs.path().join(format!("{name}.toml")),
            format!(
                "connector = \"iceberg\"\ncatalog_type = \"sql\"\nuri = \"{uri}\"\nwarehouse = \"{}\"\niceberg_catalog = \"braid_test\"\ntimeout_seconds = 5\n",
                warehouse.display()
            ),
        )
        .expect("catalog");
    };
    write_catalog("ice", &uri);
    // Delta tables too, for the join across every kind of catalog.
    let delta = data.path().join("delta");
    let delta_answers = python_json("delta/write.py", &["write", delta.to_str().expect("utf-8")]);
    std::fs::write(
        catalogs.path().join("dl.toml"),
        format!(
            "connector = \"delta\"\nlocation = \"{}\"\n",
            delta.display()
        ),
    )
    .expect("delta catalog");
    let nobody = braid_integration_tests::free_port();
    write_catalog(
        "down",
        &format!("postgresql://braid:secret-pw@127.0.0.1:{nobody}/lake"),
    );
    write_postgres_catalog(catalogs.path(), "pg");
    let cluster = Cluster::start(2, 2, Some(catalogs.path())).await;
    let mut c = cluster.client().await;

    check_tables(&cluster, &mut c, "ice", &answers).await;

    // iceberg x delta x tpch x memory x postgres; the answer from pyiceberg's and deltalake's rows.
    let pg = test_postgres().await;
    pg.batch_execute(
        "DROP TABLE IF EXISTS ice_regions; CREATE TABLE ice_regions (region text, manager text);
         INSERT INTO ice_regions VALUES ('EU', 'O''Brien'), ('US', 'Smith')",
    )
    .await
    .expect("postgres table");
    query(
        &mut c,
        "CREATE TABLE memory.default.ice_vip AS VALUES (3), (7), (11)",
    )
    .await;
    let braid = query(
        &mut c,
        "SELECT n.n_name, r.manager, count(*), sum(o.amount), count(d.id), sum(d.amount) \
         FROM ice.sales.orders o JOIN tpch.tiny.nation n ON o.nation = n.n_nationkey \
         JOIN pg.public.ice_regions r ON r.region = o.region \
         LEFT JOIN dl.sales.orders d ON d.id = o.id \
         WHERE o.nation IN (SELECT column1 FROM memory.default.ice_vip) AND o.year = 2024 \
         GROUP BY n.n_name, r.manager ORDER BY 1, 2",
    )
    .await;
    let names: BTreeMap<String, String> =
        query(&mut c, "SELECT n_nationkey, n_name FROM tpch.tiny.nation")
            .await
            .into_iter()
            .map(|l| {
                let (k, n) = l.split_once('|').expect("two columns");
                (k.to_string(), n.to_string())
            })
            .collect();
    // deltalake's rows: id -> amount.
    let delta_amounts: BTreeMap<String, i64> = json_lines(&delta_answers["orders_now"])
        .iter()
        .map(|line| {
            let f: Vec<&str> = line.split('|').collect();
            (f[0].to_string(), f[2].parse().expect("amount"))
        })
        .collect();
    type Group = (u64, i64, u64, Option<i64>);
    let mut expected: BTreeMap<(String, String), Group> = BTreeMap::new();
    for line in json_lines(&answers["orders_now"]) {
        let f: Vec<&str> = line.split('|').collect();
        let (id, amount, nation, year, region) = (f[0], f[2], f[3], f[5], f[6]);
        if year == "2024" && ["3", "7", "11"].contains(&nation) {
            let manager = if region == "EU" { "O'Brien" } else { "Smith" };
            let entry = expected
                .entry((names[nation].clone(), manager.to_string()))
                .or_default();
            entry.0 += 1;
            entry.1 += amount.parse::<i64>().expect("amount");
            if let Some(delta) = delta_amounts.get(id) {
                entry.2 += 1;
                entry.3 = Some(entry.3.unwrap_or(0) + delta);
            }
        }
    }
    let expected: Vec<String> = expected
        .into_iter()
        .map(|((n, m), (count, sum, matched, delta))| {
            let delta = delta.map_or(String::new(), |d| d.to_string());
            format!("{n}|{m}|{count}|{sum}|{matched}|{delta}")
        })
        .collect();
    assert!(
        expected.iter().any(|l| !l.ends_with('|')),
        "some rows join the Delta table: {expected:?}"
    );
    assert_eq!(braid, expected);
    assert_eq!(braid.len(), 6, "3 nations x 2 regions: {braid:?}");

    // Writes: pyiceberg reads exactly what Braid committed.
    let now = json_lines(&answers["orders_now"]);
    assert_eq!(
        query(
            &mut c,
            "CREATE TABLE ice.sales.copy AS SELECT id, name, amount, region FROM ice.sales.orders WHERE year = 2024"
        )
        .await,
        [now.iter().filter(|l| l.contains("|2024|")).count().to_string()]
    );
    query(
        &mut c,
        "INSERT INTO ice.sales.copy VALUES (9001, 'O''Brien', 5, 'EU'), (9002, 'Zoë', NULL, 'US')",
    )
    .await;
    let copy = read_table(&uri, warehouse.to_str().expect("utf-8"), "sales.copy");
    assert_eq!(
        sorted_rows(
            query(
                &mut c,
                "SELECT id, name, amount, region FROM ice.sales.copy"
            )
            .await
        ),
        json_lines(&copy["rows"])
    );
    assert!(json_lines(&copy["rows"]).contains(&"9001|O'Brien|5|EU".to_string()));
    assert!(json_lines(&copy["rows"]).contains(&"9002|Zoë||US".to_string()));
    // Into pyiceberg's partitioned table, with its spec.
    assert_eq!(
        query(
            &mut c,
            "INSERT INTO ice.sales.orders VALUES (9003, 'new', 1, 2, DATE '2025-05-05', 2025, 'EU')"
        )
        .await,
        ["1"]
    );
    let orders = read_table(&uri, warehouse.to_str().expect("utf-8"), "sales.orders");
    assert!(json_lines(&orders["rows"]).contains(&"9003|new|1|2|2025-05-05|2025|EU".to_string()));
    assert_eq!(
        sorted_rows(query(&mut c, &format!("SELECT {COLUMNS} FROM ice.sales.orders")).await),
        json_lines(&orders["rows"])
    );
    let partitions = query(
        &mut c,
        "SELECT file_count FROM ice.sales.\"orders$partitions\" WHERE partition = '{year=2025, region=EU}'",
    )
    .await;
    assert_eq!(partitions, [(eu_files_now(&answers) + 1).to_string()]);
    // CREATE SCHEMA, and CREATE TABLE with declared types.
    query(&mut c, "CREATE SCHEMA ice.\"New Schema\"").await;
    let err = c
        .query_all("CREATE SCHEMA ice.\"New Schema\"")
        .await
        .expect_err("exists")
        .to_string();
    assert!(err.contains("already exists"), "{err}");
    query(
        &mut c,
        "CREATE TABLE ice.\"New Schema\".typed (id BIGINT, label VARCHAR, price DOUBLE, day DATE)",
    )
    .await;
    query(
        &mut c,
        "INSERT INTO ice.\"New Schema\".typed VALUES (1, 'O''Brien', 2.5, DATE '2026-01-02')",
    )
    .await;
    let typed = read_table(&uri, warehouse.to_str().expect("utf-8"), "New Schema.typed");
    assert_eq!(
        json_lines(&typed["columns"]),
        ["id long", "label string", "price double", "day date"]
    );
    assert_eq!(json_lines(&typed["rows"]), ["1|O'Brien|2.5|2026-01-02"]);
    query(&mut c, "DROP TABLE ice.\"New Schema\".typed").await;
    assert!(
        !query(&mut c, "SHOW TABLES FROM ice.\"New Schema\"")
            .await
            .contains(&"typed".to_string())
    );

    // Faults name the catalog and the table or file; the cluster keeps serving.
    let err = c
        .query_all("SHOW SCHEMAS FROM down")
        .await
        .expect_err("no catalog database")
        .to_string();
    assert!(
        err.contains("down") && err.contains(&format!("127.0.0.1:{nobody}")),
        "{err}"
    );
    assert!(!err.contains("secret-pw"), "{err}");
    let mixed = query(
        &mut c,
        "SELECT file_path FROM ice.\"My Schema\".\"Mixed Table$files\"",
    )
    .await;
    let data_file = mixed[0].trim_start_matches("file://").to_string();
    std::fs::remove_file(&data_file).expect("remove a data file");
    let err = c
        .query_all("SELECT * FROM ice.\"My Schema\".\"Mixed Table\"")
        .await
        .expect_err("a missing data file")
        .to_string();
    let file_name = Path::new(&data_file)
        .file_name()
        .expect("name")
        .to_str()
        .expect("utf-8");
    assert!(
        err.contains("ice") && err.contains("My Schema.Mixed Table") && err.contains(file_name),
        "{err}"
    );
    let metadata_dir = warehouse.join("sales/evolving/metadata");
    for entry in std::fs::read_dir(&metadata_dir).expect("metadata dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "json") {
            std::fs::write(&path, b"{ not json").expect("corrupt");
        }
    }
    let err = c
        .query_all("SELECT * FROM ice.sales.evolving")
        .await
        .expect_err("a corrupt metadata file")
        .to_string();
    assert!(
        err.contains("ice") && err.contains("sales.evolving") && err.contains("metadata file"),
        "{err}"
    );
    // The row INSERT added is still there.
    assert_eq!(
        query(&mut c, "SELECT count(*) FROM ice.sales.orders").await,
        [(now.len() + 1).to_string()]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_catalog_with_s3_warehouse_matches_pyiceberg_and_bad_keys_fail_clearly() {
    let _serial = braid_integration_tests::serial().await;
    let bucket = format!("ice{}", std::process::id());
    let (host, port, user, password) = (
        service_env("BRAID_PG_HOST"),
        service_env("BRAID_PG_PORT"),
        service_env("BRAID_PG_USER"),
        service_env("BRAID_PG_PASSWORD"),
    );
    // A database of its own, so the catalog's tables start empty.
    let pg = test_postgres().await;
    let lake = format!("iceberg_{}", std::process::id());
    for statement in [
        format!("DROP DATABASE IF EXISTS {lake}"),
        format!("CREATE DATABASE {lake}"),
    ] {
        pg.batch_execute(&statement)
            .await
            .expect("catalog database");
    }
    let answers = write_tables(
        &format!("postgresql+psycopg2://{user}:{password}@{host}:{port}/{lake}"),
        &format!("s3://{bucket}/warehouse"),
        true,
    );
    let catalogs = tempfile::tempdir().expect("catalog dir");
    let catalog = |name: &str, secret: &str| {
        std::fs::write(
            catalogs.path().join(format!("{name}.toml")),
            format!(
                "connector = \"iceberg\"\ncatalog_type = \"sql\"\nuri = \"postgresql://{user}:${{ENV:BRAID_PG_PASSWORD}}@{host}:{port}/{lake}\"\nwarehouse = \"s3://{bucket}/warehouse\"\niceberg_catalog = \"braid_test\"\n[s3]\nendpoint = \"{}\"\naws_access_key = \"${{ENV:BRAID_S3_ACCESS_KEY}}\"\naws_secret_key = \"{secret}\"\npath_style_access = true\ntimeout_seconds = 5\n",
                service_env("BRAID_S3_ENDPOINT")
            ),
        )
        .expect("catalog");
    };
    catalog("lake", "${ENV:BRAID_S3_SECRET_KEY}");
    catalog("badkeys", "not-the-secret");
    let cluster = Cluster::start(2, 2, Some(catalogs.path())).await;
    let mut c = cluster.client().await;

    check_tables(&cluster, &mut c, "lake", &answers).await;

    let err = c
        .query_all("SELECT count(*) FROM badkeys.sales.orders")
        .await
        .expect_err("wrong keys")
        .to_string();
    assert!(
        err.contains("badkeys") && err.contains("sales.orders") && err.contains(&bucket),
        "{err}"
    );
    assert!(
        !err.contains("not-the-secret") && !err.contains(&password),
        "{err}"
    );
    assert_eq!(
        query(&mut c, "SELECT count(*) FROM lake.sales.orders").await,
        [answers["orders_now"]
            .as_array()
            .expect("rows")
            .len()
            .to_string()]
    );
}
