#!/bin/bash
# Writes TPC-H tiny, from braid's built-in tpch catalog, as one CSV file per table into $1,
# and $1/schema.sql with the statements that create the tables (types from information_schema).
set -euo pipefail
out="$1"
mkdir -p "$out"
: >"$out/schema.sql"
for table in region nation part supplier partsupp customer orders lineitem; do
  columns="$(braid --format csv -c "SELECT column_name || ' ' || data_type
      FROM tpch.information_schema.columns
      WHERE table_schema = 'tiny' AND table_name = '$table' ORDER BY ordinal_position" 2>/dev/null \
    | tail -n +2 | sed 's/^"//; s/"$//' | paste -sd, -)"
  echo "CREATE TABLE $table ($columns);" >>"$out/schema.sql"
  braid --format csv -c "SELECT * FROM tpch.tiny.$table" >"$out/$table.csv" 2>/dev/null
done
