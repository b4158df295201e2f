#!/usr/bin/env bash
# W9 (C API half): builds tests/c/bench_w1w2.c against the release library and runs it.
#   tests/c/bench.sh [N ...] [--runs R]         (default: 10000 100000 1000000, 3 runs)
# LINK=static links libtinybase.a instead of libtinybase.so. SKIP_CARGO=1 skips cargo build.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
BUILD="$ROOT/target/c-tests"
mkdir -p "$BUILD"
if [ "${SKIP_CARGO:-0}" != 1 ]; then
    cargo build --release --lib >&2
fi
CC="${CC:-cc}"
CFLAGS="-std=c11 -O2 -Wall -Wextra -Werror -I$ROOT/include"
if [ "${LINK:-shared}" = static ]; then
    BIN="$BUILD/bench_w1w2_static"
    $CC $CFLAGS tests/c/bench_w1w2.c -o "$BIN" target/release/libtinybase.a \
        -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
else
    BIN="$BUILD/bench_w1w2_shared"
    $CC $CFLAGS tests/c/bench_w1w2.c -o "$BIN" -Ltarget/release -ltinybase \
        -Wl,-rpath,"$ROOT/target/release" -lpthread
fi
exec "$BIN" "$@"
