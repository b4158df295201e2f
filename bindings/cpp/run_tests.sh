#!/usr/bin/env bash
# Tests the C++ wrapper (bindings/cpp/tinybase.hpp):
#   1. cargo build --release (a no-op when the library is fresh)
#   2. the header compiles standalone (g++, and clang++ when installed) with -Wall -Wextra -Werror,
#      and wraps every synchronizer function of the C API
#   3. cmake configure + build into target/cpp-build: GoogleTest suites linked against
#      libtinybase.so (cpp_tests_shared) and libtinybase.a (cpp_tests_static)
#   4. ctest --output-on-failure (every gtest case of both binaries is a ctest test)
#   5. the shared binary under valgrind memcheck (no errors, no definite leaks); MEMCHECK="shared static"
#      checks both (the static one runs the same code, and ran unvalgrinded in step 4)
#   6. optionally (ASAN=1) an AddressSanitizer+UBSan build in target/cpp-build-asan, run too
# Exits non-zero on any failure. Environment: SKIP_VALGRIND=1, ASAN=1, SKIP_CARGO=1.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
BUILD="$ROOT/target/cpp-build"
JOBS="${JOBS:-2}"
failures=0
fail() { echo "FAILED: $*" >&2; failures=$((failures + 1)); }

if [ "${SKIP_CARGO:-0}" != 1 ]; then
    echo "== cargo build --release (the library, and tinybase-server for test_ws.cpp)"
    scripts/build-native.sh || { echo "cargo build failed" >&2; exit 1; }
fi
# test_ws.cpp starts this server itself (127.0.0.1, a free port).
export TB_SERVER_BIN="${TB_SERVER_BIN:-$ROOT/target/release/tinybase-server}"
for f in libtinybase.so libtinybase.a; do
    [ -f "target/release/$f" ] || { echo "target/release/$f missing" >&2; exit 1; }
done

echo "== header compiles standalone"
for cxx in g++ clang++; do
    command -v "$cxx" > /dev/null || continue
    if "$cxx" -std=c++17 -Wall -Wextra -Werror -pedantic -I include -I bindings/cpp \
        -fsyntax-only -x c++ bindings/cpp/tinybase.hpp; then
        echo "  $cxx -std=c++17 -Wall -Wextra -Werror -pedantic: ok"
    else
        fail "tinybase.hpp with $cxx"
    fi
done

echo "== every synchronizer function of tinybase.h is called by tinybase.hpp"
# tb_synchronizer_*, tb_local_bus_*, tb_broadcast_channel_*, tb_ws_*: a new C function needs its
# C++ method (the header's "every tb_synchronizer_* function has a method here").
missing=$(grep -oE '\btb_(synchronizer|local_bus|broadcast_channel|ws)_[a-z0-9_]+\(' include/tinybase.h | tr -d '(' | sort -u \
    | while read -r f; do grep -qw "$f" bindings/cpp/tinybase.hpp || echo "$f"; done)
if [ -n "$missing" ]; then fail "no C++ wrapper for: $(echo $missing)"; else echo "  ok"; fi

echo "== cmake configure + build ($BUILD)"
cmake -S bindings/cpp -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo > "$BUILD.configure.log" 2>&1 \
    || { cat "$BUILD.configure.log" >&2; echo "cmake configure failed" >&2; exit 1; }
cmake --build "$BUILD" -j "$JOBS" || { echo "cmake build failed" >&2; exit 1; }

echo "== ctest"
ctest --test-dir "$BUILD" --output-on-failure -j "$JOBS" || fail "ctest"

# Runs a gtest binary; it must exit 0 and print "[  PASSED  ] N tests."
check_run() {
    local name="$1"; shift
    local out rc
    out="$("$@" 2>&1)"
    rc=$?
    if [ $rc -ne 0 ] || ! printf '%s\n' "$out" | grep -q '^\[  PASSED  \]'; then
        printf '%s\n' "$out" | grep -vE '^\[ +(RUN|OK) +\]' | tail -60 >&2
        fail "$name (exit $rc)"
    else
        echo "  $name: $(printf '%s\n' "$out" | grep '^\[  PASSED  \]' | tail -1)"
    fi
}

if [ "${SKIP_VALGRIND:-0}" != 1 ]; then
    if command -v valgrind > /dev/null; then
        # valgrind runs a program's threads one at a time, on one core: each binary's tests in JOBS
        # shards (gtest's GTEST_TOTAL_SHARDS), one valgrind process each, all at once.
        echo "== valgrind memcheck ($JOBS shards)"
        MC="$BUILD/memcheck"
        rm -rf "$MC" && mkdir -p "$MC"
        for kind in ${MEMCHECK:-shared}; do
            for ((shard = 0; shard < JOBS; shard++)); do
                (
                    failures=0
                    GTEST_TOTAL_SHARDS=$JOBS GTEST_SHARD_INDEX=$shard \
                        check_run "cpp_tests_$kind (memcheck, shard $((shard + 1))/$JOBS)" valgrind -q --suppressions=tests/c/valgrind.supp \
                        --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite "$BUILD/cpp_tests_$kind"
                    echo "$failures" > "$MC/$kind.$shard.failures"
                ) > "$MC/$kind.$shard.out" 2>&1 &
            done
            wait
            for ((shard = 0; shard < JOBS; shard++)); do
                cat "$MC/$kind.$shard.out"
                [ "$(cat "$MC/$kind.$shard.failures" 2>/dev/null)" = 0 ] || failures=$((failures + 1))
            done
        done
    else
        fail "valgrind not installed (set SKIP_VALGRIND=1 to skip, or ASAN=1)"
    fi
fi

if [ "${ASAN:-0}" = 1 ]; then
    echo "== AddressSanitizer + UBSan build"
    ABUILD="$ROOT/target/cpp-build-asan"
    if cmake -S bindings/cpp -B "$ABUILD" -DCMAKE_BUILD_TYPE=Debug -DTINYBASE_ASAN=ON > "$ABUILD.configure.log" 2>&1 \
        && cmake --build "$ABUILD" -j "$JOBS" --target cpp_tests_shared cpp_tests_static; then
        for kind in shared static; do
            ASAN_OPTIONS="detect_leaks=1:abort_on_error=0" UBSAN_OPTIONS="halt_on_error=1" \
                check_run "cpp_tests_$kind (asan)" "$ABUILD/cpp_tests_$kind"
        done
    else
        fail "ASan build"
    fi
fi

if [ $failures -ne 0 ]; then
    echo "== $failures stage(s) FAILED" >&2
    exit 1
fi
echo "== all C++ tests passed"
