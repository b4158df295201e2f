#!/usr/bin/env bash
# Builds the library and the C tests, checks the header, runs every C test against the shared
# and the static library, again under valgrind memcheck (no errors, no definite leaks), and
# the multi-threaded test under ThreadSanitizer (against a TSan-instrumented build of the
# library when a nightly toolchain is available; otherwise TSan checks the C side only).
# Exits non-zero on any failure.
#
# test_ws starts the WebSocket server target/release/tinybase-server (built here) itself.
#
# Environment: MEMCHECK="shared static" runs memcheck on both builds (default: the shared one;
# the static binaries run the same code, and are checked unvalgrinded above), SKIP_VALGRIND=1, SKIP_TSAN=1, SKIP_HEADER_CHECK=1 (test-all.sh checks the header in
# a step of its own) to skip those stages; ONLY="test_ws test_sync" runs only those tests;
# TSAN_ONLY=1 runs only the ThreadSanitizer stage (test-all.sh runs it in a step of its own, last:
# its instrumented library builds in the background until then), without building target/release.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
BUILD="$ROOT/target/c-tests"
failures=0
fail() { echo "FAILED: $*" >&2; failures=$((failures + 1)); }

if [ "${TSAN_ONLY:-0}" = 1 ]; then
    SKIP_HEADER_CHECK=1 SKIP_VALGRIND=1 SKIP_TSAN=0
else
echo "== cargo build --release: the library and tinybase-server, which test_ws syncs through (scripts/build-native.sh)"
scripts/build-native.sh || { echo "cargo build failed" >&2; exit 1; }
fi
export TB_SERVER_BIN="$ROOT/target/release/tinybase-server"

if [ "${SKIP_HEADER_CHECK:-0}" != 1 ]; then
    echo "== header: committed copy is fresh"
    scripts/check-header.sh || fail "include/tinybase.h is stale"
fi

export TB_EXPECTED_VERSION="$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -1)"
if [ "${TSAN_ONLY:-0}" != 1 ]; then
echo "== C tests (library version $TB_EXPECTED_VERSION from Cargo.toml)"
make -C tests/c -s -j "${JOBS:-2}" all || { echo "building the C tests failed" >&2; exit 1; }
fi

TESTS="${ONLY:-test_store test_mergeable test_misuse test_threads test_sync test_soundness test_release test_ws test_persist}"

# Runs one binary; it must exit 0 and end with "N passed, 0 failed".
check_run() {
    local name="$1"; shift
    local out
    out="$("$@" 2>&1)"
    local rc=$?
    local last
    last="$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -1)"
    if [ $rc -ne 0 ] || ! printf '%s\n' "$last" | grep -qE '^[0-9]+ passed, 0 failed$'; then
        printf '%s\n' "$out" | tail -40 >&2
        fail "$name (exit $rc)"
    else
        echo "  $name: $last"
    fi
}

if [ "${TSAN_ONLY:-0}" != 1 ]; then
    for t in $TESTS; do
        check_run "$t (shared)" "$BUILD/${t}_shared"
        check_run "$t (static)" "$BUILD/${t}_static"
    done
fi

if [ "${SKIP_VALGRIND:-0}" != 1 ]; then
    if command -v valgrind > /dev/null; then
        # valgrind runs a program's threads one at a time, on one core: JOBS (default 2) programs
        # at a time, the longest (test_sync, test_threads) first; reports in the usual order.
        echo "== valgrind memcheck"
        MC="$BUILD/memcheck"
        rm -rf "$MC" && mkdir -p "$MC"
        for t in $(printf '%s\n' $TESTS | grep -xE 'test_sync|test_threads') $(printf '%s\n' $TESTS | grep -vxE 'test_sync|test_threads'); do
            for kind in ${MEMCHECK:-shared}; do
                while [ "$(jobs -rp | wc -l)" -ge "${JOBS:-2}" ]; do wait -n || true; done
                (
                    failures=0
                    check_run "$t ($kind, memcheck)" valgrind -q --suppressions=tests/c/valgrind.supp --error-exitcode=99 --leak-check=full \
                        --errors-for-leak-kinds=definite --show-leak-kinds=definite "$BUILD/${t}_$kind"
                    echo "$failures" > "$MC/$t.$kind.failures"
                ) > "$MC/$t.$kind.out" 2>&1 &
            done
        done
        wait
        for t in $TESTS; do
            for kind in ${MEMCHECK:-shared}; do
                cat "$MC/$t.$kind.out"
                [ "$(cat "$MC/$t.$kind.failures" 2>/dev/null)" = 0 ] || failures=$((failures + 1))
            done
        done
    else
        fail "valgrind not installed (set SKIP_VALGRIND=1 to skip)"
    fi
fi

if [ "${SKIP_TSAN:-0}" != 1 ] && [ -z "${ONLY:-}" ]; then
    echo "== ThreadSanitizer: test_threads, test_sync, test_release"
    export TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1"
    if rustup run nightly rustc --version > /dev/null 2>&1; then
        # The library itself instrumented (Rust's -Zsanitizer=thread), so every access on both
        # sides of the boundary is checked (scripts/build-tsan.sh).
        TRIPLE="$(rustc -vV | sed -n 's/^host: //p')"
        if scripts/build-tsan.sh; then
            TSAN_LIBDIR="$ROOT/target/tsan/$TRIPLE/release"
            make -C tests/c -s tsan TSAN_LIBDIR="$TSAN_LIBDIR" || fail "building the TSan tests"
            for t in test_threads test_sync test_release; do
                TSAN_OPTIONS="$TSAN_OPTIONS suppressions=$ROOT/tests/c/tsan.supp" \
                    check_run "$t (tsan, instrumented library)" "$BUILD/${t}_tsan"
            done
        else
            fail "building the TSan-instrumented library"
        fi
    else
        # Without nightly the library is not instrumented, and TSan cannot see its
        # parking_lot (futex) synchronisation: check the C side only.
        echo "  (no nightly toolchain: checking races in the C code only)"
        printf 'called_from_lib:libtinybase.so\nrace:libtinybase.so\n' > "$BUILD/tsan.supp"
        make -C tests/c -s tsan || fail "building the TSan tests"
        for t in test_threads test_sync test_release; do
            TSAN_OPTIONS="$TSAN_OPTIONS suppressions=$BUILD/tsan.supp" \
                check_run "$t (tsan, C side)" "$BUILD/${t}_tsan"
        done
    fi
fi

if [ $failures -ne 0 ]; then
    echo "== $failures stage(s) FAILED" >&2
    exit 1
fi
echo "== all C tests passed"
