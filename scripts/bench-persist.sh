#!/usr/bin/env bash
# W11 of BENCHMARKS.md: save and load of the W1 store at 10k, 100k and 1M cells through our file,
# SQLite (JSON and incremental) and PostgreSQL persisters and TinyBase's file persister (node) in
# the same run, then one-cell save latency at 1M cells; Markdown tables with ratios and targets
# (examples/persist_bench.rs).
#
#   scripts/bench-persist.sh [--runs R] [N ...] [any examples/persist_bench.rs option]
#   scripts/bench-persist.sh --smoke      (seconds: small N, one run; fails on any difference)
#
# PostgreSQL is measured when TB_TEST_POSTGRES_DSN is set (scripts/pg.sh start DIR prints one).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --example persist_bench >&2
[ -d tests/interop/node_modules/tinybase ] || (cd tests/interop && npm ci --no-audit --no-fund --loglevel=error >&2)
if [ "${1:-}" != "--smoke" ]; then
  echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)," \
    "node $(node --version), tinybase $(node -p "require('./tests/interop/node_modules/tinybase/package.json').version")," \
    "file system of target/: $(stat -f -c %T target)"
  echo
fi
exec target/release/examples/persist_bench "$@"
