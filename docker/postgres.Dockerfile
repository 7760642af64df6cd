# PostgreSQL with TPC-H tiny, for the compose cluster. The data comes from the braid image's
# tpch catalog when the image is built (so build the braid image first):
#
#   DOCKER_BUILDKIT=1 docker build -f docker/postgres.Dockerfile -t braid-postgres .

ARG BASE=debian:bookworm-slim
ARG BRAID_IMAGE=braid

FROM ${BRAID_IMAGE} AS tpch
COPY docker/postgres/tpch-export.sh /usr/local/bin/tpch-export
RUN tpch-export /tmp/tpch

FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
COPY --from=tpch /tmp/tpch /usr/share/braid-tpch
COPY docker/postgres/entrypoint.sh /usr/local/bin/postgres-entrypoint
ENV PGDATA=/var/lib/postgresql/data
USER postgres
EXPOSE 5432
HEALTHCHECK --interval=2s --timeout=3s --start-period=120s --retries=3 \
  CMD ["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"]
CMD ["postgres-entrypoint"]
