//! The `postgres` connector against a real PostgreSQL server (started by `scripts/services.sh`,
//! found through `BRAID_PG_*`; a missing server fails the tests), on a coordinator and two
//! workers:
//!
//! - TPC-H `tiny` loaded into PostgreSQL; all 22 queries over the catalog return what
//!   PostgreSQL itself returns, with pushdown on (`pg`) and off (`pg_raw`);
//! - a join of a PostgreSQL table with `tpch` and `memory` tables under a filter on the
//!   PostgreSQL side (the filter-loss trap in docs/architecture.md);
//! - a selective filter transfers only the matching rows (`rows_transferred` in EXPLAIN
//!   ANALYZE), and EXPLAIN shows the SQL sent;
//! - names with mixed case, spaces and quotes, literals with quotes and backslashes;
//! - type mapping; split reads by key and by ctid equal one read; faults name the catalog.

use std::path::Path;
use std::time::Duration;

use braid_connector_tpch::queries::QUERIES;
use braid_integration_tests::{Cluster, rows};
use futures::SinkExt;
use tokio_postgres::{Client, NoTls};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start PostgreSQL with scripts/services.sh start and source its env file (scripts/test.sh does both)")
    })
}

pub(crate) async fn postgres() -> Client {
    postgres_on(&env("BRAID_PG_DATABASE")).await
}

async fn postgres_on(database: &str) -> Client {
    let config = format!(
        "host={} port={} user={} password={} dbname={database}",
        env("BRAID_PG_HOST"),
        env("BRAID_PG_PORT"),
        env("BRAID_PG_USER"),
        env("BRAID_PG_PASSWORD"),
    );
    let (client, connection) = tokio_postgres::connect(&config, NoTls)
        .await
        .expect("connect to the test PostgreSQL");
    tokio::spawn(connection);
    client
}

/// The TPC-H tables with every text column `varchar`.
const TPCH_DDL: &[(&str, &str)] = &[
    (
        "region",
        "r_regionkey bigint PRIMARY KEY, r_name varchar(25) NOT NULL, r_comment varchar(152) NOT NULL",
    ),
    (
        "nation",
        "n_nationkey bigint PRIMARY KEY, n_name varchar(25) NOT NULL, n_regionkey bigint NOT NULL, n_comment varchar(152) NOT NULL",
    ),
    (
        "part",
        "p_partkey bigint PRIMARY KEY, p_name varchar(55) NOT NULL, p_mfgr varchar(25) NOT NULL, p_brand varchar(10) NOT NULL, p_type varchar(25) NOT NULL, p_size integer NOT NULL, p_container varchar(10) NOT NULL, p_retailprice numeric(15,2) NOT NULL, p_comment varchar(23) NOT NULL",
    ),
    (
        "supplier",
        "s_suppkey bigint PRIMARY KEY, s_name varchar(25) NOT NULL, s_address varchar(40) NOT NULL, s_nationkey bigint NOT NULL, s_phone varchar(15) NOT NULL, s_acctbal numeric(15,2) NOT NULL, s_comment varchar(101) NOT NULL",
    ),
    (
        "partsupp",
        "ps_partkey bigint NOT NULL, ps_suppkey bigint NOT NULL, ps_availqty integer NOT NULL, ps_supplycost numeric(15,2) NOT NULL, ps_comment varchar(199) NOT NULL, PRIMARY KEY (ps_partkey, ps_suppkey)",
    ),
    (
        "customer",
        "c_custkey bigint PRIMARY KEY, c_name varchar(25) NOT NULL, c_address varchar(40) NOT NULL, c_nationkey bigint NOT NULL, c_phone varchar(15) NOT NULL, c_acctbal numeric(15,2) NOT NULL, c_mktsegment varchar(10) NOT NULL, c_comment varchar(117) NOT NULL",
    ),
    (
        "orders",
        "o_orderkey bigint PRIMARY KEY, o_custkey bigint NOT NULL, o_orderstatus varchar(1) NOT NULL, o_totalprice numeric(15,2) NOT NULL, o_orderdate date NOT NULL, o_orderpriority varchar(15) NOT NULL, o_clerk varchar(15) NOT NULL, o_shippriority integer NOT NULL, o_comment varchar(79) NOT NULL",
    ),
    (
        "lineitem",
        "l_orderkey bigint NOT NULL, l_partkey bigint NOT NULL, l_suppkey bigint NOT NULL, l_linenumber integer NOT NULL, l_quantity numeric(15,2) NOT NULL, l_extendedprice numeric(15,2) NOT NULL, l_discount numeric(15,2) NOT NULL, l_tax numeric(15,2) NOT NULL, l_returnflag varchar(1) NOT NULL, l_linestatus varchar(1) NOT NULL, l_shipdate date NOT NULL, l_commitdate date NOT NULL, l_receiptdate date NOT NULL, l_shipinstruct varchar(25) NOT NULL, l_shipmode varchar(10) NOT NULL, l_comment varchar(44) NOT NULL, PRIMARY KEY (l_orderkey, l_linenumber)",
    ),
];

/// The TPC-H tables as the specification's DDL (dbgen's `dss.ddl`) declares them: `integer`
/// keys, `CHAR(n)` for names, flags, priorities, segments and phones.
const TPCH_OFFICIAL_DDL: &[(&str, &str)] = &[
    (
        "region",
        "r_regionkey integer NOT NULL, r_name char(25) NOT NULL, r_comment varchar(152)",
    ),
    (
        "nation",
        "n_nationkey integer NOT NULL, n_name char(25) NOT NULL, n_regionkey integer NOT NULL, n_comment varchar(152)",
    ),
    (
        "part",
        "p_partkey integer NOT NULL, p_name varchar(55) NOT NULL, p_mfgr char(25) NOT NULL, p_brand char(10) NOT NULL, p_type varchar(25) NOT NULL, p_size integer NOT NULL, p_container char(10) NOT NULL, p_retailprice decimal(15,2) NOT NULL, p_comment varchar(23) NOT NULL",
    ),
    (
        "supplier",
        "s_suppkey integer NOT NULL, s_name char(25) NOT NULL, s_address varchar(40) NOT NULL, s_nationkey integer NOT NULL, s_phone char(15) NOT NULL, s_acctbal decimal(15,2) NOT NULL, s_comment varchar(101) NOT NULL",
    ),
    (
        "partsupp",
        "ps_partkey integer NOT NULL, ps_suppkey integer NOT NULL, ps_availqty integer NOT NULL, ps_supplycost decimal(15,2) NOT NULL, ps_comment varchar(199) NOT NULL",
    ),
    (
        "customer",
        "c_custkey integer NOT NULL, c_name varchar(25) NOT NULL, c_address varchar(40) NOT NULL, c_nationkey integer NOT NULL, c_phone char(15) NOT NULL, c_acctbal decimal(15,2) NOT NULL, c_mktsegment char(10) NOT NULL, c_comment varchar(117) NOT NULL",
    ),
    (
        "orders",
        "o_orderkey integer NOT NULL, o_custkey integer NOT NULL, o_orderstatus char(1) NOT NULL, o_totalprice decimal(15,2) NOT NULL, o_orderdate date NOT NULL, o_orderpriority char(15) NOT NULL, o_clerk char(15) NOT NULL, o_shippriority integer NOT NULL, o_comment varchar(79) NOT NULL",
    ),
    (
        "lineitem",
        "l_orderkey integer NOT NULL, l_partkey integer NOT NULL, l_suppkey integer NOT NULL, l_linenumber integer NOT NULL, l_quantity decimal(15,2) NOT NULL, l_extendedprice decimal(15,2) NOT NULL, l_discount decimal(15,2) NOT NULL, l_tax decimal(15,2) NOT NULL, l_returnflag char(1) NOT NULL, l_linestatus char(1) NOT NULL, l_shipdate date NOT NULL, l_commitdate date NOT NULL, l_receiptdate date NOT NULL, l_shipinstruct char(25) NOT NULL, l_shipmode char(10) NOT NULL, l_comment varchar(44) NOT NULL",
    ),
];

/// TPC-H rows of one table at `scale`, as tpchgen's `|`-separated lines.
fn tpch_lines(table: &str, scale: f64) -> Vec<String> {
    use tpchgen::generators::*;
    let lines: Vec<String> = match table {
        "region" => RegionGenerator::new(scale, 1, 1)
            .iter()
            .map(|r| r.to_string())
            .collect(),
        "nation" => NationGenerator::new(scale, 1, 1)
            .iter()
            .map(|r| r.to_string())
            .collect(),
        "part" => PartGenerator::new(scale, 1, 1)
            .iter()
            .map(|r| r.to_string())
            .collect(),
        "supplier" => SupplierGenerator::new(scale, 1, 1)
            .iter()
            .map(|r| r.to_string())
            .collect(),
        "partsupp" => PartSuppGenerator::new(scale, 1, 1)
            .iter()
            .map(|r| r.to_string())
            .collect(),
        "customer" => CustomerGenerator::new(scale, 1, 1)
            .iter()
            .map(|r| r.to_string())
            .collect(),
        "orders" => OrderGenerator::new(scale, 1, 1)
            .iter()
            .map(|r| r.to_string())
            .collect(),
        "lineitem" => LineItemGenerator::new(scale, 1, 1)
            .iter()
            .map(|r| r.to_string())
            .collect(),
        other => panic!("no TPC-H table {other}"),
    };
    lines
        .into_iter()
        .map(|l| l.strip_suffix('|').unwrap_or(&l).to_string())
        .collect()
}

/// Creates schema `schema` with the TPC-H tables of `ddl` at `scale` (dropping what was there).
async fn load_tpch(pg: &Client, schema: &str, scale: f64, ddl: &[(&str, &str)]) {
    pg.batch_execute(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
    ))
    .await
    .expect("schema");
    for (table, columns) in ddl {
        pg.batch_execute(&format!("CREATE TABLE {schema}.{table} ({columns})"))
            .await
            .expect("create table");
        let sink = pg
            .copy_in(&format!(
                "COPY {schema}.{table} FROM STDIN (FORMAT text, DELIMITER '|')"
            ))
            .await
            .expect("copy in");
        let mut sink = std::pin::pin!(sink);
        let mut chunk = String::new();
        for line in tpch_lines(table, scale) {
            chunk.push_str(&line);
            chunk.push('\n');
            if chunk.len() > 1 << 20 {
                sink.send(bytes::Bytes::from(std::mem::take(&mut chunk)))
                    .await
                    .expect("copy");
            }
        }
        sink.send(bytes::Bytes::from(chunk)).await.expect("copy");
        sink.as_mut().finish().await.expect("copy finish");
    }
    pg.batch_execute("ANALYZE").await.expect("analyze");
}

/// Catalog files `pg` (pushdown on) and `pg_raw` (off) for the test server's database `braid`,
/// reading the password from the environment.
pub(crate) fn write_catalogs(dir: &Path, extra: &str) {
    write_catalogs_for(dir, "", &env("BRAID_PG_DATABASE"), extra);
}

/// Catalog files `pg{suffix}` (pushdown on) and `pg{suffix}_raw` (off) for `database`.
fn write_catalogs_for(dir: &Path, suffix: &str, database: &str, extra: &str) {
    for (name, pushdown) in [
        (format!("pg{suffix}"), true),
        (format!("pg{suffix}_raw"), false),
    ] {
        std::fs::write(
            dir.join(format!("{name}.toml")),
            format!(
                "connector = \"postgres\"\nhost = \"{}\"\nport = {}\ndatabase = \"{database}\"\nuser = \"{}\"\n\
                 password = \"${{ENV:BRAID_PG_PASSWORD}}\"\npushdown = {pushdown}\nmin_rows_per_split = 1000\n{extra}",
                env("BRAID_PG_HOST"),
                env("BRAID_PG_PORT"),
                env("BRAID_PG_USER"),
            ),
        )
        .expect("catalog file");
    }
}

/// Rows of PostgreSQL's own answer, as text.
async fn postgres_rows(pg: &Client, sql: &str) -> Vec<String> {
    let messages = pg
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL: {e}\n{sql}"));
    messages
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).unwrap_or("").to_string())
                    .collect::<Vec<_>>()
                    .join("|"),
            ),
            _ => None,
        })
        .collect()
}

/// Two cells agree: equal text; decimals of the same scale compare exactly. Where the engines
/// give an average or a quotient different scales (DataFusion: 6 decimals, truncated;
/// PostgreSQL: 16 or more), the longer is rounded to the shorter scale and may differ by one
/// unit in its last place.
fn same_cell(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let parse = |s: &str| -> Option<(i128, u32)> {
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        let digits: String = format!("{int}{frac}");
        Some((digits.parse().ok()?, frac.len() as u32))
    };
    let (Some((x, sx)), Some((y, sy))) = (parse(a), parse(b)) else {
        return false;
    };
    let scale = sx.min(sy);
    let round = |v: i128, s: u32| {
        let d = 10i128.pow(s - scale);
        let (q, r) = (v / d, v % d);
        q + if r.abs() * 2 >= d { r.signum() } else { 0 }
    };
    (round(x, sx) - round(y, sy)).abs() <= i128::from(sx != sy)
}

fn same_rows(mut braid: Vec<String>, mut postgres: Vec<String>) -> Result<(), String> {
    braid.sort();
    postgres.sort();
    if braid.len() != postgres.len() {
        return Err(format!("{} rows vs {} rows", braid.len(), postgres.len()));
    }
    for (a, b) in braid.iter().zip(&postgres) {
        let (ca, cb): (Vec<_>, Vec<_>) = (a.split('|').collect(), b.split('|').collect());
        if ca.len() != cb.len() || ca.iter().zip(&cb).any(|(x, y)| !same_cell(x, y)) {
            return Err(format!("Braid: {a}\nPostgreSQL: {b}"));
        }
    }
    Ok(())
}

#[test]
fn decimal_cells_compare_at_the_smaller_scale() {
    assert!(same_cell("12.50", "12.50"));
    assert!(same_cell("0.123457", "0.12345678901234567890"));
    assert!(same_cell("25.575154", "25.5751546114546921"));
    assert!(!same_cell("25.575152", "25.5751546114546921"));
    assert!(!same_cell("25.57", "25.58"));
    assert!(!same_cell("12.50", "12.51"));
    assert!(!same_cell("ABC", "ABD"));
}

/// Runs the 22 TPC-H queries over `catalog.tpch` and compares each with PostgreSQL's own answer
/// on `pg`. `char(n)` values PostgreSQL prints padded; their padding is insignificant (Braid
/// strips it on read), so cells are compared without trailing spaces.
async fn tpch_differential(
    client: &mut braid_cli::client::BraidClient,
    cluster: &Cluster,
    pg: &Client,
    catalog: &str,
) {
    client
        .query_all(&format!("USE {catalog}.tpch"))
        .await
        .expect("USE");
    for (i, sql) in QUERIES.iter().enumerate() {
        let q = i + 1;
        let (_, braid) = client
            .query_all(sql)
            .await
            .unwrap_or_else(|e| panic!("Q{q} on {catalog} failed: {e}\n{}", cluster.logs()));
        let expected = postgres_rows(pg, &format!("SET search_path = tpch; {sql}")).await;
        assert!(!expected.is_empty(), "Q{q}: PostgreSQL returned no rows");
        let unpadded = |rows: Vec<String>| -> Vec<String> {
            rows.iter()
                .map(|r| {
                    r.split('|')
                        .map(str::trim_end)
                        .collect::<Vec<_>>()
                        .join("|")
                })
                .collect()
        };
        if let Err(diff) = same_rows(unpadded(rows(&braid)), unpadded(expected)) {
            panic!("Q{q} on {catalog}: Braid and PostgreSQL differ: {diff}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tpch_queries_over_postgres_match_postgres_itself() {
    let _serial = braid_integration_tests::serial().await;
    // Database `braid` (collation C) with varchar columns; database `braid_en` (collation
    // en_US.UTF-8) with the specification's DDL: char(n) columns, integer keys.
    let pg = postgres().await;
    load_tpch(&pg, "tpch", 0.01, TPCH_DDL).await;
    let pg_en = postgres_on(&env("BRAID_PG_DATABASE_EN")).await;
    load_tpch(&pg_en, "tpch", 0.01, TPCH_OFFICIAL_DDL).await;
    let catalogs = tempfile::tempdir().expect("dir");
    write_catalogs(catalogs.path(), "schemas = [\"tpch\"]\n");
    write_catalogs_for(
        catalogs.path(),
        "_en",
        &env("BRAID_PG_DATABASE_EN"),
        "schemas = [\"tpch\"]\n",
    );
    let cluster = Cluster::start(2, 2, Some(catalogs.path())).await;
    let mut client = cluster.client().await;

    for catalog in ["pg", "pg_raw"] {
        tpch_differential(&mut client, &cluster, &pg, catalog).await;
    }
    for catalog in ["pg_en", "pg_en_raw"] {
        tpch_differential(&mut client, &cluster, &pg_en, catalog).await;
    }

    // The same queries on the built-in tpch catalog give the same answers too (same data).
    let (_, on_pg) = client
        .query_all("SELECT count(*), sum(l_extendedprice) FROM pg.tpch.lineitem")
        .await
        .expect("pg");
    let (_, on_tpch) = client
        .query_all("SELECT count(*), sum(l_extendedprice) FROM tpch.tiny.lineitem")
        .await
        .expect("tpch");
    assert_eq!(rows(&on_pg), rows(&on_tpch));

    // Two postgres catalogs on two databases in one query; char(25) names equal varchar and
    // tpch names once read.
    for sql in [
        "SELECT count(*) FROM pg.tpch.nation a JOIN pg_en.tpch.nation b ON a.n_name = b.n_name",
        "SELECT count(*) FROM pg_en.tpch.nation n JOIN tpch.tiny.nation t ON n.n_name = t.n_name",
        "SELECT count(*) FROM pg_en_raw.tpch.nation WHERE length(n_name) = 6",
    ] {
        let (_, joined) = client.query_all(sql).await.expect(sql);
        // FRANCE, BRAZIL, CANADA, JORDAN, RUSSIA: char(25) values read without padding.
        let expected = if sql.contains("length") { "5" } else { "25" };
        assert_eq!(rows(&joined), vec![expected], "{sql}");
    }

    // Under en_US.UTF-8 PostgreSQL orders text unlike Braid: ranges, sorts and min/max on
    // text stay in Braid, equality goes to PostgreSQL.
    for (sql, pushed) in [
        (
            "SELECT n_nationkey FROM pg_en.tpch.nation WHERE n_name = 'FRANCE'",
            true,
        ),
        (
            "SELECT n_nationkey FROM pg_en.tpch.nation WHERE n_name < 'FRANCE'",
            false,
        ),
        (
            "SELECT n_nationkey FROM pg.tpch.nation WHERE n_name < 'FRANCE'",
            true,
        ),
    ] {
        let (_, plan) = client
            .query_all(&format!("EXPLAIN {sql}"))
            .await
            .expect("EXPLAIN");
        let plan = rows(&plan).join("\n");
        assert_eq!(plan.contains("(\"n_name\" "), pushed, "{sql}: {plan}");
    }
    for (sql, expected) in [
        (
            "SELECT min(n_name), max(n_name) FROM pg_en.tpch.nation WHERE n_comment LIKE '%'",
            "ALGERIA|VIETNAM",
        ),
        (
            "SELECT r_name FROM pg_en.tpch.region ORDER BY r_name DESC LIMIT 1",
            "MIDDLE EAST",
        ),
        (
            "SELECT count(*) FROM pg_en.tpch.nation WHERE n_name BETWEEN 'A' AND 'C'",
            "3",
        ),
    ] {
        let (_, braid) = client.query_all(sql).await.expect(sql);
        assert_eq!(rows(&braid), vec![expected], "{sql}");
    }
    // A case PostgreSQL answers differently: 'a' < 'B' under en_US, not in byte order.
    let (_, braid) = client
        .query_all("SELECT count(*) FROM pg_en.tpch.nation WHERE lower(n_name) < 'B'")
        .await
        .expect("lower-case range");
    assert_eq!(
        rows(&braid),
        vec!["0"],
        "Braid compares bytes: 'algeria' > 'B'"
    );
    let in_postgres = postgres_rows(
        &pg_en,
        "SELECT count(*) FROM tpch.nation WHERE lower(n_name) < 'B'",
    )
    .await;
    assert_eq!(
        in_postgres,
        vec!["2"],
        "en_US puts 'algeria' and 'argentina' before 'B'"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pushdown_is_real_and_filters_above_postgres_are_kept() {
    let _serial = braid_integration_tests::serial().await;
    let pg = postgres().await;
    load_tpch(&pg, "tpch", 0.01, TPCH_DDL).await;
    let catalogs = tempfile::tempdir().expect("dir");
    write_catalogs(catalogs.path(), "schemas = [\"tpch\"]\n");
    let cluster = Cluster::start(2, 2, Some(catalogs.path())).await;
    let mut client = cluster.client().await;

    // A selective filter: PostgreSQL sends only the matching rows.
    let (_, plan) = client
        .query_all("EXPLAIN SELECT o_orderkey, o_totalprice FROM pg.tpch.orders WHERE o_custkey = 370 AND o_orderstatus = 'F'")
        .await
        .expect("EXPLAIN");
    let plan = rows(&plan).join("\n");
    assert!(
        plan.contains("WHERE") && plan.contains("(\"o_custkey\" = 370)") && plan.contains("'F'"),
        "EXPLAIN shows the SQL with the filter: {plan}"
    );
    let (_, analyzed) = client
        .query_all("EXPLAIN ANALYZE SELECT o_orderkey, o_totalprice FROM pg.tpch.orders WHERE o_custkey = 370 AND o_orderstatus = 'F'")
        .await
        .expect("EXPLAIN ANALYZE");
    let analyzed = rows(&analyzed).join("\n");
    let expected = postgres_rows(
        &pg,
        "SELECT count(*) FROM tpch.orders WHERE o_custkey = 370 AND o_orderstatus = 'F'",
    )
    .await;
    assert!(
        analyzed.contains(&format!("rows_transferred={}", expected[0])),
        "rows transferred = result rows ({}): {analyzed}",
        expected[0]
    );

    // A same-catalog join + aggregate and a top-N run in PostgreSQL: what PostgreSQL sends is
    // the result, not the tables.
    for (sql, result_rows, shape) in [
        (
            "SELECT n_name, count(*) AS customers, sum(c_acctbal) AS balance FROM pg.tpch.customer \
             JOIN pg.tpch.nation ON c_nationkey = n_nationkey WHERE c_acctbal > 0 GROUP BY n_name",
            25,
            "JOIN",
        ),
        (
            "SELECT o_orderkey, o_totalprice FROM pg.tpch.orders ORDER BY o_totalprice DESC, o_orderkey LIMIT 5",
            5,
            "LIMIT 5",
        ),
    ] {
        let (_, plan) = client
            .query_all(&format!("EXPLAIN {sql}"))
            .await
            .expect("EXPLAIN");
        let plan = rows(&plan).join("\n");
        assert!(
            plan.contains("pushed-down query") && plan.contains(shape),
            "{plan}"
        );
        let (_, analyzed) = client
            .query_all(&format!("EXPLAIN ANALYZE {sql}"))
            .await
            .expect("EXPLAIN ANALYZE");
        let analyzed = rows(&analyzed).join("\n");
        assert!(
            analyzed.contains(&format!("rows_transferred={result_rows},"))
                || analyzed.contains(&format!("rows_transferred={result_rows}]")),
            "{analyzed}"
        );
        let (_, braid) = client.query_all(sql).await.expect("query");
        let expected = postgres_rows(&pg, &sql.replace("pg.tpch.", "tpch.")).await;
        same_rows(rows(&braid), expected).expect("pushed-down results");
    }

    // Cross-source: PostgreSQL x tpch x memory, with a filter above the PostgreSQL side.
    client
        .query_all("CREATE TABLE memory.default.regions AS SELECT * FROM tpch.tiny.region")
        .await
        .expect("memory table");
    let sql = "SELECT c.c_name, n.n_name, r.r_name FROM pg.tpch.customer c \
               JOIN tpch.tiny.nation n ON c.c_nationkey = n.n_nationkey \
               JOIN memory.default.regions r ON n.n_regionkey = r.r_regionkey \
               WHERE c.c_acctbal > 9000 AND upper(c.c_mktsegment) = 'BUILDING' AND r.r_name <> 'ASIA'";
    let (_, braid) = client.query_all(sql).await.expect("cross-source join");
    let expected = postgres_rows(
        &pg,
        "SELECT c.c_name, n.n_name, r.r_name FROM tpch.customer c JOIN tpch.nation n ON c.c_nationkey = n.n_nationkey \
         JOIN tpch.region r ON n.n_regionkey = r.r_regionkey \
         WHERE c.c_acctbal > 9000 AND upper(c.c_mktsegment) = 'BUILDING' AND r.r_name <> 'ASIA'",
    )
    .await;
    assert!(!expected.is_empty());
    same_rows(rows(&braid), expected).expect("the filter above the PostgreSQL side is applied");

    // PostgreSQL's statistics (`reltuples`) choose the broadcast side of a federated join: the
    // small PostgreSQL table is built when the other side is large, and the small tpch table
    // when the PostgreSQL one is large (distributed, however small the tables).
    client
        .query_all("SET SESSION single_task_max_input_rows = 0")
        .await
        .expect("SET SESSION");
    for (sql, build, pg_sql) in [
        (
            "SELECT s_name, count(*) FROM pg.tpch.supplier JOIN tpch.tiny.lineitem ON s_suppkey = l_suppkey GROUP BY s_name",
            "PostgresScanExec",
            "SELECT s_name, count(*) FROM tpch.supplier JOIN tpch.lineitem ON s_suppkey = l_suppkey GROUP BY s_name",
        ),
        (
            "SELECT s_name, count(*) FROM tpch.tiny.supplier JOIN pg.tpch.lineitem ON s_suppkey = l_suppkey GROUP BY s_name",
            "TpchScanExec",
            "SELECT s_name, count(*) FROM tpch.supplier JOIN tpch.lineitem ON s_suppkey = l_suppkey GROUP BY s_name",
        ),
    ] {
        let (_, plan) = client
            .query_all(&format!("EXPLAIN {sql}"))
            .await
            .expect("EXPLAIN");
        let plan = rows(&plan).join("\n");
        let physical = &plan[plan.find("Physical plan").expect("a physical plan")..];
        let join = physical
            .find("HashJoinExec: mode=CollectLeft")
            .unwrap_or_else(|| panic!("a broadcast join: {plan}"));
        let first_scan = physical[join..]
            .find("ScanExec")
            .map(|end| &physical[join..join + end + "ScanExec".len()])
            .unwrap_or_default();
        assert!(
            first_scan.ends_with(build),
            "{build} is the build side: {plan}"
        );
        let (_, braid) = client.query_all(sql).await.expect("federated join");
        same_rows(rows(&braid), postgres_rows(&pg, pg_sql).await).expect("broadcast join rows");
    }

    // `pg_stats` gives the join key's distinct values: `supplier JOIN lineitem` is estimated at
    // lineitem's rows. Without it every `l_suppkey` would count as distinct, and the estimate
    // would be supplier's 100 rows.
    let lineitem_rows: u64 = postgres_rows(
        &pg,
        "SELECT reltuples::int8 FROM pg_class WHERE oid = 'tpch.lineitem'::regclass",
    )
    .await[0]
        .parse()
        .expect("reltuples");
    let (_, plan) = client
        .query_all("EXPLAIN SELECT s_name, l_quantity FROM tpch.tiny.supplier JOIN pg.tpch.lineitem ON s_suppkey = l_suppkey")
        .await
        .expect("EXPLAIN");
    let plan = rows(&plan).join("\n");
    let physical = &plan[plan.find("Physical plan").expect("a physical plan")..];
    let join = &physical[physical.find("HashJoinExec").expect("a hash join")..];
    let estimate: u64 = join
        .split_once("Rows=Inexact(")
        .and_then(|(_, rest)| rest.split_once(')'))
        .and_then(|(rows, _)| rows.parse().ok())
        .unwrap_or_else(|| panic!("the join's row estimate: {plan}"));
    assert!(
        estimate * 10 >= lineitem_rows * 9 && estimate * 10 <= lineitem_rows * 11,
        "supplier JOIN lineitem estimated at {estimate} rows, lineitem has {lineitem_rows}: {plan}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn names_literals_types_splits_and_faults() {
    let _serial = braid_integration_tests::serial().await;
    let pg = postgres().await;
    pg.batch_execute(
        r#"DROP SCHEMA IF EXISTS "Odd Schema" CASCADE;
        CREATE SCHEMA "Odd Schema";
        CREATE TYPE "Odd Schema".mood AS ENUM ('sad', 'ok', 'happy');
        CREATE TABLE "Odd Schema"."Mixed ""Case"" Table" (
            "Id" bigint PRIMARY KEY, "the name" text, "it's" varchar(20), amount numeric(12,3),
            ratio numeric, f real, d double precision, ok boolean, born date, at time,
            seen timestamp, seen_tz timestamptz, span interval, blob bytea, id2 uuid,
            doc json, docb jsonb, m "Odd Schema".mood, tags text[], nums int4[], pt point, small smallint);
        INSERT INTO "Odd Schema"."Mixed ""Case"" Table" VALUES
            (1, 'O''Brien', 'back\slash', 12.345, 1.5, 1.5, 2.25, true, '2024-02-29', '13:45:10.5',
             '2024-01-02 03:04:05.678', '2024-01-02 03:04:05+02', '1 mon 2 days 03:00:00', '\x0102ff',
             'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": 1}', '{"b": [1, 2]}', 'happy',
             ARRAY['x', NULL, 'z'], ARRAY[1, 2, 3], '(1,2)', -7),
            (2, 'quote''s \ and "double"', NULL, -0.5, NULL, NULL, NULL, false, NULL, NULL,
             NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'sad', '{}', NULL, NULL, NULL);
        DROP SCHEMA IF EXISTS "dot.ted" CASCADE;
        CREATE SCHEMA "dot.ted";
        CREATE TABLE "dot.ted"."Tab le" (x int);
        DROP TABLE IF EXISTS public.big;
        CREATE TABLE public.big AS SELECT g AS k, g % 97 AS v FROM generate_series(1, 200000) g;
        DROP TABLE IF EXISTS public.big_keyed;
        CREATE TABLE public.big_keyed (k bigint PRIMARY KEY, v int);
        INSERT INTO public.big_keyed SELECT g, g % 89 FROM generate_series(1, 200000) g;
        ANALYZE;"#,
    )
    .await
    .expect("test tables");
    let catalogs = tempfile::tempdir().expect("dir");
    write_catalogs(catalogs.path(), "splits = 4\n");
    // A catalog whose server does not listen, and one with a wrong password.
    std::fs::write(
        catalogs.path().join("down.toml"),
        "connector = \"postgres\"\nhost = \"127.0.0.1\"\nport = 1\ndatabase = \"x\"\nuser = \"x\"\nconnect_timeout_seconds = 2\n",
    )
    .expect("catalog");
    std::fs::write(
        catalogs.path().join("badpass.toml"),
        format!(
            "connector = \"postgres\"\nhost = \"{}\"\nport = {}\ndatabase = \"{}\"\nuser = \"{}\"\npassword = \"wrong\"\n",
            env("BRAID_PG_HOST"),
            env("BRAID_PG_PORT"),
            env("BRAID_PG_DATABASE"),
            env("BRAID_PG_USER")
        ),
    )
    .expect("catalog");
    // Unsupported types read as text.
    let pg_file = std::fs::read_to_string(catalogs.path().join("pg.toml")).expect("pg.toml");
    std::fs::write(
        catalogs.path().join("pg_text.toml"),
        format!("{pg_file}unsupported_types = \"text\"\n"),
    )
    .expect("catalog");
    // TLS to PostgreSQL: braid_tls may only connect encrypted.
    for (name, sslmode) in [
        ("tls_require", "require"),
        ("tls_verify", "verify-full"),
        ("tls_off", "disable"),
    ] {
        std::fs::write(
            catalogs.path().join(format!("{name}.toml")),
            format!(
                "connector = \"postgres\"\nhost = \"{}\"\nport = {}\ndatabase = \"{}\"\nuser = \"{}\"\n\
                 password = \"${{ENV:BRAID_PG_PASSWORD}}\"\nsslmode = \"{sslmode}\"\nsslrootcert = \"{}\"\n",
                env("BRAID_PG_HOST"),
                env("BRAID_PG_PORT"),
                env("BRAID_PG_DATABASE"),
                env("BRAID_PG_TLS_USER"),
                env("BRAID_PG_CA"),
            ),
        )
        .expect("catalog");
    }
    let cluster = Cluster::start(2, 2, Some(catalogs.path())).await;
    let mut client = cluster.client().await;

    for catalog in ["tls_require", "tls_verify"] {
        let (_, over_tls) = client
            .query_all(&format!(
                "SELECT count(*) FROM {catalog}.public.big WHERE v = 3"
            ))
            .await
            .unwrap_or_else(|e| panic!("{catalog}: {e}"));
        assert_eq!(rows(&over_tls), vec!["2062"], "{catalog}");
    }
    let error = client
        .query_all("SELECT count(*) FROM tls_off.public.big")
        .await
        .expect_err("the server refuses unencrypted connections for this user");
    assert!(error.to_string().contains("no encryption"), "{error}");

    // Mixed case, spaces and quotes in names; quotes and backslashes in literals.
    let table = r#"pg."Odd Schema"."Mixed ""Case"" Table""#;
    for catalog in ["pg", "pg_raw"] {
        let table = table.replacen("pg.", &format!("{catalog}."), 1);
        let (_, found) = client
            .query_all(&format!(
                r#"SELECT "Id", "the name", "it's" FROM {table} WHERE "the name" = 'quote''s \ and "double"' OR "it's" = 'back\slash' ORDER BY "Id""#
            ))
            .await
            .expect("odd names");
        assert_eq!(
            rows(&found),
            vec![r#"1|O'Brien|back\slash"#, r#"2|quote's \ and "double"|"#],
            "{catalog}"
        );
    }
    let (_, none) = client
        .query_all(&format!(
            r#"SELECT count(*) FROM {table} WHERE "the name" = 'x'' OR ''1''=''1'"#
        ))
        .await
        .expect("injection attempt");
    assert_eq!(rows(&none), vec!["0"]);

    // SHOW TABLES of schemas named with mixed case, spaces and dots.
    for (schema, table) in [
        (r#""Odd Schema""#, r#"Mixed "Case" Table"#),
        (r#""dot.ted""#, "Tab le"),
    ] {
        let (_, tables) = client
            .query_all(&format!("SHOW TABLES FROM pg.{schema}"))
            .await
            .unwrap_or_else(|e| panic!("SHOW TABLES FROM pg.{schema}: {e}"));
        assert_eq!(rows(&tables), vec![table], "{schema}");
    }

    // Types: every mapped column, as Braid shows them; point is left out.
    let (schema, typed) = client
        .query_all(&format!(r#"SELECT * FROM {table} WHERE "Id" = 1"#))
        .await
        .expect("types");
    let names: Vec<_> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert!(
        !names.contains(&"pt"),
        "unsupported point column is left out: {names:?}"
    );
    assert_eq!(
        rows(&typed),
        vec![
            "1|O'Brien|back\\slash|12.345|1.5000000000|1.5|2.25|true|2024-02-29|13:45:10.500|2024-01-02T03:04:05.678|2024-01-02T01:04:05Z|1 mons 2 days 3 hours|0102ff|a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11|{\"a\": 1}|{\"b\": [1, 2]}|happy|[x, , z]|[1, 2, 3]|-7"
        ]
    );
    let (_, point) = client
        .query_all(r#"SELECT pt FROM pg_text."Odd Schema"."Mixed ""Case"" Table" WHERE "Id" = 1"#)
        .await
        .expect("point as text");
    assert_eq!(rows(&point), vec!["(1,2)"]);
    let types: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| format!("{}", f.data_type()))
        .collect();
    assert_eq!(types[3], "Decimal128(12, 3)");
    assert_eq!(types[4], "Decimal128(38, 10)");

    // Split reads: by integer key and by ctid, four splits, the same rows as one read.
    // (pg_raw: with pushdown on, PostgreSQL would compute these aggregates itself.)
    for (relation, expected_splits) in [
        ("pg_raw.public.big_keyed", "splits=4"),
        ("pg_raw.public.big", "splits=4"),
    ] {
        let (_, plan) = client
            .query_all(&format!(
                "EXPLAIN SELECT sum(k), sum(v), count(*) FROM {relation}"
            ))
            .await
            .expect("explain");
        let plan = rows(&plan).join("\n");
        assert!(plan.contains(expected_splits), "{relation}: {plan}");
        let (_, split) = client
            .query_all(&format!("SELECT sum(k), sum(v), count(*) FROM {relation}"))
            .await
            .expect("split read");
        let table = relation.trim_start_matches("pg_raw.");
        let whole = postgres_rows(
            &pg,
            &format!("SELECT sum(k), sum(v), count(*) FROM {table}"),
        )
        .await;
        assert_eq!(rows(&split), whole, "{relation}");
    }

    // A lookup by the primary key is one query, not one per split.
    let lookup = "SELECT k, v FROM pg.public.big_keyed WHERE k = 150001";
    let (_, plan) = client
        .query_all(&format!("EXPLAIN {lookup}"))
        .await
        .expect("explain");
    let plan = rows(&plan).join("\n");
    assert!(
        plan.contains("splits=1") && plan.contains(r#"("k" = 150001)"#),
        "{plan}"
    );
    let (_, found) = client.query_all(lookup).await.expect("lookup");
    assert_eq!(rows(&found), vec!["150001|36"]);

    // Faults: each names the catalog and what to fix; the cluster keeps serving.
    let error = client
        .query_all("SELECT * FROM down.public.t")
        .await
        .expect_err("unreachable server");
    let message = error.to_string();
    assert!(
        message.contains("down") && message.contains("127.0.0.1:1"),
        "{message}"
    );
    let error = client
        .query_all("SELECT * FROM badpass.public.big")
        .await
        .expect_err("wrong password");
    assert!(
        error.to_string().contains("password authentication failed"),
        "{error}"
    );
    let (_, ok) = client
        .query_all("SELECT count(*) FROM pg.public.big WHERE v = 3")
        .await
        .expect("the cluster still serves");
    assert_eq!(rows(&ok), vec!["2062"]);
}

/// No catalog call and no optimizer pass waits on PostgreSQL (defect 10): on a single-threaded
/// runtime, where blocking the thread would panic or hang, DataFusion's synchronous listings
/// answer from memory once `refresh_listings` has run, and the subtree rule asks for its check
/// and leaves the plan alone until `complete_rule_checks` has the answer.
#[tokio::test(flavor = "current_thread")]
async fn listings_and_pushdown_checks_never_block_the_runtime() {
    use braid_catalogs::ConnectorRegistry;
    use braid_connector_spi::{Listing, Role};
    use datafusion::execution::SessionStateBuilder;
    use datafusion::prelude::SessionContext;

    let _serial = braid_integration_tests::serial().await;
    let pg = postgres().await;
    pg.batch_execute(
        "DROP SCHEMA IF EXISTS \"Non Blocking\" CASCADE;
         CREATE SCHEMA \"Non Blocking\";
         CREATE TABLE \"Non Blocking\".accounts (id int PRIMARY KEY, owner text NOT NULL);
         CREATE TABLE \"Non Blocking\".moves (account int NOT NULL, amount int NOT NULL);
         INSERT INTO \"Non Blocking\".accounts VALUES (1, 'O''Brien'), (2, 'Ng');
         INSERT INTO \"Non Blocking\".moves VALUES (1, 5), (1, 7), (2, 1);",
    )
    .await
    .expect("tables");
    let catalogs = tempfile::tempdir().expect("dir");
    write_catalogs(catalogs.path(), "schemas = [\"Non Blocking\"]\n");
    let role = Role::Coordinator {
        internal_endpoint: "http://127.0.0.1:9".into(),
    };
    let registry = ConnectorRegistry::load(Some(catalogs.path()), &role).expect("catalogs");
    let connector = registry.get("pg").expect("pg catalog");
    let catalog = connector.catalog_provider();

    assert!(
        catalog.schema_names().is_empty(),
        "before a refresh the listing is empty: it does not read PostgreSQL"
    );
    connector
        .refresh_listings(Listing::All)
        .await
        .expect("refresh");
    assert_eq!(catalog.schema_names(), ["Non Blocking"]);
    let schema = catalog.schema("Non Blocking").expect("schema");
    assert_eq!(schema.table_names(), ["accounts", "moves"]);

    let mut state = SessionStateBuilder::new()
        .with_default_features()
        .with_catalog_list(registry.catalog_list());
    for rule in registry.logical_rules() {
        state = state.with_optimizer_rule(rule);
    }
    let ctx = SessionContext::new_with_state(state.build());
    let sql = "SELECT a.owner, sum(m.amount) AS total FROM pg.\"Non Blocking\".accounts a \
               JOIN pg.\"Non Blocking\".moves m ON m.account = a.id GROUP BY a.owner ORDER BY a.owner";
    let plan = ctx.sql(sql).await.expect("plan").into_unoptimized_plan();
    let pushed = |plan: &datafusion::logical_expr::LogicalPlan| {
        plan.display_indent().to_string().contains("braid_pushdown")
    };
    let first = ctx.state().optimize(&plan).expect("optimize");
    assert!(
        !pushed(&first),
        "not pushed before PostgreSQL checked it:\n{}",
        first.display_indent()
    );
    assert!(
        connector.complete_rule_checks().await.expect("checks"),
        "the rule asked for a check"
    );
    let second = ctx.state().optimize(&plan).expect("optimize");
    assert!(
        pushed(&second),
        "pushed once checked:\n{}",
        second.display_indent()
    );
    assert!(
        !connector.complete_rule_checks().await.expect("checks"),
        "nothing more to check"
    );
    let batches = ctx
        .execute_logical_plan(plan)
        .await
        .expect("plan")
        .collect()
        .await
        .expect("run");
    assert_eq!(rows(&batches), ["Ng|1", "O'Brien|12"]);
}

/// A borrower waits for a busy pool at most `pool_wait_timeout_seconds`, then gets an error
/// that says what to raise (defect 10); `braid bench postgres` re-creates only a table it
/// made itself, and quotes its names (defect 12).
#[tokio::test(flavor = "multi_thread")]
async fn the_pool_wait_is_bounded_and_the_bench_drops_only_its_own_tables() {
    use std::sync::Arc;

    use braid_cli::bench_postgres::create_table;
    use braid_connector_postgres::{Pool, PostgresConfig};

    let _serial = braid_integration_tests::serial().await;
    let pg = postgres().await;
    pg.batch_execute(
        "DROP SCHEMA IF EXISTS \"Bench; Schema\" CASCADE;
         CREATE SCHEMA \"Bench; Schema\";
         CREATE TABLE \"Bench; Schema\".\"Someone's\" (x int);
         INSERT INTO \"Bench; Schema\".\"Someone's\" VALUES (1), (2);",
    )
    .await
    .expect("tables");
    let catalogs = tempfile::tempdir().expect("dir");
    write_catalogs(
        catalogs.path(),
        "pool_size = 1\npool_wait_timeout_seconds = 1\n",
    );
    let (_, spec) =
        braid_catalogs::load_catalog_file(&catalogs.path().join("pg.toml")).expect("catalog");
    let config: PostgresConfig = spec.options.parse().expect("options");
    let pool = Arc::new(Pool::new("pg".into(), Arc::new(config)));

    let held = pool.get().await.expect("the one connection");
    let waited = tokio::time::timeout(Duration::from_secs(30), pool.get())
        .await
        .expect("the wait ends by itself");
    let error = waited.err().expect("the pool is busy").to_string();
    assert!(
        error.contains("all 1 connections") && error.contains("pool_wait_timeout_seconds"),
        "{error}"
    );
    drop(held);
    drop(pool.get().await.expect("free again"));

    let count = |table: &'static str| {
        let pg = &pg;
        async move {
            postgres_rows(
                pg,
                &format!("SELECT count(*) FROM \"Bench; Schema\".{table}"),
            )
            .await
        }
    };
    let refused = create_table(&pool, "Bench; Schema", "Someone's", 10)
        .await
        .expect_err("not the bench's table");
    assert!(
        refused.contains("was not created by braid bench"),
        "{refused}"
    );
    assert_eq!(count("\"Someone's\"").await, ["2"], "left as it was");
    create_table(&pool, "Bench; Schema", "bench \"table\"", 10)
        .await
        .expect("create");
    create_table(&pool, "Bench; Schema", "bench \"table\"", 20)
        .await
        .expect("re-create its own table");
    assert_eq!(count("\"bench \"\"table\"\"\"").await, ["20"]);
}

fn services(command: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/services.sh");
    let status = std::process::Command::new("bash")
        .arg(script)
        .arg(command)
        .status()
        .expect("run scripts/services.sh");
    assert!(status.success(), "services.sh {command} failed");
}

#[tokio::test(flavor = "multi_thread")]
async fn five_million_rows_in_four_splits_on_two_workers_and_a_server_that_stops() {
    let _serial = braid_integration_tests::serial().await;
    let pg = postgres().await;
    pg.batch_execute(
        "DROP TABLE IF EXISTS public.five_million;
         CREATE TABLE public.five_million (id bigint PRIMARY KEY, v int, amount numeric(12,2));
         INSERT INTO public.five_million SELECT g, g % 1000, (g % 100000) / 100.0 FROM generate_series(1, 5000000) g;
         ANALYZE public.five_million;",
    )
    .await
    .expect("five million rows");
    // 20,000 rows that PostgreSQL produces 2 ms apart: a read that stays active for 40 s.
    pg.batch_execute(
        "CREATE OR REPLACE VIEW public.trickle AS \
         SELECT g AS id, pg_sleep(0.002)::text AS s FROM generate_series(1, 20000) g",
    )
    .await
    .expect("trickle view");
    let catalogs = tempfile::tempdir().expect("dir");
    // pg / pg_raw: a 3 s statement timeout; pg_split / pg_split_raw: four splits and no
    // timeout (how long a split takes depends on the machine); pg_long / pg_long_raw: neither.
    write_catalogs(catalogs.path(), "statement_timeout_seconds = 3\n");
    write_catalogs_for(
        catalogs.path(),
        "_split",
        &env("BRAID_PG_DATABASE"),
        "splits = 4\n",
    );
    write_catalogs_for(catalogs.path(), "_long", &env("BRAID_PG_DATABASE"), "");
    let cluster = Cluster::start(2, 2, Some(catalogs.path())).await;
    let mut client = cluster.client().await;

    // pg_split_raw: with pushdown on, PostgreSQL would compute the aggregate itself.
    let sql = "SELECT count(*), sum(id), sum(v), sum(amount) FROM pg_split_raw.public.five_million";
    let (_, plan) = client
        .query_all(&format!("EXPLAIN {sql}"))
        .await
        .expect("explain");
    let plan = rows(&plan).join("\n");
    assert!(
        plan.contains("splits=4") && plan.contains("\"id\" >= "),
        "{plan}"
    );
    let (_, braid) = client.query_all(sql).await.expect("split read");
    let expected = postgres_rows(
        &pg,
        "SELECT count(*), sum(id), sum(v), sum(amount) FROM public.five_million",
    )
    .await;
    assert_eq!(rows(&braid), expected);
    assert_eq!(rows(&braid)[0].split('|').next(), Some("5000000"));
    // Both workers read splits of the same query.
    let first: std::collections::BTreeSet<_> = cluster.jobs_on_worker(0).into_iter().collect();
    let second: std::collections::BTreeSet<_> = cluster.jobs_on_worker(1).into_iter().collect();
    assert!(
        first.intersection(&second).next().is_some(),
        "{first:?} / {second:?}"
    );

    // The catalog's statement timeout applies to Braid's queries in PostgreSQL.
    pg.batch_execute("CREATE OR REPLACE VIEW public.slow AS SELECT pg_sleep(10)::text AS s")
        .await
        .expect("slow view");
    let error = client
        .query_all("SELECT * FROM pg.public.slow")
        .await
        .expect_err("statement timeout");
    assert!(error.to_string().contains("statement timeout"), "{error}");

    // A read abandoned mid-stream (its client goes away, the job is cancelled): PostgreSQL
    // stops the COPY at once rather than scanning on, and the next query runs.
    let mut reader = cluster.client().await;
    let read = tokio::spawn(async move {
        reader
            .query_all("SELECT * FROM pg_long_raw.public.trickle")
            .await
            .map(|_| ())
    });
    wait_for_braid_copies(&pg, &cluster, "trickle", true, Duration::from_secs(60)).await;
    read.abort();
    let stopped =
        wait_for_braid_copies(&pg, &cluster, "trickle", false, Duration::from_secs(5)).await;
    eprintln!("the abandoned COPY stopped in PostgreSQL {stopped:?} after its client went away");
    let (_, after) = client
        .query_all("SELECT count(*) FROM pg_long_raw.public.five_million WHERE id <= 10")
        .await
        .expect("the next query");
    assert_eq!(rows(&after), vec!["10"]);

    // PostgreSQL stops while a query reads from it: the query fails naming the catalog, and the
    // cluster serves the next query once PostgreSQL is back.
    let mut reader = cluster.client().await;
    let long = tokio::spawn(async move {
        reader
            .query_all("SELECT * FROM pg_long_raw.public.trickle")
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    wait_for_braid_copies(&pg, &cluster, "trickle", true, Duration::from_secs(60)).await;
    services("pg-kill");
    let outcome = long.await.expect("task");
    services("pg-start");
    let error = outcome.expect_err("the server stopped mid-query");
    assert!(
        error.contains("pg_long_raw") && error.contains("PostgreSQL at"),
        "{error}"
    );
    let (_, after) = client
        .query_all("SELECT count(*) FROM pg.public.five_million WHERE id <= 10")
        .await
        .expect("the cluster still serves");
    assert_eq!(rows(&after), vec!["10"]);
}

/// Waits until `pg_stat_activity` shows Braid's COPY statements of `relation` running
/// (`active`) or none (`!active`), for at most `bound`; how long that took. Fails with the
/// cluster's logs.
async fn wait_for_braid_copies(
    pg: &Client,
    cluster: &Cluster,
    relation: &str,
    active: bool,
    bound: Duration,
) -> Duration {
    let started = std::time::Instant::now();
    loop {
        let running: i64 = pg
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'braid' \
                 AND state = 'active' AND query LIKE 'COPY%' AND strpos(query, $1) > 0",
                &[&relation],
            )
            .await
            .expect("pg_stat_activity")
            .get(0);
        if (running > 0) == active {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < bound,
            "after {bound:?}, {running} Braid COPY statements are active in PostgreSQL (wanted {})\n{}",
            if active { "some" } else { "none" },
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
