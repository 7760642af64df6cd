//! The memory connector, run distributed: CREATE TABLE AS from tpch, INSERT, a join with a tpch
//! table, visibility to a second connection, DROP, and the per-table size limit.

use braid_integration_tests::{Cluster, rows};

#[tokio::test(flavor = "multi_thread")]
async fn memory_tables_are_written_and_read_by_distributed_queries() {
    let _serial = braid_integration_tests::serial().await;
    let catalogs = tempfile::tempdir().expect("catalog dir");
    std::fs::write(
        catalogs.path().join("small.toml"),
        "connector = \"memory\"\nmax_table_bytes = 20000\n",
    )
    .expect("catalog file");
    let cluster = Cluster::start(2, 2, Some(catalogs.path())).await;
    let mut client = cluster.client().await;

    let (_, first) = client
        .query_all("SELECT count(*) FROM tpch.tiny.orders WHERE o_orderkey < 1000")
        .await
        .expect("count in tpch");
    let first: usize = rows(&first)[0].parse().expect("count");
    assert!(first > 100);
    let (_, created) = client
        .query_all("CREATE TABLE memory.default.orders AS SELECT o_orderkey, o_custkey, o_totalprice FROM tpch.tiny.orders WHERE o_orderkey < 1000")
        .await
        .expect("CTAS");
    assert_eq!(rows(&created), vec![first.to_string()]);

    let (_, inserted) = client
        .query_all("INSERT INTO memory.default.orders SELECT o_orderkey, o_custkey, o_totalprice FROM tpch.tiny.orders WHERE o_orderkey BETWEEN 1000 AND 1999")
        .await
        .expect("INSERT");
    let inserted: usize = rows(&inserted)[0].parse().expect("row count");
    assert!(inserted > 0);

    let (_, count) = client
        .query_all("SELECT count(*) FROM memory.default.orders")
        .await
        .expect("count");
    let (_, expected) = client
        .query_all("SELECT count(*) FROM tpch.tiny.orders WHERE o_orderkey < 2000")
        .await
        .expect("count in tpch");
    assert_eq!(rows(&count), rows(&expected));
    assert_eq!(rows(&count), vec![(first + inserted).to_string()]);

    // A join of the memory table with a tpch table, run as a distributed job.
    let join = "SELECT c.c_mktsegment, count(*) AS n, sum(o.o_totalprice) AS total \
                FROM memory.default.orders o JOIN tpch.tiny.customer c ON o.o_custkey = c.c_custkey \
                GROUP BY c.c_mktsegment ORDER BY c.c_mktsegment";
    let same_on_tpch = "SELECT c.c_mktsegment, count(*) AS n, sum(o.o_totalprice) AS total \
                FROM tpch.tiny.orders o JOIN tpch.tiny.customer c ON o.o_custkey = c.c_custkey \
                WHERE o.o_orderkey < 2000 GROUP BY c.c_mktsegment ORDER BY c.c_mktsegment";
    let (_, joined) = client.query_all(join).await.expect("join");
    let (_, expected) = client
        .query_all(same_on_tpch)
        .await
        .expect("same join on tpch");
    assert_eq!(rows(&joined).len(), 5);
    assert_eq!(rows(&joined), rows(&expected));

    // A second connection sees the table.
    let mut other = cluster.client().await;
    let (_, tables) = other
        .query_all("SHOW TABLES FROM memory.default")
        .await
        .expect("SHOW TABLES");
    assert_eq!(rows(&tables), vec!["orders"]);
    let (_, count) = other
        .query_all("SELECT count(*) FROM memory.default.orders")
        .await
        .expect("count");
    assert_eq!(rows(&count), vec![(first + inserted).to_string()]);

    // CREATE TABLE with columns, then INSERT VALUES.
    client
        .query_all("CREATE TABLE memory.default.t (id BIGINT, name VARCHAR)")
        .await
        .expect("CREATE TABLE");
    client
        .query_all("INSERT INTO memory.default.t VALUES (1, 'a'), (2, 'b')")
        .await
        .expect("INSERT VALUES");
    let (_, t) = client
        .query_all("SELECT * FROM memory.default.t ORDER BY id")
        .await
        .expect("read t");
    assert_eq!(rows(&t), vec!["1|a", "2|b"]);
    let err = client
        .query_all("CREATE TABLE memory.default.t (x INT)")
        .await
        .expect_err("exists");
    assert!(err.to_string().contains("already exists"), "{err}");

    // CREATE OR REPLACE: a failing job leaves the old table as it was; a successful one
    // replaces it, columns and all.
    client
        .query_all("CREATE TABLE memory.default.keep AS SELECT n_nationkey FROM tpch.tiny.nation")
        .await
        .expect("CTAS keep");
    let err = client
        .query_all("CREATE OR REPLACE TABLE memory.default.keep AS SELECT CAST(n_name AS INT) AS k FROM tpch.tiny.nation")
        .await
        .expect_err("the cast fails while the job runs");
    assert!(err.to_string().contains("Cannot cast"), "{err}");
    let (_, count) = client
        .query_all("SELECT count(*), sum(n_nationkey) FROM memory.default.keep")
        .await
        .expect("the old table is still there");
    assert_eq!(rows(&count), vec!["25|300"]);
    let (_, replaced) = client
        .query_all(
            "CREATE OR REPLACE TABLE memory.default.keep AS SELECT r_name FROM tpch.tiny.region",
        )
        .await
        .expect("replace");
    assert_eq!(rows(&replaced), vec!["5"]);
    let (_, names) = client
        .query_all("SELECT r_name FROM memory.default.keep ORDER BY r_name LIMIT 1")
        .await
        .expect("the new table");
    assert_eq!(rows(&names), vec!["AFRICA"]);

    // Schema and table names quoted with mixed case and spaces (names with dots: the
    // PostgreSQL test); a quoted literal.
    for statement in [
        "CREATE SCHEMA memory.\"Mixed Case\"",
        "CREATE TABLE memory.\"Mixed Case\".\"Odd Table\" (name VARCHAR)",
        "INSERT INTO memory.\"Mixed Case\".\"Odd Table\" VALUES ('O''Brien')",
    ] {
        client.query_all(statement).await.expect(statement);
    }
    let (_, tables) = client
        .query_all("SHOW TABLES FROM memory.\"Mixed Case\"")
        .await
        .expect("SHOW TABLES of a mixed-case schema");
    assert_eq!(rows(&tables), vec!["Odd Table"]);
    let (_, names) = client
        .query_all("SELECT name FROM memory.\"Mixed Case\".\"Odd Table\" WHERE name = 'O''Brien'")
        .await
        .expect("read the quoted table");
    assert_eq!(rows(&names), vec!["O'Brien"]);
    let err = client
        .query_all("SHOW TABLES FROM memory.\"mixed case\"")
        .await
        .expect_err("names are case-sensitive when quoted");
    assert!(
        err.to_string()
            .contains("Schema 'memory.mixed case' does not exist"),
        "{err}"
    );

    // The size limit: the insert fails, names the limit, and leaves the table as it was.
    client
        .query_all("CREATE TABLE small.default.l (k BIGINT)")
        .await
        .expect("CREATE in small");
    let err = client
        .query_all("INSERT INTO small.default.l SELECT l_orderkey FROM tpch.tiny.lineitem")
        .await
        .expect_err("over the limit");
    assert!(err.to_string().contains("max_table_bytes"), "{err}");
    let (_, count) = client
        .query_all("SELECT count(*) FROM small.default.l")
        .await
        .expect("count");
    assert_eq!(rows(&count), vec!["0"]);

    // DROP TABLE.
    client
        .query_all("DROP TABLE memory.default.orders")
        .await
        .expect("DROP");
    let err = other
        .query_all("SELECT * FROM memory.default.orders")
        .await
        .expect_err("dropped");
    assert!(err.to_string().contains("does not exist"), "{err}");
}
