#!/bin/bash
# PostgreSQL for the compose cluster. On first start: a cluster in $PGDATA, the role `braid`
# (password $POSTGRES_PASSWORD), the database `tpch` with TPC-H tiny in `public`, and the empty
# database `iceberg` for the Iceberg SQL catalog. Then PostgreSQL in the foreground.
set -euo pipefail
bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
: "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile="$(mktemp)"
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  "$bin/initdb" -D "$PGDATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    --pwfile="$pwfile" -E UTF8 --locale=C >/dev/null
  rm -f "$pwfile"
  echo "host all all 0.0.0.0/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
  # Loaded over the socket only: the TCP port opens (and the health check passes) once done.
  "$bin/pg_ctl" -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  psql -q -v ON_ERROR_STOP=1 -U postgres -d postgres -v password="$POSTGRES_PASSWORD" <<'SQL'
CREATE ROLE braid LOGIN PASSWORD :'password';
CREATE DATABASE tpch OWNER braid;
CREATE DATABASE iceberg OWNER braid;
SQL
  psql -q -v ON_ERROR_STOP=1 -U braid -d tpch -f /usr/share/braid-tpch/schema.sql
  for file in /usr/share/braid-tpch/*.csv; do
    table="$(basename "$file" .csv)"
    psql -q -v ON_ERROR_STOP=1 -U braid -d tpch -c "\\copy $table FROM '$file' CSV HEADER"
  done
  psql -q -U braid -d tpch -c "ANALYZE"
  "$bin/pg_ctl" -D "$PGDATA" -w stop >/dev/null
  echo "postgres: database tpch loaded"
fi
exec "$bin/postgres" -D "$PGDATA" -c listen_addresses='*'
