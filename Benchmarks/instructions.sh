#!/usr/bin/env bash
# Instructions per event (issue 14, item 6): a count that does not drift with
# the VM's placement, beside the wall-clock rounds of Benchmarks/collector.sh.
# valgrind --tool=callgrind counts every instruction the server executes while
# one legacy-reporter (plain C, not counted) sends it version 2 batches of 512:
#   - legacy-collector -2   the plain C server that only counts
#   - authrelayd --sink null
#   - authrelayd --sink jsonl --fsync never
# Each server runs twice, for LOW and HIGH batches; start-up and shut-down are
# the same in both, so (Ir(HIGH) - Ir(LOW)) / ((HIGH - LOW) * 512) is what one
# event costs. ALLOCS=1 also runs each under memcheck and prints heap
# allocations per batch the same way (malloc, calloc, realloc, new).
# (perf stat -e instructions does not work on this VM: no hardware counters.)
#
#   Benchmarks/instructions.sh                    release build into .build-bench, unix
#   BIN=/other/.build/release Benchmarks/instructions.sh   binaries built elsewhere (another commit)
#   TRANSPORT=tcp LOW=10 HIGH=110 ALLOCS=1 Benchmarks/instructions.sh
#
# MODE=client counts the CLIENT instead (issue 14 items 4 and 6): the server is
# `legacy-collector -2` (plain C, not under valgrind) and each client runs
# under callgrind for LOW and HIGH batches' worth of events, the same difference:
#   - legacy-reporter            one rpcgen stub call (version 1) per event
#   - authrelay latency calls    one CollectorClient.report(event) per event
#   - legacy-reporter -B 512     version 2 batches of 512
#   - authrelay send             the queued sender (EventSender), batches of up to 512
# The Swift one-call driver builds each event as legacy-reporter does (a
# formatted target path, a 32-byte digest); `authrelay send`'s events have no
# digest, and it sends SEND_LOW and SEND_HIGH events (its queue holds 16384). KEEP=dir keeps the HIGH runs' callgrind files there, for
# `callgrind_annotate --inclusive=yes dir/<name>.out`.
#   MODE=client Benchmarks/instructions.sh
#   MODE=client TRANSPORT=tcp KEEP=/tmp/cg Benchmarks/instructions.sh
set -euo pipefail

low="${LOW:-10}"
high="${HIGH:-110}"
transport="${TRANSPORT:-unix}"
batch=512
root="$(cd "$(dirname "$0")/.." && pwd)"
if [[ -z "${BIN:-}" ]]; then
  scratch="${SCRATCH:-$root/.build-bench}"
  echo "building release products in $scratch ..." >&2
  for product in authrelayd authrelay legacy-reporter legacy-collector; do
    swift build -c release --package-path "$root" --scratch-path "$scratch" --product "$product" >&2
  done
  BIN="$scratch/release"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/instructions.XXXXXX")"
server=""
cleanup() {
  [[ -n "$server" ]] && kill "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Waits until the server (slow under valgrind) listens; prints the target arguments for legacy-reporter.
target() {
  local log="$1" sock="$2" line
  for _ in $(seq 1 1200); do
    kill -0 "$server" 2>/dev/null || break
    if [[ "$transport" == unix ]]; then
      [[ -S "$sock" ]] && { echo "-t unix -s $sock"; return; }
    else
      line="$(grep -m1 -o 'listening tcp 127.0.0.1:[0-9]*' "$log" 2>/dev/null || true)"
      [[ -n "$line" ]] && { echo "-t tcp -P ${line##*:}"; return; }
    fi
    sleep 0.1
  done
  echo "the server did not start:" >&2; cat "$log" >&2; kill "$server" 2>/dev/null; exit 1
}

# One server under one valgrind tool for `batches` batches; prints the count (instructions or allocations).
run() { # tool, batches, name, server command...
  local tool="$1" batches="$2" name="$3"; shift 3
  local tag="${name//[^a-z0-9]/_}-$tool-$batches" out  # no spaces: the socket path is split into arguments
  rm -rf "$work/$tag" && mkdir -p "$work/$tag"
  local sock="$work/$tag/s.sock" log="$work/$tag/log"
  local -a cmd=("${@//@SOCK@/$sock}")
  cmd=("${cmd[@]//@DIR@/$work/$tag}")
  if [[ "$tool" == callgrind ]]; then
    valgrind --tool=callgrind --callgrind-out-file="$work/$tag/out" "${cmd[@]}" > "$work/$tag/stdout" 2> "$log" &
  else
    valgrind --tool=memcheck --leak-check=no "${cmd[@]}" > "$work/$tag/stdout" 2> "$log" &
  fi
  server=$!
  # shellcheck disable=SC2046
  "$BIN/legacy-reporter" $(target "$log" "$sock") -B "$batch" -n $((batches * batch)) -T 60000 > "$work/$tag/reporter" \
    || { echo "legacy-reporter failed against $name:" >&2; cat "$work/$tag/reporter" "$log" >&2; kill "$server"; exit 1; }
  kill -TERM "$server"
  wait "$server" || true
  server=""
  if [[ "$tool" == callgrind ]]; then
    out="$(sed -n 's/^summary: *\([0-9]*\).*/\1/p; s/^totals: *\([0-9]*\).*/\1/p' "$work/$tag/out" | head -n 1)"
  else
    out="$(sed -n 's/.*total heap usage: \([0-9,]*\) allocs.*/\1/p' "$log" | tr -d ,)"
  fi
  [[ -n "$out" ]] || { echo "no count from $name ($tool):" >&2; tail "$log" >&2; exit 1; }
  echo "$out"
}

measure() { # name, server command...
  local name="$1"; shift
  local a b
  a="$(run callgrind "$low" "$name" "$@")"
  b="$(run callgrind "$high" "$name" "$@")"
  local line
  line="$(awk -v a="$a" -v b="$b" -v n=$(( (high - low) * batch )) -v name="$name" \
    'BEGIN { printf "%-28s %8.0f instructions/event", name, (b - a) / n }')"
  if [[ "${ALLOCS:-0}" == 1 ]]; then
    a="$(run memcheck "$low" "$name" "$@")"
    b="$(run memcheck "$high" "$name" "$@")"
    line+="$(awk -v a="$a" -v b="$b" -v n=$(( high - low )) 'BEGIN { printf "   %8.1f allocations/batch", (b - a) / n }')"
  fi
  echo "$line"
}

# Copies without DWARF: valgrind 3.19 cannot read the debug info lld/clang write
# for legacy-collector ("Possibly corrupted debuginfo file"); symbols stay.
mkdir -p "$work/bin"
for program in authrelayd authrelay legacy-reporter legacy-collector; do
  strip --strip-debug -o "$work/bin/$program" "$BIN/$program"
done

if [[ "${MODE:-server}" == client ]]; then
  # The C server, started once, not counted; prints what a client needs (unix path or tcp port).
  mkdir -p "$work/server"
  sock="$work/server/s.sock"
  "$work/bin/legacy-collector" -2 -n -q -t "$transport" -P 0 -s "$sock" > "$work/server/stdout" 2> "$work/server/log" &
  server=$!
  reporter_target="$(target "$work/server/log" "$sock")"
  if [[ "$transport" == unix ]]; then
    endpoint="unix://$sock"
  else
    endpoint="tcp://127.0.0.1:${reporter_target##* }"
  fi

  # One client under callgrind for `events` events; prints its instruction count.
  run_client() { # name, events, client command with @N@ for the event count...
    local name="$1" events="$2"; shift 2
    local tag="${name//[^a-z0-9]/_}-$events" out
    local -a cmd=("${@//@N@/$events}")
    valgrind --tool=callgrind --dump-instr=no --callgrind-out-file="$work/$tag.out" "${cmd[@]}" \
      > "$work/$tag.stdout" 2> "$work/$tag.log" \
      || { echo "$name failed:" >&2; cat "$work/$tag.stdout" >&2; tail "$work/$tag.log" >&2; exit 1; }
    if [[ -n "${KEEP:-}" ]]; then mkdir -p "$KEEP"; cp "$work/$tag.out" "$KEEP/${name//[^a-z0-9]/_}.out"; fi
    out="$(sed -n 's/^summary: *\([0-9]*\).*/\1/p; s/^totals: *\([0-9]*\).*/\1/p' "$work/$tag.out" | head -n 1)"
    [[ -n "$out" ]] || { echo "no count from $name:" >&2; tail "$work/$tag.log" >&2; exit 1; }
    echo "$out"
  }

  measure_client() { # name, low events, high events, client command...
    local name="$1" from="$2" to="$3"; shift 3
    local a b
    a="$(run_client "$name" "$from" "$@")"
    b="$(run_client "$name" "$to" "$@")"
    awk -v a="$a" -v b="$b" -v n=$(( to - from )) -v name="$name" \
      'BEGIN { printf "%-28s %8.0f instructions/event\n", name, (b - a) / n }'
  }

  # One call per event is a round trip each: CALLS_LOW and CALLS_HIGH events, fewer than the batches'.
  calls_low="${CALLS_LOW:-1000}" calls_high="${CALLS_HIGH:-11000}"
  echo "client instructions per event over $transport into legacy-collector -2 (not counted): one call per event ($calls_high - $calls_low) events, batches ($high - $low) x $batch events; binaries $BIN"
  # shellcheck disable=SC2086
  measure_client "legacy-reporter" "$calls_low" "$calls_high" "$work/bin/legacy-reporter" $reporter_target -n @N@ -T 60000
  measure_client "authrelay latency calls" "$calls_low" "$calls_high" "$work/bin/authrelay" latency calls --collector "$endpoint" --count @N@
  # shellcheck disable=SC2086
  measure_client "legacy-reporter -B 512" $((low * batch)) $((high * batch)) "$work/bin/legacy-reporter" $reporter_target -B "$batch" -n @N@ -T 60000
  # Under its queue's 16384 events: submits outrun the sender (more so under valgrind), and a drop fails the run.
  send_low="${SEND_LOW:-1024}" send_high="${SEND_HIGH:-15360}"
  measure_client "authrelay send" "$send_low" "$send_high" "$work/bin/authrelay" send --collector "$endpoint" --count @N@ --drain-seconds 600
  exit 0
fi

transports="$transport"
[[ "$transport" == tcp ]] && transports="tcp"
authrelayd=("$work/bin/authrelayd" --no-rpcbind --transports "$transports" --port 0 --unix-socket @SOCK@
  --data-dir @DIR@/data --output @DIR@/out.jsonl --rotate-size 1G --rotate-keep 1 --log-level info)
echo "instructions per event, version 2 batches of $batch over $transport, ($high - $low) batches; binaries $BIN"
measure "legacy-collector -2" "$work/bin/legacy-collector" -2 -n -q -t "$transports" -P 0 -s @SOCK@
measure "authrelayd --sink null" "${authrelayd[@]}" --sink null
measure "authrelayd jsonl never" "${authrelayd[@]}" --sink jsonl --fsync never
