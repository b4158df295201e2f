#!/usr/bin/env bash
# The committed include/tinybase.h must be exactly what the pinned cbindgen (build.rs +
# cbindgen.toml) generates from src/ffi/. The build writes the header only into cargo's OUT_DIR,
# never into the source tree: this script proves it by building a READ-ONLY copy of the crate
# (without include/) in a scratch directory, then compares the header generated there with the
# committed copy.
#
#   scripts/check-header.sh             exit 1 (with a diff) when include/tinybase.h is stale
#   scripts/check-header.sh --update    refresh include/tinybase.h from the generated header
#
# CHECK_HEADER_TARGET_DIR overrides the target directory (default target/check-header, reused
# between runs: only the first run compiles the build dependencies). The checkout's own target/
# saves that first compile (cbindgen, SQLite's and ring's C: the build scripts' output is shared
# with `cargo check`), but cargo hashes a path crate by its place in the workspace, so the copy's
# build script is the checkout's: its run makes the checkout's library stale (one rebuild).
# test-all.sh does that last, when nothing builds after it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

update=0
if [ "${1:-}" = "--update" ]; then
    update=1
    shift
fi
[ $# -eq 0 ] || { echo "usage: scripts/check-header.sh [--update]" >&2; exit 2; }

target_dir="${CHECK_HEADER_TARGET_DIR:-$ROOT/target/check-header}"
case "$target_dir" in /*) ;; *) target_dir="$ROOT/$target_dir" ;; esac # cargo runs in the copy
scratch="$(mktemp -d)"
trap 'chmod -R u+w "$scratch"; rm -rf "$scratch"' EXIT
src="$scratch/tinybase-native"
mkdir "$src"
cp -R Cargo.toml build.rs cbindgen.toml src "$src/"
# The workspace's other members (server/, bench/...) must be there for cargo to read the root
# manifest: each one's manifest and sources, as `cargo metadata` lists them.
cargo metadata --no-deps --format-version 1 | python3 -c '
import json, os, sys
m = json.load(sys.stdin)
root = m["workspace_root"]
for p in m["packages"]:
    d = os.path.relpath(os.path.dirname(p["manifest_path"]), root)
    if d != ".":
        print(d)
' | while read -r member; do
  mkdir -p "$src/$member"
  cp -R "$member/Cargo.toml" "$member/src" "$src/$member/"
done
[ -f Cargo.lock ] && cp Cargo.lock "$src/"
[ -f "$src/Cargo.lock" ] || (cd "$src" && cargo generate-lockfile -q)
chmod -R a-w "$src"

# `cargo check` runs the build script without compiling the library: the quickest way to OUT_DIR.
build() { (cd "$src" && cargo check --release --lib --target-dir "$target_dir" "$@"); }
out_dir="$(build --message-format=json 2>/dev/null | python3 -c '
import json, sys
out = ""
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "build-script-executed" and "tinybase-native" in m.get("package_id", ""):
        out = m.get("out_dir", "")
print(out)
')"

generated="$out_dir/tinybase.h"
if [ -z "$out_dir" ] || [ ! -f "$generated" ]; then
    echo "check-header: building a read-only copy of the crate failed, or it generated no header:" >&2
    build >&2 || true
    exit 2
fi
if [ -e "$src/include" ]; then
    echo "check-header: the build wrote into the source tree ($src/include)" >&2
    exit 1
fi

if [ $update -eq 1 ]; then
    if cmp -s "$generated" include/tinybase.h 2>/dev/null; then
        echo "check-header: include/tinybase.h already up to date"
    else
        mkdir -p include
        cp "$generated" include/tinybase.h
        echo "check-header: include/tinybase.h refreshed; commit it"
    fi
    exit 0
fi

if [ -f include/tinybase.h ] && cmp -s "$generated" include/tinybase.h; then
    echo "check-header: include/tinybase.h is up to date (built from a read-only copy)"
else
    echo "check-header: include/tinybase.h is STALE; differences (committed -> generated):" >&2
    diff -u include/tinybase.h "$generated" 2>&1 | head -50 >&2 || true
    echo "check-header: run scripts/check-header.sh --update and commit include/tinybase.h" >&2
    exit 1
fi
