#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, runs every test.
#
#   scripts/test.sh            all tests
#   scripts/test.sh -E 'package(braid-catalogs)'   extra arguments go to cargo nextest
#
# The build goes to $CARGO_TARGET_DIR (default: ~/.cache/braid/target) so that repeated runs,
# CI's included, reuse it. It uses the `ci` profile of Cargo.toml (release, dependencies at a
# lower opt-level, so a cold build is shorter); BRAID_CARGO_PROFILE=release tests a release
# build instead.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/braid/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export BRAID_CARGO_PROFILE="${BRAID_CARGO_PROFILE:-ci}"

missing=()
command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)
command -v cc >/dev/null 2>&1 || missing+=(build-essential)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
ls -d /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# The REPL's test drives `braid` in a real terminal; the web UI's, headless Chromium.
command -v tmux >/dev/null 2>&1 || missing+=(tmux)
command -v less >/dev/null 2>&1 || missing+=(less)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium chromium-driver)
# librdkafka (built by rdkafka-sys for the Kafka connector) links OpenSSL and zlib.
for pkg in libssl-dev zlib1g-dev pkg-config; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
# The en_US.UTF-8 collation of the test database braid_en (scripts/services.sh). Not `grep -q`:
# it may exit before `locale` has written everything, and under pipefail the SIGPIPE would
# count as missing (it did, about one run in two, reinstalling the package every time).
locale -a 2>/dev/null | grep -ix 'en_US.utf8' >/dev/null || missing+=(locales-all)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
# The tools below are installed in the background, beside the release build: that build leaves
# a core idle for long stretches (single large crates, links), and on a cold machine these
# installs took about 20 minutes one after another. The build goes on in the foreground; the
# tests wait for the installs and fail if one failed.
install_tools() {
  # Its own target directory: the release build holds the lock on the main one.
  export CARGO_TARGET_DIR="$CARGO_TARGET_DIR/tools"
  if ! cargo nextest --version >/dev/null 2>&1; then
    echo "== installing cargo-nextest"
    cargo install --locked cargo-nextest
  fi
  # The two test services below are built at opt-level 1: they serve small test loads, and a
  # full release build of tansu alone took 14 minutes of a cold CI run.
  # The Kafka-protocol broker of the Kafka tests (scripts/services.sh).
  if ! command -v tansu >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/tansu" ]; then
    echo "== installing tansu"
    CARGO_PROFILE_RELEASE_OPT_LEVEL=1 cargo install --locked --features dynostore --version 0.6.0 tansu
  fi
  # The S3-protocol server of the object-storage tests (scripts/services.sh).
  if ! command -v s3s-fs >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/s3s-fs" ]; then
    echo "== installing s3s-fs"
    CARGO_PROFILE_RELEASE_OPT_LEVEL=1 cargo install --locked --features binary --version 0.14.1 s3s-fs
  fi
  # Independent clients the tests drive Braid and the sources with: the ADBC Flight SQL driver,
  # confluent-kafka (librdkafka's Python client), fastavro, pyiceberg (its SQL catalog on
  # SQLite and PostgreSQL), deltalake (the Delta Lake tables' writer and reader), and Trino's
  # own client with its SQLAlchemy dialect and pandas (`read_sql` over it, as notebooks do), and
  # selenium, which drives Chromium through the web UI.
  if ! "$BRAID_PYTHON" -c 'import adbc_driver_flightsql, pyarrow, confluent_kafka, fastavro, pyiceberg.catalog.sql, psycopg2, deltalake, trino.sqlalchemy, sqlalchemy, pandas, selenium' >/dev/null 2>&1; then
    echo "== installing adbc-driver-flightsql, pyarrow, confluent-kafka, fastavro, pyiceberg, deltalake, trino, pandas and selenium into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check adbc-driver-flightsql pyarrow \
      confluent-kafka fastavro 'pyiceberg[sql-sqlite,sql-postgres,pyarrow]==0.10.0' 'deltalake==1.2.1' \
      'trino[sqlalchemy]==0.340.0' 'pandas==3.1.1' 'selenium==4.38.0'
  fi
  # dbt with dbt-trino, which a test runs unchanged against the Trino protocol, in a
  # virtualenv of its own (dbt pins many packages). Pinned: later dbt-core releases download a
  # parser from GitHub while installing.
  if ! "$DBT_VENV/bin/python" -c 'import dbt.adapters.trino' >/dev/null 2>&1; then
    echo "== installing dbt-core and dbt-trino into $DBT_VENV"
    python3 -m venv "$DBT_VENV"
    "$DBT_VENV/bin/pip" install --quiet --disable-pip-version-check 'dbt-core==1.8.9' 'dbt-trino==1.8.2'
  fi
  echo "== test tools installed after ${SECONDS}s"
}
VENV="$HOME/.cache/braid/venv"
export BRAID_PYTHON="$VENV/bin/python"
DBT_VENV="$HOME/.cache/braid/dbt-venv"
export BRAID_DBT="$DBT_VENV/bin/dbt"
mkdir -p "$CARGO_TARGET_DIR"
TOOLS_LOG="$CARGO_TARGET_DIR/test-tools.log"
SECONDS=0
install_tools >"$TOOLS_LOG" 2>&1 &
tools_pid=$!
trap 'pkill -P "$tools_pid" 2>/dev/null; kill "$tools_pid" 2>/dev/null || true' EXIT

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== building (profile $BRAID_CARGO_PROFILE), installing the test tools beside it (log: $TOOLS_LOG)"
cargo build --profile "$BRAID_CARGO_PROFILE" --workspace --bins --tests
echo "== build done after ${SECONDS}s; waiting for the test tools"
if ! wait "$tools_pid"; then
  cat "$TOOLS_LOG"
  echo "== installing the test tools failed (log above: $TOOLS_LOG)"
  exit 1
fi
trap - EXIT
grep '^== ' "$TOOLS_LOG" || true

# docker/ (images, the compose cluster) needs a Docker daemon; where none answers, say so.
if docker info >/dev/null 2>&1; then
  echo "== docker/ (scripts/docker-test.sh)"
  scripts/docker-test.sh
else
  echo "== docker/: NOT TESTED here, no Docker daemon answers 'docker info' (run scripts/docker-test.sh where one does)"
fi

echo "== starting services"
scripts/services.sh start
trap 'scripts/services.sh stop' EXIT
# shellcheck disable=SC1091
source "${BRAID_SERVICES_DIR:-/tmp/braid-services}/env"

echo "== running tests"
cargo nextest run --cargo-profile "$BRAID_CARGO_PROFILE" --workspace --profile ci --no-fail-fast "$@"
