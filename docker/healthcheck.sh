#!/bin/bash
# The image's health check. The coordinator is healthy when its HTTP port answers Trino's
# /v1/info as started; a worker when its Flight port accepts connections. Ports come from the
# same BRAID_* variables the daemons read.
set -euo pipefail
role="$(tr '\0' ' ' </proc/1/cmdline)"
case "$role" in
  *braid-scheduler*)
    exec 3<>"/dev/tcp/127.0.0.1/${BRAID_SCHEDULER_HTTP_PORT:-8080}"
    printf 'GET /v1/info HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
    grep -q '"starting": *false' <&3
    ;;
  *braid-executor*)
    exec 3<>"/dev/tcp/127.0.0.1/${BRAID_EXECUTOR_PORT:-50051}"
    ;;
esac
