#!/usr/bin/env bash
# The crash test at length: KILLS SIGKILLs of a writing process per storage (file, SQLite JSON
# mode, SQLite incremental), each reopened and checked (tests/persist_crash.rs), from SEED
# (default: random; a failure prints the seed to run again). The storage starts afresh every
# CHAIN kills (default 250), so that whole-content saves stay short.
#   scripts/crash-persist.sh [KILLS] [SEED] [CHAIN]      e.g. scripts/crash-persist.sh 5000
set -euo pipefail
cd "$(dirname "$0")/.."
KILLS=${1:-5000}
SEED=${2:-$((RANDOM * 1000 + RANDOM))}
CHAIN=${3:-250}
echo "crash test: $KILLS kills per storage, TB_CRASH_SEED=$SEED, a fresh storage every $CHAIN kills"
TB_CRASH_KILLS="$KILLS" TB_CRASH_SEED="$SEED" TB_CRASH_CHAIN="$CHAIN" \
  cargo test --release --test persist_crash -- --nocapture --test-threads 3
