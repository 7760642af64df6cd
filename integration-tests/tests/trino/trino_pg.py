"""Trino's Python client over a PostgreSQL catalog, and cursor.cancel() on a long query.

Usage: trino_pg.py HOST PORT. Prints one JSON object.
"""
import datetime
import decimal
import json
import sys
import threading
import time as clock

import trino

host, port = sys.argv[1], int(sys.argv[2])
out = {}


def connect():
    return trino.dbapi.connect(host=host, port=port, user="ann", source="braid-trino-pg")


# Every PostgreSQL type, as Trino's client turns it into Python values.
cur = connect().cursor()
cur.execute("SELECT * FROM pg.trino_client.every_type ORDER BY id")
row = cur.fetchone()
utc = datetime.timezone.utc
out["pg_types"] = {
    "integer": row[0] == 1,
    "decimal": isinstance(row[1], decimal.Decimal) and row[1] == decimal.Decimal("1234.567"),
    "date": row[2] == datetime.date(2024, 2, 29),
    "timestamp": row[3] == datetime.datetime(2024, 2, 29, 12, 34, 56, 789012),
    "timestamptz": row[4] == datetime.datetime(2024, 2, 29, 12, 34, 56, 500000, tzinfo=utc),
    "time": row[5] == datetime.time(12, 0, 1, 250000),
    "bytes": row[6] == b"\x00\xff",
    "array": row[7] == ["a", "O'Brien"],
    "text": row[8] == "O'Brien",
    "boolean": row[9] is True,
    "double": row[10] == 0.25,
    "smallint": row[11] == -3,
    "bigint": row[12] == 9007199254740993,
    "char": row[13] == "AB   ",
}
out["pg_row"] = repr(row)
out["pg_type_names"] = [d[1] for d in cur.description]
# char(n) compares without its padding (a filter PostgreSQL runs), groups in Braid, and is
# described as char(n), as in Trino.
cur.execute(
    "SELECT code, count(*) FROM pg.trino_client.every_type WHERE code = 'AB' GROUP BY code"
)
out["char_grouped"] = cur.fetchall()
cur.execute("SHOW COLUMNS FROM pg.trino_client.every_type")
out["char_shown"] = [r[1] for r in cur.fetchall() if r[0] == "code"]
cur.execute(
    "SELECT data_type FROM pg.information_schema.columns "
    "WHERE table_schema = 'trino_client' AND column_name = 'code'"
)
out["char_information_schema"] = cur.fetchall()

# cursor.cancel() while the query runs on the workers. execute() waits for the first row, so
# the query runs in a thread and is cancelled from here, as an application does.
cur = connect().cursor()
outcome = []


def run_long_query():
    try:
        cur.execute(
            "SELECT count(*), sum(l_quantity) FROM tpch.sf100.lineitem "
            "WHERE l_comment LIKE '%zebra%'"
        )
        outcome.append(repr(cur.fetchall()))
    except Exception as e:  # the client's error for a cancelled query
        outcome.append(repr(e))


thread = threading.Thread(target=run_long_query)
thread.start()
deadline = clock.time() + 60
while cur.query_id is None:
    if clock.time() > deadline:
        raise SystemExit("the query never started")
    clock.sleep(0.05)
query_id = cur.query_id
watch = connect().cursor()
while True:
    watch.execute(f"SELECT state FROM system.runtime.queries WHERE query_id = '{query_id}'")
    states = watch.fetchall()
    if states == [["RUNNING"]]:
        break
    if clock.time() > deadline:
        raise SystemExit(f"the query never ran: {states}")
    clock.sleep(0.2)
cur.cancel()
thread.join(60)
out["cancelled"] = query_id
out["cancel_returned"] = not thread.is_alive()
out["cancel_outcome"] = outcome

print(json.dumps(out, default=str))
