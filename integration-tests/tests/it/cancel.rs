//! Cancelling queries and streaming large results, on separate processes.
//!
//! - `CancelFlightInfo`, the older `CancelQuery` action, and a client that goes away each
//!   cancel the running Ballista job: the scheduler reports the job failed with "Cancelled",
//!   the workers stop burning CPU, and the next query runs.
//! - 10 million rows stream to the client while the coordinator's peak RSS stays far below
//!   the size of the result; the `braid` CLI prints them as CSV with a peak RSS as small.

use std::time::{Duration, Instant};

use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{ActionCancelQueryRequest, ProstMessageExt};
use arrow_flight::{Action, CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus, Ticket};
use braid_integration_tests::{Cluster, flight_sql_client, peak_rss, rows};
use futures::{StreamExt, TryStreamExt};
use prost::Message;
use tonic::transport::Channel;

/// Runs for minutes on two workers: 600 million generated rows.
const LONG_QUERY: &str =
    "SELECT count(*), sum(l_quantity) FROM tpch.sf100.lineitem WHERE l_comment LIKE '%zebra%'";

async fn connect(cluster: &Cluster) -> FlightSqlServiceClient<Channel> {
    flight_sql_client(&cluster.flight_sql_addr).await
}

/// The scheduler's jobs: (id, status, status with the failure reason).
fn jobs(cluster: &Cluster) -> Vec<(String, String, String)> {
    let jobs = cluster.rest("/api/jobs");
    jobs.as_array()
        .expect("job list")
        .iter()
        .map(|j| {
            (
                j["job_id"].as_str().unwrap_or_default().to_string(),
                j["status"].as_str().unwrap_or_default().to_string(),
                j["job_status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Whether a task of `job` runs on a worker now (the scheduler's REST stage list).
fn has_running_task(cluster: &Cluster, job: &str) -> bool {
    let stages = cluster.rest(&format!("/api/job/{job}/stages"));
    stages["stages"].as_array().is_some_and(|stages| {
        stages.iter().any(|stage| {
            stage["tasks"].as_array().is_some_and(|tasks| {
                tasks
                    .iter()
                    .any(|t| t["status"].as_str() == Some("Running"))
            })
        })
    })
}

/// Waits until a job not in `known` is running and its tasks are at work on the workers
/// (they use CPU); returns its id. A cancel that reaches a worker before the task itself is
/// lost there (Ballista 53 drops a `CancelTasks` for a task it has not started), so the tests
/// cancel only what runs.
async fn wait_for_new_running_job(cluster: &Cluster, known: &[String]) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some((id, _, _)) = jobs(cluster).into_iter().find(|(id, status, _)| {
            status == "Running" && !known.contains(id) && has_running_task(cluster, id)
        }) && cluster.worker_cpu_seconds(Duration::from_millis(300)).await > 0.2
        {
            return id;
        }
        assert!(
            Instant::now() < deadline,
            "the long query never started: {:?}",
            jobs(cluster)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Reads a statement's whole result, as a client does: the query runs while its rows stream,
/// and a client that drops the stream has left (the query is cancelled).
async fn read_all(
    mut client: FlightSqlServiceClient<Channel>,
    ticket: Ticket,
) -> Result<(), String> {
    let stream = client.do_get(ticket).await.map_err(|e| e.to_string())?;
    stream
        .try_collect::<Vec<_>>()
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Waits until the scheduler reports `job` cancelled.
async fn wait_until_cancelled(cluster: &Cluster, job: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = jobs(cluster)
            .into_iter()
            .find(|(id, _, _)| id == job)
            .map(|(_, _, status)| status)
            .unwrap_or_default();
        if status.contains("Cancelled") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "job {job} not cancelled: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// After a cancel: the job is cancelled on the scheduler, the workers go idle, the next query runs.
async fn assert_cancelled_and_cluster_free(cluster: &Cluster, job: &str) {
    wait_until_cancelled(cluster, job).await;
    cluster
        .wait_until_workers_idle(&format!("cancelling {job}"))
        .await;
    let mut client = cluster.client().await;
    let (_, batches) = client
        .query_all("SELECT count(*) FROM tpch.tiny.nation WHERE n_regionkey >= 0")
        .await
        .expect("the next query");
    assert_eq!(rows(&batches), vec!["25"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_by_request_and_by_disconnect() {
    let _serial = braid_integration_tests::serial().await;
    let cluster = Cluster::start(2, 1, None).await;
    let mut known = Vec::new();

    // 1. CancelFlightInfo while DoGet waits for the job.
    let mut client = connect(&cluster).await;
    let info = client.execute(LONG_QUERY.into(), None).await.expect("plan");
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    let fetch = tokio::spawn(read_all(client.clone(), ticket));
    let job = wait_for_new_running_job(&cluster, &known).await;
    known.push(job.clone());
    let started = Instant::now();
    let body = CancelFlightInfoRequest::new(info).encode_to_vec();
    let mut results = client
        .do_action(Action::new("CancelFlightInfo", body))
        .await
        .expect("CancelFlightInfo");
    let result = results.next().await.expect("a result").expect("result");
    let result = CancelFlightInfoResult::decode(result.body).expect("decode");
    assert_eq!(result.status(), CancelStatus::Cancelled);
    let outcome = tokio::time::timeout(Duration::from_secs(10), fetch)
        .await
        .expect("DoGet ends after the cancel")
        .expect("task");
    let ended = started.elapsed();
    let error = outcome.expect_err("a cancelled query has no result");
    assert!(error.contains("cancelled"), "{error}");
    assert_cancelled_and_cluster_free(&cluster, &job).await;
    eprintln!("CancelFlightInfo: job {job} cancelled, DoGet ended {ended:?} after the request");

    // 2. The older CancelQuery action.
    let info = client.execute(LONG_QUERY.into(), None).await.expect("plan");
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    let fetch = tokio::spawn(read_all(client.clone(), ticket));
    let job = wait_for_new_running_job(&cluster, &known).await;
    known.push(job.clone());
    let request = ActionCancelQueryRequest {
        info: info.encode_to_vec().into(),
    };
    let mut results = client
        .do_action(Action::new("CancelQuery", request.as_any().encode_to_vec()))
        .await
        .expect("CancelQuery");
    assert!(results.next().await.is_some());
    let outcome = tokio::time::timeout(Duration::from_secs(10), fetch)
        .await
        .expect("DoGet ends after the cancel")
        .expect("task");
    assert!(outcome.is_err());
    assert_cancelled_and_cluster_free(&cluster, &job).await;

    // 3. A client that goes away: its connection closes mid-query.
    let mut leaving = connect(&cluster).await;
    let info = leaving
        .execute(LONG_QUERY.into(), None)
        .await
        .expect("plan");
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    let fetch = tokio::spawn(read_all(leaving, ticket));
    let job = wait_for_new_running_job(&cluster, &known).await;
    fetch.abort();
    let _ = fetch.await;
    assert_cancelled_and_cluster_free(&cluster, &job).await;
}

/// 10 million rows, about 600 MiB of Arrow data.
const STREAMED: &str =
    "SELECT l_orderkey, l_partkey, l_quantity, l_comment FROM tpch.sf2.lineitem LIMIT 10000000";

#[tokio::test(flavor = "multi_thread")]
async fn ten_million_rows_stream_through_a_small_coordinator() {
    let _serial = braid_integration_tests::serial().await;
    let cluster = Cluster::start(2, 1, None).await;
    let mut client = cluster.client().await;
    let started = Instant::now();
    let (_, mut batches) = client.query(STREAMED).await.expect("query");
    let (mut rows, mut bytes, mut count) = (0usize, 0usize, 0usize);
    while let Some(batch) = batches.next().await {
        let batch = batch.expect("batch");
        rows += batch.num_rows();
        bytes += batch
            .columns()
            .iter()
            .map(|c| c.to_data().get_slice_memory_size().expect("size"))
            .sum::<usize>();
        count += 1;
    }
    let peak = peak_rss(cluster.scheduler_pid()).expect("coordinator status");
    eprintln!(
        "streamed {rows} rows in {count} batches, {:.0} MiB of Arrow data, in {:.1}s; coordinator peak RSS {:.0} MiB",
        bytes as f64 / 1048576.0,
        started.elapsed().as_secs_f64(),
        peak as f64 / 1048576.0
    );
    assert_eq!(rows, 10_000_000);
    assert!(count > 100, "the result came in {count} batches");
    assert!(
        peak * 4 < bytes,
        "coordinator peak RSS {peak} B is not far below the result's {bytes} B"
    );

    // The same result through the CLI as CSV: it prints rows as they come (defect 11).
    let mut cli = std::process::Command::new(braid_integration_tests::binary("braid"))
        .args([
            "--connect",
            &cluster.flight_sql_addr,
            "--format",
            "csv",
            "-c",
            STREAMED,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run braid");
    let pid = cli.id();
    let stdout = cli.stdout.take().expect("stdout");
    let lines = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout).lines().count()
    });
    // VmHWM only grows: its last reading before the process exits is its peak.
    let mut cli_peak = 0;
    while let Some(reading) = peak_rss(pid) {
        cli_peak = cli_peak.max(reading);
        if cli.try_wait().expect("wait").is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(cli.wait().expect("wait").success(), "braid failed");
    let lines = lines.join().expect("reader");
    eprintln!(
        "braid --format csv: {lines} lines; client peak RSS {:.0} MiB",
        cli_peak as f64 / 1048576.0
    );
    assert_eq!(lines, 10_000_001, "a header and every row");
    assert!(
        cli_peak * 4 < bytes,
        "the CLI's peak RSS {cli_peak} B is not far below the result's {bytes} B"
    );

    // The same result through Trino's protocol, page by page: the coordinator encodes each
    // page as the client asks for it and keeps none of them.
    let started = Instant::now();
    let (rows, json, pages) = read_trino_pages(&cluster, STREAMED).await;
    let peak = peak_rss(cluster.scheduler_pid()).expect("coordinator status");
    eprintln!(
        "Trino protocol: {rows} rows in {pages} pages, {:.0} MiB of JSON, in {:.1}s; coordinator peak RSS {:.0} MiB",
        json as f64 / 1048576.0,
        started.elapsed().as_secs_f64(),
        peak as f64 / 1048576.0
    );
    assert_eq!(rows, 10_000_000);
    assert!(
        peak * 4 < json,
        "coordinator peak RSS {peak} B is not far below the result's {json} B of JSON"
    );
}

/// Runs `sql` through Trino's protocol and reads every page: the rows, the bytes of the pages
/// and their number.
async fn read_trino_pages(cluster: &Cluster, sql: &str) -> (usize, usize, usize) {
    #[derive(serde::Deserialize)]
    struct Page {
        #[serde(rename = "nextUri")]
        next_uri: Option<String>,
        data: Option<Vec<serde::de::IgnoredAny>>,
        error: Option<serde_json::Value>,
    }
    let http = reqwest::Client::new();
    let mut request = http
        .post(format!("http://{}/v1/statement", cluster.http_addr))
        .body(sql.to_string());
    let (mut rows, mut bytes, mut pages) = (0, 0, 0);
    loop {
        let body = request
            .header("X-Trino-User", "reader")
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .expect("a page")
            .text()
            .await
            .expect("its body");
        let page: Page = serde_json::from_str(&body).expect("a QueryResults document");
        assert!(page.error.is_none(), "{:?}", page.error);
        rows += page.data.map_or(0, |data| data.len());
        bytes += body.len();
        pages += 1;
        match page.next_uri {
            Some(uri) => request = http.get(uri),
            None => return (rows, bytes, pages),
        }
    }
}
