//! A cluster laid out as on several machines: every daemon listens on all interfaces
//! (`--bind-host 0.0.0.0`) and advertises a non-loopback-default address (`--external-host
//! 127.0.0.2`) that the others and the clients use. Workers register, shuffle to each other,
//! fetch memory-table rows from the coordinator's internal port, and a client reaches the
//! coordinator on another address of the machine.

use braid_cli::client::BraidClient;
use braid_integration_tests::{Cluster, plain_rows, rows};

#[tokio::test(flavor = "multi_thread")]
async fn daemons_bind_all_interfaces_and_advertise_their_address() {
    let _serial = braid_integration_tests::serial().await;
    let cluster = Cluster::start_advertised(2, 2, "127.0.0.2").await;
    assert!(cluster.flight_sql_addr.starts_with("127.0.0.2:"));
    let mut client = cluster.client().await;

    // A distributed join and aggregate: stages shuffle between the workers' advertised
    // addresses (distributed, however small the tables).
    client
        .query_all("SET SESSION single_task_max_input_rows = 0")
        .await
        .expect("SET SESSION");
    let sql = "SELECT r_name, count(*) FROM tpch.tiny.customer JOIN tpch.tiny.nation \
               ON c_nationkey = n_nationkey JOIN tpch.tiny.region ON n_regionkey = r_regionkey \
               GROUP BY r_name ORDER BY r_name";
    let (_, joined) = client.query_all(sql).await.expect("distributed join");
    let expected = plain_rows(sql).await;
    assert_eq!(rows(&joined).len(), 5);
    assert_eq!(rows(&joined), expected);

    // Memory tables: workers fetch rows from the internal port at the advertised address.
    client
        .query_all("CREATE TABLE memory.default.n AS SELECT * FROM tpch.tiny.nation")
        .await
        .expect("CTAS");
    let (_, count) = client
        .query_all("SELECT count(*) FROM memory.default.n JOIN tpch.tiny.region ON n_regionkey = r_regionkey")
        .await
        .expect("memory table join");
    assert_eq!(rows(&count), vec!["25"]);

    // Bound to every interface: the coordinator answers on another loopback address too.
    let port = cluster.flight_sql_addr.rsplit(':').next().expect("port");
    let mut elsewhere = BraidClient::connect(&format!("127.0.0.3:{port}"))
        .await
        .expect("the Flight SQL port listens on all interfaces");
    let (_, one) = elsewhere.query_all("SELECT 1").await.expect("query");
    assert_eq!(rows(&one), vec!["1"]);
}
