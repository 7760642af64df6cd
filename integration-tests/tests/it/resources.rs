//! Resource management on a real cluster (a coordinator and two workers, separate processes):
//! Trino's resource groups (admission, FIFO queue, `QUERY_QUEUE_FULL`, selectors by user and
//! source, `softMemoryLimit`), the `system.runtime` tables, `kill_query`, cancelling a queued
//! query, the time limits (`query.max-execution-time`, `query_max_run_time`), and the workers'
//! memory (per-node and cluster limits, spill, the `reserved` pool). Clients are arrow-flight's
//! own Flight SQL client, logged in as different users.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::{Action, CancelFlightInfoRequest};
use braid_cli::client::ConnectOptions;
use braid_integration_tests::{
    Cluster, flight_fetch, flight_rows, flight_sql_client, plain_rows, rows,
};
use prost::Message;
use tonic::transport::Channel;

/// Runs until stopped: a filter no row passes, over TPC-H SF100 generated on the fly.
const LONG_QUERY: &str =
    "SELECT count(*), sum(l_quantity) FROM tpch.sf100.lineitem WHERE l_comment LIKE '%zebra%'";

/// About a second of work per query on a small machine.
const LOAD_QUERY: &str = "SELECT l_returnflag, count(*), sum(l_quantity) \
     FROM tpch.\"sf0.1\".lineitem WHERE l_shipmode = 'AIR' GROUP BY l_returnflag \
     ORDER BY l_returnflag";

const GROUPS: &str = r#"{
  "rootGroups": [{
    "name": "global", "softMemoryLimit": "80%", "hardConcurrencyLimit": 100, "maxQueued": 1000,
    "subGroups": [
      {"name": "load", "hardConcurrencyLimit": 4, "maxQueued": 10},
      {"name": "ops", "hardConcurrencyLimit": 10, "maxQueued": 10},
      {"name": "etl", "hardConcurrencyLimit": 2, "maxQueued": 5},
      {"name": "adhoc_${USER}", "hardConcurrencyLimit": 1, "maxQueued": 1}
    ]
  }],
  "selectors": [
    {"user": "load", "group": "global.load"},
    {"user": "admin|monitor", "group": "global.ops"},
    {"source": "nightly-.*", "group": "global.etl"},
    {"group": "global.adhoc_${USER}"}
  ]
}"#;

/// A cluster with the resource groups above, `admin` as admin, and `settings` in its
/// `braid.toml` `[scheduler]` table.
async fn start(dir: &Path, settings: &str) -> Cluster {
    start_with_workers(dir, settings, &[]).await
}

/// [`start`] with extra flags for the workers.
async fn start_with_workers(dir: &Path, settings: &str, worker_args: &[&str]) -> Cluster {
    start_with_groups(dir, GROUPS, settings, worker_args).await
}

/// [`start_with_workers`] with the resource groups `groups` (JSON).
async fn start_with_groups(
    dir: &Path,
    groups: &str,
    settings: &str,
    worker_args: &[&str],
) -> Cluster {
    let groups_file = dir.join("resource-groups.json");
    std::fs::write(&groups_file, groups).expect("write resource groups");
    let groups = groups_file;
    let config = dir.join("braid.toml");
    std::fs::write(
        &config,
        format!("[scheduler]\nadmin_users = [\"admin\"]\n{settings}\n"),
    )
    .expect("write braid.toml");
    let args = [
        "--resource-groups-file".to_string(),
        groups.display().to_string(),
        "--config".into(),
        config.display().to_string(),
    ];
    let worker_args: Vec<String> = worker_args.iter().map(|a| a.to_string()).collect();
    Cluster::start_with_workers(2, 2, &args, &worker_args).await
}

/// A Flight SQL client logged in as `user` (passwords are off: any name is accepted).
async fn login(cluster: &Cluster, user: &str) -> FlightSqlServiceClient<Channel> {
    let mut client = flight_sql_client(&cluster.flight_sql_addr).await;
    client.handshake(user, "").await.expect("handshake");
    client
}

async fn must(client: &mut FlightSqlServiceClient<Channel>, sql: &str) -> Vec<String> {
    flight_rows(client, sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Waits (bounded) until `sql` returns `expected`.
async fn wait_for(client: &mut FlightSqlServiceClient<Channel>, sql: &str, expected: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = must(client, sql).await;
        if got == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{sql}: still {got:?}, waited for {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The id of the one query whose text is `sql`.
async fn query_id(monitor: &mut FlightSqlServiceClient<Channel>, sql: &str) -> String {
    let ids = must(
        monitor,
        &format!(
            "SELECT query_id FROM system.runtime.queries WHERE query = '{}'",
            sql.replace('\'', "''")
        ),
    )
    .await;
    assert_eq!(ids.len(), 1, "one query with text {sql}: {ids:?}");
    ids[0].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_clients_against_a_group_of_four_running_and_ten_queued() {
    let _serial = braid_integration_tests::serial().await;
    let dir = tempfile::tempdir().expect("dir");
    let cluster = start(dir.path(), "").await;
    let expected = plain_rows(LOAD_QUERY).await;

    // Twenty clients of user `load` plan the query, then fetch it at the same moment.
    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let mut clients = Vec::new();
    for _ in 0..20 {
        let mut client = login(&cluster, "load").await;
        let info = client.execute(LOAD_QUERY.into(), None).await.expect("plan");
        let barrier = barrier.clone();
        clients.push(tokio::spawn(async move {
            barrier.wait().await;
            flight_fetch(&mut client, info).await.map(|b| rows(&b))
        }));
    }

    // Meanwhile `monitor` (another group) counts the running queries of `load`.
    let done = Arc::new(AtomicBool::new(false));
    let most = Arc::new(AtomicUsize::new(0));
    let mut monitor = login(&cluster, "monitor").await;
    let watcher = {
        let (done, most) = (done.clone(), most.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::SeqCst) {
                let running = must(
                    &mut monitor,
                    "SELECT count(*) FROM system.runtime.queries \
                     WHERE \"user\" = 'load' AND state = 'RUNNING'",
                )
                .await;
                let running: usize = running[0].parse().expect("a count");
                most.fetch_max(running, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            monitor
        })
    };

    let mut finished = 0;
    let mut rejected = Vec::new();
    for client in clients {
        match client.await.expect("client task") {
            Ok(got) => {
                assert_eq!(got, expected, "a query admitted from the queue is correct");
                finished += 1;
            }
            Err(error) => rejected.push(error),
        }
    }
    done.store(true, Ordering::SeqCst);
    let mut monitor = watcher.await.expect("monitor");
    assert_eq!(finished, 14, "4 run at once and 10 wait: {rejected:?}");
    assert_eq!(rejected.len(), 6, "beyond maxQueued = 10, rejected at once");
    for error in &rejected {
        assert!(
            error.contains("QUERY_QUEUE_FULL") && error.contains("global.load"),
            "{error}"
        );
    }
    let most = most.load(Ordering::SeqCst);
    assert_eq!(
        most, 4,
        "hardConcurrencyLimit = 4: at most 4 RUNNING, and 4 at once"
    );
    eprintln!("20 clients: {finished} finished, 6 rejected, at most {most} running at once");

    let outcome = must(
        &mut monitor,
        "SELECT state, error_code, error_type, array_to_string(resource_group_id, '.'), count(*) \
         FROM system.runtime.queries WHERE \"user\" = 'load' GROUP BY 1, 2, 3, 4 ORDER BY 1",
    )
    .await;
    assert_eq!(
        outcome,
        [
            "FAILED|QUERY_QUEUE_FULL|INSUFFICIENT_RESOURCES|global.load|6",
            "FINISHED|||global.load|14",
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn selectors_queues_runtime_tables_and_kill_query() {
    let _serial = braid_integration_tests::serial().await;
    let dir = tempfile::tempdir().expect("dir");
    let cluster = start(dir.path(), "").await;
    let mut monitor = login(&cluster, "monitor").await;
    let mut admin = login(&cluster, "admin").await;

    // Ann's group (global.adhoc_ann) runs one query and queues one. Her long query takes two
    // of the cluster's four task slots, so that other users' queries find slots.
    let mut ann = login(&cluster, "ann").await;
    must(
        &mut ann,
        "SET SESSION datafusion.execution.target_partitions = 2",
    )
    .await;
    let info = ann.execute(LONG_QUERY.into(), None).await.expect("plan");
    let mut long_client = ann.clone();
    let long = tokio::spawn(async move { flight_fetch(&mut long_client, info).await });
    wait_for(
        &mut monitor,
        &format!(
            "SELECT state, array_to_string(resource_group_id, '.') FROM system.runtime.queries \
             WHERE query = '{}'",
            LONG_QUERY.replace('\'', "''")
        ),
        &["RUNNING|global.adhoc_ann"],
    )
    .await;
    let long_id = query_id(&mut monitor, LONG_QUERY).await;

    // A second query of Ann waits; a third finds the queue full.
    let queued_sql = "SELECT 'queued', 'O''Brien'";
    let queued_info = ann.execute(queued_sql.into(), None).await.expect("plan");
    let mut queued_client = ann.clone();
    let queued = {
        let info = queued_info.clone();
        tokio::spawn(async move { flight_fetch(&mut queued_client, info).await })
    };
    wait_for(
        &mut monitor,
        "SELECT state FROM system.runtime.queries WHERE query = 'SELECT ''queued'', ''O''''Brien'''",
        &["QUEUED"],
    )
    .await;
    let full = flight_rows(&mut ann, "SELECT 'third'")
        .await
        .expect_err("queue full");
    assert!(
        full.contains("QUERY_QUEUE_FULL") && full.contains("global.adhoc_ann"),
        "{full}"
    );

    // Bob lands in a group of his own: his query runs while Ann's group is full.
    let mut bob = login(&cluster, "bob").await;
    let bobs_sql = "SELECT count(*) FROM tpch.tiny.lineitem";
    assert_eq!(must(&mut bob, bobs_sql).await, ["60175"]);
    // A source selector: `nightly-*` clients of any user go to global.etl.
    let mut nightly = flight_sql_client(&cluster.flight_sql_addr).await;
    nightly.set_header("x-braid-source", "nightly-load");
    nightly.handshake("bob", "").await.expect("handshake");
    assert_eq!(must(&mut nightly, "SELECT 'from etl'").await, ["from etl"]);
    let groups = must(
        &mut monitor,
        "SELECT \"user\", source, array_to_string(resource_group_id, '.') \
         FROM system.runtime.queries \
         WHERE query IN ('SELECT count(*) FROM tpch.tiny.lineitem', 'SELECT ''from etl''') \
         ORDER BY 3",
    )
    .await;
    assert_eq!(groups.len(), 2, "{groups:?}");
    assert!(groups[0].starts_with("bob|") && groups[0].ends_with("|global.adhoc_bob"));
    assert_eq!(groups[1], "bob|nightly-load|global.etl");

    // The queued query is cancelled while it waits: the queue has room again.
    let cancel = CancelFlightInfoRequest::new(queued_info).encode_to_vec();
    let mut results = ann
        .do_action(Action::new("CancelFlightInfo", cancel))
        .await
        .expect("CancelFlightInfo");
    while results.message().await.expect("result").is_some() {}
    let error = queued
        .await
        .expect("task")
        .expect_err("a cancelled query has no rows");
    assert!(error.contains("cancelled"), "{error}");
    wait_for(
        &mut monitor,
        "SELECT state, error_code FROM system.runtime.queries \
         WHERE query = 'SELECT ''queued'', ''O''''Brien'''",
        &["FAILED|USER_CANCELED"],
    )
    .await;
    // The next one waits; its client (the `braid` REPL's) sees it queued.
    let repl = braid_cli::client::BraidClient::connect_with(
        &cluster.flight_sql_addr,
        &ConnectOptions {
            user: Some("ann".into()),
            password: Some(String::new()),
            ..Default::default()
        },
    )
    .await
    .expect("connect");
    let mut progress = repl.clone();
    let mut waiting_client = repl;
    let waiting = tokio::spawn(async move { waiting_client.query_all("SELECT 'waits'").await });
    wait_for(
        &mut monitor,
        "SELECT state FROM system.runtime.queries WHERE query = 'SELECT ''waits'''",
        &["QUEUED"],
    )
    .await;
    let report = progress.progress().await.expect("progress");
    assert_eq!(report["state"], "QUEUED", "{report}");

    // The runtime tables, with the monitoring queries Trino users run as they are.
    let running = must(
        &mut monitor,
        "SELECT query_id, state, elapsed_time_millis, queued_time_millis \
         FROM system.runtime.queries WHERE state = 'RUNNING' ORDER BY elapsed_time_millis DESC",
    )
    .await;
    assert!(
        running[0].starts_with(&format!("{long_id}|RUNNING|")),
        "the long query runs longest: {running:?}"
    );
    let nodes = must(
        &mut monitor,
        "SELECT coordinator, state, task_slots FROM system.runtime.nodes ORDER BY coordinator",
    )
    .await;
    assert_eq!(nodes, ["false|active|2", "false|active|2", "true|active|"]);
    must(
        &mut monitor,
        "SELECT node_id, processor_count, heap_available, heap_used FROM system.runtime.nodes",
    )
    .await;
    let tasks = must(
        &mut monitor,
        &format!(
            "SELECT count(*) FROM system.runtime.tasks t JOIN system.runtime.nodes n \
             ON t.node_id = n.node_id \
             WHERE t.query_id = '{long_id}' AND t.state = 'RUNNING' AND NOT n.coordinator"
        ),
    )
    .await;
    assert_eq!(
        tasks,
        ["2"],
        "the long query's two tasks run on the workers"
    );
    // Only its user or an admin may kill a query.
    let denied = flight_rows(
        &mut bob,
        &format!("CALL system.runtime.kill_query(query_id => '{long_id}', message => 'no')"),
    )
    .await
    .expect_err("bob may not");
    assert!(
        denied.contains("PERMISSION_DENIED") && denied.contains("ann"),
        "{denied}"
    );
    let unknown = flight_rows(&mut admin, "CALL system.runtime.kill_query('nope')")
        .await
        .expect_err("unknown");
    assert!(
        unknown.contains("NOT_FOUND") && unknown.contains("nope"),
        "{unknown}"
    );
    must(
        &mut admin,
        &format!(
            "CALL system.runtime.kill_query(query_id => '{long_id}', message => 'O''Brien needs the cluster')"
        ),
    )
    .await;
    let killed = long
        .await
        .expect("task")
        .expect_err("a killed query has no rows");
    assert!(
        killed.contains("ADMINISTRATIVELY_KILLED")
            && killed.contains("Query killed. Message: O'Brien needs the cluster"),
        "{killed}"
    );
    cluster.wait_until_workers_idle("kill_query").await;
    // Its place goes to the query that waited.
    let (_, waited) = waiting.await.expect("task").expect("the queued query runs");
    assert_eq!(rows(&waited), ["waits"]);

    let failed = must(
        &mut monitor,
        "SELECT query_id, error_type, error_message FROM system.runtime.queries \
         WHERE state = 'FAILED' ORDER BY created DESC LIMIT 10",
    )
    .await;
    assert!(
        failed.contains(&format!(
            "{long_id}|USER_ERROR|Query killed. Message: O'Brien needs the cluster"
        )),
        "{failed:?}"
    );
    let bobs_id = query_id(&mut monitor, bobs_sql).await;
    let cpu = must(
        &mut monitor,
        "SELECT query_id, output_rows FROM system.runtime.queries \
         WHERE total_cpu_time > INTERVAL '0' SECOND AND total_scheduled_time > INTERVAL '0' SECOND",
    )
    .await;
    assert!(
        cpu.contains(&format!("{bobs_id}|1")),
        "bob's scan used CPU on the workers: {cpu:?}"
    );
    must(
        &mut monitor,
        "SELECT query_id FROM system.runtime.queries WHERE total_cpu_time > INTERVAL '30' SECOND",
    )
    .await;
    eprintln!("killed {long_id}; runtime tables: {nodes:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn time_limits_end_queries_with_the_limit_named() {
    let _serial = braid_integration_tests::serial().await;
    let dir = tempfile::tempdir().expect("dir");
    let cluster = start(dir.path(), "query.max-execution-time = \"3s\"").await;

    let mut ann = login(&cluster, "ann").await;
    let started = Instant::now();
    let error = flight_rows(&mut ann, LONG_QUERY)
        .await
        .expect_err("over the limit");
    let took = started.elapsed();
    assert!(
        error.contains("EXCEEDED_TIME_LIMIT")
            && error.contains("execution time limit of 3.00s (query.max-execution-time)"),
        "{error}"
    );
    assert!(took >= Duration::from_secs(3), "ended after {took:?}");
    cluster
        .wait_until_workers_idle("the execution time limit")
        .await;

    // A session lowers the limit with Trino's session property.
    let mut client = cluster.client().await;
    client
        .query_all("SET SESSION query_max_run_time = '1s'")
        .await
        .expect("SET SESSION");
    let error = client
        .query_all(LONG_QUERY)
        .await
        .expect_err("over the session's limit")
        .to_string();
    assert!(
        error.contains("EXCEEDED_TIME_LIMIT")
            && error.contains("run time limit of 1.00s (query_max_run_time)"),
        "{error}"
    );
    let (_, batches) = client
        .query_all("SELECT count(*) FROM tpch.tiny.nation")
        .await
        .expect("a short query is within the limits");
    assert_eq!(rows(&batches), ["25"]);
    let bad = client
        .query_all("SET SESSION query_max_execution_time = 'forever'")
        .await
        .expect_err("not a duration")
        .to_string();
    assert!(bad.contains("'forever' is not a duration"), "{bad}");

    let mut monitor = login(&cluster, "monitor").await;
    let failures = must(
        &mut monitor,
        "SELECT error_type, error_code, count(*) FROM system.runtime.queries \
         WHERE state = 'FAILED' AND error_code = 'EXCEEDED_TIME_LIMIT' GROUP BY 1, 2",
    )
    .await;
    assert_eq!(failures, ["INSUFFICIENT_RESOURCES|EXCEEDED_TIME_LIMIT|2"]);
}

/// Three million rows deep into a sort of `tpch.sf1.lineitem`: a TopK heap of 3M rows does not
/// fit a small pool, so Braid sorts (and spills) instead.
const DEEP_SORT: &str = "SELECT l_orderkey, l_linenumber, l_comment FROM tpch.sf1.lineitem \
     ORDER BY l_comment DESC, l_orderkey, l_linenumber LIMIT 2 OFFSET 3000000";

/// Workers' memory pool and the per-node query limit of the memory test.
const WORKER_POOL: &str = "512MB";
const PER_NODE: &str = "96MB";
/// The reserved slice of the reserved-pool test: its general pool (the rest of the 512MB) is
/// too small for the deep sort without spilling, the whole pool is not.
const RESERVED_SLICE: &str = "384MB";

/// Runs `sql` as `user` while `LOAD_QUERY` runs beside it on another connection; checks the
/// latter's result and returns the former's.
async fn beside_a_second_query(
    cluster: &Cluster,
    user: &str,
    setup: &[&str],
    sql: &str,
    load_expected: &[String],
) -> Result<Vec<String>, String> {
    let mut heavy = login(cluster, user).await;
    for statement in setup {
        must(&mut heavy, statement).await;
    }
    let sql = sql.to_string();
    let heavy = tokio::spawn(async move { flight_rows(&mut heavy, &sql).await });
    let mut other = login(cluster, "monitor").await;
    // The second query starts once the first one holds memory on a worker.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let held = must(
            &mut other,
            "SELECT count(*) FROM system.runtime.queries \
             WHERE state = 'RUNNING' AND memory_reservation > 0",
        )
        .await;
        if held != ["0"] || heavy.is_finished() {
            break;
        }
        assert!(Instant::now() < deadline, "the query never held memory");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        must(&mut other, LOAD_QUERY).await,
        load_expected,
        "a query running beside the memory-heavy one is unaffected"
    );
    heavy.await.expect("query task")
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_limits_spill_fail_with_trinos_names_and_report_per_worker() {
    let _serial = braid_integration_tests::serial().await;
    let dir = tempfile::tempdir().expect("dir");
    let mut cluster = start_with_workers(
        dir.path(),
        &format!("query.max-memory-per-node = \"{PER_NODE}\""),
        &["--memory-limit", WORKER_POOL],
    )
    .await;
    let deep_expected = plain_rows(DEEP_SORT).await;
    let load_expected = plain_rows(LOAD_QUERY).await;
    assert_eq!(deep_expected.len(), 2);

    // With spilling (the default), the deep sort stays within 96MB per worker and completes.
    let got = beside_a_second_query(&cluster, "admin", &[], DEEP_SORT, &load_expected)
        .await
        .unwrap_or_else(|e| panic!("the deep sort failed: {e}\n{}", cluster.logs()));
    assert_eq!(got, deep_expected, "spilled and correct");
    let mut monitor = login(&cluster, "monitor").await;
    let peak = must(
        &mut monitor,
        &format!(
            "SELECT state, peak_memory_reservation FROM system.runtime.queries \
             WHERE query = '{}'",
            DEEP_SORT.replace('\'', "''")
        ),
    )
    .await;
    let (state, peak) = peak[0].split_once('|').expect("two columns");
    let peak: u64 = peak.parse().expect("bytes");
    assert_eq!(state, "FINISHED");
    assert!(
        peak > 0 && peak <= (2 * 96) << 20,
        "the query held at most 96MB on each of 2 workers: {peak}"
    );
    eprintln!("deep sort with spill: correct, peak reservation {peak} bytes over 2 workers");

    // Without spilling, it fails with Trino's name and the limit, and the other query is fine.
    let error = beside_a_second_query(
        &cluster,
        "admin",
        &["SET SESSION spill_enabled = false"],
        DEEP_SORT,
        &load_expected,
    )
    .await
    .expect_err("no spill: over the per-node limit");
    assert!(
        error.contains("EXCEEDED_LOCAL_MEMORY_LIMIT")
            && error.contains("per-node memory limit of 96MB [query.max-memory-per-node]"),
        "{error}"
    );
    eprintln!("deep sort without spill: {error}");

    // A cluster-wide limit lower than what the query holds on the workers ends it.
    let error = beside_a_second_query(
        &cluster,
        "admin",
        &["SET SESSION query_max_memory = '8MB'"],
        DEEP_SORT,
        &load_expected,
    )
    .await
    .expect_err("over query_max_memory");
    assert!(
        error.contains("EXCEEDED_GLOBAL_MEMORY_LIMIT")
            && error.contains("distributed user memory limit of 8MB [query_max_memory]"),
        "{error}"
    );
    eprintln!("deep sort over query_max_memory: {error}");

    // The workers live on and report their pools.
    assert!(
        cluster.workers_alive(),
        "no worker died\n{}",
        cluster.logs()
    );
    let nodes = must(
        &mut monitor,
        "SELECT processor_count > 0, heap_available, heap_used >= 0 \
         FROM system.runtime.nodes WHERE NOT coordinator",
    )
    .await;
    let pool = (512u64 << 20).to_string();
    assert_eq!(
        nodes,
        [format!("true|{pool}|true"), format!("true|{pool}|true")],
        "both workers report their pool"
    );
    // The target: a worker's RSS stays within its pool plus 256MB (here the 300MB text pool
    // `tpchgen` keeps for generating comments is inside that margin).
    for (i, rss) in cluster.worker_peak_rss().iter().enumerate() {
        eprintln!("worker {i}: peak RSS {} MB, pool {WORKER_POOL}", rss >> 20);
        assert!(
            *rss > 0 && *rss <= (512 + 256) << 20,
            "worker {i}: peak RSS {} MB over its pool + 256MB",
            rss >> 20
        );
    }
}

/// Waits (bounded) until the running query whose text is `sql` holds memory on the workers,
/// as the coordinator last heard from them, or until `client` (the task running it) ended;
/// returns whether it held memory.
async fn wait_until_it_holds_memory<T>(
    monitor: &mut FlightSqlServiceClient<Channel>,
    sql: &str,
    client: &tokio::task::JoinHandle<T>,
) -> bool {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let held = must(
            monitor,
            &format!(
                "SELECT memory_reservation > 0 FROM system.runtime.queries \
                 WHERE query = '{}' AND state = 'RUNNING'",
                sql.replace('\'', "''")
            ),
        )
        .await;
        if held == ["true"] {
            return true;
        }
        if client.is_finished() {
            return false;
        }
        assert!(Instant::now() < deadline, "{sql}: never held memory");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Holds memory on the workers for as long as it runs (each task of the join keeps the hash
/// table of `tiny.orders`), and runs until stopped (its probe side is TPC-H SF100).
const HOLDING_QUERY: &str = "SELECT count(*) FROM tpch.sf100.lineitem l \
     JOIN tpch.tiny.orders o ON l.l_orderkey = o.o_orderkey WHERE l.l_comment LIKE '%zebra%'";

/// The state of the queries whose text is `sql`.
async fn state_of(monitor: &mut FlightSqlServiceClient<Channel>, sql: &str) -> Vec<String> {
    must(
        monitor,
        &format!(
            "SELECT state FROM system.runtime.queries WHERE query = '{}'",
            sql.replace('\'', "''")
        ),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_over_its_soft_memory_limit_queues_until_its_queries_free_memory() {
    let _serial = braid_integration_tests::serial().await;
    let dir = tempfile::tempdir().expect("dir");
    let groups = r#"{
      "rootGroups": [
        {"name": "capped", "softMemoryLimit": "1kB", "hardConcurrencyLimit": 10, "maxQueued": 10},
        {"name": "ops", "hardConcurrencyLimit": 10, "maxQueued": 10}
      ],
      "selectors": [{"user": "admin|monitor", "group": "ops"}, {"group": "capped"}]
    }"#;
    let cluster = start_with_groups(dir.path(), groups, "", &[]).await;
    let load_expected = plain_rows(LOAD_QUERY).await;
    let mut monitor = login(&cluster, "monitor").await;

    // Ann's query holds memory on the workers until it is killed.
    let mut ann = login(&cluster, "ann").await;
    let holding = tokio::spawn(async move { flight_rows(&mut ann, HOLDING_QUERY).await });
    assert!(
        wait_until_it_holds_memory(&mut monitor, HOLDING_QUERY, &holding).await,
        "the holding query ended: {:?}\n{}",
        holding.await,
        cluster.logs()
    );
    let holding_id = query_id(&mut monitor, HOLDING_QUERY).await;

    // Bob's query, in the same group, waits: the group holds more than its 1kB.
    let mut bob = login(&cluster, "bob").await;
    let waiting = tokio::spawn(async move { flight_rows(&mut bob, LOAD_QUERY).await });
    wait_for(
        &mut monitor,
        &format!(
            "SELECT state FROM system.runtime.queries WHERE query = '{}'",
            LOAD_QUERY.replace('\'', "''")
        ),
        &["QUEUED"],
    )
    .await;
    // It stays queued while the memory is held (3 s, three rounds of the workers' reports).
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        assert_eq!(
            state_of(&mut monitor, LOAD_QUERY).await,
            ["QUEUED"],
            "bob's query waits while its group is over its softMemoryLimit"
        );
        assert_eq!(state_of(&mut monitor, HOLDING_QUERY).await, ["RUNNING"]);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Once ann's query ends and frees its memory, bob's runs.
    let mut admin = login(&cluster, "admin").await;
    must(
        &mut admin,
        &format!("CALL system.runtime.kill_query(query_id => '{holding_id}', message => 'room')"),
    )
    .await;
    let killed = holding.await.expect("task").expect_err("killed");
    assert!(killed.contains("ADMINISTRATIVELY_KILLED"), "{killed}");
    let got = waiting
        .await
        .expect("task")
        .unwrap_or_else(|e| panic!("bob's query: {e}\n{}", cluster.logs()));
    assert_eq!(got, load_expected);
    let queued = must(
        &mut monitor,
        &format!(
            "SELECT queued_time_millis >= 3000, array_to_string(resource_group_id, '.') \
             FROM system.runtime.queries WHERE query = '{}'",
            LOAD_QUERY.replace('\'', "''")
        ),
    )
    .await;
    assert_eq!(queued, ["true|capped"]);
}

/// Under the `reserved` policy, a query that needs more than a worker's general pool (and may
/// not spill) goes on in the reserved slice, the same query on both workers (the one the
/// coordinator chose, the largest), and completes; a second such query started beside it
/// does not take the slices from it.
#[tokio::test(flavor = "multi_thread")]
async fn the_reserved_pool_lets_the_clusters_largest_query_finish() {
    let _serial = braid_integration_tests::serial().await;
    let dir = tempfile::tempdir().expect("dir");
    let cluster = start_with_workers(
        dir.path(),
        "query.max-memory-per-node = \"2GB\"",
        &[
            "--memory-limit",
            WORKER_POOL,
            "--memory-pool",
            "reserved",
            "--reserved-pool-size",
            RESERVED_SLICE,
        ],
    )
    .await;
    let expected = plain_rows(DEEP_SORT).await;
    let no_spill = "SET SESSION spill_enabled = false";
    let mut monitor = login(&cluster, "monitor").await;

    let mut first = login(&cluster, "admin").await;
    must(&mut first, no_spill).await;
    let first = tokio::spawn(async move { flight_rows(&mut first, DEEP_SORT).await });
    wait_until_it_holds_memory(&mut monitor, DEEP_SORT, &first).await;
    let first_id = query_id(&mut monitor, DEEP_SORT).await;
    let second_sql = format!("/* second */ {DEEP_SORT}");
    let mut second = login(&cluster, "admin").await;
    must(&mut second, no_spill).await;
    let second = tokio::spawn(async move { flight_rows(&mut second, &second_sql).await });

    let got = first
        .await
        .expect("task")
        .unwrap_or_else(|e| panic!("the first query: {e}\n{}", cluster.logs()));
    assert_eq!(
        got, expected,
        "the first query went on in the reserved slices"
    );
    // The second either found room after the first or failed for memory, never wrongly.
    match second.await.expect("task") {
        Ok(got) => {
            assert_eq!(got, expected);
            eprintln!("the second query found room after the first");
        }
        Err(e) => {
            assert!(e.contains("EXCEEDED_LOCAL_MEMORY_LIMIT"), "{e}");
            eprintln!("the second query failed for memory: {e}");
        }
    }
    // Both workers lent their slice to the first query first.
    for worker in 0..2 {
        let log = std::fs::read_to_string(cluster.dir.path().join(format!("worker-{worker}.log")))
            .expect("worker log");
        // (After the first query, the second may take a freed slice.)
        let lent = log
            .lines()
            .find(|line| line.contains("query continues in the reserved memory pool"));
        assert!(
            lent.is_some_and(|line| line.contains(&first_id)),
            "worker {worker} lent its slice to {first_id} first: {lent:?}"
        );
        eprintln!("worker {worker}: {}", lent.unwrap_or_default());
    }
    let mut cluster = cluster;
    assert!(
        cluster.workers_alive(),
        "no worker died\n{}",
        cluster.logs()
    );
}
