#!/usr/bin/env bash
# Randomized interop with real TinyBase peers (tests/interop/random/README.md): seeds
# FIRST_SEED .. FIRST_SEED+COUNT-1, each in mode A (anti-entropy on at our peers, everybody
# writes) and mode B (anti-entropy off, only our peers write), 2 runs at a time.
#
#   scripts/interop-random.sh COUNT [FIRST_SEED]
#
# Environment: MODE=A|B|AB (default AB), JOBS (default 2), PYTHON=0 to leave the Python peer
# out, LOGS (default target/interop-random: the logs of every run that did not converge).
# Exit status 1 if any run did not converge.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:?usage: scripts/interop-random.sh COUNT [FIRST_SEED]}
FIRST=${2:-1}
if [ ! -d tests/interop/node_modules/tinybase ]; then
  (cd tests/interop && npm ci --no-audit --no-fund --loglevel=error)
fi
cargo build --release --quiet --lib --example random_peer
PY=()
if [ "${PYTHON:-1}" != 0 ]; then
  PY=(--python "python3 $PWD/tests/interop/random/py_peer.py")
fi
exec node tests/interop/random/run.mjs --rust target/release/examples/random_peer \
  --count "$COUNT" --first "$FIRST" --mode "${MODE:-AB}" --jobs "${JOBS:-2}" \
  --logs "${LOGS:-target/interop-random}" --quiet "${PY[@]}"
