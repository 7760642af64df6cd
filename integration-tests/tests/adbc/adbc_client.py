"""Drives a Braid coordinator with the ADBC Flight SQL driver, an independently written client.

Usage: adbc_client.py URI USER PASSWORD [CA_FILE]

Exits non-zero with a message on the first check that fails; prints one line per check.
"""

import sys

import adbc_driver_flightsql.dbapi as flight_sql
from adbc_driver_flightsql import DatabaseOptions


def connect(uri, user, password, ca_file):
    kwargs = {"username": user, "password": password}
    if ca_file:
        with open(ca_file) as f:
            kwargs[DatabaseOptions.TLS_ROOT_CERTS.value] = f.read()
    return flight_sql.connect(uri, db_kwargs=kwargs)


def check(condition, message):
    if not condition:
        sys.exit(f"FAILED: {message}")
    print(f"ok: {message}")


def main():
    uri, user, password = sys.argv[1:4]
    ca_file = sys.argv[4] if len(sys.argv) > 4 else None

    conn = connect(uri, user, password, ca_file)
    info = conn.adbc_get_info()
    check(info.get("vendor_name") == "Braid", f"adbc_get_info names the server: {info.get('vendor_name')}")

    objects = conn.adbc_get_objects(depth="all").read_all().to_pylist()
    catalogs = {c["catalog_name"]: c for c in objects}
    check({"memory", "tpch"} <= set(catalogs), f"adbc_get_objects lists every catalog: {sorted(catalogs)}")
    tiny = next(s for s in catalogs["tpch"]["catalog_db_schemas"] if s["db_schema_name"] == "tiny")
    tables = sorted(t["table_name"] for t in tiny["db_schema_tables"])
    check(tables == sorted(["customer", "lineitem", "nation", "orders", "part", "partsupp", "region", "supplier"]),
          f"adbc_get_objects lists tpch.tiny's tables: {tables}")
    nation = next(t for t in tiny["db_schema_tables"] if t["table_name"] == "nation")
    columns = [c["column_name"] for c in nation["table_columns"] or []]
    check(columns[:2] == ["n_nationkey", "n_name"], f"adbc_get_objects lists nation's columns: {columns}")

    schema = conn.adbc_get_table_schema("nation", catalog_filter="tpch", db_schema_filter="tiny")
    check(schema.names == ["n_nationkey", "n_name", "n_regionkey", "n_comment"],
          f"adbc_get_table_schema: {schema.names}")

    with conn.cursor() as cur:
        cur.execute("SELECT r_name, count(*) AS nations FROM tpch.tiny.nation JOIN tpch.tiny.region "
                    "ON n_regionkey = r_regionkey GROUP BY r_name ORDER BY r_name")
        rows = cur.fetchall()
        check(rows[0] == ("AFRICA", 5) and len(rows) == 5, f"a distributed query: {rows}")

        cur.execute("SELECT n_name FROM tpch.tiny.nation WHERE n_nationkey = ? OR n_name = ?",
                    parameters=(7, "PERU"))
        rows = sorted(r[0] for r in cur.fetchall())
        check(rows == ["GERMANY", "PERU"], f"a prepared statement with bound parameters: {rows}")

        # Quoted text passes through prepare untouched: only `?` in code is a parameter.
        cur.execute("SELECT n_name, 'O''Brien?' AS quoted, E'it\\'s ?' AS escaped FROM tpch.tiny.nation -- who?\n"
                    "WHERE n_name = 'x'' OR ''1''=''1' /* or ? */ OR n_nationkey = ?", parameters=(7,))
        rows = cur.fetchall()
        check(rows == [("GERMANY", "O'Brien?", "it's ?")],
              f"a prepared statement with quotes, an E'' string and comments holding '?': {rows}")
        cur.execute('SELECT n_name AS "what? name" FROM tpch.tiny.nation WHERE n_nationkey = ?', parameters=(8,))
        rows = cur.fetchall()
        check(cur.description[0][0] == "what? name" and rows == [("INDIA",)],
              f"a quoted identifier holding '?': {cur.description[0][0]} {rows}")

        # Statements with side effects take effect when executed, whether or not their result is
        # fetched: DBAPI users rarely fetch a CREATE or an INSERT.
        cur.execute("CREATE TABLE memory.default.adbc_unfetched AS SELECT * FROM tpch.tiny.region")
        cur.execute("CREATE TABLE memory.default.adbc_new (id BIGINT)")
        cur.execute("INSERT INTO memory.default.adbc_new VALUES (1), (2), (3)")
        cur.execute("INSERT INTO memory.default.adbc_new VALUES (?)", parameters=(4,))
        cur.execute("SELECT (SELECT count(*) FROM memory.default.adbc_unfetched) AS regions, "
                    "(SELECT count(*) FROM memory.default.adbc_new) AS ids")
        rows = cur.fetchall()
        check(rows == [(5, 4)], f"CTAS and INSERTs that were never fetched took effect: {rows}")
        try:
            cur.execute("INSERT INTO memory.default.adbc_missing VALUES (1)")
            sys.exit("FAILED: an INSERT into a missing table was accepted")
        except flight_sql.Error as e:
            check("adbc_missing" in str(e), f"a failing INSERT fails at execute: {str(e).splitlines()[0]}")

        cur.execute("CREATE TABLE memory.default.adbc_people (id BIGINT, name VARCHAR)")
        cur.fetchall()
        statement = cur.adbc_statement
        statement.set_sql_query("INSERT INTO memory.default.adbc_people VALUES (1, 'ann'), (2, 'bob')")
        count = statement.execute_update()
        check(count == 2, f"INSERT through execute_update returns its row count: {count}")
        cur.executemany("INSERT INTO memory.default.adbc_people VALUES (?, ?)", [(3, "o'hara"), (4, "dee")])
        check(cur.rowcount == 2, f"a prepared INSERT with two parameter rows: rowcount {cur.rowcount}")
        cur.execute("SELECT id, name FROM memory.default.adbc_people ORDER BY id")
        rows = cur.fetchall()
        check(rows == [(1, "ann"), (2, "bob"), (3, "o'hara"), (4, "dee")], f"the memory table: {rows}")

        cur.execute("USE memory.default")
        cur.fetchall()
        cur.execute("SHOW TABLES")
        tables = [t for (t,) in cur.fetchall()]
        check(tables == ["adbc_new", "adbc_people", "adbc_unfetched"],
              f"USE persists across the connection's statements: {tables}")

    # A second connection has its own session: USE above does not apply to it.
    other = connect(uri, user, password, ca_file)
    with other.cursor() as cur:
        cur.execute("SELECT count(*) FROM nation")
        check(cur.fetchall() == [(25,)], "another connection keeps its own default schema")
    other.close()
    conn.close()

    try:
        bad = connect(uri, user, "not the password", ca_file)
        with bad.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetchall()
        sys.exit("FAILED: a wrong password was accepted")
    except flight_sql.Error as e:
        check("Unauthenticated" in str(e) or "wrong user name or password" in str(e),
              f"a wrong password is rejected: {str(e).splitlines()[0]}")

    print("all ADBC checks passed")


if __name__ == "__main__":
    main()
