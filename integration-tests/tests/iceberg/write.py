"""The independent writer and reader of the `iceberg` tests: pyiceberg, never Braid's code.

    write.py read URI WAREHOUSE TABLE [--s3]
                                          prints, as JSON, pyiceberg's read of TABLE (what Braid
                                          wrote): its rows, its column names and types
    write.py write URI WAREHOUSE [--s3]   writes the test tables into the Iceberg SQL catalog
                                          `braid_test` at URI (sqlite:///..., postgresql+psycopg2://...)
                                          with data under WAREHOUSE (a directory, or s3://bucket/dir
                                          on the server of $BRAID_S3_ENDPOINT), and prints, as one JSON
                                          object, what pyiceberg reads back from each snapshot
"""
import datetime
import json
import os
import sys
import warnings

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.expressions import EqualTo, LessThan
from pyiceberg.manifest import (DataFile, DataFileContent, FileFormat, ManifestContent, ManifestEntry,
                                ManifestEntryStatus, ManifestWriterV2)
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table.snapshots import Operation
from pyiceberg.table.update.snapshot import _FastAppendFiles
from pyiceberg.typedef import Record
from pyiceberg.transforms import IdentityTransform
from pyiceberg.types import DateType, DoubleType, IntegerType, LongType, NestedField, StringType

warnings.filterwarnings("ignore")

ORDERS = Schema(
    NestedField(1, "id", LongType(), required=False),
    NestedField(2, "name", StringType(), required=False),
    NestedField(3, "amount", LongType(), required=False),
    NestedField(4, "nation", LongType(), required=False),
    NestedField(5, "day", DateType(), required=False),
    NestedField(6, "year", IntegerType(), required=False),
    NestedField(7, "region", StringType(), required=False),
)
COLUMNS = ["id", "name", "amount", "nation", "day", "year", "region"]


def batch(first, year, region):
    ids = list(range(first, first + 100))
    return {
        "id": ids,
        "name": ["O'Brien" if i % 7 == 0 else f"customer {i}" for i in ids],
        "amount": [i * 3 % 101 for i in ids],
        "nation": [i % 25 for i in ids],
        "day": [datetime.date(year, 1, 1) + datetime.timedelta(days=i % 365) for i in ids],
        "year": [year] * 100,
        "region": [region] * 100,
    }


def arrow(rows, schema):
    return pa.table(rows, schema=schema.as_arrow())


def lines(table, columns):
    rows = table.select(columns).to_pylist()
    rows.sort(key=lambda r: tuple("" if r[c] is None else str(r[c]) for c in columns))
    return ["|".join("" if r[c] is None else str(r[c]) for c in columns) for r in rows]


class _DeleteManifestWriter(ManifestWriterV2):
    """A manifest of delete files (pyiceberg writes only data manifests)."""

    def content(self):
        return ManifestContent.DELETES

    @property
    def _meta(self):
        return {**super()._meta, "content": "deletes"}


class _AddDeleteFiles(_FastAppendFiles):
    """A snapshot that adds delete files: the table's manifests plus one delete manifest.
    pyiceberg 0.10 cannot write merge-on-read deletes itself; this commits ones written here."""

    def __init__(self, transaction, delete_files):
        super().__init__(operation=Operation.DELETE, transaction=transaction, io=transaction._table.io)
        self._delete_files = delete_files

    def _manifests(self):
        manifests = super()._manifests()
        metadata = self._transaction.table_metadata
        with _DeleteManifestWriter(metadata.spec(), metadata.schema(), self.new_manifest_output(),
                                   self._snapshot_id, self._compression) as writer:
            for delete_file in self._delete_files:
                writer.add(ManifestEntry.from_args(status=ManifestEntryStatus.ADDED,
                                                   snapshot_id=self._snapshot_id, data_file=delete_file))
        return manifests + [writer.to_manifest_file()]


def write_delete_file(table, name, arrow_table, content, equality_ids=None):
    """A Parquet delete file beside the table's data, committed in a snapshot of its own."""
    path = f"{table.location()}/data/{name}.parquet"
    output = table.io.new_output(path)
    with output.create(overwrite=True) as stream:
        pq.write_table(arrow_table, stream)
    delete_file = DataFile.from_args(
        content=content, file_path=path, file_format=FileFormat.PARQUET, partition=Record(),
        record_count=arrow_table.num_rows, file_size_in_bytes=len(table.io.new_input(path)),
        equality_ids=equality_ids)
    delete_file.spec_id = table.metadata.default_spec_id
    with table.transaction() as tx:
        _AddDeleteFiles(tx, [delete_file]).commit()


def position_deletes(file_path, positions):
    schema = pa.schema([
        pa.field("file_path", pa.string(), nullable=False, metadata={"PARQUET:field_id": "2147483546"}),
        pa.field("pos", pa.int64(), nullable=False, metadata={"PARQUET:field_id": "2147483545"}),
    ])
    return pa.table({"file_path": [file_path] * len(positions), "pos": positions}, schema=schema)


def write_deletes(catalog, answers):
    """Merge-on-read deletes: position deletes (pyiceberg reads them back) and equality deletes
    (pyiceberg cannot read those: the answer is the rows before, less the deleted ids)."""
    schema = Schema(NestedField(1, "id", LongType(), required=False),
                    NestedField(2, "label", StringType(), required=False))
    for name in ("pos_deleted", "eq_deleted"):
        table = catalog.create_table(f"sales.{name}", schema=schema,
                                     properties={"write.delete.mode": "merge-on-read"})
        for first in (0, 100):
            table.append(pa.table({"id": list(range(first, first + 100)),
                                   "label": [f"row {i}" for i in range(first, first + 100)]},
                                  schema=schema.as_arrow()))
    pos = catalog.load_table("sales.pos_deleted")
    files = sorted(f["file_path"] for f in pos.inspect.files().to_pylist())
    deletes = pa.concat_tables([position_deletes(files[0], [0, 5, 10]), position_deletes(files[1], [99])])
    write_delete_file(pos, "pos-deletes", deletes, DataFileContent.POSITION_DELETES)
    pos = catalog.load_table("sales.pos_deleted")
    answers["pos_deleted"] = lines(pos.scan().to_arrow(), ["id", "label"])

    eq = catalog.load_table("sales.eq_deleted")
    before = lines(eq.scan().to_arrow(), ["id", "label"])
    ids = pa.table({"id": pa.array([3, 150, 199], pa.int64())},
                   schema=pa.schema([pa.field("id", pa.int64(), metadata={"PARQUET:field_id": "1"})]))
    write_delete_file(eq, "eq-deletes", ids, DataFileContent.EQUALITY_DELETES, equality_ids=[1])
    answers["eq_deleted"] = [line for line in before if line.split("|")[0] not in ("3", "150", "199")]


def write(catalog):
    answers = {}
    for namespace in ("sales", "My Schema"):
        catalog.create_namespace_if_not_exists(namespace)

    # 16 data files: 4 appends (snapshots) of 2 years x 2 regions, ids sorted, row groups of 25.
    spec = PartitionSpec(
        PartitionField(source_id=6, field_id=1000, transform=IdentityTransform(), name="year"),
        PartitionField(source_id=7, field_id=1001, transform=IdentityTransform(), name="region"),
    )
    orders = catalog.create_table("sales.orders", schema=ORDERS, partition_spec=spec,
                                  properties={"write.parquet.row-group-limit": "25"})
    next_id = 0
    snapshots = []
    for _ in range(4):
        parts = []
        for year in (2024, 2025):
            for region in ("EU", "US"):
                parts.append(arrow(batch(next_id, year, region), ORDERS))
                next_id += 100
        orders.append(pa.concat_tables(parts))
        snapshots.append(orders.current_snapshot().snapshot_id)
    full = orders.scan().to_arrow()
    answers["orders"] = lines(full, COLUMNS)
    answers["orders_count"] = full.num_rows
    answers["orders_amount"] = sum(full.column("amount").to_pylist())
    eu = orders.scan(row_filter="year = 2025 AND region = 'EU'").to_arrow()
    answers["eu_2025"] = [eu.num_rows, sum(eu.column("amount").to_pylist())]
    answers["obrien"] = sum(1 for n in full.column("name").to_pylist() if n == "O'Brien")
    answers["files"] = len(orders.inspect.files())

    # A delete and an overwrite (pyiceberg rewrites the files: copy-on-write).
    orders.delete(delete_filter=LessThan("id", 10))
    orders.overwrite(arrow(batch(5000, 2025, "EU"), ORDERS).slice(0, 3),
                     overwrite_filter=EqualTo("id", 150))
    orders = catalog.load_table("sales.orders")
    now = orders.scan().to_arrow()
    answers["orders_now"] = lines(now, COLUMNS)
    answers["snapshots"] = [s.snapshot_id for s in orders.snapshots()]
    answers["first_snapshot"] = snapshots[0]
    answers["first"] = lines(orders.scan(snapshot_id=snapshots[0]).to_arrow(), COLUMNS)
    answers["second_snapshot_ms"] = orders.snapshot_by_id(snapshots[1]).timestamp_ms
    answers["second_count"] = orders.scan(snapshot_id=snapshots[1]).to_arrow().num_rows
    history = orders.inspect.history().to_pylist()
    answers["history"] = [f"{h['snapshot_id']}|{h['parent_id'] if h['parent_id'] is not None else ''}|{str(h['is_current_ancestor']).lower()}" for h in history]
    snaps = orders.inspect.snapshots().to_pylist()
    answers["snapshot_operations"] = [f"{s['snapshot_id']}|{s['operation']}" for s in snaps]
    files = orders.inspect.files().to_pylist()
    answers["live_files"] = len(files)
    answers["live_records"] = sum(f["record_count"] for f in files)
    answers["manifests"] = len(orders.inspect.manifests())
    parts = orders.inspect.partitions().to_pylist()
    answers["partitions"] = sorted(
        f"{{year={p['partition']['year']}, region={p['partition']['region']}}}|{p['record_count']}|{p['file_count']}"
        for p in parts)

    # Schema evolution: a column added, another renamed, after the first rows.
    schema = Schema(NestedField(1, "k", LongType(), required=False),
                    NestedField(2, "v", StringType(), required=False))
    evolving = catalog.create_table("sales.evolving", schema=schema)
    evolving.append(pa.table({"k": [1, 2], "v": ["a", "b"]}, schema=schema.as_arrow()))
    with evolving.update_schema() as update:
        update.add_column("extra", DoubleType())
        update.rename_column("v", "label")
    evolving = catalog.load_table("sales.evolving")
    evolving.append(pa.table({"k": [3], "label": ["c"], "extra": [30.5]},
                             schema=evolving.schema().as_arrow()))
    answers["evolving"] = lines(evolving.scan().to_arrow(), ["k", "label", "extra"])

    # A space and capitals in names.
    mixed = Schema(NestedField(1, "Customer Name", StringType(), required=False),
                   NestedField(2, "Total", LongType(), required=False))
    table = catalog.create_table(("My Schema", "Mixed Table"), schema=mixed)
    table.append(pa.table({"Customer Name": ["Ann", "O'Brien"], "Total": [1, 2]}, schema=mixed.as_arrow()))

    write_deletes(catalog, answers)
    return answers


def main():
    command, uri, warehouse = sys.argv[1], sys.argv[2], sys.argv[3]
    assert command in ("write", "read"), command
    properties = {"uri": uri, "warehouse": warehouse}
    if "--s3" in sys.argv:
        properties.update({
            "s3.endpoint": os.environ["BRAID_S3_ENDPOINT"],
            "s3.access-key-id": os.environ["BRAID_S3_ACCESS_KEY"],
            "s3.secret-access-key": os.environ["BRAID_S3_SECRET_KEY"],
            "s3.region": "us-east-1",
        })
        bucket = warehouse.removeprefix("s3://").split("/")[0]
        fs = pafs.S3FileSystem(
            access_key=os.environ["BRAID_S3_ACCESS_KEY"],
            secret_key=os.environ["BRAID_S3_SECRET_KEY"],
            endpoint_override=os.environ["BRAID_S3_ENDPOINT"],
            scheme="http", region="us-east-1", allow_bucket_creation=True)
        if fs.get_file_info(bucket).type == pafs.FileType.NotFound:
            fs.create_dir(bucket)
    else:
        os.makedirs(warehouse, exist_ok=True)
    catalog = SqlCatalog("braid_test", **properties)
    if command == "read":
        table = catalog.load_table(sys.argv[4])
        columns = [field.name for field in table.schema().fields]
        print(json.dumps({
            "rows": lines(table.scan().to_arrow(), columns),
            "columns": [f"{field.name} {field.field_type}" for field in table.schema().fields],
        }))
    else:
        print(json.dumps(write(catalog)))


if __name__ == "__main__":
    main()
