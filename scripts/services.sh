#!/usr/bin/env bash
# Starts and stops the real services the tests use, on loopback, in a scratch directory.
#
#   scripts/services.sh start    # PostgreSQL on a free port; writes $BRAID_SERVICES_DIR/env
#   scripts/services.sh stop
#   scripts/services.sh pg-kill     # stop PostgreSQL at once (fault tests)
#   scripts/services.sh pg-start    # start it again on the same port
#
# PostgreSQL: a fresh cluster (initdb/pg_ctl, run as the `postgres` user when we are root) with a
# superuser `braid` (password `braid-test`, scram-sha-256 over TCP), a database `braid` (collation
# C) and a database `braid_en` whose collation is en_US.UTF-8 (from Debian's locales-all). TLS is
# on (a throwaway self-signed certificate for localhost/127.0.0.1); the user `braid_tls` (same
# password) may only connect over TLS.
# Source the env file to point the tests at it: BRAID_PG_HOST, BRAID_PG_PORT, BRAID_PG_USER,
# BRAID_PG_PASSWORD, BRAID_PG_DATABASE, BRAID_PG_DATABASE_EN, BRAID_PG_TLS_USER, BRAID_PG_CA,
# BRAID_PG_BIN, BRAID_PG_DATA.
#
# Kafka: a tansu broker (a Kafka-protocol broker, `cargo install --locked --features dynostore
# tansu`) with in-memory storage on a free port: BRAID_KAFKA_NODES (host:port), BRAID_TANSU_PID.
# Known limitation of tansu 0.6: it numbers offsets wrongly inside multi-record batches, so test
# producers send one record per batch (librdkafka `batch.num.messages = 1`).
#
# S3: an s3s-fs server (an S3-protocol server over a directory, `cargo install --locked
# s3s-fs@0.14.1 --features binary`) on a free port, path-style, plain HTTP, keys braid/braid-s3-test:
# BRAID_S3_ENDPOINT (http://127.0.0.1:port), BRAID_S3_ACCESS_KEY, BRAID_S3_SECRET_KEY,
# BRAID_S3_DIR (the directory it serves: one subdirectory per bucket), BRAID_S3_PID.
set -euo pipefail

DIR="${BRAID_SERVICES_DIR:-/tmp/braid-services}"
PG_DATA="$DIR/pg"

pg_bin() {
  local bin
  bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
  if [ -z "$bin" ]; then
    echo "services.sh: PostgreSQL is not installed (apt-get install postgresql)" >&2
    exit 1
  fi
  echo "$bin"
}

# Runs a command as the owner of the data directory.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
  else
    "$@"
  fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
  stop >/dev/null 2>&1 || true
  local bin port
  bin="$(pg_bin)"
  port="$(free_port)"
  rm -rf "$DIR"
  mkdir -p "$PG_DATA"
  chmod 755 "$DIR"
  echo "braid-test" > "$DIR/pwfile"
  # A throwaway CA and a server certificate it signs.
  openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj "/CN=braid test CA" \
    -keyout "$DIR/ca.key" -out "$DIR/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$DIR/server.key" -out "$DIR/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > "$DIR/server.ext"
  openssl x509 -req -in "$DIR/server.csr" -CA "$DIR/ca.crt" -CAkey "$DIR/ca.key" -CAcreateserial \
    -days 7 -extfile "$DIR/server.ext" -out "$DIR/server.crt" 2>/dev/null
  chmod 600 "$DIR/server.key"
  if [ "$(id -u)" -eq 0 ]; then chown -R postgres "$DIR"; fi
  as_owner "$bin/initdb" -D "$PG_DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    --pwfile="$DIR/pwfile" -E UTF8 --locale=C >"$DIR/initdb.log"
  as_owner sh -c "printf 'hostnossl all braid_tls 0.0.0.0/0 reject\n' | cat - '$PG_DATA/pg_hba.conf' > '$PG_DATA/pg_hba.new' && mv '$PG_DATA/pg_hba.new' '$PG_DATA/pg_hba.conf'"
  pg_start "$bin" "$port"
  as_owner "$bin/psql" -h "$DIR" -p "$port" -U postgres -d postgres -q -v ON_ERROR_STOP=1 \
    -c "CREATE ROLE braid LOGIN SUPERUSER PASSWORD 'braid-test'" \
    -c "CREATE ROLE braid_tls LOGIN SUPERUSER PASSWORD 'braid-test'" \
    -c "CREATE DATABASE braid OWNER braid" \
    -c "CREATE DATABASE braid_en OWNER braid TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'en_US.UTF-8' LC_CTYPE 'en_US.UTF-8'" >/dev/null
  cat >"$DIR/env" <<ENV
export BRAID_PG_HOST=127.0.0.1
export BRAID_PG_PORT=$port
export BRAID_PG_USER=braid
export BRAID_PG_PASSWORD=braid-test
export BRAID_PG_DATABASE=braid
export BRAID_PG_DATABASE_EN=braid_en
export BRAID_PG_TLS_USER=braid_tls
export BRAID_PG_CA=$DIR/ca.crt
export BRAID_PG_BIN=$bin
export BRAID_PG_DATA=$PG_DATA
ENV
  echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (env: $DIR/env)"
  kafka_start
  s3_start
}

# Waits (bounded) until 127.0.0.1:$2 accepts connections; fails when process $1 is gone.
wait_port() {
  for _ in $(seq 1 100); do
    if python3 -c "import socket; socket.create_connection(('127.0.0.1', $2), 0.2)" 2>/dev/null; then
      return 0
    fi
    if ! kill -0 "$1" 2>/dev/null; then return 1; fi
    sleep 0.1
  done
  return 1
}

s3_start() {
  local s3s port
  s3s="$(command -v s3s-fs || echo "$HOME/.cargo/bin/s3s-fs")"
  if [ ! -x "$s3s" ]; then
    echo "services.sh: s3s-fs is not installed (cargo install --locked s3s-fs@0.14.1 --features binary)" >&2
    exit 1
  fi
  port="$(free_port)"
  mkdir -p "$DIR/s3"
  "$s3s" --host 127.0.0.1 --port "$port" --access-key braid --secret-key braid-s3-test "$DIR/s3" \
    >"$DIR/s3s.log" 2>&1 &
  local pid=$!
  echo "$pid" > "$DIR/s3s.pid"
  if ! wait_port "$pid" "$port"; then
    echo "services.sh: s3s-fs did not start; its log:" >&2
    cat "$DIR/s3s.log" >&2
    exit 1
  fi
  cat >>"$DIR/env" <<ENV
export BRAID_S3_ENDPOINT=http://127.0.0.1:$port
export BRAID_S3_ACCESS_KEY=braid
export BRAID_S3_SECRET_KEY=braid-s3-test
export BRAID_S3_DIR=$DIR/s3
export BRAID_S3_PID=$pid
ENV
  echo "s3s-fs on 127.0.0.1:$port"
}

kafka_start() {
  local tansu port
  tansu="$(command -v tansu || echo "$HOME/.cargo/bin/tansu")"
  if [ ! -x "$tansu" ]; then
    echo "services.sh: tansu is not installed (cargo install --locked --features dynostore tansu)" >&2
    exit 1
  fi
  port="$(free_port)"
  "$tansu" broker --storage-engine memory://tansu/ \
    --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
    >"$DIR/tansu.log" 2>&1 &
  local pid=$!
  echo "$pid" > "$DIR/tansu.pid"
  if ! wait_port "$pid" "$port"; then
    echo "services.sh: tansu did not start; its log:" >&2
    cat "$DIR/tansu.log" >&2
    exit 1
  fi
  cat >>"$DIR/env" <<ENV
export BRAID_KAFKA_NODES=127.0.0.1:$port
export BRAID_TANSU_PID=$pid
ENV
  echo "tansu $("$tansu" --version 2>/dev/null | awk '{print $2}') on 127.0.0.1:$port"
}

pg_start() {
  as_owner "$1/pg_ctl" -D "$PG_DATA" -l "$DIR/postgres.log" -w \
    -o "-p $2 -c listen_addresses=127.0.0.1 -c unix_socket_directories=$DIR -c max_connections=200 -c fsync=off -c ssl=on -c ssl_cert_file=$DIR/server.crt -c ssl_key_file=$DIR/server.key" \
    start >/dev/null
}

stop() {
  local bin
  bin="$(pg_bin)"
  if [ -f "$DIR/s3s.pid" ]; then
    kill "$(cat "$DIR/s3s.pid")" 2>/dev/null && echo "s3s-fs stopped" || true
    rm -f "$DIR/s3s.pid"
  fi
  if [ -f "$DIR/tansu.pid" ]; then
    kill "$(cat "$DIR/tansu.pid")" 2>/dev/null && echo "tansu stopped" || true
    rm -f "$DIR/tansu.pid"
  fi
  if [ -f "$PG_DATA/postmaster.pid" ]; then
    as_owner "$bin/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null
    echo "PostgreSQL stopped"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  pg-kill) as_owner "$(pg_bin)/pg_ctl" -D "$PG_DATA" -m immediate -w stop >/dev/null ;;
  pg-start)
    # shellcheck disable=SC1091
    source "$DIR/env"
    pg_start "$(pg_bin)" "$BRAID_PG_PORT" ;;
  *) echo "usage: $0 start|stop|pg-kill|pg-start" >&2; exit 2 ;;
esac
