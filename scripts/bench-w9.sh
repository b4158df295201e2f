#!/usr/bin/env bash
# W9 of BENCHMARKS.md: W1 and W2 through the Rust API, the C API and Python, and TinyBase (node)
# in the same run, as a markdown table with ratios.   scripts/bench-w9.sh [N] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
RUNS=${2:-3}
cargo build --release --lib --example bench >&2
[ -d tests/interop/node_modules/tinybase ] || (cd tests/interop && npm ci --no-audit --no-fund --loglevel=error >&2)
PY=python3
[ -x target/python-venv/bin/python ] && PY=target/python-venv/bin/python

rust=$(./target/release/examples/bench "$N" --runs "$RUNS" --no-node --no-sync)
rust_w1=$(echo "$rust" | awk -F'|' '/W1 cells/ {split($4,a," / "); print a[2]+0}')
rust_w2=$(echo "$rust" | awk -F'|' '/W2 calls/ {split($4,a," / "); print a[2]+0}')
c=$(SKIP_CARGO=1 tests/c/bench.sh "$N" --runs "$RUNS" 2>/dev/null | grep '"median"')
c_w1=$(echo "$c" | grep '"W1"' | sed 's/.*"median":\([0-9.]*\).*/\1/')
c_w2=$(echo "$c" | grep '"W2"' | sed 's/.*"median":\([0-9.]*\).*/\1/')
py=$(TINYBASE_LIBRARY="$PWD/target/release/libtinybase.so" PYTHONPATH=bindings/python "$PY" bindings/python/bench.py "$N" --runs "$RUNS" 2>/dev/null | awk -v n="$N" '$1 == n')
to_num() { case "$1" in *k) echo "${1%k}000";; *M) echo "${1%M}000000";; *) echo "$1";; esac; }
py_w1=$(to_num "$(echo "$py" | awk '{print $4}')")
py_w2=$(to_num "$(echo "$py" | awk '{print $9}')")
tb=$(BENCH_SKIP=W3,W4,W5,W6,W7 node tests/interop/bench.mjs "$N" "$RUNS" 2>/dev/null)
tb_w1=$(echo "$tb" | grep '"W1"' | sed 's/.*"median":\([0-9.]*\).*/\1/')
tb_w2=$(echo "$tb" | grep '"W2"' | sed 's/.*"median":\([0-9.]*\).*/\1/')
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
echo "| W9, N=$N (medians of $RUNS) | Rust API | C API | Python | TinyBase | C / Rust | Python / TinyBase |"
echo "|---|---|---|---|---|---|---|"
echo "| W1 cells/s | $rust_w1 | $c_w1 | $py_w1 | $tb_w1 | $(ratio "$c_w1" "$rust_w1") | $(ratio "$py_w1" "$tb_w1") |"
echo "| W2 calls/s | $rust_w2 | $c_w2 | $py_w2 | $tb_w2 | $(ratio "$c_w2" "$rust_w2") | $(ratio "$py_w2" "$tb_w2") |"
