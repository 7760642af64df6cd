//! Bad input gets a clear error and everything keeps running.

use std::io::Write;
use std::process::{Command, Stdio};

use braid_integration_tests::{Cluster, binary, rows};

#[tokio::test(flavor = "multi_thread")]
async fn bad_statements_get_clear_errors_and_the_session_goes_on() {
    let _serial = braid_integration_tests::serial().await;
    let cluster = Cluster::start(1, 2, None).await;
    let mut client = cluster.client().await;
    let cases = [
        ("SELEC 1", "SQL error"),
        (
            "SELECT * FROM nope.tiny.nation",
            "Catalog 'nope' does not exist",
        ),
        (
            "SELECT * FROM tpch.nope.nation",
            "Schema 'tpch.nope' does not exist",
        ),
        (
            "SELECT * FROM tpch.tiny.nope",
            "Table 'tpch.tiny.nope' does not exist",
        ),
        ("SELECT n_nope FROM tpch.tiny.nation", "n_nope"),
        ("SELECT n_name + 1 FROM tpch.tiny.nation", "Utf8"),
        (
            "SHOW TABLES FROM nope.tiny",
            "Catalog 'nope' does not exist",
        ),
        ("USE tpch.nope", "Schema 'tpch.nope' does not exist"),
        (
            "DESCRIBE tpch.tiny.nope",
            "Table 'tpch.tiny.nope' does not exist",
        ),
        ("CREATE TABLE tpch.tiny.x (a INT)", "tpch"),
    ];
    for (sql, expected) in cases {
        let err = client.query_all(sql).await.expect_err(sql).to_string();
        assert!(
            err.contains(expected),
            "{sql}: expected '{expected}' in: {err}"
        );
        // The same session still works after each error.
        let (_, ok) = client
            .query_all("SELECT count(*) FROM tpch.tiny.nation")
            .await
            .expect("next query");
        assert_eq!(rows(&ok), vec!["25"], "after {sql}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_statements_behave_as_in_trino() {
    let _serial = braid_integration_tests::serial().await;
    let cluster = Cluster::start(1, 2, None).await;
    let mut client = cluster.client().await;
    let (_, catalogs) = client
        .query_all("SHOW CATALOGS")
        .await
        .expect("SHOW CATALOGS");
    // `system` is Trino's, and Braid's, own catalog (system.metadata.catalogs).
    assert_eq!(rows(&catalogs), vec!["memory", "system", "tpch"]);
    let (_, schemas) = client
        .query_all("SHOW SCHEMAS FROM tpch LIKE 'sf1%'")
        .await
        .expect("SHOW SCHEMAS");
    assert_eq!(rows(&schemas), vec!["sf1", "sf10", "sf100", "sf1000"]);
    let (_, tables) = client
        .query_all("SHOW TABLES FROM tpch.tiny")
        .await
        .expect("SHOW TABLES");
    assert_eq!(rows(&tables).len(), 8);
    let (_, columns) = client
        .query_all("DESCRIBE tpch.tiny.nation")
        .await
        .expect("DESCRIBE");
    assert_eq!(rows(&columns)[0], "n_nationkey|bigint||");
    let (_, columns) = client
        .query_all("SHOW COLUMNS FROM tpch.tiny.lineitem")
        .await
        .expect("SHOW COLUMNS");
    assert_eq!(rows(&columns)[4], "l_quantity|decimal(15,2)||");
    client.query_all("USE tpch.\"sf0.1\"").await.expect("USE");
    let (_, n) = client
        .query_all("SELECT count(*) FROM customer")
        .await
        .expect("unqualified after USE");
    assert_eq!(rows(&n), vec!["15000"]);
    let (_, n) = client
        .query_all("SELECT count(*) FROM tpch.information_schema.tables WHERE table_catalog = 'tpch' AND table_schema = 'tiny'")
        .await
        .expect("information_schema");
    assert_eq!(rows(&n), vec!["8"]);
    client
        .query_all("SET datafusion.execution.batch_size = 1234")
        .await
        .expect("SET");
    let (_, setting) = client
        .query_all("SHOW datafusion.execution.batch_size")
        .await
        .expect("SHOW setting");
    assert_eq!(rows(&setting), vec!["datafusion.execution.batch_size|1234"]);
    // Another connection has its own session.
    let mut other = cluster.client().await;
    let err = other.query_all("SELECT count(*) FROM customer").await;
    let (_, n) = other
        .query_all("SELECT count(*) FROM tpch.tiny.customer")
        .await
        .expect("qualified");
    assert_eq!(rows(&n), vec!["1500"]);
    if let Ok((_, n)) = err {
        assert_eq!(
            rows(&n),
            vec!["1500"],
            "the other session must not see USE tpch.sf0.1"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_exits_non_zero_on_error_and_the_repl_goes_on() {
    let _serial = braid_integration_tests::serial().await;
    let cluster = Cluster::start(1, 2, None).await;
    let braid = binary("braid");

    let ok = Command::new(&braid)
        .args([
            "--connect",
            &cluster.flight_sql_addr,
            "--format",
            "csv",
            "-c",
            "SELECT count(*) AS n FROM tpch.tiny.lineitem",
        ])
        .output()
        .expect("run braid -c");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&ok.stdout), "n\n60175\n");
    assert!(String::from_utf8_lossy(&ok.stderr).contains("(1 row in "));

    let bad = Command::new(&braid)
        .args([
            "--connect",
            &cluster.flight_sql_addr,
            "-c",
            "SELECT * FROM tpch.tiny.nope",
        ])
        .output()
        .expect("run braid -c");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("Table 'tpch.tiny.nope' does not exist"));

    let mut repl = Command::new(&braid)
        .args(["--connect", &cluster.flight_sql_addr, "--format", "csv"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the REPL");
    repl.stdin
        .take()
        .expect("stdin")
        .write_all(
            b"SELECT * FROM nope.x.y;\nSELECT count(*) AS regions\n  FROM tpch.tiny.region;\n\\q\n",
        )
        .expect("type statements");
    let out = repl.wait_with_output().expect("REPL ends");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Catalog 'nope' does not exist"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("regions\n5\n"));
}

#[test]
fn a_bad_catalog_file_stops_the_coordinator_with_the_file_and_key() {
    let dir = tempfile::tempdir().expect("dir");
    let catalogs = dir.path().join("catalog");
    std::fs::create_dir(&catalogs).expect("catalog dir");
    let run = |text: &str| {
        std::fs::write(catalogs.join("sales.toml"), text).expect("catalog file");
        let out = Command::new(binary("braid-scheduler"))
            // Every port its own: the test must not depend on a default port being free.
            .args([
                "--port",
                "0",
                "--flight-sql-port",
                "0",
                "--internal-port",
                "0",
                "--http-port",
                "0",
            ])
            .arg("--catalog-dir")
            .arg(&catalogs)
            .output()
            .expect("run braid-scheduler");
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = run("connector = \"memory\"\nmax_table_byte = 10\n");
    assert!(
        err.contains("sales.toml") && err.contains("unknown key 'max_table_byte'"),
        "{err}"
    );
    let err = run("max_table_bytes = 10\n");
    assert!(
        err.contains("sales.toml") && err.contains("missing required key 'connector'"),
        "{err}"
    );
}
