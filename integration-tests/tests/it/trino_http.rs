//! Trino's HTTP client protocol on the coordinator, a coordinator and two workers as separate
//! processes.
//!
//! - Trino's own Python client (`trino` on PyPI, with its SQLAlchemy dialect; installed by
//!   `scripts/test.sh`) runs queries, reads every type, pages through 150 000 rows, keeps its
//!   session through `USE` / `SET SESSION`, binds parameters both ways (`EXECUTE IMMEDIATE`
//!   and `PREPARE`/`EXECUTE`/`DEALLOCATE PREPARE`), gets Trino's error names, lists
//!   schemas, tables and columns and runs a bound query through SQLAlchemy, and reads a
//!   query with pandas (`tests/trino/trino_client.py`).
//! - Trino's Python client reads every PostgreSQL type of a `postgres` catalog as the right
//!   Python value (`char(n)` named and padded as Trino does), and its `cursor.cancel()` ends a
//!   running query on the workers
//!   (`tests/trino/trino_pg.py`).
//! - dbt-trino, unchanged, builds a project of a table model, a seed and a view in the `memory`
//!   catalog, runs its tests, and builds it again over the first run (`tests/dbt`).
//! - `X-Trino-Client-Tags` pick the resource group, by the selectors' `clientTags`.
//! - The protocol by hand: a page fetched again is the same page, a skipped token is refused,
//!   and `DELETE` on `nextUri` stops the query on the workers.
//! - With passwords on, the HTTP port refuses every request over plain HTTP; over TLS, Trino's
//!   client logs in with Basic credentials, a wrong password is refused, and a statement's
//!   URIs are its user's alone (`tests/trino/trino_tls.py`).

use std::time::{Duration, Instant};

use braid_integration_tests::{Cluster, dbt, python_json, query, serial};
use serde_json::Value;

/// Runs for minutes on two workers: 600 million generated rows.
const LONG_QUERY: &str =
    "SELECT count(*), sum(l_quantity) FROM tpch.sf100.lineitem WHERE l_comment LIKE '%zebra%'";

#[tokio::test(flavor = "multi_thread")]
async fn trinos_python_client_and_sqlalchemy_work_unchanged() {
    let _serial = serial().await;
    let cluster = Cluster::start(2, 2, None).await;
    let (host, port) = cluster.http_addr.rsplit_once(':').expect("host:port");
    let out = python_json("trino/trino_client.py", &[host, port]);
    eprintln!("{out:#}");

    assert_eq!(
        out["nations"],
        serde_json::json!([
            [1, "ARGENTINA"],
            [2, "BRAZIL"],
            [3, "CANADA"],
            [17, "PERU"],
            [24, "UNITED STATES"]
        ])
    );
    assert_eq!(
        out["nation_columns"],
        serde_json::json!(["n_nationkey", "n_name"])
    );
    for (name, ok) in out["types"].as_object().expect("types") {
        assert_eq!(ok, &Value::Bool(true), "{name} read back wrong: {out:#}");
    }
    assert_eq!(
        out["type_names"][0], "decimal(12,2)",
        "type names: {}",
        out["type_names"]
    );
    assert_eq!(out["paged_rows"], 150_000);
    assert_eq!(
        out["catalog_after_use"],
        serde_json::json!(["memory", "default"])
    );
    assert_eq!(out["insert_rowcount"], 2);
    assert_eq!(
        out["insert_result"],
        serde_json::json!([[2]]),
        "Trino's `rows` column"
    );
    assert_eq!(
        out["session_properties"]["query_max_run_time"], "10.00m",
        "{}",
        out["session_properties"]
    );
    assert_eq!(out["count_with_session"], 2);
    assert_eq!(out["immediate"], serde_json::json!([["O'Brien"]]));
    assert_eq!(out["prepared"], serde_json::json!([["ab"]]));
    assert_eq!(
        out["prepared_left"],
        serde_json::json!({}),
        "DEALLOCATE PREPARE removes the statement from the client"
    );
    let errors = &out["errors"];
    for (case, name, code) in [
        ("table", "TABLE_NOT_FOUND", 46),
        ("schema", "SCHEMA_NOT_FOUND", 45),
        ("catalog", "CATALOG_NOT_FOUND", 44),
        ("column", "COLUMN_NOT_FOUND", 47),
        ("syntax", "SYNTAX_ERROR", 1),
        ("type", "TYPE_MISMATCH", 58),
        ("session", "INVALID_SESSION_PROPERTY", 14),
    ] {
        assert_eq!(errors[case]["name"], name, "{case}: {}", errors[case]);
        assert_eq!(errors[case]["code"], code, "{case}: {}", errors[case]);
        assert_eq!(errors[case]["type"], "USER_ERROR", "{case}");
    }
    assert_eq!(errors["syntax"]["location"], serde_json::json!([1, 1]));
    assert!(
        errors["table"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("memory.default.nope")),
        "{}",
        errors["table"]
    );
    assert!(
        errors["session"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("warp_speed")),
        "{}",
        errors["session"]
    );
    assert_eq!(
        out["listed"],
        serde_json::json!([["FINISHED", "braid-trino-test"]])
    );
    let tables = out["sqlalchemy_tables"].as_array().expect("tables");
    assert!(
        tables.contains(&Value::from("lineitem")) && tables.contains(&Value::from("region")),
        "{tables:?}"
    );
    let schemas = out["sqlalchemy_schemas"].as_array().expect("schemas");
    assert!(
        schemas.contains(&Value::from("tiny")) && schemas.contains(&Value::from("sf1")),
        "{schemas:?}"
    );
    // `get_columns` reads `information_schema.columns` with Trino's type names and comment.
    assert_eq!(
        out["sqlalchemy_columns"],
        serde_json::json!([
            ["n_nationkey", "BIGINT", false],
            ["n_name", "VARCHAR", false],
            ["n_regionkey", "BIGINT", false],
            ["n_comment", "VARCHAR", false]
        ])
    );
    assert_eq!(
        out["sqlalchemy_memory_columns"],
        serde_json::json!([["code", "VARCHAR"], ["Owner Name", "VARCHAR"]])
    );
    assert_eq!(
        out["pandas"],
        serde_json::json!([
            [0, "AFRICA"],
            [1, "AMERICA"],
            [2, "ASIA"],
            [3, "EUROPE"],
            [4, "MIDDLE EAST"]
        ])
    );
    assert_eq!(
        out["sqlalchemy_rows"],
        serde_json::json!([["AFRICA"], ["AMERICA"]])
    );
}

/// One response of the protocol, and the session headers it set.
async fn request(
    http: &reqwest::Client,
    method: reqwest::Method,
    uri: &str,
    body: Option<&str>,
) -> (reqwest::StatusCode, Value) {
    let mut builder = http
        .request(method, uri)
        .header("X-Trino-User", "bob")
        .header("X-Trino-Source", "protocol-test")
        .timeout(Duration::from_secs(30));
    if let Some(sql) = body {
        builder = builder.body(sql.to_string());
    }
    let response = builder
        .send()
        .await
        .unwrap_or_else(|e| panic!("{uri}: {e}"));
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_repeat_on_retry_and_delete_stops_the_query_on_the_workers() {
    let _serial = serial().await;
    let cluster = Cluster::start(2, 2, None).await;
    let http = reqwest::Client::new();
    let statement = format!("http://{}/v1/statement", cluster.http_addr);

    // Paging: every page is the same when asked again; a token ahead of the next is refused.
    let (status, first) = request(
        &http,
        reqwest::Method::POST,
        &statement,
        Some("SELECT n_name FROM tpch.tiny.nation ORDER BY n_name"),
    )
    .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["stats"]["state"], "QUEUED", "{first}");
    let mut next = first["nextUri"].as_str().expect("nextUri").to_string();
    let mut names = Vec::new();
    let mut columns = Value::Null;
    while !next.is_empty() {
        let (_, page) = request(&http, reqwest::Method::GET, &next, None).await;
        let (_, again) = request(&http, reqwest::Method::GET, &next, None).await;
        assert_eq!(page, again, "a page asked for twice");
        if let Some(uri) = page["nextUri"].as_str() {
            let (stem, _) = uri.rsplit_once('/').expect("a token");
            let ahead = format!("{stem}/999");
            let (status, _) = request(&http, reqwest::Method::GET, &ahead, None).await;
            assert_eq!(status, 410, "a token ahead of the next page");
        }
        if page["columns"].is_array() {
            columns = page["columns"].clone();
        }
        for row in page["data"].as_array().into_iter().flatten() {
            names.push(row[0].as_str().expect("a name").to_string());
        }
        assert!(page["error"].is_null(), "{page}");
        next = page["nextUri"].as_str().unwrap_or_default().to_string();
        if next.is_empty() {
            assert_eq!(page["stats"]["state"], "FINISHED", "{page}");
            assert_eq!(page["stats"]["progressPercentage"], 100.0, "{page}");
        }
    }
    assert_eq!(names.len(), 25);
    assert_eq!(names.first().map(String::as_str), Some("ALGERIA"));
    assert_eq!(
        columns,
        serde_json::json!([{"name": "n_name", "type": "varchar",
            "typeSignature": {"rawType": "varchar", "arguments": [{"kind": "LONG", "value": 2147483647}]}}])
    );

    // DELETE on nextUri: the query fails as cancelled and the workers go idle.
    let (_, first) = request(&http, reqwest::Method::POST, &statement, Some(LONG_QUERY)).await;
    let id = first["id"].as_str().expect("id").to_string();
    let mut next = first["nextUri"].as_str().expect("nextUri").to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    // Running on both workers: the stats count its tasks as Trino's splits, the workers as
    // nodes, and the share of completed tasks as the progress.
    let stats = loop {
        let (_, page) = request(&http, reqwest::Method::GET, &next, None).await;
        next = page["nextUri"].as_str().expect("still running").to_string();
        let stats = &page["stats"];
        if stats["state"] == "RUNNING" && stats["nodes"] == 2 {
            break stats.clone();
        }
        assert!(
            Instant::now() < deadline,
            "never RUNNING on both workers: {page}"
        );
    };
    let count = |name: &str| {
        stats[name]
            .as_u64()
            .unwrap_or_else(|| panic!("{name}: {stats}"))
    };
    assert!(count("runningSplits") > 0, "{stats}");
    assert_eq!(
        count("totalSplits"),
        count("queuedSplits") + count("runningSplits") + count("completedSplits"),
        "{stats}"
    );
    let progress = stats["progressPercentage"].as_f64().expect("progress");
    assert!((0.0..100.0).contains(&progress), "{stats}");
    // Running: the workers are busy.
    assert!(cluster.worker_cpu_seconds(Duration::from_millis(500)).await > 0.25);
    let (status, _) = request(&http, reqwest::Method::DELETE, &next, None).await;
    assert_eq!(status, 204);
    let mut client = cluster.client().await;
    let sql = format!(
        "SELECT state, error_code, source FROM system.runtime.queries WHERE query_id = '{id}'"
    );
    assert_eq!(
        query(&mut client, &sql).await,
        vec!["FAILED|USER_CANCELED|protocol-test".to_string()]
    );
    // The workers stop within a few seconds (both would burn 2 CPU-seconds a second).
    cluster
        .wait_until_workers_idle("the query was stopped")
        .await;
    let (_, after) = request(&http, reqwest::Method::GET, &next, None).await;
    assert_eq!(after["error"]["errorName"], "USER_CANCELED", "{after}");
}

/// A statement whose client stops fetching pages is cancelled as `ABANDONED_QUERY` once
/// `--query-client-timeout-seconds` passed (Trino's `query.client.timeout`), on the workers too.
#[tokio::test(flavor = "multi_thread")]
async fn a_statement_whose_client_stops_fetching_is_abandoned() {
    let _serial = serial().await;
    let timeout = ["--query-client-timeout-seconds".to_string(), "3".into()];
    let cluster = Cluster::start_with_workers(2, 2, &timeout, &[]).await;
    let http = reqwest::Client::new();
    let statement = format!("http://{}/v1/statement", cluster.http_addr);
    let (_, first) = request(&http, reqwest::Method::POST, &statement, Some(LONG_QUERY)).await;
    let id = first["id"].as_str().expect("id").to_string();
    let mut next = first["nextUri"].as_str().expect("nextUri").to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, page) = request(&http, reqwest::Method::GET, &next, None).await;
        next = page["nextUri"].as_str().expect("still running").to_string();
        if page["stats"]["state"] == "RUNNING" {
            break;
        }
        assert!(Instant::now() < deadline, "never RUNNING: {page}");
    }
    // The client fetches nothing more.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let state = cluster.query_outcome(&id).await;
        if state == ["FAILED|ABANDONED_QUERY"] {
            break;
        }
        assert_eq!(state, ["RUNNING|"], "before it is abandoned");
        assert!(Instant::now() < deadline, "not abandoned after 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    cluster
        .wait_until_workers_idle("the abandoned query was stopped")
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn with_passwords_on_the_http_port_refuses_every_request() {
    let _serial = serial().await;
    let dir = tempfile::tempdir().expect("dir");
    let secured = braid_integration_tests::Secured::new(dir.path(), "trino-pass", false);
    let cluster = Cluster::start_with(1, 1, None, &secured.args, secured.connect).await;
    let http = reqwest::Client::new();
    let (status, body) = request(
        &http,
        reqwest::Method::POST,
        &format!("http://{}/v1/statement", cluster.http_addr),
        Some("SELECT 1"),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body.as_str().is_some_and(
            |b| b.contains("takes none over plain HTTP") && b.contains("tls_cert_file")
        ),
        "{body}"
    );
    // Nothing ran: the query list is empty but for the one reading it.
    let mut client = cluster.client().await;
    assert_eq!(
        query(&mut client, "SELECT count(*) FROM system.runtime.queries").await,
        vec!["1".to_string()]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn over_tls_trinos_client_logs_in_and_reaches_only_its_own_statements() {
    let _serial = serial().await;
    let dir = tempfile::tempdir().expect("dir");
    let secured = braid_integration_tests::Secured::new(dir.path(), "trino-pass", true);
    let cluster = Cluster::start_with(1, 1, None, &secured.args, secured.connect).await;
    // A second user, added while the coordinator runs: the file is read again.
    let bob = bcrypt::hash("bob-pass", 6).expect("bcrypt");
    let passwords = dir.path().join("password.db");
    let mut text = std::fs::read_to_string(&passwords).expect("password file");
    text.push_str(&format!("bob:{bob}\n"));
    std::fs::write(&passwords, text).expect("password file");

    let (host, port) = cluster.http_addr.rsplit_once(':').expect("host:port");
    let cert = secured.cert.as_ref().expect("a certificate");
    let cert = cert.display().to_string();
    let out = python_json(
        "trino/trino_tls.py",
        &[host, port, &cert, "trino-pass", "bob-pass"],
    );
    eprintln!("{out:#}");
    assert_eq!(out["nations"], 25);
    assert_eq!(out["paged_rows"], 50_000);
    assert_eq!(out["listed_user"], "ann");
    for case in ["wrong_password", "unknown_user"] {
        let refusal = out[case].as_str().unwrap_or_default();
        assert!(
            refusal.contains("401") && refusal.contains("wrong user name or password"),
            "{case}: {refusal}"
        );
    }
    let impersonation = out["impersonation"].as_str().unwrap_or_default();
    assert!(
        impersonation.contains("403") && impersonation.contains("cannot impersonate user bob"),
        "{impersonation}"
    );
    assert_eq!(out["next_uri_scheme"], "https");
    assert_eq!(out["bob_get"], 404, "another user's statement");
    assert_eq!(out["bob_delete"], 404, "another user's statement");
    assert_eq!(out["ann_get"], 200);
}

/// Runs `sql` through the protocol to its end, with `X-Trino-Client-Tags: tags`.
async fn run_tagged(http: &reqwest::Client, statement_uri: &str, sql: &str, tags: &str) {
    let send = |builder: reqwest::RequestBuilder| async move {
        let response = builder
            .header("X-Trino-User", "bob")
            .header("X-Trino-Client-Tags", tags)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        response.json::<Value>().await.expect("JSON")
    };
    let mut page = send(http.post(statement_uri).body(sql.to_string())).await;
    while let Some(next) = page["nextUri"].as_str().map(str::to_string) {
        page = send(http.get(&next)).await;
    }
    assert_eq!(page["stats"]["state"], "FINISHED", "{page}");
}

#[tokio::test(flavor = "multi_thread")]
async fn client_tags_pick_the_resource_group() {
    let _serial = serial().await;
    let dir = tempfile::tempdir().expect("dir");
    let groups = dir.path().join("resource-groups.json");
    std::fs::write(
        &groups,
        r#"{"rootGroups": [{"name": "global", "hardConcurrencyLimit": 10, "maxQueued": 10,
              "subGroups": [{"name": "etl", "hardConcurrencyLimit": 2, "maxQueued": 5},
                            {"name": "adhoc", "hardConcurrencyLimit": 2, "maxQueued": 5}]}],
            "selectors": [{"clientTags": ["etl"], "group": "global.etl"},
                          {"group": "global.adhoc"}]}"#,
    )
    .expect("resource groups file");
    let args = [
        "--resource-groups-file".to_string(),
        groups.display().to_string(),
    ];
    let cluster = Cluster::start_with(1, 1, None, &args, Default::default()).await;
    let http = reqwest::Client::new();
    let statement = format!("http://{}/v1/statement", cluster.http_addr);
    run_tagged(&http, &statement, "SELECT 'tagged'", "nightly, etl").await;
    run_tagged(&http, &statement, "SELECT 'untagged'", "nightly").await;
    let mut client = cluster.client().await;
    assert_eq!(
        query(
            &mut client,
            "SELECT query, array_to_string(resource_group_id, '.') FROM system.runtime.queries \
             WHERE query LIKE 'SELECT ''%tagged''' ORDER BY query"
        )
        .await,
        vec![
            "SELECT 'tagged'|global.etl".to_string(),
            "SELECT 'untagged'|global.adhoc".to_string()
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn trinos_python_client_reads_postgresql_and_cancels_on_the_workers() {
    let _serial = serial().await;
    let pg = crate::postgres::postgres().await;
    pg.batch_execute(
        "DROP SCHEMA IF EXISTS trino_client CASCADE; CREATE SCHEMA trino_client;
         CREATE TABLE trino_client.every_type (id int, amount numeric(12,3), day date,
           at timestamp, at_tz timestamptz, noon time, raw bytea, tags text[], note text,
           ok boolean, ratio double precision, small smallint, big bigint, code char(5));
         INSERT INTO trino_client.every_type VALUES (1, 1234.567, '2024-02-29',
           '2024-02-29 12:34:56.789012', '2024-02-29 12:34:56.5+00', '12:00:01.25', '\\x00ff',
           ARRAY['a', 'O''Brien'], 'O''Brien', true, 0.25, -3, 9007199254740993, 'AB');",
    )
    .await
    .expect("test table");
    let dir = tempfile::tempdir().expect("catalog dir");
    crate::postgres::write_catalogs(dir.path(), "");
    let cluster = Cluster::start(2, 2, Some(dir.path())).await;
    let (host, port) = cluster.http_addr.rsplit_once(':').expect("host:port");
    let out = python_json("trino/trino_pg.py", &[host, port]);
    eprintln!("{out:#}");
    for (name, ok) in out["pg_types"].as_object().expect("types") {
        assert_eq!(ok, &Value::Bool(true), "{name} read back wrong: {out:#}");
    }
    assert_eq!(out["pg_type_names"][1], "decimal(12,3)");
    assert_eq!(out["pg_type_names"][7], "array(varchar)");
    // char(n) as Trino has it: named char(5), padded, compared and grouped without the padding.
    assert_eq!(out["pg_type_names"][13], "char(5)");
    assert_eq!(out["char_grouped"], serde_json::json!([["AB   ", 1]]));
    assert_eq!(out["char_shown"], serde_json::json!(["char(5)"]));
    assert_eq!(
        out["char_information_schema"],
        serde_json::json!([["char(5)"]])
    );

    // cursor.cancel(): the client's thread returned, the query failed as cancelled, and the
    // workers went idle.
    assert_eq!(out["cancel_returned"], true, "{out:#}");
    let id = out["cancelled"].as_str().expect("query id");
    assert_eq!(
        cluster.query_outcome(id).await,
        vec!["FAILED|USER_CANCELED".to_string()]
    );
    cluster
        .wait_until_workers_idle("the query was stopped")
        .await;
}

/// `dbt build` of `tests/dbt` (a copy: dbt writes into the project) against `cluster`; what it
/// printed.
fn dbt_build(cluster: &Cluster, project: &std::path::Path) -> String {
    let (_, port) = cluster.http_addr.rsplit_once(':').expect("host:port");
    let out = std::process::Command::new(dbt())
        .args(["build", "--no-use-colors", "--profiles-dir"])
        .arg(project)
        .arg("--project-dir")
        .arg(project)
        .env("BRAID_TRINO_PORT", port)
        .env("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        .current_dir(project)
        .output()
        .expect("run dbt");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "dbt build failed:\n{printed}");
    printed
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dbt_trino_builds_a_project_and_builds_it_again() {
    let _serial = serial().await;
    let cluster = Cluster::start(2, 2, None).await;
    let project = tempfile::tempdir().expect("project dir");
    copy_dir(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dbt"),
        project.path(),
    );
    // The second run finds every relation: the table model is built aside and renamed into
    // place, the view replaced, the seed dropped and loaded again.
    for run in 1..=2 {
        let printed = dbt_build(&cluster, project.path());
        eprintln!("dbt build, run {run}:\n{printed}");
        assert!(
            printed.contains("PASS=6 WARN=0 ERROR=0 SKIP=0 TOTAL=6"),
            "run {run}:\n{printed}"
        );
    }
    let mut client = cluster.client().await;
    assert_eq!(
        query(
            &mut client,
            "SELECT region_key, nations, owner FROM memory.analytics.region_owners \
             ORDER BY region_key"
        )
        .await,
        ["0|5|O'Brien", "1|5|Zoë", "2|5|", "3|5|", "4|5|"]
    );
    // No relation of dbt's own is left behind (`__dbt_tmp`, `__dbt_backup`).
    assert_eq!(
        query(
            &mut client,
            "SELECT table_name, table_type FROM memory.information_schema.tables \
             WHERE table_schema = 'analytics' ORDER BY table_name"
        )
        .await,
        [
            "nation_counts|BASE TABLE",
            "owners|BASE TABLE",
            "region_owners|VIEW"
        ]
    );
}
