#!/usr/bin/env bash
# W10 of BENCHMARKS.md: tinybase-server against TinyBase's WsServer (node, `ws`) in the same run,
# driven by one Rust load generator (examples/ws_bench.rs), printed as a Markdown table
# (min / median / max of the runs, ratio of the medians, target, met?).
#
#   scripts/bench-ws.sh [--runs R] [any examples/ws_bench.rs option]   (defaults: 3 runs, 100 clients,
#                                                                       1000 idle connections, 100k cells)
#   scripts/bench-ws.sh --smoke     (seconds: tiny sizes, one run, fails on any socket error)
#
# Everything listens on 127.0.0.1 on free ports and is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
# One cargo invocation, with scripts/build-native.sh's package selection: another selection (two
# invocations, or --workspace, which takes in the benchmark crate's dependencies) would unify other
# dependency features and rebuild the library each time.
cargo build --release -p tinybase-native -p tinybase-server --bin tinybase-server --example ws_bench >&2
[ -d tests/interop/node_modules/ws ] || (cd tests/interop && npm ci --no-audit --no-fund --loglevel=error >&2)
# 1000 idle clients need as many descriptors on each side.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "${1:-}" != "--smoke" ]; then
  echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)," \
    "node $(node --version), ws $(node -p "require('./tests/interop/node_modules/ws/package.json').version")," \
    "tinybase $(node -p "require('./tests/interop/node_modules/tinybase/package.json').version")"
fi
exec target/release/examples/ws_bench "$@"
