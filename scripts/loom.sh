#!/usr/bin/env bash
# Model-checks the library's concurrent protocols with loom (stable toolchain): the code under
# src/prim.rs's primitives is built with `--cfg loom` and every `loom_` unit test explores the
# interleavings of its threads. LOOM_MAX_PREEMPTIONS bounds the search (default 3 here). Built
# without default features: `--cfg loom` reaches every crate, and tokio (under the PostgreSQL
# client) compiles its networking out under it.
set -euo pipefail
cd "$(dirname "$0")/.."
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}"
RUSTFLAGS="--cfg loom ${RUSTFLAGS:-}" CARGO_TARGET_DIR=target/loom \
  cargo test --release --lib --no-default-features loom_ -- --test-threads=2 "$@"
