"""Trino's own Python client (DBAPI, and its SQLAlchemy dialect) against Braid's Trino HTTP port.

Usage: trino_client.py HOST PORT. Prints one JSON document of what the client read; the Rust
test (tests/it/trino_http.rs) checks it.
"""
import datetime
import decimal
import json
import sys

import pandas
import sqlalchemy
import trino
from trino.exceptions import TrinoUserError

host, port = sys.argv[1], int(sys.argv[2])
out = {}


def connect(**kw):
    return trino.dbapi.connect(host=host, port=port, user="ann", source="braid-trino-test", **kw)


def error_of(cursor, sql):
    try:
        cursor.execute(sql)
        cursor.fetchall()
    except TrinoUserError as e:
        return {"name": e.error_name, "type": e.error_type, "code": e.error_code,
                "message": e.message, "location": e.error_location}
    return None


conn = connect(catalog="tpch", schema="tiny")
cur = conn.cursor()

# A query over the cluster, by the session's catalog and schema.
cur.execute("SELECT n_nationkey, n_name FROM nation WHERE n_regionkey = 1 ORDER BY n_nationkey")
out["nations"] = [list(r) for r in cur.fetchall()]
out["nation_columns"] = [d[0] for d in cur.description]

# Values as Trino's client maps them to Python.
cur.execute(
    "SELECT CAST(12.5 AS DECIMAL(12,2)) AS d, DATE '2024-01-31' AS day, "
    "TIMESTAMP '2024-01-31 12:34:56.789' AS ts, X'00ff' AS b, 'O''Brien' AS s, "
    "CAST(NULL AS VARCHAR) AS n, CAST(7 AS BIGINT) AS i, 1.5e0 AS f, true AS t, "
    "[1, 2, 3] AS a, named_struct('Owner Name', 'Zoë', 'n', 1) AS r"
)
row = cur.fetchone()
out["types"] = {
    "decimal": isinstance(row[0], decimal.Decimal) and row[0] == decimal.Decimal("12.50"),
    "date": row[1] == datetime.date(2024, 1, 31),
    "timestamp": row[2] == datetime.datetime(2024, 1, 31, 12, 34, 56, 789000),
    "binary": row[3] == b"\x00\xff",
    "string": row[4] == "O'Brien",
    "null": row[5] is None,
    "bigint": row[6] == 7,
    "double": row[7] == 1.5,
    "boolean": row[8] is True,
    "array": row[9] == [1, 2, 3],
    "row": list(row[10]) == ["Zoë", 1],
}
out["type_names"] = [d[1] for d in cur.description]

# A result of many pages, read to its end.
cur.execute("SELECT l_orderkey, l_comment FROM tpch.sf1.lineitem LIMIT 150000")
count = 0
while True:
    rows = cur.fetchmany(10000)
    if not rows:
        break
    count += len(rows)
out["paged_rows"] = count

# The session travels in headers: USE, SET SESSION, DDL and INSERT.
cur.execute("USE memory.default")
cur.fetchall()
out["catalog_after_use"] = [conn._client_session.catalog, conn._client_session.schema]
cur.execute('CREATE TABLE "Owner Codes" (code VARCHAR, "Owner Name" VARCHAR)')
cur.fetchall()
cur.execute("INSERT INTO \"Owner Codes\" VALUES ('ab', 'O''Brien'), ('zoë', 'Zoë')")
out["insert_result"] = [list(r) for r in cur.fetchall()]
out["insert_rowcount"] = cur.rowcount
cur.execute("SET SESSION query_max_run_time = '10m'")
cur.fetchall()
out["session_properties"] = dict(conn._client_session.properties)
cur.execute("SELECT count(*) FROM \"Owner Codes\"")
out["count_with_session"] = cur.fetchone()[0]

# Parameters: EXECUTE IMMEDIATE (the client's default when the server has it) ...
cur.execute('SELECT "Owner Name" FROM "Owner Codes" WHERE code = ?', ["ab"])
out["immediate"] = cur.fetchall()
# ... and PREPARE / EXECUTE / DEALLOCATE PREPARE.
legacy = connect(catalog="memory", schema="default", legacy_prepared_statements=True)
lcur = legacy.cursor()
lcur.execute('SELECT code FROM "Owner Codes" WHERE "Owner Name" = ? AND length(code) = ?',
             ["O'Brien", 2])
out["prepared"] = lcur.fetchall()
out["prepared_left"] = dict(legacy._client_session.prepared_statements)

# Errors with Trino's names.
out["errors"] = {
    "table": error_of(cur, "SELECT * FROM memory.default.nope"),
    "schema": error_of(cur, "SELECT * FROM tpch.nope.nation"),
    "catalog": error_of(cur, "SELECT * FROM nope.tiny.nation"),
    "column": error_of(cur, "SELECT nope FROM tpch.tiny.nation"),
    "syntax": error_of(cur, "SELEC 1"),
    "type": error_of(cur, "SELECT 'a' + 1"),
    "session": error_of(connect(session_properties={"warp_speed": "9"}).cursor(), "SELECT 1"),
}

# The statements are Braid's queries like any other: listed with the client's source.
cur.execute(
    "SELECT state, source FROM system.runtime.queries "
    "WHERE query LIKE 'SELECT n_nationkey, n_name FROM nation%'"
)
out["listed"] = [list(r) for r in cur.fetchall()]

# SQLAlchemy, as Superset and pandas use it.
engine = sqlalchemy.create_engine(f"trino://ann@{host}:{port}/tpch/tiny")
inspector = sqlalchemy.inspect(engine)
out["sqlalchemy_tables"] = sorted(inspector.get_table_names("tiny"))
out["sqlalchemy_schemas"] = sorted(inspector.get_schema_names())
out["sqlalchemy_columns"] = [
    [c["name"], str(c["type"]), c["nullable"]] for c in inspector.get_columns("nation", "tiny")
]
memory = sqlalchemy.inspect(sqlalchemy.create_engine(f"trino://ann@{host}:{port}/memory/default"))
out["sqlalchemy_memory_columns"] = [
    [c["name"], str(c["type"])] for c in memory.get_columns("Owner Codes", "default")
]
out["pandas"] = pandas.read_sql(
    "SELECT r_regionkey, r_name FROM region ORDER BY 1", engine
).values.tolist()
with engine.connect() as connection:
    out["sqlalchemy_rows"] = [
        list(r) for r in connection.execute(
            sqlalchemy.text("SELECT r_name FROM region WHERE r_regionkey < :k ORDER BY 1"),
            {"k": 2},
        )
    ]

print(json.dumps(out, default=str))
