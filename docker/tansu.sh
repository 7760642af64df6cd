#!/bin/bash
# Runs the tansu broker and creates the topics named in $TOPICS ("name:partitions ...") once it
# answers, then marks /tmp/topics-ready (the health check); the broker's exit status is the
# container's.
set -euo pipefail
tansu broker "$@" &
broker=$!
trap 'kill -TERM "$broker"' TERM INT
for topic in ${TOPICS:-}; do
  name="${topic%%:*}" partitions="${topic##*:}"
  for attempt in $(seq 1 50); do
    if tansu topic create "$name" --partitions "$partitions" >/dev/null 2>&1; then
      echo "tansu-with-topics: topic $name ($partitions partitions) ready"
      break
    fi
    if [ "$attempt" -eq 50 ]; then echo "tansu-with-topics: cannot create topic $name" >&2; exit 1; fi
    sleep 0.2
  done
done
touch /tmp/topics-ready
wait "$broker"
