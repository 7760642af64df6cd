"""The independent writer and reader of the `files` tests: pyarrow, never Braid's code.

    write.py write DIR [--s3 BUCKET]   writes the test tables under DIR (or into BUCKET on the
                                       S3 server of $BRAID_S3_ENDPOINT) and prints, as one JSON
                                       object, what pyarrow reads back from them
"""
import datetime
import json
import os
import sys

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq


def orders():
    """16 files: 2 years x 2 regions x 4 files; ids sorted, 4 row groups of 25 rows each."""
    tables = []
    next_id = 0
    for year in (2024, 2025):
        for region in ("EU", "US"):
            for part in range(4):
                ids = list(range(next_id, next_id + 100))
                next_id += 100
                tables.append(((year, region, part), pa.table({
                    "id": pa.array(ids, pa.int64()),
                    "name": pa.array(["O'Brien" if i % 7 == 0 else f"customer {i}" for i in ids]),
                    "amount": pa.array([i * 3 % 101 for i in ids], pa.int64()),
                    "nation": pa.array([i % 25 for i in ids], pa.int64()),
                    "day": pa.array([datetime.date(year, 1, 1) + datetime.timedelta(days=i % 365) for i in ids]),
                })))
    return tables


def write(root, fs):
    answers = {}
    rows = []
    paths = []
    for (year, region, part), table in orders():
        path = f"{root}/sales/orders/year={year}/region={region}/part-{part}.parquet"
        paths.append(path)
        fs.create_dir(os.path.dirname(path))
        pq.write_table(table, path, filesystem=fs, row_group_size=25)
        for row in table.to_pylist():
            rows.append(dict(row, year=year, region=region))
    rows.sort(key=lambda r: r["id"])
    answers["orders"] = ["|".join(str(r[c]) for c in ("id", "name", "amount", "nation", "day", "year", "region")) for r in rows]

    # Schema evolution: a later file adds a column.
    fs.create_dir(f"{root}/sales/evolving")
    pq.write_table(pa.table({"k": [1, 2], "v": ["a", "b"]}), f"{root}/sales/evolving/1.parquet", filesystem=fs)
    pq.write_table(pa.table({"k": [3], "v": ["c"], "extra": [30.5]}), f"{root}/sales/evolving/2.parquet", filesystem=fs)
    answers["evolving"] = ["1|a|", "2|b|", "3|c|30.5"]

    # CSV, with a quote in a value.
    fs.create_dir(f"{root}/sales/notes")
    notes = pa.table({"id": [1, 2, 3], "author": ["O'Brien", "Smith, Jr.", "Zoë"], "stars": [5, 3, 4]})
    with fs.open_output_stream(f"{root}/sales/notes/notes.csv") as out:
        pacsv.write_csv(notes, out)

    # Names with a space, mixed case and a dot.
    fs.create_dir(f"{root}/My Schema/Mixed Table.v1")
    pq.write_table(pa.table({"Customer Name": ["Ann", "Bob"], "Total": [1, 2]}),
                   f"{root}/My Schema/Mixed Table.v1/data.parquet", filesystem=fs)

    # What pyarrow reads back (its own reader, the same files; listed by name, as the S3
    # server cannot describe a directory).
    dataset = ds.dataset(paths, filesystem=fs, format="parquet",
                         partitioning=ds.partitioning(flavor="hive"),
                         partition_base_dir=f"{root}/sales/orders")
    table = dataset.to_table()
    answers["orders_count"] = table.num_rows
    answers["orders_amount"] = sum(table.column("amount").to_pylist())
    eu_2025 = dataset.to_table(filter=(ds.field("year") == 2025) & (ds.field("region") == "EU"))
    answers["eu_2025"] = [eu_2025.num_rows, sum(eu_2025.column("amount").to_pylist())]
    answers["obrien"] = sum(1 for n in table.column("name").to_pylist() if n == "O'Brien")
    answers["files"] = len(dataset.files)
    return answers


def main():
    command, directory = sys.argv[1], sys.argv[2]
    assert command == "write", command
    if "--s3" in sys.argv:
        bucket = sys.argv[sys.argv.index("--s3") + 1]
        fs = pafs.S3FileSystem(
            access_key=os.environ["BRAID_S3_ACCESS_KEY"],
            secret_key=os.environ["BRAID_S3_SECRET_KEY"],
            endpoint_override=os.environ["BRAID_S3_ENDPOINT"],
            scheme="http", region="us-east-1", allow_bucket_creation=True)
        root = f"{bucket}/{directory}"
        if fs.get_file_info(bucket).type == pafs.FileType.NotFound:
            fs.create_dir(bucket)
        answers = write(root, fs)
    else:
        answers = write(directory, pafs.LocalFileSystem())
    print(json.dumps(answers))


if __name__ == "__main__":
    main()
