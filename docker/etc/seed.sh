#!/bin/bash
# Loads the sample data through the cluster itself, once: an Iceberg table and a Delta table
# on the S3 store, and JSON messages on the Kafka topic `clicks`. Run by the compose service
# `seed` after the workers are up; a second run finds the data and does nothing.
set -euo pipefail
COORDINATOR="${COORDINATOR:-coordinator:50060}"
sql() { braid --connect "$COORDINATOR" --format csv -c "$1"; }
has_rows() { [ "$(sql "SELECT count(*) > 0 FROM $1" 2>/dev/null | tail -1)" = "true" ]; }

if ! has_rows lake.sales.orders; then
  sql "CREATE SCHEMA IF NOT EXISTS lake.sales"
  sql "CREATE TABLE lake.sales.orders AS SELECT * FROM tpch.tiny.orders"
fi
if ! has_rows delta.sales.lineitem; then
  sql "CREATE SCHEMA IF NOT EXISTS delta.sales"
  sql "CREATE TABLE delta.sales.lineitem AS SELECT * FROM tpch.tiny.lineitem"
fi
if ! has_rows kafka.default.clicks; then
  # One click for every tenth order, by the order's customer, on the order's day.
  sql "INSERT INTO kafka.default.clicks
       SELECT o_custkey, o_orderkey, 'checkout', CAST(o_orderdate AS TIMESTAMP)
       FROM tpch.tiny.orders WHERE o_orderkey % 10 = 0"
fi
echo "seed: lake.sales.orders, delta.sales.lineitem and kafka.default.clicks are loaded"
