//! The connector SPI from outside: the `numbers` connector lives in this test crate
//! (`src/numbers.rs`) and runs on `braid-test-scheduler` / `braid-test-executor`, which add its
//! factory to Braid's. Its scan and its rule work on a cluster of separate processes, and a scan
//! whose split list is larger than a gRPC message (16 MiB) runs: the coordinator keeps the
//! splits and each task fetches its own.

use braid_integration_tests::{Cluster, Daemons, rows};

#[tokio::test(flavor = "multi_thread")]
async fn a_connector_from_outside_plugs_in_with_its_scan_and_rule() {
    let _serial = braid_integration_tests::serial().await;
    let catalogs = tempfile::tempdir().expect("dir");
    std::fs::write(
        catalogs.path().join("numbers.toml"),
        "connector = \"numbers\"\nrows = 100000\nsplits = 8\n",
    )
    .expect("catalog file");
    // 100 splits of 200,000 bytes: a split list of 20 MB, over gRPC's 16 MiB.
    std::fs::write(
        catalogs.path().join("huge.toml"),
        "connector = \"numbers\"\nrows = 1000000\nsplits = 100\nsplit_padding_bytes = 200000\n",
    )
    .expect("catalog file");
    let cluster = Cluster::start_daemons(Daemons::WITH_NUMBERS, 2, 2, Some(catalogs.path())).await;
    let mut client = cluster.client().await;

    // The scan: 8 splits on two workers.
    let (_, result) = client
        .query_all(
            "SELECT count(*), sum(n), min(n), max(n) FROM numbers.default.numbers WHERE n >= 0",
        )
        .await
        .expect("scan");
    assert_eq!(rows(&result), vec!["100000|4999950000|0|99999"]);

    // The rule: count(*) of the whole table comes from the catalog file, no scan.
    let (_, plan) = client
        .query_all("EXPLAIN SELECT count(*) FROM numbers.default.numbers")
        .await
        .expect("explain");
    let plan = rows(&plan).join("\n");
    assert!(!plan.contains("NumbersScanExec"), "{plan}");
    let (_, count) = client
        .query_all("SELECT count(*) FROM numbers.default.numbers")
        .await
        .expect("count");
    assert_eq!(rows(&count), vec!["100000"]);

    // The catalogs list their connector and capabilities.
    let (_, catalogs) = client
        .query_all(
            "SELECT catalog_name, connector_name, parallel_splits, writes \
             FROM system.metadata.catalogs ORDER BY catalog_name",
        )
        .await
        .expect("system.metadata.catalogs");
    assert_eq!(
        rows(&catalogs),
        vec![
            "huge|numbers|true|false",
            "memory|memory|true|true",
            "numbers|numbers|true|false",
            "tpch|tpch|true|false"
        ]
    );

    // 20 MB of splits: the plan carries a handle, each task fetches its split.
    let (_, plan) = client
        .query_all("EXPLAIN SELECT count(*), min(n), max(n) FROM huge.default.numbers WHERE n >= 0")
        .await
        .expect("explain");
    let plan = rows(&plan).join("\n");
    assert!(
        plan.contains("splits=100, split list kept on the coordinator"),
        "{plan}"
    );
    let (_, result) = client
        .query_all("SELECT count(*), min(n), max(n) FROM huge.default.numbers WHERE n >= 0")
        .await
        .unwrap_or_else(|e| panic!("a scan with 20 MB of splits: {e}\n{}", cluster.logs()));
    assert_eq!(rows(&result), vec!["1000000|0|999999"]);
}
