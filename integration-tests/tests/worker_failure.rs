//! A worker killed mid-query: the query completes on the other worker or fails with a clear
//! error; the coordinator stays up and the next query succeeds.

use std::time::Duration;

use braid_integration_tests::{Cluster, rows};

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_worker_does_not_take_the_cluster_down() {
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

    match tokio::time::timeout(Duration::from_secs(240), query).await {
        Ok(Ok(Ok((_, batches)))) => {
            let rows = rows(&batches);
            assert_eq!(rows.len(), 4, "{rows:?}");
        }
        Ok(Ok(Err(e))) => {
            let message = e.to_string();
            assert!(!message.is_empty(), "a failed query must say why");
            eprintln!("query failed as allowed: {message}");
        }
        Ok(Err(join)) => panic!("client task panicked: {join}"),
        Err(_) => panic!("the query neither finished nor failed within 240 s"),
    }

    let mut client = cluster.client().await;
    let (_, n) = client
        .query_all("SELECT count(*) FROM tpch.tiny.orders")
        .await
        .expect("next query");
    assert_eq!(rows(&n), vec!["15000"]);
}
