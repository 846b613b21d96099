#!/usr/bin/env bash
# Runs the test suite under a sanitizer: scripts/sanitize.sh address|thread [--filter X ...]
#   address: debug build; AddressSanitizer, and LeakSanitizer at each exit (the
#            programs the tests start are built with it too and inherit the options).
#   thread:  optimized build: at -Onone the generic BoundedQueue copies its
#            elements through the runtime's uninstrumented value witnesses, so
#            ThreadSanitizer cannot see the queue's hand-off at all.
# Reports from every process go to files and are printed at the end; any report,
# failure or the time bound (SANITIZE_TIMEOUT seconds, default 900) fails the run,
# naming the tests still running.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

kind=${1:?usage: scripts/sanitize.sh address|thread [--filter X ...]}
shift
case $kind in
  address) configuration=debug; scratch=.build-asan; flags=() ;;
  thread) configuration=release; scratch=.build-tsan; flags=(-Xswiftc -enable-testing) ;;
  *) echo "sanitize: address or thread, not '$kind'" >&2; exit 2 ;;
esac
swift build --build-tests -c "$configuration" --sanitize="$kind" --scratch-path "$scratch" "${flags[@]}" 2>&1 | tail -n 3

reports=$(mktemp -d)
log=$reports/tests.log
trap 'rm -rf "$reports"' EXIT
export ASAN_OPTIONS="log_path=$reports/report"
export LSAN_OPTIONS="suppressions=$PWD/scripts/sanitizers/lsan.supp print_suppressions=0"
export TSAN_OPTIONS="log_path=$reports/report"
status=0
# Line-buffered: a test binary stopped by the time bound has printed every line it wrote.
# Into the file and followed with tail, not piped to tee: a process the binary
# started keeps a pipe open after the binary dies (a crash's llvm-symbolizer, a
# daemon the crashed test left), and tee would wait for it until CI's bound.
timeout --kill-after=30 "${SANITIZE_TIMEOUT:-900}" stdbuf -oL -eL \
  "$scratch/$configuration/AuthRelayPackageTests.xctest" --testing-library swift-testing --no-color "$@" \
  > "$log" 2>&1 &
runner=$!
tail -n +1 -f --pid="$runner" "$log"
wait "$runner" || status=$?
if (( status == 124 || status == 137 )); then
  echo "sanitize: the suite passed its ${SANITIZE_TIMEOUT:-900} s bound; still running:"
  sed 's/\x1b\[[0-9;]*m//g' "$log" > "$reports/plain.log"
  grep -oE '^◇ Test ".*" started\.$' "$reports/plain.log" | sed -E 's/^◇ Test "(.*)" started\.$/\1/' | sort -u > "$reports/started"
  grep -oE '^[✔✘] Test ".*" (with [0-9]+ test cases? )?(passed|failed)' "$reports/plain.log" \
    | sed -E 's/^[✔✘] Test "(.*)" (with [0-9]+ test cases? )?(passed|failed)$/\1/' | sort -u > "$reports/ended"
  comm -23 "$reports/started" "$reports/ended" | sed 's/^/  /'
fi
if (( status != 0 )); then
  # The programs the tests started run in their own process groups: a test
  # binary that timed out or crashed leaves them running.
  for exe in /proc/[0-9]*/exe; do
    [[ $(readlink "$exe" 2>/dev/null) == "$PWD/$scratch/"* ]] && kill -KILL "${exe//[!0-9]/}" 2>/dev/null || true
  done
fi
if compgen -G "$reports/report.*" >/dev/null; then
  echo "sanitize: $kind sanitizer reports (one file per process):"
  cat "$reports"/report.*
  status=1
fi
exit "$status"
