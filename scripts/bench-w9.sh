#!/usr/bin/env bash
# W9 of BENCHMARKS.md: W1 and W2 through the Rust API, the C API, Python and Kotlin (JVM), and
# TinyBase (node) in the same run, as a markdown table with ratios.   scripts/bench-w9.sh [N] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
RUNS=${2:-3}
cargo build --release --lib >&2 && cargo build --release -p tinybase-bench >&2
[ -d tests/interop/node_modules/tinybase ] || (cd tests/interop && npm ci --no-audit --no-fund --loglevel=error >&2)
PY=python3
[ -x target/python-venv/bin/python ] && PY=target/python-venv/bin/python

# The Rust API: RUNS child rounds of the benchmark crate (W1-W5 and W2, no sync), medians.
rust=$(for _ in $(seq "$RUNS"); do ./target/release/tinybase-bench child ours "$N" --no-sync; done)
median() { grep "\"workload\":\"$1\"" | sed 's/.*"value":\([0-9.e+]*\).*/\1/' | sort -g | awk '{v[NR]=$1} END {print v[int(NR/2)+1]}'; }
rust_w1=$(echo "$rust" | median W1)
rust_w2=$(echo "$rust" | median W2)
c=$(SKIP_CARGO=1 tests/c/bench.sh "$N" --runs "$RUNS" 2>/dev/null | grep '"median"')
c_w1=$(echo "$c" | grep '"W1"' | sed 's/.*"median":\([0-9.]*\).*/\1/')
c_w2=$(echo "$c" | grep '"W2"' | sed 's/.*"median":\([0-9.]*\).*/\1/')
py=$(TINYBASE_LIBRARY="$PWD/target/release/libtinybase.so" PYTHONPATH=bindings/python "$PY" bindings/python/bench.py "$N" --runs "$RUNS" 2>/dev/null | awk -v n="$N" '$1 == n')
to_num() { case "$1" in *k) echo "${1%k}000";; *M) echo "${1%M}000000";; *) echo "$1";; esac; }
py_w1=$(to_num "$(echo "$py" | awk '{print $4}')")
py_w2=$(to_num "$(echo "$py" | awk '{print $9}')")
# Kotlin: org.tinybase.Bench (test sources, not in the jar) after its JIT warm-up rounds.
(cd bindings/kotlin && mvn -q -B process-test-classes >&2)
KT_CP="bindings/kotlin/target/classes:bindings/kotlin/target/test-classes:$(cat bindings/kotlin/target/runtime-classpath.txt)"
kt=$(java -Dtinybase.library.path="$PWD/target/release/libtinybase.so" -cp "$KT_CP" org.tinybase.Bench "$N" --runs "$RUNS" | awk -v n="$N" '$1 == n')
kt_w1=$(to_num "$(echo "$kt" | awk '{print $4}')")
kt_w2=$(to_num "$(echo "$kt" | awk '{print $9}')")
tb=$(BENCH_SKIP=W3,W4,W5,W6,W7 node tests/interop/bench.mjs "$N" "$RUNS" 2>/dev/null)
tb_w1=$(echo "$tb" | grep '"W1"' | sed 's/.*"median":\([0-9.]*\).*/\1/')
tb_w2=$(echo "$tb" | grep '"W2"' | sed 's/.*"median":\([0-9.]*\).*/\1/')
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
echo "| W9, N=$N (medians of $RUNS) | Rust API | C API | Python | Kotlin | TinyBase | C / Rust | Kotlin / Rust | Python / TinyBase | Kotlin / TinyBase |"
echo "|---|---|---|---|---|---|---|---|---|---|"
echo "| W1 cells/s | $rust_w1 | $c_w1 | $py_w1 | $kt_w1 | $tb_w1 | $(ratio "$c_w1" "$rust_w1") | $(ratio "$kt_w1" "$rust_w1") | $(ratio "$py_w1" "$tb_w1") | $(ratio "$kt_w1" "$tb_w1") |"
echo "| W2 calls/s | $rust_w2 | $c_w2 | $py_w2 | $kt_w2 | $tb_w2 | $(ratio "$c_w2" "$rust_w2") | $(ratio "$kt_w2" "$rust_w2") | $(ratio "$py_w2" "$tb_w2") | $(ratio "$kt_w2" "$tb_w2") |"
