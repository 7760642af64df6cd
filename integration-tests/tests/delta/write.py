"""The independent writer and reader of the `delta` tests: the `deltalake` Python package and
hand-written log files, never Braid's code.

    write.py write DIR     writes the test tables under DIR/<schema>/<table>/ and prints, as one
                           JSON object, what deltalake reads back from their versions
    write.py read TABLE    prints, as JSON, deltalake's read of the table at directory TABLE
                           (what Braid wrote): its rows and its column names and types
"""
import datetime
import json
import os
import sys
import time
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable, write_deltalake

REGIONS = ["EU", "US"]
YEARS = [2024, 2025]


def line(row, columns):
    return "|".join("" if row[c] is None else str(row[c]) for c in columns)


def lines(table, columns):
    rows = table.to_pylist()
    out = [line(r, columns) for r in rows]
    return sorted(out, key=lambda l: l.split("|"))


ORDER_COLUMNS = ["id", "name", "amount", "day", "region", "year"]


def orders_batch(append):
    """One append: 25 rows for each (region, year) partition, ids contiguous per file."""
    rows = []
    for p, (region, year) in enumerate((r, y) for r in REGIONS for y in YEARS):
        for i in range(25):
            ident = append * 100 + p * 25 + i
            rows.append({
                "id": ident,
                "name": "O'Brien" if ident % 10 == 0 else f"name {ident}",
                "amount": ident * 3 % 101,
                "day": datetime.date(year, 1 + ident % 12, 1 + ident % 28),
                "region": region,
                "year": year,
            })
    schema = pa.schema([
        ("id", pa.int64()), ("name", pa.string()), ("amount", pa.int64()),
        ("day", pa.date32()), ("region", pa.string()), ("year", pa.int32()),
    ])
    return pa.Table.from_pylist(rows, schema=schema)


def write_log(table_dir, version, actions):
    log = os.path.join(table_dir, "_delta_log")
    os.makedirs(log, exist_ok=True)
    with open(os.path.join(log, f"{version:020}.json"), "w") as f:
        for action in actions:
            f.write(json.dumps(action) + "\n")


def handwritten(table_dir, protocol, configuration, schema_fields, add_extra):
    """A one-commit table whose log is written by hand, with one data file."""
    os.makedirs(table_dir, exist_ok=True)
    name = f"part-{uuid.uuid4()}.parquet"
    pq.write_table(pa.table({"id": pa.array([1, 2, 3], pa.int64())}), os.path.join(table_dir, name))
    size = os.path.getsize(os.path.join(table_dir, name))
    now = int(time.time() * 1000)
    add = {"path": name, "partitionValues": {}, "size": size, "modificationTime": now,
           "dataChange": True, "stats": json.dumps({"numRecords": 3})}
    add.update(add_extra)
    write_log(table_dir, 0, [
        {"commitInfo": {"timestamp": now, "operation": "WRITE"}},
        {"protocol": protocol},
        {"metaData": {"id": str(uuid.uuid4()), "format": {"provider": "parquet", "options": {}},
                      "schemaString": json.dumps({"type": "struct", "fields": schema_fields}),
                      "partitionColumns": [], "configuration": configuration,
                      "createdTime": now}},
        {"add": add},
    ])


def write(root):
    answers = {}
    orders = os.path.join(root, "sales", "orders")
    for append in range(4):
        write_deltalake(orders, orders_batch(append), mode="append", partition_by=["region", "year"])
        time.sleep(0.05)
    DeltaTable(orders).delete("id < 5")
    dt = DeltaTable(orders)
    answers["orders_now"] = lines(dt.to_pyarrow_table(), ORDER_COLUMNS)
    answers["first"] = lines(DeltaTable(orders, version=0).to_pyarrow_table(), ORDER_COLUMNS)
    history = sorted(dt.history(), key=lambda h: h["version"])
    answers["history"] = [f"{h['version']}|{h['operation']}" for h in history]
    # A commit's time, by the Delta protocol, is its log file's modification time (the table
    # has no in-commit timestamps), which is a little after commitInfo's "timestamp".
    commit1 = os.path.join(orders, "_delta_log", f"{1:020}.json")
    answers["version1_ms"] = os.stat(commit1).st_mtime_ns // 1_000_000
    answers["version1_count"] = DeltaTable(orders, version=1).to_pyarrow_table().num_rows
    answers["version"] = dt.version()
    actions = pa.table(dt.get_add_actions(flatten=True)).to_pylist()
    answers["live_files"] = len(actions)
    answers["live_records"] = sum(a["num_records"] for a in actions)
    answers["eu_2025_files"] = sum(
        1 for a in actions
        if a["partition.region"] == "EU" and a["partition.year"] == 2025)

    # A name with a space and capitals, in a schema with one; a quote and a non-ASCII name.
    # (deltalake percent-encodes such a path: write elsewhere, then move the table, whose log
    # names its files relative to it.)
    codes = os.path.join(root, "My Schema", "Customer Codes")
    staging = os.path.join(root, "staging")
    write_deltalake(staging, pa.table({
        "code": ["EU1", "US2", None],
        "owner": ["O'Brien", "Zoë", "Smith"],
    }))
    os.makedirs(os.path.dirname(codes))
    os.rename(staging, codes)
    answers["codes"] = lines(DeltaTable(codes).to_pyarrow_table(), ["code", "owner"])

    # Table features Braid refuses: a deletion vector, column mapping.
    handwritten(
        os.path.join(root, "features", "deleted_rows"),
        {"minReaderVersion": 3, "minWriterVersion": 7,
         "readerFeatures": ["deletionVectors"], "writerFeatures": ["deletionVectors"]},
        {"delta.enableDeletionVectors": "true"},
        [{"name": "id", "type": "long", "nullable": True, "metadata": {}}],
        {"deletionVector": {"storageType": "i", "pathOrInlineDv": "wi5b=000010000siXQKl0rr91000f",
                            "sizeInBytes": 38, "cardinality": 1}},
    )
    handwritten(
        os.path.join(root, "features", "mapped"),
        {"minReaderVersion": 2, "minWriterVersion": 5},
        {"delta.columnMapping.mode": "name", "delta.columnMapping.maxColumnId": "1"},
        [{"name": "id", "type": "long", "nullable": True,
          "metadata": {"delta.columnMapping.id": 1, "delta.columnMapping.physicalName": "col-1"}}],
        {},
    )

    # Faults: a table whose data file is gone, a table whose latest commit is not JSON.
    missing = os.path.join(root, "faults", "missing_file")
    write_deltalake(missing, pa.table({"id": pa.array([1, 2], pa.int64())}))
    for name in os.listdir(missing):
        if name.endswith(".parquet"):
            os.remove(os.path.join(missing, name))
            answers["missing_file"] = name
    corrupt = os.path.join(root, "faults", "corrupt_log")
    write_deltalake(corrupt, pa.table({"id": pa.array([1], pa.int64())}))
    write_deltalake(corrupt, pa.table({"id": pa.array([2], pa.int64())}), mode="append")
    with open(os.path.join(corrupt, "_delta_log", f"{1:020}.json"), "w") as f:
        f.write("{not json\n")
    print(json.dumps(answers))


def read(table_dir):
    table = DeltaTable(table_dir).to_pyarrow_table()
    columns = [f.name for f in table.schema]
    print(json.dumps({
        "rows": lines(table, columns),
        "columns": [f"{f.name} {f.type}" for f in table.schema],
    }))


if __name__ == "__main__":
    command, arg = sys.argv[1], sys.argv[2]
    {"write": write, "read": read}[command](arg)
    # deltalake's runtime threads sometimes abort the interpreter's shutdown ("terminate
    # called without an active exception"): the work is done and printed, leave at once.
    sys.stdout.flush()
    os._exit(0)
