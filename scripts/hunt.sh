#!/usr/bin/env bash
# Hunts for differences from TinyBase: generates COUNT new scripts from seeds starting at
# FIRST (default: random) with the real TinyBase and replays them with this library.
#   scripts/hunt.sh [COUNT] [FIRST] [STEPS]
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-200}
FIRST=${2:-$((RANDOM * 1000 + 100000))}
STEPS=${3:-60}
DIR=$(mktemp -d)
[ -d tests/interop/node_modules/tinybase ] || (cd tests/interop && npm ci --no-audit --no-fund --loglevel=error)
echo "generating $COUNT scripts from seed $FIRST ($STEPS steps) into $DIR"
node tests/interop/gen.mjs "$DIR" "$FIRST" "$COUNT" "$STEPS" >/dev/null
TB_CONFORMANCE_DIR="$DIR" cargo test --release --test conformance generated_scripts_match_tinybase -- --nocapture
