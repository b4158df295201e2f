#!/usr/bin/env bash
# Tests the C/C++ install (scripts/install.sh, the top-level CMakeLists.txt) as a user meets it:
#   1. builds the library and installs it into a temporary prefix;
#   2. checks the layout: headers, libtinybase.so.X.Y.Z with its SONAME and symlinks, the static
#      library, tinybase.pc and the CMake package, with no path of the build in them;
#   3. moves the prefix elsewhere (the install must be relocatable) and, from a copy of this
#      directory outside the repository, builds main.c with `pkg-config --cflags --libs tinybase`
#      (shared) and with `--static` (libtinybase.a), and main.c and main.cpp with a CMake project
#      that uses find_package(tinybase 0.1) (CMAKE_PREFIX_PATH, all four imported targets);
#   4. runs every program (a MergeableStore cell set and read back, tb_version() equal to
#      TB_VERSION_STRING) and checks which library each one loads;
#   5. removes the prefix, whatever happens.
# Installs pkg-config, patchelf and cmake with apt-get when missing (as root). Exits non-zero on
# any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
. scripts/need.sh
need cc gcc
need c++ g++
need cmake cmake
need pkg-config pkgconf
need patchelf patchelf
need readelf binutils

VERSION="$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -1)"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/tinybase-install-test.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAILED: $*" >&2; exit 1; }
checks=0
ok() { checks=$((checks + 1)); echo "  ok: $*"; }

echo "== scripts/install.sh --prefix $TMP/installed (tinybase $VERSION)"
scripts/install.sh --prefix "$TMP/installed" >"$TMP/install.log" 2>&1 \
  || { cat "$TMP/install.log" >&2; fail "scripts/install.sh"; }

echo "== layout"
P="$TMP/installed"
for f in include/tinybase.h include/tinybase.hpp lib/libtinybase.a lib/pkgconfig/tinybase.pc \
         lib/cmake/tinybase/tinybaseConfig.cmake lib/cmake/tinybase/tinybaseConfigVersion.cmake \
         lib/cmake/tinybase/tinybaseTargets.cmake; do
  [ -f "$P/$f" ] && [ ! -L "$P/$f" ] || fail "$f is not installed"
done
REAL="libtinybase.so.$VERSION"
[ -f "$P/lib/$REAL" ] && [ ! -L "$P/lib/$REAL" ] || fail "lib/$REAL is not installed"
SONAME="$(readelf -d "$P/lib/$REAL" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"
case "$SONAME" in
  libtinybase.so.[0-9]*) [ "${REAL#"$SONAME"}" != "$REAL" ] || fail "SONAME $SONAME is not a prefix of $REAL" ;;
  *) fail "lib/$REAL has SONAME '$SONAME', not libtinybase.so.N" ;;
esac
for link in "$SONAME" libtinybase.so; do
  [ -L "$P/lib/$link" ] && [ "$(readlink -f "$P/lib/$link")" = "$(readlink -f "$P/lib/$REAL")" ] \
    || fail "lib/$link is not a symlink to $REAL"
done
ok "lib/$REAL (SONAME $SONAME), lib/$SONAME and lib/libtinybase.so symlinks, libtinybase.a, headers"
if grep -rlF -e "$ROOT" -e "$P" "$P/lib/pkgconfig" "$P/lib/cmake" "$P/include"; then
  fail "the files above name the build or the prefix: the install is not relocatable"
fi
ok "tinybase.pc and the CMake package name no absolute path"

echo "== the prefix moved, the programs built outside the repository"
mv "$TMP/installed" "$TMP/moved"
P="$TMP/moved"
mkdir "$TMP/src"
cp tests/install/main.c tests/install/main.cpp tests/install/CMakeLists.txt "$TMP/src/"
cd "$TMP/src"

# Runs PROGRAM (it must print "ok: ..." and exit 0) and checks which tinybase it loads: NEEDED
# names the SONAME for a shared link, and nothing of tinybase for a static one.
run() { # run PROGRAM shared|static
  local needed loaded
  needed="$(readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | grep tinybase || true)"
  if [ "$2" = shared ]; then
    [ "$needed" = "$SONAME" ] || fail "$1 needs '$needed', not $SONAME"
    loaded="$(ldd "$1" | sed -n "s/^[[:space:]]*$SONAME => \([^ ]*\).*/\1/p")"
    [ -n "$loaded" ] && [ "$(readlink -f "$loaded")" = "$(readlink -f "$P/lib/$SONAME")" ] \
      || fail "$1 does not load $P/lib/$SONAME: $(ldd "$1" | grep tinybase)"
  else
    [ -z "$needed" ] || fail "$1 (static) needs $needed"
  fi
  "$1" | grep -q '^ok: ' || fail "$1 did not print ok"
  ok "$1 ($2)"
}

export PKG_CONFIG_PATH="$P/lib/pkgconfig"
[ "$(pkg-config --modversion tinybase)" = "$VERSION" ] || fail "pkg-config --modversion tinybase is not $VERSION"
CFLAGS="-std=c11 -Wall -Wextra -Werror"
# shellcheck disable=SC2046 # pkg-config's output is a list of arguments
cc $CFLAGS main.c -o c_pkgconfig_shared $(pkg-config --cflags --libs tinybase) \
  -Wl,-rpath,"$(pkg-config --variable=libdir tinybase)"
run ./c_pkgconfig_shared shared
# With both libraries in libdir, -ltinybase picks the shared one: -l:libtinybase.a asks for the
# static one (GNU ld), and --static adds Libs.private.
STATIC_LIBS="$(pkg-config --static --libs tinybase)"
# shellcheck disable=SC2046,SC2086
cc $CFLAGS main.c -o c_pkgconfig_static $(pkg-config --cflags tinybase) ${STATIC_LIBS/-ltinybase/-l:libtinybase.a}
run ./c_pkgconfig_static static

cmake -S . -B build -DCMAKE_PREFIX_PATH="$P" -DCMAKE_BUILD_TYPE=Release >"$TMP/cmake.log" 2>&1 \
  || { cat "$TMP/cmake.log" >&2; fail "cmake configure with find_package(tinybase 0.1)"; }
grep -q "tinybase $VERSION from $P/lib/cmake/tinybase" "$TMP/cmake.log" || fail "find_package found another tinybase"
ok "find_package(tinybase 0.1) finds $VERSION in the moved prefix; 0.2 and 1.0 refused"
cmake --build build -j "${JOBS:-2}" >"$TMP/build.log" 2>&1 || { cat "$TMP/build.log" >&2; fail "cmake build"; }
run build/c_shared shared
run build/c_static static
run build/cpp_shared shared
run build/cpp_static static

echo "== $checks checks passed (prefix removed)"
