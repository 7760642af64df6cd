//! A worker killed mid-query: the query completes on the surviving worker (Ballista re-runs the
//! lost tasks there; the coordinator's revive watchdog, `job::spawn_revive_watchdog`, makes it
//! offer them) with the same answer as a run on that worker alone, and the dead worker leaves
//! `system.runtime.nodes`.

use std::time::Duration;

use braid_integration_tests::{Cluster, rows};

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_worker_does_not_take_the_cluster_down() {
    let _serial = braid_integration_tests::serial().await;
    let mut cluster = Cluster::start(2, 2, None).await;
    let mut client = cluster.client().await;
    let sql = "SELECT l_returnflag, l_linestatus, count(*) AS n, sum(l_quantity) AS q \
               FROM tpch.sf5.lineitem GROUP BY l_returnflag, l_linestatus ORDER BY 1, 2";
    let mut watcher = client.clone();
    let query = tokio::spawn(async move { client.query_all(sql).await });

    // Kill a worker once the job's tasks are running.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let progress = watcher.progress().await.expect("progress");
        if progress["tasks_total"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the job never started: {progress}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        !query.is_finished(),
        "the query should still be running when the worker is killed"
    );
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

    let survived = match tokio::time::timeout(Duration::from_secs(240), query).await {
        Ok(Ok(Ok((_, batches)))) => rows(&batches),
        Ok(Ok(Err(e))) => panic!(
            "the query failed instead of finishing on the surviving worker: {e}\n{}",
            cluster.logs()
        ),
        Ok(Err(join)) => panic!("client task panicked: {join}"),
        Err(_) => panic!("the query did not finish within 240 s\n{}", cluster.logs()),
    };

    // The same query on the surviving worker alone gives the same answer.
    let mut client = cluster.client().await;
    let (_, again) = client.query_all(sql).await.expect("the query again");
    assert_eq!(survived, rows(&again));
    assert_eq!(survived.len(), 4, "{survived:?}");
}
