#!/usr/bin/env bash
# Collector ingest benchmark (issue 3, item 9): events/s that one plain C client
# (legacy-reporter, version 2 batches of 512) gets into
#   - legacy-collector -2   a plain C server from the same generated code that only counts
#   - authrelayd --sink null
#   - authrelayd --sink jsonl --fsync never
#   - authrelayd --sink jsonl --fsync batch
# over unix and tcp, interleaved (every server once per round), release builds.
# Prints the median events/s of each and its ratio to the C server of the same transport.
#
#   Benchmarks/collector.sh                 3 rounds of 3 s per run
#   ROUNDS=5 SECONDS_PER_RUN=5 Benchmarks/collector.sh
#   OUTPUT_DIR=/var/tmp Benchmarks/collector.sh   where the JSON Lines go (default: a temp dir)
set -euo pipefail

rounds="${ROUNDS:-3}"
seconds="${SECONDS_PER_RUN:-3}"
batch=512
root="$(cd "$(dirname "$0")/.." && pwd)"
scratch="${SCRATCH:-$root/.build-bench}"

echo "building release products in $scratch ..." >&2
for product in authrelayd legacy-reporter legacy-collector; do
  swift build -c release --package-path "$root" --scratch-path "$scratch" --product "$product" >&2
done
bin="$scratch/release"

work="$(mktemp -d "${OUTPUT_DIR:-${TMPDIR:-/tmp}}/collector-bench.XXXXXX")"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# Waits for "listening tcp 127.0.0.1:PORT" in a log and prints PORT.
tcp_port() {
  local log="$1" line
  for _ in $(seq 1 200); do
    line="$(grep -m1 -o 'listening tcp 127.0.0.1:[0-9]*' "$log" 2>/dev/null || true)"
    if [[ -n "$line" ]]; then echo "${line##*:}"; return; fi
    sleep 0.05
  done
  echo "no listening line in $log:" >&2; cat "$log" >&2; exit 1
}

servers=(c null never batch)
declare -A port socket
start_authrelayd() { # name, sink flags...
  local name="$1"; shift
  "$bin/authrelayd" --no-rpcbind --transports tcp,unix --port 0 --unix-socket "$work/$name.sock" \
    --data-dir "$work/$name-data" --output "$work/$name.jsonl" --rotate-size 256M --rotate-keep 1 \
    --log-level info "$@" 2> "$work/$name.log" &
  pids+=($!)
  port[$name]="$(tcp_port "$work/$name.log")"
  socket[$name]="$work/$name.sock"
}
"$bin/legacy-collector" -2 -n -q -t tcp,unix -P 0 -s "$work/c.sock" 2> "$work/c.log" &
pids+=($!)
port[c]="$(tcp_port "$work/c.log")"
socket[c]="$work/c.sock"
start_authrelayd null --sink null
start_authrelayd never --sink jsonl --fsync never
start_authrelayd batch --sink jsonl --fsync batch

declare -A results
for round in $(seq 1 "$rounds"); do
  for transport in unix tcp; do
    for name in "${servers[@]}"; do
      if [[ "$transport" == unix ]]; then target=(-t unix -s "${socket[$name]}"); else target=(-t tcp -P "${port[$name]}"); fi
      line="$("$bin/legacy-reporter" "${target[@]}" -B "$batch" -D "$seconds")"
      rate="$(sed -n 's/.*events_per_s=\([0-9]*\).*/\1/p' <<< "$line")"
      results[$transport,$name]+="$rate "
      echo "round $round $transport $name: $rate events/s" >&2
    done
  done
done

median() { tr ' ' '\n' <<< "$1" | grep . | sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : int((v[NR/2]+v[NR/2+1])/2)}'; }
label() {
  case "$1" in
    c) echo "legacy-collector -2 (C, counts only)";;
    null) echo "authrelayd --sink null";;
    never) echo "authrelayd --sink jsonl --fsync never";;
    batch) echo "authrelayd --sink jsonl --fsync batch";;
  esac
}

echo
echo "batches of $batch events, $rounds interleaved rounds of ${seconds}s, median events/s; $(nproc) CPUs; output on $(df -T "$work" | awk 'NR==2 {print $2}')"
printf "| %-9s | %-40s | %12s | %8s |\n" transport server "events/s" "vs C"
printf "|%s|%s|%s|%s|\n" "-----------" "------------------------------------------" "--------------" "----------"
for transport in unix tcp; do
  base="$(median "${results[$transport,c]}")"
  for name in "${servers[@]}"; do
    value="$(median "${results[$transport,$name]}")"
    printf "| %-9s | %-40s | %12s | %8s |\n" "$transport" "$(label "$name")" "$value" "$(awk -v a="$value" -v b="$base" 'BEGIN {printf "%.2f", (b > 0) ? a / b : 0}')"
  done
done
