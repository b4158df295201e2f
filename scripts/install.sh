#!/usr/bin/env bash
# Installs tinybase for C and C++ users into PREFIX: the headers (tinybase.h, tinybase.hpp), the
# shared library (libtinybase.so.X.Y.Z with its SONAME and symlinks), the static library, a
# pkg-config file and a CMake package. It builds the library first (cargo build --release --lib).
#
#   scripts/install.sh --prefix DIR [--build-dir DIR] [-- EXTRA CMAKE CONFIGURE ARGUMENTS]
#
# It drives the top-level CMakeLists.txt (configure, build, install), which says what is installed
# where; --build-dir defaults to target/cmake-install. Needs cargo, cmake, a C compiler and
# patchelf. DESTDIR is honoured (staged installs for packagers).
set -euo pipefail

usage() { sed -n '2,10s/^# \{0,1\}//p' "$0" >&2; exit 2; }

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PREFIX=
BUILD="$ROOT/target/cmake-install"
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || usage; PREFIX="$2"; shift 2 ;;
    --prefix=*) PREFIX="${1#--prefix=}"; shift ;;
    --build-dir) [ $# -ge 2 ] || usage; BUILD="$2"; shift 2 ;;
    --build-dir=*) BUILD="${1#--build-dir=}"; shift ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|--help) usage ;;
    *) echo "unknown argument: $1" >&2; usage ;;
  esac
done
[ -n "$PREFIX" ] || { echo "--prefix DIR is required" >&2; usage; }
# An absolute prefix, so that a relative one means the caller's directory, not the build's.
case "$PREFIX" in /*) ;; *) PREFIX="$PWD/$PREFIX" ;; esac

cmake -S "$ROOT" -B "$BUILD" -DCMAKE_INSTALL_PREFIX="$PREFIX" ${EXTRA[@]+"${EXTRA[@]}"} >/dev/null
cmake --build "$BUILD"
cmake --install "$BUILD" --prefix "$PREFIX"
