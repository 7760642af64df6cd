//! All 22 TPC-H queries on `tpch.tiny` through Flight SQL on a coordinator and two workers (three
//! OS processes), each result equal row for row to plain single-process DataFusion over the same
//! generated data; both workers ran tasks of the same query; EXPLAIN shows the stages; joins a
//! broadcast would break stay correct; results stream while the job runs.

use std::collections::BTreeSet;

use braid_cli::client::BraidClient;
use braid_connector_tpch::queries::QUERIES;
use braid_integration_tests::{Cluster, plain_datafusion, rows, sorted_rows};
use datafusion::prelude::SessionContext;
use futures::StreamExt;

/// The rows of `sql` on Braid and on plain DataFusion; `what` names the query in a failure.
async fn braid_and_plain(
    client: &mut BraidClient,
    plain: &SessionContext,
    sql: &str,
    what: &str,
) -> (Vec<String>, Vec<String>) {
    let (_, braid) = client
        .query_all(sql)
        .await
        .unwrap_or_else(|e| panic!("{what} failed on Braid: {e}"));
    let expected = plain
        .sql(sql)
        .await
        .unwrap_or_else(|e| panic!("{what}: DataFusion cannot plan it: {e}"))
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{what}: DataFusion cannot run it: {e}"));
    (rows(&braid), rows(&expected))
}

#[tokio::test(flavor = "multi_thread")]
async fn all_22_queries_match_plain_datafusion_on_two_workers() {
    let _serial = braid_integration_tests::serial().await;
    let cluster = Cluster::start(2, 2, None).await;
    let mut client = cluster.client().await;
    client.query_all("USE tpch.tiny").await.expect("USE");
    let plain = plain_datafusion();

    // Distributed (`single_task_max_input_rows = 0`): AUTOMATIC broadcasts the sides small by
    // statistics, BROADCAST every side it may. At 1,000, broadcast build sides that read at
    // most that (nation, region) run inside their joins' tasks. Then the default: a query
    // whose scans read at most 100,000 rows by the tables' statistics (most of `tiny`'s) runs
    // as one task.
    for (distribution, single_task) in [
        ("AUTOMATIC", "0"),
        ("BROADCAST", "0"),
        ("AUTOMATIC", "1000"),
        ("AUTOMATIC", "100000"),
    ] {
        for set in [
            format!("SET SESSION join_distribution_type = '{distribution}'"),
            format!("SET SESSION single_task_max_input_rows = {single_task}"),
        ] {
            client.query_all(&set).await.expect(&set);
        }
        let mut checked = 0;
        for (i, sql) in QUERIES.iter().enumerate() {
            let q = i + 1;
            let what = format!("Q{q} ({distribution}, single_task_max_input_rows {single_task})");
            let (braid, expected) = braid_and_plain(&mut client, &plain, sql, &what).await;
            assert!(!expected.is_empty(), "{what}: expected some rows");
            assert_eq!(braid, expected, "{what}: Braid and DataFusion differ");
            checked += 1;
        }
        assert_eq!(checked, 22);
    }

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
    client
        .query_all("SET SESSION single_task_max_input_rows = 0")
        .await
        .expect("SET SESSION");
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

    // Under the default `single_task_max_input_rows`, a query of a small table is one task of
    // one stage; one of a large table is not.
    client
        .query_all("SET SESSION single_task_max_input_rows = 100000")
        .await
        .expect("SET SESSION");
    let point = "SELECT o_orderkey, o_totalprice FROM tpch.tiny.orders WHERE o_orderkey = 7";
    let (_, plan) = client
        .query_all(&format!("EXPLAIN {point}"))
        .await
        .expect("EXPLAIN");
    let text = rows(&plan).join("\n");
    assert!(
        text.contains("one task: its tables hold 15000 rows"),
        "{text}"
    );
    assert!(
        text.contains("Stage 1:") && !text.contains("Stage 2:"),
        "{text}"
    );
    let (_, analyzed) = client
        .query_all(&format!("EXPLAIN ANALYZE {point}"))
        .await
        .expect("EXPLAIN ANALYZE");
    let text = rows(&analyzed).join("\n");
    assert!(
        text.contains(": 1 rows in") && text.contains(", 1 stages"),
        "{text}"
    );
    assert!(text.contains("tasks=1,"), "{text}");
    let (braid, expected) =
        braid_and_plain(&mut client, &plain_datafusion(), point, "the point query").await;
    assert_eq!(braid, expected);
    assert_eq!(braid.len(), 1);
    let (_, plan) = client
        .query_all("EXPLAIN SELECT o_orderstatus, count(*) FROM tpch.sf1.orders GROUP BY 1")
        .await
        .expect("EXPLAIN");
    let text = rows(&plan).join("\n");
    assert!(
        !text.contains("one task") && text.contains("Stage 2:"),
        "{text}"
    );
}

/// Joins that would lose or repeat rows as broadcasts with the probe side split across tasks
/// (left, full, left semi/anti/mark, null-aware anti, nested-loop) give DataFusion's answer on
/// two workers however hard the settings push towards a broadcast: Braid's join type, the
/// thresholds of DataFusion's own join selection, and Ballista's promotion.
#[tokio::test(flavor = "multi_thread")]
async fn joins_a_broadcast_would_break_stay_correct_on_two_workers() {
    let _serial = braid_integration_tests::serial().await;
    let cluster = Cluster::start(2, 2, None).await;
    let mut client = cluster.client().await;
    for set in [
        "USE tpch.tiny",
        // Distributed, however small the tables.
        "SET SESSION single_task_max_input_rows = 0",
        "SET SESSION join_distribution_type = 'BROADCAST'",
        "SET datafusion.optimizer.hash_join_single_partition_threshold = 1000000000",
        "SET datafusion.optimizer.hash_join_single_partition_threshold_rows = 1000000000",
        "SET ballista.optimizer.broadcast_join_threshold_bytes = 1000000000",
    ] {
        client.query_all(set).await.expect(set);
    }
    let plain = plain_datafusion();
    let cases = [
        (
            "left",
            "SELECT c_custkey, o_orderkey FROM customer \
             LEFT JOIN orders ON c_custkey = o_custkey AND o_totalprice > 300000",
        ),
        (
            "full",
            "SELECT c_custkey, o_orderkey FROM (SELECT * FROM customer WHERE c_custkey < 1000) c \
             FULL JOIN (SELECT * FROM orders WHERE o_totalprice > 300000) o ON c_custkey = o_custkey",
        ),
        (
            "left semi",
            "SELECT n_name FROM nation WHERE n_nationkey IN \
             (SELECT c_nationkey FROM customer WHERE c_acctbal > 9900)",
        ),
        (
            "left anti",
            "SELECT c_custkey FROM customer WHERE NOT EXISTS \
             (SELECT 1 FROM orders WHERE o_custkey = c_custkey)",
        ),
        (
            "left mark",
            "SELECT c_custkey FROM customer WHERE c_acctbal > 9000 \
             OR EXISTS (SELECT 1 FROM orders WHERE o_custkey = c_custkey AND o_totalprice > 400000)",
        ),
        (
            "null-aware anti, a nullable key without NULL",
            "SELECT n_name FROM nation WHERE n_nationkey NOT IN \
             (SELECT CASE WHEN o_orderkey < 0 THEN NULL ELSE o_custkey % 20 END FROM orders)",
        ),
        (
            "null-aware anti, a NULL on the probe side",
            "SELECT n_name FROM nation WHERE n_nationkey NOT IN \
             (SELECT CASE WHEN o_orderkey = 7 THEN NULL ELSE o_custkey % 20 END FROM orders)",
        ),
        // The small side is the preserved one, so it stays the build side.
        (
            "nested-loop left",
            "SELECT n_nationkey, c_custkey FROM nation \
             LEFT JOIN customer ON n_nationkey + 22 < c_nationkey AND c_acctbal > 9000",
        ),
        (
            "nested-loop full",
            "SELECT n_nationkey, c_custkey FROM nation \
             FULL JOIN customer ON n_nationkey + 22 < c_nationkey AND c_acctbal > 9000",
        ),
    ];
    for (label, sql) in cases {
        let (braid, expected) = braid_and_plain(&mut client, &plain, sql, label).await;
        let (braid, expected) = (sorted_rows(braid), sorted_rows(expected));
        assert!(
            !expected.is_empty() || label.contains("NULL"),
            "{label}: expected rows"
        );
        assert_eq!(
            braid.len(),
            expected.len(),
            "{label} join: row counts differ"
        );
        assert_eq!(braid, expected, "{label} join: Braid and DataFusion differ");
    }

    // Under AUTOMATIC a safe join is a broadcast when a side is small by its statistics, and
    // EXPLAIN shows the estimates; under PARTITIONED it is not.
    for set in [
        "SET SESSION join_distribution_type = 'AUTOMATIC'",
        "SET datafusion.optimizer.hash_join_single_partition_threshold = 0",
        "SET datafusion.optimizer.hash_join_single_partition_threshold_rows = 0",
    ] {
        client.query_all(set).await.expect(set);
    }
    let explain =
        "EXPLAIN SELECT c_name, n_name FROM customer JOIN nation ON c_nationkey = n_nationkey";
    let (_, plan) = client.query_all(explain).await.expect("EXPLAIN");
    let text = rows(&plan).join("\n");
    assert!(text.contains("mode=CollectLeft"), "{text}");
    assert!(
        text.contains("Rows=Exact(25)"),
        "the estimates are shown: {text}"
    );
    client
        .query_all("SET SESSION join_distribution_type = 'PARTITIONED'")
        .await
        .expect("SET SESSION");
    let (_, plan) = client.query_all(explain).await.expect("EXPLAIN");
    let text = rows(&plan).join("\n");
    assert!(!text.contains("mode=CollectLeft"), "{text}");
    assert!(text.contains("mode=Partitioned"), "{text}");
}

/// The rows of a large scan reach the client while the job still runs: its tasks send them to
/// the coordinator as they make them, and wait while the client does not read.
#[tokio::test(flavor = "multi_thread")]
async fn results_stream_while_the_job_still_runs() {
    let _serial = braid_integration_tests::serial().await;
    let cluster = Cluster::start(2, 2, None).await;
    let mut client = cluster.client().await;
    let sql = "SELECT * FROM tpch.sf1.orders";
    let (_, batches) = client.query(sql).await.expect("the scan starts");
    let mut batches = Box::pin(batches);
    let first = batches
        .next()
        .await
        .expect("a first batch")
        .expect("no error");
    assert!(first.num_rows() > 0);

    // Not reading on: the scan's tasks are still running, held back by this client.
    let mut monitor = cluster.client().await;
    let running = format!(
        "SELECT count(*) FROM system.runtime.tasks t JOIN system.runtime.queries q \
         ON t.query_id = q.query_id WHERE q.query = '{sql}' AND t.state = 'RUNNING'"
    );
    let (_, tasks) = monitor.query_all(&running).await.expect("tasks");
    let tasks: usize = rows(&tasks)[0].parse().expect("a count");
    assert!(tasks > 0, "no task of the scan is running any more");

    let mut total = first.num_rows();
    while let Some(batch) = batches.next().await {
        total += batch.expect("no error").num_rows();
    }
    assert_eq!(total, 1_500_000, "every order, once");
}

/// The shuffle files (`*.arrow`) under a worker's work directory.
fn shuffle_files(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .map(|path| match path.is_dir() {
            true => shuffle_files(&path),
            false => usize::from(path.extension().is_some_and(|x| x == "arrow")),
        })
        .sum()
}

/// Q9 and Q18 (joins and aggregations: hash shuffles between every stage) on two workers,
/// distributed, checked against plain DataFusion; returns the shuffle files the workers wrote.
async fn shuffle_heavy_queries(cluster: &Cluster) -> usize {
    let mut client = cluster.client().await;
    client
        .query_all("SET SESSION single_task_max_input_rows = 0")
        .await
        .expect("SET SESSION");
    client.query_all("USE tpch.tiny").await.expect("USE");
    let plain = plain_datafusion();
    for q in [9, 18] {
        let what = format!("Q{q}");
        let (braid, expected) = braid_and_plain(&mut client, &plain, QUERIES[q - 1], &what).await;
        assert!(!expected.is_empty(), "{what}: expected some rows");
        assert_eq!(braid, expected, "{what}: Braid and DataFusion differ");
    }
    assert!(
        cluster.both_workers_ran_one_job(),
        "the queries did not run on both workers"
    );
    (0..2).map(|i| shuffle_files(&cluster.work_dirs[i])).sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn shuffles_stay_in_memory_and_go_to_disk_past_the_budget() {
    let _serial = braid_integration_tests::serial().await;
    {
        let cluster = Cluster::start(2, 2, None).await;
        let files = shuffle_heavy_queries(&cluster).await;
        assert_eq!(files, 0, "shuffles went to disk under the default budget");
        // Once the jobs ended, the workers give their shuffle memory back to their pools.
        let mut client = cluster.client().await;
        let sql = "SELECT sum(heap_used) FROM system.runtime.nodes WHERE NOT coordinator";
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let (_, held) = client.query_all(sql).await.expect(sql);
            if rows(&held) == ["0"] {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the workers still hold {held:?} bytes a minute after the queries"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
    // A store of 16 KB cannot hold a task's output: it goes to Ballista's files, and the
    // results are the same.
    let cluster =
        Cluster::start_with_workers(2, 2, &[], &["--shuffle-memory".into(), "16KB".into()]).await;
    let files = shuffle_heavy_queries(&cluster).await;
    assert!(files > 0, "no shuffle file under a 16 KB budget");
}

/// The stages of `sql`'s distributed plan, and the plan.
async fn stages(client: &mut BraidClient, sql: &str) -> (usize, String) {
    let (_, plan) = client
        .query_all(&format!("EXPLAIN {sql}"))
        .await
        .expect("EXPLAIN");
    let text = rows(&plan).join("\n");
    let stages = text
        .lines()
        .filter(|line| line.trim_start().starts_with("Stage "))
        .count();
    (stages, text)
}

#[tokio::test(flavor = "multi_thread")]
async fn small_broadcast_sides_run_inside_their_joins_tasks() {
    let _serial = braid_integration_tests::serial().await;
    let cluster = Cluster::start(2, 2, None).await;
    let mut client = cluster.client().await;
    client.query_all("USE tpch.tiny").await.expect("USE");
    let plain = plain_datafusion();
    // Q2 joins nation and region (30 rows) twice, and Q11 nation, both by broadcast.
    for q in [2, 11] {
        let sql = QUERIES[q - 1];
        client
            .query_all("SET SESSION single_task_max_input_rows = 0")
            .await
            .expect("SET SESSION");
        let (all, _) = stages(&mut client, sql).await;
        client
            .query_all("SET SESSION single_task_max_input_rows = 1000")
            .await
            .expect("SET SESSION");
        let (fewer, plan) = stages(&mut client, sql).await;
        assert!(
            plan.contains("LocalBuildJoinExec: build_rows=") && fewer < all,
            "Q{q}: {all} stages without local subtrees, {fewer} with:\n{plan}"
        );
        let what = format!("Q{q} with local subtrees");
        let (braid, expected) = braid_and_plain(&mut client, &plain, sql, &what).await;
        assert_eq!(braid, expected, "{what}: Braid and DataFusion differ");
        eprintln!("Q{q}: {all} stages distributed, {fewer} with small build sides in their joins");
    }
}
