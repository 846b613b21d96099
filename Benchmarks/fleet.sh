#!/usr/bin/env bash
# Fleet benchmark (issue 13, item 6), in one run on this machine (collector,
# agents and database on the same cores): events/s into PostgreSQL through
# authrelayd --sink postgres with 1 and 4 agents (legacy-reporter, version 2
# batches of 512, each acknowledged only after its COMMIT), beside the
# store alone (EventStore, 1 and 4 writers), `psql \copy` of the same kind of
# rows, and authrelayd --sink jsonl --fsync batch with 1 and 4 agents, with
# the group commit and (BEFORE_AUTHRELAYD) an authrelayd from before it.
# A temporary cluster of its own (fsync and synchronous_commit on, TCP
# loopback), release builds, medians of interleaved rounds.
#
#   Benchmarks/fleet.sh                                        3 rounds of 5 s per run
#   BEFORE_AUTHRELAYD=/work/wt/before/.build/release/authrelayd Benchmarks/fleet.sh
#   ROUNDS=5 SECONDS_PER_RUN=10 Benchmarks/fleet.sh
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
scratch="${SCRATCH:-$root/.build-bench}"
source "$root/scripts/setup-postgres.sh" >&2

echo "building release products in $scratch ..." >&2
for product in authrelayd legacy-reporter authrelay-postgres-bench; do
  swift build -c release --package-path "$root" --scratch-path "$scratch" --product "$product" >&2
done
bin="$scratch/release"
before=()
if [[ -n "${BEFORE_AUTHRELAYD:-}" ]]; then before=(--before-authrelayd "$BEFORE_AUTHRELAYD"); fi
exec "$bin/authrelay-postgres-bench" --rounds "${ROUNDS:-3}" --seconds "${SECONDS_PER_RUN:-5}" \
  --batch 512 --writers 1,4 --methods arrays --copy-rows "${COPY_ROWS:-1000000}" \
  --authrelayd "$bin/authrelayd" --reporter "$bin/legacy-reporter" --agents 1,4 "${before[@]}" "$@"
