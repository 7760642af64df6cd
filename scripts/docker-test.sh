#!/usr/bin/env bash
# Tests docker/: builds the images, starts the compose cluster, waits until it is healthy and
# seeded, runs a query joining PostgreSQL, Kafka, Iceberg and tpch through `braid --connect` in
# its container and checks its answer against the same query on tpch alone, kills a worker
# container mid-query and checks that the next query still answers, stops a worker and the
# coordinator with SIGTERM and checks that they exit cleanly, then takes everything down.
#
#   scripts/docker-test.sh        (needs a running Docker daemon; scripts/test.sh runs it when
#                                  `docker info` answers)
#
# The images are built with `--target prebuilt` from this machine's build
# ($CARGO_TARGET_DIR/$BRAID_CARGO_PROFILE/braid, stripped; the profile scripts/test.sh builds,
# `release` by default) and the tansu and s3s-fs that scripts/test.sh
# installs, instead of compiling inside Docker. Without a `debian:bookworm-slim` image (none can
# be pulled on a machine without registry access) one is made with debootstrap.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/braid/target}"
PROJECT="braid-docker-test"
TAG="test"

step() { echo "== docker: $*"; }
fail() { echo "docker-test: FAILED: $*" >&2; exit 1; }

docker info >/dev/null 2>&1 || fail "no Docker daemon answers (docker info)"
# BuildKit skips the stages a target does not use (the Rust build stage here). A client without
# the buildx plugin cannot use it; Debian's docker.io client can, through DOCKER_BUILDKIT.
if docker buildx version >/dev/null 2>&1; then
  build() { docker buildx build --load --network host "$@"; }
elif [ -x /usr/bin/docker ]; then
  build() { DOCKER_BUILDKIT=1 /usr/bin/docker build --network host "$@"; }
else
  fail "no BuildKit: install docker-buildx or Debian's docker.io"
fi
if docker compose version >/dev/null 2>&1; then
  compose() { docker compose -p "$PROJECT" -f docker/compose.yml "$@"; }
elif command -v docker-compose >/dev/null 2>&1; then
  compose() { docker-compose -p "$PROJECT" -f docker/compose.yml "$@"; }
else
  fail "neither 'docker compose' nor docker-compose is installed"
fi

braid_bin="$CARGO_TARGET_DIR/${BRAID_CARGO_PROFILE:-release}/braid"
tansu_bin="$(command -v tansu || echo "$HOME/.cargo/bin/tansu")"
s3s_bin="$(command -v s3s-fs || echo "$HOME/.cargo/bin/s3s-fs")"
for bin in "$braid_bin" "$tansu_bin" "$s3s_bin"; do
  [ -x "$bin" ] || fail "$bin is missing (scripts/test.sh builds and installs it)"
done

if ! docker image inspect debian:bookworm-slim >/dev/null 2>&1; then
  if ! docker pull debian:bookworm-slim >/dev/null 2>&1; then
    step "making debian:bookworm-slim with debootstrap"
    command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap
    rootfs="$(mktemp -d)"
    debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >/dev/null
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | docker import - debian:bookworm-slim >/dev/null
    rm -rf "$rootfs"
  fi
fi

context="$(mktemp -d)"
cleanup() {
  compose down -v --remove-orphans >/dev/null 2>&1 || true
  rm -rf "$context"
}
trap cleanup EXIT
mkdir -p "$context/bin"
cp -r docker "$context/docker"
strip -o "$context/bin/braid" "$braid_bin"
cp "$tansu_bin" "$s3s_bin" "$context/bin/"

step "building braid:$TAG, braid-tools:$TAG, braid-postgres:$TAG"
build -q --target prebuilt -f docker/Dockerfile -t "braid:$TAG" "$context" >/dev/null
build -q --target prebuilt -f docker/tools.Dockerfile -t "braid-tools:$TAG" "$context" >/dev/null
build -q --build-arg "BRAID_IMAGE=braid:$TAG" -f docker/postgres.Dockerfile \
  -t "braid-postgres:$TAG" "$context" >/dev/null

size_mb() { docker image inspect -f '{{.Size}}' "$1" | awk '{printf "%.0f", $1 / 1000000}'; }
base="$(size_mb debian:bookworm-slim)"
for image in "braid:$TAG" "braid-tools:$TAG" "braid-postgres:$TAG"; do
  size="$(size_mb "$image")"
  echo "image $image: $size MB ($((size - base)) MB on top of debian:bookworm-slim, $base MB)"
done

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
export BRAID_IMAGE="braid:$TAG" BRAID_TOOLS_IMAGE="braid-tools:$TAG" BRAID_POSTGRES_IMAGE="braid-postgres:$TAG"
BRAID_FLIGHT_SQL_PORT="$(free_port)"
BRAID_HTTP_PORT="$(free_port)"
export BRAID_FLIGHT_SQL_PORT BRAID_HTTP_PORT
export PG_PASSWORD="it's-a-test" S3_SECRET_KEY="braid-docker-test"

container() { compose ps -a -q "$1"; }
# Waits up to $2 seconds for service $1's container to be healthy (or, with "exited", to
# have exited 0).
wait_for() {
  local service="$1" bound="$2" want="${3:-healthy}" id state
  for _ in $(seq 1 $((bound * 2))); do
    id="$(container "$service")"
    if [ -n "$id" ]; then
      if [ "$want" = exited ]; then
        state="$(docker inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$id")"
        [ "$state" = "exited 0" ] && return 0
        case "$state" in exited*) compose logs "$service" >&2; fail "$service $state";; esac
      else
        state="$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$id")"
        [ "$state" = healthy ] && return 0
      fi
    fi
    sleep 0.5
  done
  compose logs --tail 50 >&2
  fail "$service not $want within $bound s"
}
# A statement through `braid --connect` in the client container; CSV on stdout.
braid_sql() { compose run --rm -T braid --format csv -c "$1" 2>/dev/null; }

FEDERATED="SELECT n.n_name AS nation, count(*) AS clicks, sum(o.o_totalprice) AS order_value
FROM kafka.default.clicks k
JOIN lake.sales.orders o ON o.o_orderkey = k.orderkey
JOIN pg.public.customer c ON c.c_custkey = o.o_custkey
JOIN tpch.tiny.nation n ON n.n_nationkey = c.c_nationkey
GROUP BY n.n_name ORDER BY clicks DESC, nation LIMIT 5"
EXPECTED="SELECT n.n_name AS nation, count(*) AS clicks, sum(o.o_totalprice) AS order_value
FROM tpch.tiny.orders o
JOIN tpch.tiny.customer c ON c.c_custkey = o.o_custkey
JOIN tpch.tiny.nation n ON n.n_nationkey = c.c_nationkey
WHERE o.o_orderkey % 10 = 0
GROUP BY n.n_name ORDER BY clicks DESC, nation LIMIT 5"

step "compose up"
SECONDS=0
compose up -d --no-build || { compose logs --tail 50 >&2; fail "compose up"; }
wait_for seed 300 exited
answer="$(braid_sql "$FEDERATED")"
echo "$answer"
echo "from \`up\` to the first federated answer: $SECONDS s"
expected="$(braid_sql "$EXPECTED")"
[ "$answer" = "$expected" ] || fail "the federated query answered
$answer
where tpch alone answers
$expected"
[ "$(echo "$answer" | wc -l)" -eq 6 ] || fail "expected a header and 5 rows: $answer"
delta="$(braid_sql "SELECT count(*) FROM delta.sales.lineitem")"
tpch="$(braid_sql "SELECT count(*) FROM tpch.tiny.lineitem")"
[ "$delta" = "$tpch" ] || fail "delta.sales.lineitem has $delta rows, tpch.tiny.lineitem $tpch"

step "killing worker-2 mid-query"
LONG="SELECT l_returnflag, count(*), sum(l_quantity) FROM tpch.sf5.lineitem GROUP BY 1 ORDER BY 1"
braid_sql "$LONG" >"$context/long.out" 2>&1 &
long=$!
running=""
for _ in $(seq 1 120); do
  running="$(braid_sql "SELECT count(*) FROM system.runtime.queries
    WHERE state = 'RUNNING' AND query LIKE '%tpch.sf5.lineitem%' AND query NOT LIKE '%system.runtime%'" | tail -1)"
  [ "$running" = 1 ] && break
  sleep 0.5
done
[ "$running" = 1 ] || fail "the long query was never seen running; its output: $(cat "$context/long.out")
the coordinator's queries: $(braid_sql "SELECT query_id, state, error_message, substr(query, 1, 60) FROM system.runtime.queries")"
docker kill "$(container worker-2)" >/dev/null
if wait "$long"; then
  echo "the query running when worker-2 was killed finished: $(tail -1 "$context/long.out")"
else
  echo "the query running when worker-2 was killed failed: $(tail -1 "$context/long.out")"
fi
again="$(braid_sql "$FEDERATED")"
[ "$again" = "$expected" ] || fail "after the kill the federated query answered
$again"
echo "the next query answered as before, on the remaining worker"

step "graceful stops (SIGTERM)"
compose stop -t 60 worker-1 >/dev/null
code="$(docker inspect -f '{{.State.ExitCode}}' "$(container worker-1)")"
[ "$code" = 0 ] || fail "worker-1 exited with $code on SIGTERM"
compose stop -t 60 coordinator >/dev/null
code="$(docker inspect -f '{{.State.ExitCode}}' "$(container coordinator)")"
[ "$code" = 0 ] || fail "the coordinator exited with $code on SIGTERM"
echo "worker-1 and the coordinator exited with 0 on SIGTERM"

step "compose down"
compose down -v --remove-orphans >/dev/null
left="$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT")"
networks="$(docker network ls -q --filter "label=com.docker.compose.project=$PROJECT")"
[ -z "$left$networks" ] || fail "left behind: containers [$left] networks [$networks]"
echo "docker-test: the compose cluster answered, survived a killed worker, stopped cleanly and left nothing running"
