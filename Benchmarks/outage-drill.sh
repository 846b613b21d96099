#!/usr/bin/env bash
# Collector outage drill (issue 12, item 9): the synthetic agent at 2,000
# decisions/s with the default spool (--spool-max-bytes default, default
# directory layout in a scratch directory), authrelayd SIGSTOPped for 10
# minutes, then SIGCONT. Reports what was dropped, the agent's RSS at the
# start, at the peak and at the end, the spool's bytes at the peak, how long
# the backlog took to replay, and what the collector wrote (events, unique,
# duplicates, loss lines). Release builds.
#
#   Benchmarks/outage-drill.sh                            10 minutes at 2,000/s
#   OUTAGE_SECONDS=60 RATE=2000 Benchmarks/outage-drill.sh a short one
#   OUTPUT_DIR=/var/tmp Benchmarks/outage-drill.sh        where the spool and output go
set -euo pipefail

rate="${RATE:-2000}"
outage="${OUTAGE_SECONDS:-600}"
warmup="${WARMUP_SECONDS:-20}"
root="$(cd "$(dirname "$0")/.." && pwd)"
scratch="${SCRATCH:-$root/.build-bench}"

echo "building release products in $scratch ..." >&2
swift build -c release --package-path "$root" --scratch-path "$scratch" >&2
bin="$scratch/release"

work="$(mktemp -d "${OUTPUT_DIR:-${TMPDIR:-/tmp}}/outage-drill.XXXXXX")"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -CONT "$pid" 2>/dev/null || true; kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  [[ -n "${KEEP:-}" ]] || rm -rf "$work"
}
trap cleanup EXIT

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
spool_bytes() { du -sb "$work/spool" 2>/dev/null | cut -f1; }
events_written() { grep -c '"type":"event"' "$work/events.jsonl" 2>/dev/null || echo 0; }

mkdir -p "$work/data"
# setsid: a process group of its own, so nothing aimed at this script's group
# (the kernel's SIGCONT to an orphaned group with a stopped member) resumes it.
setsid "$bin/authrelayd" --no-rpcbind --transports unix --unix-socket "$work/collector.sock" --data-dir "$work/data" \
  --output "$work/events.jsonl" --rotate-size 4G --fsync never --log-level notice 2> "$work/collector.log" &
collector=$!
pids+=("$collector")
for _ in $(seq 1 200); do [[ -S "$work/collector.sock" ]] && break; sleep 0.05; done

"$bin/authrelay" agent --source synthetic --rate "$rate" --duration 0 --collector "unix://$work/collector.sock" \
  --spool-dir "$work/spool" --agent-id outage-drill --drain-seconds 120 --log-level notice \
  > "$work/agent.out" 2> "$work/agent.log" &
agent=$!
pids+=("$agent")

sleep "$warmup"
rss_start="$(rss_kib "$agent")"
rss_peak="$rss_start"
spool_peak=0
echo "warm: agent RSS ${rss_start} KiB, $(events_written) events written; stopping the collector for ${outage} s" >&2

kill -STOP "$collector"
stopped_at=$(date +%s)
resumed=0
while (( $(date +%s) - stopped_at < outage )); do
  sleep 5
  # Still stopped? (If anything continued it, stop it again and say so.)
  if [[ "$(awk '{ print $3 }' "/proc/$collector/stat")" != "T" ]]; then resumed=$((resumed + 1)); kill -STOP "$collector"; fi
  rss="$(rss_kib "$agent")"; bytes="$(spool_bytes)"
  (( rss > rss_peak )) && rss_peak=$rss
  (( bytes > spool_peak )) && spool_peak=$bytes
  if (( ($(date +%s) - stopped_at) % 60 < 5 )); then echo "  $(( $(date +%s) - stopped_at )) s: RSS ${rss} KiB, spool ${bytes} bytes" >&2; fi
done
backlog_events="$(( outage * rate ))"
kill -CONT "$collector"
continued=$(date +%s.%N)
echo "collector continued; replaying about ${backlog_events} events" >&2

# Replayed: the spool is down to its open segment again.
while (( $(spool_bytes) > 16 * 1024 * 1024 )); do
  sleep 1
  rss="$(rss_kib "$agent")"; (( rss > rss_peak )) && rss_peak=$rss
  if (( $(date +%s) - ${continued%.*} > 1800 )); then echo "backlog not replayed in 30 minutes" >&2; break; fi
done
replayed=$(date +%s.%N)
sleep 10
rss_end="$(rss_kib "$agent")"

kill -TERM "$agent"
wait "$agent" || true
sleep 1
kill -TERM "$collector"
wait "$collector" || true

summary="$(cat "$work/agent.out")"
submitted="$(grep -o 'events submitted [0-9]*' <<< "$summary" | grep -o '[0-9]*$')"
dropped="$(grep -o 'dropped [0-9]*' <<< "$summary" | head -1 | grep -o '[0-9]*$')"
undelivered="$(grep -o 'undelivered [0-9]*' <<< "$summary" | grep -o '[0-9]*$')"
read -r written unique <<< "$(grep '"type":"event"' "$work/events.jsonl" | grep -o '"seq":[0-9]*' | sort | awk '{ n++; if ($0 != last) u++; last = $0 } END { print n + 0, u + 0 }')"
losses="$(grep -c '"type":"loss"' "$work/events.jsonl" || true)"
replay_seconds="$(awk -v a="$continued" -v b="$replayed" 'BEGIN { printf "%.1f", b - a }')"

cat <<EOF
outage drill: ${rate} events/s, collector stopped ${outage} s, the agent's default spool size
  agent:     submitted ${submitted}, dropped ${dropped}, undelivered ${undelivered}
  collector: ${written} event lines, ${unique} unique sequences, $(( written - unique )) duplicates, ${losses} loss lines
  agent RSS: start ${rss_start} KiB, peak ${rss_peak} KiB, end ${rss_end} KiB (end - start: $(( (rss_end - rss_start) / 1024 )) MiB)
  spool:     peak ${spool_peak} bytes ($(( spool_peak / 1024 / 1024 )) MiB)
  collector: found running (and stopped again) ${resumed} times during the outage
  replay:    backlog of about ${backlog_events} events replayed in ${replay_seconds} s ($(awk -v n="$backlog_events" -v s="$replay_seconds" 'BEGIN { printf "%d", n / s }') events/s, beside ${rate}/s live)
  summary:
$(sed 's/^/    /' <<< "$summary")
EOF
