//! A worker killed mid-query: the query completes on the surviving worker (Ballista re-runs the
//! lost tasks there; the coordinator's revive watchdog, `job::spawn_revive_watchdog`, makes it
//! offer them) with the same answer as a run on that worker alone, and the dead worker leaves
//! `system.runtime.nodes`. Graceful stops (SIGTERM, as `docker stop` sends): a worker hands its
//! tasks back and exits once its running ones end; the coordinator lets running queries end,
//! refuses new ones with `SERVER_SHUTTING_DOWN`, and exits.

use std::time::Duration;

use braid_cli::client::{BraidClient, ClientError};
use braid_integration_tests::{Cluster, rows};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;

/// A query spawned on its own task.
type Running = tokio::task::JoinHandle<Result<(SchemaRef, Vec<RecordBatch>), ClientError>>;

/// A query that keeps two workers busy for several seconds; 4 rows.
const LONG_QUERY: &str = "SELECT l_returnflag, l_linestatus, count(*) AS n, sum(l_quantity) AS q \
                          FROM tpch.sf5.lineitem GROUP BY l_returnflag, l_linestatus ORDER BY 1, 2";

/// Starts [`LONG_QUERY`] and waits (bounded) until its job's tasks run.
async fn start_long_query(cluster: &Cluster) -> Running {
    let mut client = cluster.client().await;
    let mut watcher = client.clone();
    let query = tokio::spawn(async move { client.query_all(LONG_QUERY).await });
    wait_for_tasks(&mut watcher).await;
    assert!(
        !query.is_finished(),
        "the query ended before its tasks were seen running"
    );
    query
}

/// Waits (bounded) until the running query's job has tasks.
async fn wait_for_tasks(watcher: &mut BraidClient) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let progress = watcher.progress().await.expect("progress");
        if progress["tasks_total"].as_u64().unwrap_or(0) > 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the job never started: {progress}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The rows of the spawned `query` once it ends (within 240 s); `failing` says what its failure
/// would mean.
async fn outcome(query: Running, cluster: &Cluster, failing: &str) -> Vec<String> {
    let (_, batches) = ended(query, cluster, failing).await;
    rows(&batches)
}

/// What the spawned client task `query` returned once it ended (within 240 s).
async fn ended<T>(
    query: tokio::task::JoinHandle<Result<T, ClientError>>,
    cluster: &Cluster,
    failing: &str,
) -> T {
    match tokio::time::timeout(Duration::from_secs(240), query).await {
        Ok(Ok(Ok(value))) => value,
        Ok(Ok(Err(e))) => panic!("{failing}: {e}\n{}", cluster.logs()),
        Ok(Err(join)) => panic!("client task panicked: {join}"),
        Err(_) => panic!("the query did not finish within 240 s\n{}", cluster.logs()),
    }
}

fn exited_cleanly(status: Option<std::process::ExitStatus>, who: &str, cluster: &Cluster) {
    match status {
        Some(status) if status.success() => {}
        Some(status) => panic!("{who} exited with {status}\n{}", cluster.logs()),
        None => panic!("{who} still runs\n{}", cluster.logs()),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_worker_does_not_take_the_cluster_down() {
    let _serial = braid_integration_tests::serial().await;
    let mut cluster = Cluster::start(2, 2, None).await;
    let query = start_long_query(&cluster).await;
    cluster.kill_worker(1);
    let killed = std::time::Instant::now();

    // system.runtime.nodes lists the survivor alone once the heartbeat timeout (10 s for test
    // clusters) has passed, while the query goes on.
    let mut monitor = cluster.client().await;
    let workers = "SELECT count(*) FROM system.runtime.nodes WHERE NOT coordinator";
    loop {
        let (_, batches) = monitor.query_all(workers).await.expect("nodes");
        if rows(&batches) == ["1"] {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "the killed worker is still listed {:?} after the kill",
            killed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "the killed worker left system.runtime.nodes {:?} after the kill",
        killed.elapsed()
    );

    let survived = outcome(
        query,
        &cluster,
        "the query failed instead of finishing on the surviving worker",
    )
    .await;

    // The same query on the surviving worker alone gives the same answer.
    let mut client = cluster.client().await;
    let (_, again) = client.query_all(LONG_QUERY).await.expect("the query again");
    assert_eq!(survived, rows(&again));
    assert_eq!(survived.len(), 4, "{survived:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_terminated_worker_hands_back_its_tasks_and_exits() {
    let _serial = braid_integration_tests::serial().await;
    // A grace period longer than the test's bound: the worker must exit because its tasks
    // ended, not because it gave up on them.
    let grace = ["--shutdown-grace-period-seconds".to_string(), "120".into()];
    let mut cluster = Cluster::start_with_workers(2, 2, &[], &grace).await;
    let query = start_long_query(&cluster).await;

    cluster.terminate_worker(1);
    let stopped = std::time::Instant::now();
    let status = cluster.wait_worker_exit(1, Duration::from_secs(90)).await;
    exited_cleanly(status, "the worker, 90 s after SIGTERM,", &cluster);
    eprintln!(
        "the terminated worker exited {:?} after SIGTERM",
        stopped.elapsed()
    );

    let answer = outcome(
        query,
        &cluster,
        "the query failed after a worker's graceful stop",
    )
    .await;
    let mut client = cluster.client().await;
    let (_, again) = client
        .query_all(LONG_QUERY)
        .await
        .expect("the query on the survivor");
    assert_eq!(answer, rows(&again));
    assert_eq!(answer.len(), 4, "{answer:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_terminated_coordinator_ends_running_queries_and_refuses_new_ones() {
    use futures::StreamExt;
    let _serial = braid_integration_tests::serial().await;
    let mut cluster = Cluster::start(2, 2, None).await;
    let mut reference = cluster.client().await;
    let (_, expected) = reference
        .query_all("SELECT count(*) FROM tpch.tiny.nation")
        .await
        .expect("a query before the stop");
    assert_eq!(rows(&expected), ["25"]);

    // A query whose client reads its first batch, then waits to be told to read the rest: it
    // runs until then, however fast the machine.
    let mut client = cluster.client().await;
    let (first_batch, got_first) = tokio::sync::oneshot::channel();
    let (read_on, go) = tokio::sync::oneshot::channel::<()>();
    let query = tokio::spawn(async move {
        let (_, mut batches) = client
            .query("SELECT l_orderkey FROM tpch.sf1.lineitem")
            .await?;
        let mut count = 0;
        if let Some(batch) = batches.next().await {
            count += batch?.num_rows();
        }
        let _ = first_batch.send(());
        let _ = go.await;
        while let Some(batch) = batches.next().await {
            count += batch?.num_rows();
        }
        Ok::<_, ClientError>(count)
    });
    tokio::time::timeout(Duration::from_secs(60), got_first)
        .await
        .expect("the first batch within 60 s")
        .expect("the query failed before its first batch");
    cluster.terminate_scheduler();

    // New statements are refused while the running one goes on.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let refusal = loop {
        match reference
            .query_all("SELECT count(*) FROM tpch.tiny.nation")
            .await
        {
            Err(e) => break e.to_string(),
            Ok(_) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the coordinator still accepts queries 30 s after SIGTERM"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert!(
        refusal.contains("SERVER_SHUTTING_DOWN") || refusal.contains("shutting down"),
        "{refusal}"
    );

    // The query admitted before the stop streams to its end.
    let _ = read_on.send(());
    let count = ended(
        query,
        &cluster,
        "the running query failed on the coordinator's stop",
    )
    .await;
    assert_eq!(count, 6_001_215);
    let status = cluster.wait_scheduler_exit(Duration::from_secs(30)).await;
    exited_cleanly(
        status,
        "the coordinator, 30 s after its last query,",
        &cluster,
    );
}
