# The broker and the object store of the compose cluster: tansu (a Kafka-protocol broker) and
# s3s-fs (an S3-protocol server over a directory), both from crates.io, in one small image.
#
#   DOCKER_BUILDKIT=1 docker build -f docker/tools.Dockerfile -t braid-tools .
#
# `--target prebuilt` takes `bin/tansu` and `bin/s3s-fs` from the build context instead.

ARG BASE=debian:bookworm-slim
ARG RUST=rust:1-bookworm

FROM ${BASE} AS runtime-base
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/tools --create-home tools \
 && mkdir -p /data && chown tools:tools /data
COPY docker/tansu.sh /usr/local/bin/tansu-with-topics
WORKDIR /var/lib/tools

FROM ${RUST} AS build
RUN cargo install --locked --features dynostore --version 0.6.0 --root /out tansu \
 && cargo install --locked --features binary --version 0.14.1 --root /out s3s-fs

FROM runtime-base AS prebuilt
COPY bin/tansu bin/s3s-fs /usr/local/bin/
USER tools

FROM runtime-base AS tools
COPY --from=build /out/bin/tansu /out/bin/s3s-fs /usr/local/bin/
USER tools
