//! The web UI in headless Chromium (Debian's `chromium` and `chromium-driver`, selenium from
//! PyPI; `scripts/test.sh` installs them), a coordinator and two workers as separate processes
//! (`tests/web_ui/ui_test.py`). Screenshots are left in `<target tmp>/web-ui` to look at.

use std::path::PathBuf;

use braid_integration_tests::{Cluster, python_json, serial};

/// Where the screenshots go.
fn shots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web-ui");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ui_shows_the_cluster_and_a_running_query_and_kills_it() {
    let _serial = serial().await;
    let cluster = Cluster::start(2, 2, None).await;
    let base = format!("http://{}", cluster.http_addr);
    let shots = shots();
    let out = python_json(
        "web_ui/ui_test.py",
        &["overview", &base, &shots.display().to_string()],
    );
    eprintln!("{out:#}");
    let nodes = out["nodes"].as_array().expect("nodes");
    assert_eq!(
        nodes.len(),
        3,
        "the coordinator and both workers: {nodes:?}"
    );
    assert_eq!(
        nodes
            .iter()
            .filter(|n| n.as_str().unwrap_or_default().contains("worker"))
            .count(),
        2
    );
    assert_eq!(out["workers_card"], "2");
    assert!(
        out["listed"][0]
            .as_str()
            .unwrap_or_default()
            .contains("RUNNING\tann\tui-test"),
        "{}",
        out["listed"]
    );
    assert_eq!(out["detail_state"], "RUNNING");
    assert!(!out["stages"].as_array().expect("stages").is_empty());
    assert!(
        out["task_bars"].as_u64().unwrap_or(0) >= 2,
        "{}",
        out["task_bars"]
    );
    // Two workers of two task slots: the running tasks take a lane each.
    assert_eq!(out["overlapping_bars"], 0, "{out}");
    assert!(out["timeline_lanes"].as_u64().unwrap_or(0) >= 2, "{out}");
    assert!(
        out["sql"]
            .as_str()
            .unwrap_or_default()
            .contains("'%zebra%'")
    );
    let plans = out["plans"].to_string();
    assert!(plans.contains("TpchScanExec: table="), "{plans}");
    assert!(
        out["after_kill"]
            .as_str()
            .unwrap_or_default()
            .contains("ADMINISTRATIVELY_KILLED: Query killed. Message: Killed from the web UI"),
        "{}",
        out["after_kill"]
    );
    let stages = out["stages_after_kill"].as_array().expect("stages");
    assert!(
        !stages.is_empty()
            && stages
                .iter()
                .all(|row| !row.as_str().unwrap_or_default().contains("Running")),
        "{stages:?}"
    );

    // A finished query's stages each show the bytes they wrote ("1.2 KB").
    assert_eq!(out["grouped_state"], "FINISHED");
    let stage_bytes = out["grouped_stage_bytes"].as_array().expect("stage bytes");
    assert!(
        stage_bytes.len() >= 2
            && stage_bytes.iter().all(|b| {
                let b = b.as_str().unwrap_or_default();
                b.ends_with('B') && !b.starts_with("0 ")
            }),
        "{stage_bytes:?}"
    );

    // The cluster agrees: the query failed as killed and the workers went idle.
    let id = out["query_id"].as_str().expect("query id");
    assert_eq!(
        cluster.query_outcome(id).await,
        vec!["FAILED|ADMINISTRATIVELY_KILLED".to_string()]
    );
    cluster
        .wait_until_workers_idle("the query was stopped")
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn with_passwords_the_ui_asks_for_one_over_tls() {
    let _serial = serial().await;
    let dir = tempfile::tempdir().expect("dir");
    let secured = braid_integration_tests::Secured::new(dir.path(), "ui-pass", true);
    let cluster = Cluster::start_with(1, 1, None, &secured.args, secured.connect).await;
    let port = cluster.http_addr.rsplit_once(':').expect("host:port").1;
    let base = format!("https://localhost:{port}");
    let out = python_json(
        "web_ui/ui_test.py",
        &["login", &base, &shots().display().to_string(), "ui-pass"],
    );
    eprintln!("{out:#}");
    assert!(
        out["wrong_password"]
            .as_str()
            .unwrap_or_default()
            .contains("wrong user name or password"),
        "{}",
        out["wrong_password"]
    );
    assert_eq!(out["signed_in"], "signed in as ann");
}
