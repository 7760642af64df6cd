//! The ADBC Flight SQL driver (Python packages `adbc-driver-flightsql` and `pyarrow`, installed
//! by `scripts/test.sh` into a virtualenv) against a Braid cluster with passwords, over plain
//! TCP and over TLS with a test certificate. The checks live in `adbc/adbc_client.py`.
//!
//! The interpreter is `$BRAID_PYTHON`, else `~/.cache/braid/venv/bin/python`; a missing one
//! fails the test.

use std::path::Path;
use std::process::Command;

use braid_integration_tests::{Cluster, Secured, python};

const PASSWORD: &str = "adbc-pass";

fn run_script(uri: &str, ca_file: Option<&Path>) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/adbc/adbc_client.py");
    let mut command = Command::new(python());
    command.arg(script).args([uri, "ann", PASSWORD]);
    if let Some(ca) = ca_file {
        command.arg(ca);
    }
    let out = command.output().expect("run the ADBC client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("all ADBC checks passed"),
        "ADBC client failed against {uri}:\n{stdout}\n{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn adbc_driver_over_plain_tcp_with_a_password() {
    let _serial = braid_integration_tests::serial().await;
    let dir = tempfile::tempdir().expect("dir");
    let secured = Secured::new(dir.path(), PASSWORD, false);
    let cluster = Cluster::start_with(2, 1, None, &secured.args, secured.connect).await;
    run_script(&format!("grpc://{}", cluster.flight_sql_addr), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn adbc_driver_over_tls_with_a_test_certificate() {
    let _serial = braid_integration_tests::serial().await;
    let dir = tempfile::tempdir().expect("dir");
    let secured = Secured::new(dir.path(), PASSWORD, true);
    let cert = secured.cert.clone().expect("certificate");
    let cluster = Cluster::start_with(2, 1, None, &secured.args, secured.connect).await;
    // The certificate names localhost: connect by that name, as a client would.
    let port = cluster.flight_sql_addr.rsplit(':').next().expect("port");
    run_script(&format!("grpc+tls://localhost:{port}"), Some(&cert));
}
