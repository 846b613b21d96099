#!/usr/bin/env bash
# PostgreSQL store benchmark (issue 13, item 6): events/s that
# AuthRelayPostgres's EventStore commits, batches of 512, each counted only
# after its COMMIT returned, with 1 and with 4 concurrent writers (a
# connection each, as collectors' writer threads would have), by both write
# methods (arrays: pipelined INSERT ... SELECT FROM unnest ... ON CONFLICT DO
# NOTHING; copy: COPY into a staging table, then INSERT ... SELECT); beside
# them the same kind of rows loaded by `psql \copy` from a file in one COPY
# (what PostgreSQL itself ingests here). A temporary cluster of its own
# (fsync and synchronous_commit on, TCP loopback), release build, medians of
# interleaved rounds. Each run also prints the CPU its server processes and
# the benchmark itself used per event: on a shared machine the rates move by
# a third from run to run, the CPU per event hardly at all.
#
#   Benchmarks/postgres.sh                      3 rounds of 5 s per run
#   ROUNDS=5 SECONDS_PER_RUN=10 Benchmarks/postgres.sh
#   Benchmarks/postgres.sh --url postgresql://bench@db/bench --password-file F   an existing server (no \copy)
#   Benchmarks/postgres.sh --not-durable        fsync off
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
scratch="${SCRATCH:-$root/.build-bench}"
source "$root/scripts/setup-postgres.sh" >&2

echo "building the release benchmark in $scratch ..." >&2
swift build -c release --package-path "$root" --scratch-path "$scratch" --product authrelay-postgres-bench >&2
exec "$scratch/release/authrelay-postgres-bench" --rounds "${ROUNDS:-3}" --seconds "${SECONDS_PER_RUN:-5}" \
  --batch 512 --writers 1,4 --copy-rows "${COPY_ROWS:-1000000}" "$@"
