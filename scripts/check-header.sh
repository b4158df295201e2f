#!/usr/bin/env bash
# CI gate: the committed include/tinybase.h must be exactly what the pinned cbindgen
# (build.rs + cbindgen.toml) generates from src/ffi/. Regenerates the header into cargo's
# OUT_DIR (a scratch directory) via `cargo build`, compares it with the committed copy, and
# exits 1 when they differ (after refreshing include/tinybase.h in the working tree, so that
# the fix is to commit it).
#
# Usage: scripts/check-header.sh [extra cargo build args, default --release]
set -euo pipefail
cd "$(dirname "$0")/.."

committed="$(mktemp)"
trap 'rm -f "$committed"' EXIT
if [ -f include/tinybase.h ]; then
    cp include/tinybase.h "$committed"
else
    : > "$committed"
fi

args=("$@")
[ ${#args[@]} -eq 0 ] && args=(--release)

out_dir="$(cargo build "${args[@]}" --message-format=json 2>/dev/null | python3 -c '
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

if [ -z "$out_dir" ] || [ ! -f "$out_dir/tinybase.h" ]; then
    echo "check-header: could not find the generated header (did cargo build fail?)" >&2
    cargo build "${args[@]}" >&2 || true
    exit 2
fi

if cmp -s "$out_dir/tinybase.h" "$committed"; then
    echo "check-header: include/tinybase.h is up to date"
else
    echo "check-header: include/tinybase.h is STALE; differences (committed -> generated):" >&2
    diff -u "$committed" "$out_dir/tinybase.h" | head -50 >&2 || true
    cp "$out_dir/tinybase.h" include/tinybase.h
    echo "check-header: include/tinybase.h has been regenerated in the working tree; commit it." >&2
    exit 1
fi
