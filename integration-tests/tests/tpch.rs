//! All 22 TPC-H queries on `tpch.tiny` through Flight SQL on a coordinator and two workers (three
//! OS processes), each result equal row for row to plain single-process DataFusion over the same
//! generated data; both workers ran tasks of the same query; EXPLAIN shows the stages.

use std::collections::BTreeSet;

use braid_connector_tpch::queries::QUERIES;
use braid_integration_tests::{Cluster, plain_datafusion, rows};

#[tokio::test(flavor = "multi_thread")]
async fn all_22_queries_match_plain_datafusion_on_two_workers() {
    let _serial = braid_integration_tests::serial().await;
    let cluster = Cluster::start(2, 2, None).await;
    let mut client = cluster.client().await;
    client.query_all("USE tpch.tiny").await.expect("USE");
    let plain = plain_datafusion();

    let mut checked = 0;
    for (i, sql) in QUERIES.iter().enumerate() {
        let q = i + 1;
        let (_, braid) = client
            .query_all(sql)
            .await
            .unwrap_or_else(|e| panic!("Q{q} failed on Braid: {e}"));
        let expected = plain
            .sql(sql)
            .await
            .expect("plan")
            .collect()
            .await
            .expect("run");
        let (braid, expected) = (rows(&braid), rows(&expected));
        assert!(!expected.is_empty() || q == 0, "Q{q}: expected some rows");
        assert_eq!(braid, expected, "Q{q}: Braid and DataFusion differ");
        checked += 1;
    }
    assert_eq!(checked, 22);

    // Both workers wrote shuffle output for at least one common job.
    let first: BTreeSet<_> = cluster.jobs_on_worker(0).into_iter().collect();
    let second: BTreeSet<_> = cluster.jobs_on_worker(1).into_iter().collect();
    let shared: Vec<_> = first.intersection(&second).collect();
    assert!(
        !shared.is_empty(),
        "no query ran tasks on both workers (worker 0: {first:?}, worker 1: {second:?})"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn explain_shows_stages_and_explain_analyze_their_metrics() {
    let _serial = braid_integration_tests::serial().await;
    let cluster = Cluster::start(2, 2, None).await;
    let mut client = cluster.client().await;
    let sql = "SELECT l_returnflag, count(*) FROM tpch.tiny.lineitem GROUP BY l_returnflag";

    let (_, plan) = client
        .query_all(&format!("EXPLAIN {sql}"))
        .await
        .expect("EXPLAIN");
    let text = rows(&plan).join("\n");
    assert!(text.contains("Distributed plan:"), "{text}");
    assert!(
        text.contains("Stage 1:") && text.contains("Stage 2:"),
        "{text}"
    );
    assert!(text.contains("ShuffleWriterExec"), "{text}");
    assert!(text.contains("TpchScanExec"), "{text}");

    let (_, analyzed) = client
        .query_all(&format!("EXPLAIN ANALYZE {sql}"))
        .await
        .expect("EXPLAIN ANALYZE");
    let text = rows(&analyzed).join("\n");
    assert!(text.contains("3 rows"), "{text}");
    assert!(text.contains("Stage 1 [Successful]"), "{text}");
    // The scan stage read every line item.
    assert!(
        text.contains("output_rows=60175") || text.contains("input_rows=60175"),
        "{text}"
    );
}
