#!/usr/bin/env bash
# Coverage-guided fuzzing of every decoder of outside input (fuzz/src/bin/*.rs) with libFuzzer on
# the stable toolchain: sanitizer coverage comes from stable codegen flags, libFuzzer from the
# libfuzzer-sys crate. Runs each target for SECONDS_PER_TARGET (default 60) and fails on any
# crash, panic, mismatch or timeout; the inputs that failed are left in fuzz/target/artifacts/.
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (targets: json hlc mergeable store_json diff sync c_abi ws_codec)
#   scripts/fuzz.sh --build                              only builds the instrumented targets
# Corpora grow in fuzz/target/corpus/TARGET across runs; seeds come from the repository's test
# data (fuzz/seeds.py). FUZZ_JOBS targets at a time (default 1: a 2-core machine is the
# reference here; test-all.sh's short run takes 2, each target keeping its whole budget).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_ONLY=0
if [ "${1:-}" = --build ]; then BUILD_ONLY=1; shift; fi
SECONDS_PER_TARGET=${1:-60}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(json hlc mergeable store_json diff sync c_abi ws_codec)

HOST=$(rustc -vV | sed -n 's/^host: //p')
# --target keeps the flags off build scripts; debug assertions and overflow checks stay on.
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks --cfg fuzzing"
# Line tables are all the stacks of a crash need (fuzz/Cargo.toml's debug = 1 costs more to
# build), and SQLite's C, which no target reaches, compiles at -O0 without debug information.
export CARGO_PROFILE_RELEASE_DEBUG=line-tables-only
cargo build --release --manifest-path fuzz/Cargo.toml --target "$HOST" --bins \
  --config 'profile.release.package.libsqlite3-sys.opt-level=0' \
  --config 'profile.release.package.libsqlite3-sys.debug=0'
[ $BUILD_ONLY = 0 ] || exit 0
BIN=fuzz/target/$HOST/release
OUT=fuzz/target
rm -rf "$OUT/seeds"
python3 fuzz/seeds.py "$OUT/seeds" >/dev/null

# One target: its run, then its line of the table (in the file RESULT) and its exit status.
fuzz_one() {
  local t=$1 log rc=0 execs last cov ft corpus result
  mkdir -p "$OUT/corpus/$t" "$OUT/artifacts/$t" "$OUT/logs"
  log="$OUT/logs/$t.log"
  "$BIN/$t" "$OUT/corpus/$t" "$OUT/seeds/$t" -max_total_time="$SECONDS_PER_TARGET" -max_len=8192 \
    -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$OUT/artifacts/$t/" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | awk '{s+=$1} END {print s+0}')
  last=$(grep -E '(DONE|pulse|NEW|REDUCE|INITED).*cov:' "$log" | tail -1 || true)
  cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$last")
  corpus=$(sed -n 's/.*corp: \([0-9]*\)\/.*/\1/p' <<<"$last")
  if [ $rc -eq 0 ]; then result=ok; else result="FAILED (exit $rc, see $log)"; fi
  printf '%-11s %12s %8s %8s %8s  %s\n' "$t" "$execs" "${cov:-?}" "${ft:-?}" "${corpus:-?}" "$result" >"$OUT/logs/$t.result"
  if [ $rc -ne 0 ]; then
    grep -E "panicked|ERROR|SUMMARY|Test unit written" "$log" | head -8 >>"$OUT/logs/$t.result" || true
  fi
  return $rc
}

status=0
JOBS=${FUZZ_JOBS:-1}
printf '%-11s %12s %8s %8s %8s  %s\n' target execs cov ft corpus result
running=()
for t in "${TARGETS[@]}"; do
  fuzz_one "$t" &
  running+=("$!:$t")
  if [ ${#running[@]} -ge "$JOBS" ] || [ "$t" = "${TARGETS[-1]}" ]; then
    for r in "${running[@]}"; do
      wait "${r%%:*}" || status=1
      cat "$OUT/logs/${r#*:}.result"
    done
    running=()
  fi
done
exit $status
