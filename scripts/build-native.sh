#!/usr/bin/env bash
# Builds what the C, C++, Python and Kotlin test scripts use, in one cargo invocation with one
# package selection: the library (libtinybase.so, libtinybase.a), tinybase-server, and the
# replay, sync_peer and ws_peer examples. One selection because cargo unifies features over the
# packages a command names, and the cdylib's file name carries no hash: commands with other
# selections rebuild the library for each other (a minute or more every time).
#   scripts/build-native.sh [EXTRA CARGO ARGS]
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo build --release -p tinybase-native -p tinybase-server --lib --bins \
  --example replay --example sync_peer --example ws_peer "$@"
