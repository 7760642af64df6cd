//! Authentication and TLS on the Flight SQL port, with separate processes: a password file with
//! bcrypt hashes, Basic handshake → bearer token, tokens that expire, wrong passwords rejected
//! before anything runs, the `braid` client's `--user`/`--password`/`--tls-ca-file`, and a TLS
//! port with a test certificate (memory tables keep working: workers use the internal port).

use std::process::Command;
use std::time::Duration;

use braid_cli::client::{BraidClient, ConnectOptions};
use braid_integration_tests::{
    Cluster, Secured, binary, flight_rows, flight_sql_client as raw_client, rows,
};
use futures::TryStreamExt;

const PASSWORD: &str = "ann's s3cret:pass";

fn braid(args: &[&str], password_env: Option<&str>) -> std::process::Output {
    let mut command = Command::new(binary("braid"));
    command.args(args).env_remove("BRAID_PASSWORD");
    if let Some(password) = password_env {
        command.env("BRAID_PASSWORD", password);
    }
    command.output().expect("run braid")
}

#[tokio::test(flavor = "multi_thread")]
async fn passwords_tokens_and_expiry() {
    let _serial = braid_integration_tests::serial().await;
    let files = tempfile::tempdir().expect("dir");
    let secured = Secured::new(files.path(), PASSWORD, false);
    let mut args = secured.args.clone();
    args.extend(["--token-ttl-seconds".to_string(), "3".into()]);
    let cluster = Cluster::start_with(1, 1, None, &args, secured.connect.clone()).await;
    let addr = cluster.flight_sql_addr.clone();

    // No login: rejected, and the statement does not run.
    let mut anonymous = raw_client(&addr).await;
    let error = flight_rows(
        &mut anonymous,
        "CREATE TABLE memory.default.sneaky AS SELECT 1 AS x",
    )
    .await
    .expect_err("no token");
    assert!(
        error.contains("valid authentication credentials") && error.contains("log in first"),
        "{error}"
    );

    // A wrong password: the handshake fails with Unauthenticated.
    let mut wrong = raw_client(&addr).await;
    let error = wrong
        .handshake("ann", "guess")
        .await
        .expect_err("wrong password");
    assert!(
        error.to_string().contains("wrong user name or password"),
        "{error}"
    );
    let error = wrong
        .handshake("mallory", PASSWORD)
        .await
        .expect_err("unknown user");
    assert!(
        error.to_string().contains("wrong user name or password"),
        "{error}"
    );

    // The right password: a bearer token that works for every later call.
    let mut client = raw_client(&addr).await;
    client.handshake("ann", PASSWORD).await.expect("login");
    assert!(client.token().is_some());
    assert_eq!(
        flight_rows(&mut client, "SHOW TABLES FROM memory.default").await,
        Ok(vec![]),
        "the unauthenticated CREATE TABLE must not have run"
    );
    assert_eq!(
        flight_rows(&mut client, "SELECT count(*) FROM tpch.tiny.nation").await,
        Ok(vec!["25".to_string()])
    );

    // A statement handle belongs to the login that made it: another login of the same user
    // cannot fetch its rows; its owner can, once.
    let info = client
        .execute("SELECT n_name FROM tpch.tiny.nation".into(), None)
        .await
        .expect("plan a statement");
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    let mut other = raw_client(&addr).await;
    other
        .handshake("ann", PASSWORD)
        .await
        .expect("second login");
    let error = match other.do_get(ticket.clone()).await {
        Ok(stream) => stream.try_collect::<Vec<_>>().await.map(|_| ()),
        Err(e) => Err(e),
    }
    .expect_err("another login's handle");
    assert!(
        error.to_string().contains("statement handle is unknown"),
        "{error}"
    );
    let batches: Vec<_> = client
        .do_get(ticket)
        .await
        .expect("the owner fetches")
        .try_collect()
        .await
        .expect("rows");
    assert_eq!(rows(&batches).len(), 25);

    // A forged token is rejected.
    let mut forged = raw_client(&addr).await;
    forged.set_token("0123456789abcdef".into());
    let error = flight_rows(&mut forged, "SELECT 1")
        .await
        .expect_err("forged token");
    assert!(error.contains("unknown session token"), "{error}");

    // An idle token expires.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let error = flight_rows(&mut client, "SELECT 1")
        .await
        .expect_err("expired token");
    assert!(error.contains("expired"), "{error}");
    // A new connection logs in again (arrow-flight's client would send its stale token).
    let mut client = raw_client(&addr).await;
    client
        .handshake("ann", PASSWORD)
        .await
        .expect("log in again");
    assert_eq!(
        flight_rows(&mut client, "SELECT 1").await,
        Ok(vec!["1".to_string()])
    );

    // The braid client logs in with --user and --password or BRAID_PASSWORD.
    let out = braid(
        &[
            "--connect",
            &addr,
            "--user",
            "ann",
            "--password",
            PASSWORD,
            "--format",
            "csv",
            "-c",
            "SELECT 40 + 2 AS answer",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "answer\n42\n");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("warning: a password given with --password"),
        "--password warns that it shows in ps"
    );
    let out = braid(
        &[
            "--connect",
            &addr,
            "--user",
            "ann",
            "--format",
            "csv",
            "-c",
            "SELECT 1 AS one",
        ],
        Some(PASSWORD),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("warning"),
        "BRAID_PASSWORD needs no warning"
    );
    let out = braid(
        &[
            "--connect",
            &addr,
            "--user",
            "ann",
            "--password",
            "nope",
            "-c",
            "SELECT 1",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("login failed") && stderr.contains("wrong user name or password"),
        "{stderr}"
    );
    let out = braid(&["--connect", &addr, "-c", "SELECT 1"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("log in first"));
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_with_a_test_certificate() {
    let _serial = braid_integration_tests::serial().await;
    let files = tempfile::tempdir().expect("dir");
    let secured = Secured::new(files.path(), PASSWORD, true);
    let cert = secured.cert.clone().expect("certificate");
    let cluster = Cluster::start_with(2, 1, None, &secured.args, secured.connect.clone()).await;
    let ann = ConnectOptions {
        tls_ca_file: None,
        ..secured.connect.clone()
    };

    // Memory tables over TLS: the workers fetch rows from the coordinator's internal port.
    let mut client = cluster.client().await;
    let created = client
        .query_all("CREATE TABLE memory.default.n AS SELECT * FROM tpch.tiny.nation")
        .await
        .expect("CTAS over TLS");
    assert_eq!(rows(&created.1), vec!["25"]);
    let (_, joined) = client
        .query_all(
            "SELECT count(*) FROM memory.default.n m JOIN tpch.tiny.region r ON m.n_regionkey = r.r_regionkey",
        )
        .await
        .expect("join over TLS");
    assert_eq!(rows(&joined), vec!["25"]);

    // Plain TCP to the TLS port fails; TLS without trusting the test CA fails.
    assert!(
        BraidClient::connect_with(&cluster.flight_sql_addr, &ann)
            .await
            .is_err()
    );
    let untrusted = ConnectOptions { tls: true, ..ann };
    assert!(
        BraidClient::connect_with(&cluster.flight_sql_addr, &untrusted)
            .await
            .is_err()
    );

    let cert_arg = cert.display().to_string();
    let out = braid(
        &[
            "--connect",
            &cluster.flight_sql_addr,
            "--tls-ca-file",
            &cert_arg,
            "--user",
            "ann",
            "--format",
            "csv",
            "-c",
            "SELECT count(*) AS n FROM memory.default.n",
        ],
        Some(PASSWORD),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "n\n25\n");
}
