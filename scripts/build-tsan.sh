#!/usr/bin/env bash
# Builds the library instrumented by ThreadSanitizer (Rust's -Zsanitizer=thread, nightly) into
# target/tsan/HOST/release, for tests/c/run.sh's TSan stage. std stays uninstrumented (no
# -Zbuild-std): its allocator calls go through TSan's interceptors. The tests TSan runs use no
# PostgreSQL: without that default feature the build compiles no tokio. SQLite's C (cc does not
# instrument it; no TSan test persists) compiles at -O0 without debug information. The Rust code
# keeps the release profile (opt-level 3, debug = 1): tests/c/tsan.supp matches the symbol names
# TSan's stacks show with that debug information and inlining (with line tables only, or at
# opt-level 1, the known Arc drop_slow false positive escapes it).
# Exits 2 without a nightly toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup run nightly rustc --version >/dev/null 2>&1 || exit 2
TRIPLE="$(rustc -vV | sed -n 's/^host: //p')"
RUSTFLAGS="-Zsanitizer=thread -Cunsafe-allow-abi-mismatch=sanitizer" \
  cargo +nightly build --release --lib --no-default-features --target "$TRIPLE" --target-dir target/tsan \
  --config 'profile.release.package.libsqlite3-sys.opt-level=0' \
  --config 'profile.release.package.libsqlite3-sys.debug=0'
