#!/usr/bin/env bash
# Builds the libFuzzer targets (FuzzTargets/, Swift -sanitize=fuzzer,address) and runs them.
#   scripts/fuzz.sh TARGET SECONDS   one target for SECONDS (hours for a long run)
#   scripts/fuzz.sh all SECONDS      every target in turn, SECONDS each (CI: 60)
#   scripts/fuzz.sh seeds            writes the committed seed corpora again
# TARGET: framer, call-header, batch-decoder, view-decoder or collector.
# Each run starts from the committed seeds (FuzzTargets/Corpus/TARGET, written
# by `seeds`), the committed inputs of bugs once found (FuzzTargets/Regressions/
# TARGET, never rewritten) and the inputs earlier runs found (.build-fuzz/corpus/
# TARGET, kept, not committed); only the last is written to. A crash, leak or hang (one input over 10 s) stops the run: the
# input is saved in .build-fuzz/crashes/TARGET/ (FUZZ_CRASHES=DIR elsewhere),
# printed in hex, and the script fails. Replay one with:
#   .build-fuzz/release/fuzz-TARGET .build-fuzz/crashes/TARGET/crash-...
# Extra libFuzzer flags: FUZZ_FLAGS="-jobs=2 -workers=2" scripts/fuzz.sh collector 3600
set -euo pipefail
cd "$(dirname "$0")/.."

targets=(framer call-header batch-decoder view-decoder collector)
usage="usage: scripts/fuzz.sh TARGET|all SECONDS, or scripts/fuzz.sh seeds (TARGET: ${targets[*]})"
what=${1:?$usage}
scratch=.build-fuzz
binaries=$scratch/release

build() {
  # -enable-testing: the targets reach internal and package API through @testable import.
  # lld: gold fails to link libFuzzer's driver into a Swift executable (internal error).
  mkdir -p "$scratch"
  if ! swift build --package-path FuzzTargets --scratch-path "$scratch" -c release \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -enable-testing -Xswiftc -use-ld=lld \
    -Xcc -fsanitize=fuzzer-no-link,address > "$scratch/build.log" 2>&1; then
    echo "fuzz: the build failed; its errors:" >&2
    grep -E "error:" -A3 "$scratch/build.log" | head -n 60 >&2 || tail -n 30 "$scratch/build.log" >&2
    exit 1
  fi
  grep -vE "ld.gold: warning|Cannot export local symbol" "$scratch/build.log" | tail -n 2
  [[ -x $binaries/fuzz-collector ]] || { echo "fuzz: the build made no fuzz targets" >&2; exit 1; }
}

# The Swift runtime's backtracer waits on a crashed fuzzer for long; libFuzzer and
# ASan report crashes themselves. LSan: the same Foundation suppressions as the tests.
export SWIFT_BACKTRACE=enable=no
export LSAN_OPTIONS="suppressions=$PWD/scripts/sanitizers/lsan.supp print_suppressions=0"

run() {
  local target=$1 seconds=$2
  local corpus=$scratch/corpus/$target crashes=${FUZZ_CRASHES:-$scratch/crashes}/$target
  mkdir -p "$corpus" "$crashes"
  local inputs=("$corpus" "FuzzTargets/Corpus/$target")
  [[ -d FuzzTargets/Regressions/$target ]] && inputs+=("FuzzTargets/Regressions/$target")
  local before
  before=$(ls "$crashes")
  echo "fuzz: $target for $seconds s (corpus $corpus, crashes $crashes)"
  local status=0
  # ${FUZZ_FLAGS} unquoted on purpose: several flags. The outer timeout only
  # guards against libFuzzer itself not stopping.
  # shellcheck disable=SC2086
  timeout --kill-after=30 $((seconds + 300)) "$binaries/fuzz-$target" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
    -artifact_prefix="$crashes/" ${FUZZ_FLAGS:-} "${inputs[@]}" \
    > "$scratch/$target.log" 2>&1 || status=$?
  grep -E "^(INFO: (seed corpus|A corpus|exiting)|#[0-9]+[[:space:]]+(INITED|DONE))|^stat::(number_of_executed_units|new_units_added|peak_rss)" \
    "$scratch/$target.log" | sed "s/^/  /" || true
  local found
  found=$(comm -13 <(echo "$before") <(ls "$crashes") | grep -v '^$' || true)
  if (( status != 0 )) || [[ -n $found ]]; then
    echo "fuzz: $target FAILED (exit $status); libFuzzer's report:"
    grep -vE "^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)" "$scratch/$target.log" | tail -n 60
    for file in $found; do
      echo "fuzz: input saved as $crashes/$file ($(stat -c %s "$crashes/$file") bytes), in hex:"
      od -An -tx1 -v "$crashes/$file"
    done
    return 1
  fi
}

case $what in
  seeds)
    build
    for target in "${targets[@]}"; do
      rm -rf "FuzzTargets/Corpus/$target"
      mkdir -p "FuzzTargets/Corpus/$target"
      "$binaries/fuzz-$target" --write-seeds "FuzzTargets/Corpus/$target"
      echo "fuzz: $target: $(ls "FuzzTargets/Corpus/$target" | wc -l) seeds"
    done
    ;;
  all)
    seconds=${2:?$usage}
    build
    failed=()
    for target in "${targets[@]}"; do run "$target" "$seconds" || failed+=("$target"); done
    (( ${#failed[@]} == 0 )) || { echo "fuzz: failed: ${failed[*]}"; exit 1; }
    ;;
  *)
    seconds=${2:?$usage}
    [[ " ${targets[*]} " == *" $what "* ]] || { echo "$usage" >&2; exit 2; }
    build
    run "$what" "$seconds"
    ;;
esac
