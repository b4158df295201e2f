#!/usr/bin/env bash
# Builds the library, installs the Python package into a fresh venv under target/ and runs the
# pytest suite. Exits with pytest's status ("no tests collected" counts as a failure).
# Needs only python3 (+ venv/pip) and network access to PyPI; installs python3-venv with apt-get
# on Debian/Ubuntu when `python3 -m venv` is unavailable.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
VENV="${TINYBASE_PY_VENV:-$REPO/target/python-venv}"
PYTHON="${PYTHON:-python3}"

cd "$REPO"
echo "== cargo build --release (library, the replay example and the Rust sync peers; the WebSocket server)"
cargo build --release --lib --example replay --example sync_peer --example ws_peer
cargo build --release -p tinybase-server

have_venv() {
    local probe
    probe="$(mktemp -d)"
    if "$PYTHON" -m venv "$probe/v" >/dev/null 2>&1 && [ -x "$probe/v/bin/pip" ]; then
        rm -rf "$probe"; return 0
    fi
    rm -rf "$probe"; return 1
}

if ! have_venv; then
    if command -v apt-get >/dev/null 2>&1; then
        ver="$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
        echo "== python3 -m venv unavailable: installing python3-venv with apt-get"
        SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
        $SUDO apt-get update -qq
        $SUDO apt-get install -y -qq "python${ver}-venv" || $SUDO apt-get install -y -qq python3-venv
    else
        echo "python3 -m venv does not work and apt-get is not available" >&2
        exit 1
    fi
fi

echo "== venv at $VENV"
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -r "$HERE/requirements-test.txt"
"$VENV/bin/python" -m pip install -q "$HERE"
rm -rf "$HERE/build" "$HERE"/*.egg-info

# The PostgreSQL persister's tests need a server: unless TB_TEST_POSTGRES_DSN names one, start a
# throwaway one (scripts/pg.sh: initdb in a temporary folder, its own port on 127.0.0.1), stopped
# whatever the outcome. When it cannot start, those tests say they skipped (and fail under CI).
PG_DIR=""
stop_pg() {
    if [ -n "$PG_DIR" ]; then
        "$REPO/scripts/pg.sh" stop "$PG_DIR" >/dev/null 2>&1 || true
        rm -rf "$PG_DIR"
    fi
}
trap stop_pg EXIT
if [ -z "${TB_TEST_POSTGRES_DSN:-}" ] && [ -x "$REPO/scripts/pg.sh" ]; then
    PG_DIR="$(mktemp -d /tmp/tb-py-pg.XXXXXX)"
    rmdir "$PG_DIR"  # pg.sh wants a folder that does not exist or is empty, and creates it
    echo "== PostgreSQL for the persister tests (scripts/pg.sh start $PG_DIR)"
    if pg_env="$("$REPO/scripts/pg.sh" start "$PG_DIR")"; then
        eval "$pg_env"
        export TB_TEST_POSTGRES_DSN
    else
        echo "PostgreSQL did not start: the PostgreSQL persister tests will skip (and fail under CI=true)" >&2
    fi
fi

echo "== pytest (installed package: $("$VENV/bin/python" -c 'import tinybase; print(tinybase.library_path)'))"
cd "$HERE/tests"   # not the package's parent: the tests import the installed package
set +e
"$VENV/bin/python" -m pytest -q -p no:cacheprovider "$HERE/tests" "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests: failing" >&2
    exit 5
fi
exit "$status"
