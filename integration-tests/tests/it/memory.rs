//! The memory connector, run distributed: CREATE TABLE AS from tpch, INSERT, a join with a tpch
//! table, visibility to a second connection, DROP, and the per-table size limit; views (Trino's
//! `SECURITY` clause, `OR REPLACE`, `DROP VIEW`) and `ALTER TABLE|VIEW ... RENAME TO`, with the
//! errors for what a catalog cannot do.

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

/// The rows of `sql`, or its error's text.
async fn run(
    client: &mut braid_cli::client::BraidClient,
    sql: &str,
) -> Result<Vec<String>, String> {
    match client.query_all(sql).await {
        Ok((_, batches)) => Ok(rows(&batches)),
        Err(e) => Err(e.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_views_and_renames_work_as_in_trino() {
    let _serial = braid_integration_tests::serial().await;
    let cluster = Cluster::start(1, 2, None).await;
    let mut client = cluster.client().await;
    for sql in [
        "CREATE SCHEMA memory.\"Sales Dept\"",
        "CREATE TABLE memory.\"Sales Dept\".\"Orders.2024\" AS \
         SELECT o_orderkey AS \"Key\", 'O''Brien' AS clerk FROM tpch.tiny.orders \
         WHERE o_orderkey < 10",
        // Trino's SECURITY clause, as dbt-trino writes it; the view joins a tpch table.
        "CREATE VIEW memory.\"Sales Dept\".\"Big View\" SECURITY DEFINER AS \
         SELECT o.\"Key\", o.clerk, t.o_orderstatus FROM memory.\"Sales Dept\".\"Orders.2024\" o \
         JOIN tpch.tiny.orders t ON t.o_orderkey = o.\"Key\"",
    ] {
        run(&mut client, sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let view = "SELECT count(*), min(clerk) FROM memory.\"Sales Dept\".\"Big View\"";
    assert_eq!(run(&mut client, view).await.expect("view"), ["7|O'Brien"]);
    assert_eq!(
        run(
            &mut client,
            "SELECT table_name, table_type FROM memory.information_schema.tables \
             WHERE table_schema = 'Sales Dept' ORDER BY table_name"
        )
        .await
        .expect("tables"),
        ["Big View|VIEW", "Orders.2024|BASE TABLE"]
    );

    // What is refused, and why.
    for (sql, expected) in [
        (
            "CREATE VIEW memory.\"Sales Dept\".\"Big View\" AS SELECT 1 AS x",
            "already exists",
        ),
        (
            "CREATE OR REPLACE VIEW memory.\"Sales Dept\".\"Orders.2024\" AS SELECT 1 AS x",
            "is a table, not a view",
        ),
        (
            "DROP TABLE memory.\"Sales Dept\".\"Big View\"",
            "is a view, not a table: use DROP VIEW",
        ),
        (
            "CREATE VIEW tpch.tiny.v AS SELECT 1 AS x",
            "Catalog 'tpch' does not keep views",
        ),
        (
            "ALTER TABLE memory.\"Sales Dept\".\"Big View\" RENAME TO v2",
            "is a view, not a table: use ALTER VIEW",
        ),
        (
            "ALTER TABLE memory.\"Sales Dept\".\"Orders.2024\" RENAME TO tpch.tiny.x",
            "Table rename across catalogs is not supported",
        ),
        (
            "ALTER TABLE tpch.tiny.nation RENAME TO n2",
            "Catalog 'tpch' (tpch connector) does not support renaming tables",
        ),
        (
            "ALTER TABLE memory.\"Sales Dept\".nope RENAME TO n2",
            "Table 'memory.Sales Dept.nope' does not exist",
        ),
    ] {
        let error = run(&mut client, sql).await.expect_err(sql);
        assert!(error.contains(expected), "{sql}: {error}");
    }
    run(
        &mut client,
        "ALTER TABLE IF EXISTS memory.\"Sales Dept\".nope RENAME TO n2",
    )
    .await
    .expect("IF EXISTS: nothing to do");

    // A table renamed into another schema keeps its rows; the view read it under its old
    // name, so it says what happened until it is replaced.
    run(
        &mut client,
        "ALTER TABLE memory.\"Sales Dept\".\"Orders.2024\" RENAME TO memory.default.\"Moved Orders\"",
    )
    .await
    .expect("rename");
    assert_eq!(
        run(
            &mut client,
            "SELECT count(*) FROM memory.default.\"Moved Orders\""
        )
        .await
        .expect("renamed table"),
        ["7"]
    );
    let stale = run(&mut client, view)
        .await
        .expect_err("the view's table moved");
    assert!(
        stale.contains("was dropped, renamed or replaced"),
        "{stale}"
    );
    for sql in [
        "CREATE OR REPLACE VIEW memory.\"Sales Dept\".\"Big View\" SECURITY INVOKER AS \
         SELECT \"Key\", clerk FROM memory.default.\"Moved Orders\"",
        "ALTER VIEW memory.\"Sales Dept\".\"Big View\" RENAME TO \"Renamed View\"",
    ] {
        run(&mut client, sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    assert_eq!(
        run(
            &mut client,
            "SELECT count(*), max(clerk) FROM memory.\"Sales Dept\".\"Renamed View\""
        )
        .await
        .expect("renamed view"),
        ["7|O'Brien"]
    );
    run(
        &mut client,
        "DROP VIEW memory.\"Sales Dept\".\"Renamed View\"",
    )
    .await
    .expect("drop view");
    run(&mut client, "DROP SCHEMA memory.\"Sales Dept\"")
        .await
        .expect("the schema is empty again");
}
