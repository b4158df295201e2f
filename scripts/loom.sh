#!/usr/bin/env bash
# Model-checks the library's concurrent protocols with loom (stable toolchain): the code under
# src/prim.rs's primitives is built with `--cfg loom` and every `loom_` unit test explores the
# interleavings of its threads. LOOM_MAX_PREEMPTIONS bounds the search (default 3 here). Built
# without default features: `--cfg loom` reaches every crate, and tokio (under the PostgreSQL
# client) compiles its networking out under it.
#   scripts/loom.sh [TEST BINARY ARGS...]
#   scripts/loom.sh --no-run      only builds the test binary
set -euo pipefail
cd "$(dirname "$0")/.."
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}"
# Line tables are all a failure's backtrace needs (the release profile's debug = 1 costs more to
# build), and SQLite's C, which no loom test reaches, compiles at -O0 without debug information.
export CARGO_PROFILE_RELEASE_DEBUG=line-tables-only
CARGO=(cargo test --release --lib --no-default-features
  --config 'profile.release.package.libsqlite3-sys.opt-level=0'
  --config 'profile.release.package.libsqlite3-sys.debug=0')
export RUSTFLAGS="--cfg loom ${RUSTFLAGS:-}" CARGO_TARGET_DIR=target/loom
if [ "${1:-}" = --no-run ]; then
  exec "${CARGO[@]}" --no-run
fi
exec "${CARGO[@]}" loom_ -- --test-threads=2 "$@"
