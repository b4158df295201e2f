#!/usr/bin/env bash
# Builds the library, then packages the Python binding as a user would and runs the pytest suite
# against the installed wheel:
#   1. copies the tree (tracked and untracked files, not the ignored ones: no target/) to a temp dir;
#   2. `pip install ./bindings/python` from that copy into a fresh venv: cargo must compile the
#      library from the copy's sources (checked in the build log);
#   3. `python -m build` there: an sdist, then a wheel built from the sdist in an isolated temp dir
#      (cargo compiles the sdist's vendored crate: checked too);
#   4. deletes the copy, checks the pip-installed package works from elsewhere, checks the sdist and
#      wheel (tests/check_dist.py), installs the wheel and runs pytest against it.
# Cargo builds in $CARGO_TARGET_DIR (default: this checkout's target/), so only the tinybase crate
# is compiled again, not its dependencies. Exits with pytest's status ("no tests collected" fails).
# Needs only python3 (+ venv/pip) and network access to PyPI; installs python3-venv with apt-get
# on Debian/Ubuntu when `python3 -m venv` is unavailable.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
VENV="${TINYBASE_PY_VENV:-$REPO/target/python-venv}"
PYTHON="${PYTHON:-python3}"

cd "$REPO"
echo "== cargo build --release (library, the replay example and the Rust sync peers; the WebSocket server)"
scripts/build-native.sh

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

# The suite tests what got installed: the tests that want TINYBASE_LIBRARY set it themselves.
unset TINYBASE_LIBRARY
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
WORK="$(mktemp -d /tmp/tb-py-pkg.XXXXXX)"
COPY="$WORK/tree"
PG_DIR=""
cleanup() {
    if [ -n "$PG_DIR" ]; then
        "$REPO/scripts/pg.sh" stop "$PG_DIR" >/dev/null 2>&1 || true
        rm -rf "$PG_DIR"
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# Shows the end of a build log and fails.
build_failed() {
    tail -n 60 "$1" >&2
    echo "$2 failed (whole log above was $1)" >&2
    exit 1
}

pkg_start=$SECONDS
echo "== copy of the tree at $COPY (what a fresh clone has: no target/)"
mkdir -p "$COPY"
if git -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$REPO" && git ls-files -z --cached --others --exclude-standard \
        | tar --null --ignore-failed-read -T - -cf - 2>/dev/null) | tar -xf - -C "$COPY"
else
    tar -C "$REPO" --exclude=./target --exclude=./.git --exclude=node_modules -cf - . | tar -xf - -C "$COPY"
fi
# The checkout's dependency resolution (Cargo.lock, written by the cargo build above), so the copy's
# build reuses the dependencies already built in the target dir.
if [ -f "$REPO/Cargo.lock" ]; then cp "$REPO/Cargo.lock" "$COPY/"; fi
# New timestamps: cargo must compile the crate from the copy (its build of the same sources, under
# the same target dir, would otherwise count as up to date: cargo's fingerprints do not depend on
# where the crate lives).
touch_crate() { find "$COPY/src" "$COPY/build.rs" "$COPY/cbindgen.toml" -exec touch {} +; }
touch_crate

echo "== pip install ./bindings/python (from the copy; builds the library)"
(cd "$COPY" && "$VENV/bin/python" -m pip install -v ./bindings/python) >"$WORK/pip-install.log" 2>&1 \
    || build_failed "$WORK/pip-install.log" "pip install ./bindings/python"
if ! grep -q "Compiling tinybase-native v[^ ]* ($COPY)" "$WORK/pip-install.log"; then
    build_failed "$WORK/pip-install.log" "compiling the library from the copy ($COPY)"
fi
grep -h "Compiling tinybase-native\|Finished \`release\`" "$WORK/pip-install.log" | sed 's/^ */   cargo: /' || true

echo "== python -m build bindings/python (sdist, then the wheel from the sdist)"
touch_crate  # the sdist keeps these times: the wheel's build compiles the sdist's own copy again
(cd "$COPY" && "$VENV/bin/python" -m build --outdir "$WORK/dist" bindings/python) >"$WORK/build.log" 2>&1 \
    || build_failed "$WORK/build.log" "python -m build"
if ! grep -q "Compiling tinybase-native v[^ ]* (.*/tinybase-[^/ ]*/rust)" "$WORK/build.log"; then
    build_failed "$WORK/build.log" "compiling the library from the sdist's rust/"
fi
grep -h "Compiling tinybase-native\|Finished \`release\`\|Successfully built" "$WORK/build.log" | sed 's/^ */   /' || true
rm -rf "$COPY"

echo "== the pip-installed package, imported from $WORK with the copy gone"
(cd "$WORK" && "$VENV/bin/python" - <<'PY'
import sys
from pathlib import Path

import tinybase

package = Path(tinybase.__file__).resolve().parent
assert package.is_relative_to(Path(sys.prefix).resolve()), f"not the installed package: {package}"
assert Path(tinybase.library_path) == package / "_lib" / Path(tinybase.library_path).name, tinybase.library_path
assert tinybase.version() == tinybase.__version__
print(f"   tinybase {tinybase.__version__} from {package}, library {tinybase.library_path}")
PY
)

echo "== the sdist and the wheel"
"$VENV/bin/python" "$HERE/tests/check_dist.py" "$WORK/dist"
"$VENV/bin/python" -m pip install -q --force-reinstall --no-deps "$WORK"/dist/*.whl
echo "== packaging took $((SECONDS - pkg_start)) s"

# The PostgreSQL persister's tests need a server: unless TB_TEST_POSTGRES_DSN names one, start a
# throwaway one (scripts/pg.sh: initdb in a temporary folder, its own port on 127.0.0.1), stopped
# whatever the outcome. When it cannot start, those tests say they skipped (and fail under CI).
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
