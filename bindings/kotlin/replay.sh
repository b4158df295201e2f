#!/usr/bin/env bash
# Replays a conformance script through the Kotlin binding and prints what
# `cargo run --release --example replay -- SCRIPT.json` prints (org.tinybase.Replay, in
# src/test/kotlin). Builds what it needs on first use: the native library when it is missing,
# the test classes when they are missing, and the dependency classpath (cached in target/).
#
# Usage: bindings/kotlin/replay.sh SCRIPT.json
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "usage: $0 SCRIPT.json" >&2
  exit 2
fi
script=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
lib="$root/target/release/libtinybase.so"
if [ ! -f "$lib" ]; then
  (cd "$root" && cargo build --release --lib >&2)
fi
cd "$here"
if [ ! -f target/test-classes/org/tinybase/Replay.class ] || [ ! -f target/classes/org/tinybase/Store.class ]; then
  mvn -q -B test-compile >&2
fi
cp_file=target/replay.classpath
if [ ! -s "$cp_file" ] || [ pom.xml -nt "$cp_file" ]; then
  # The plugin pinned here: a bare "dependency:" prefix would resolve whatever is newest.
  mvn -q -B org.apache.maven.plugins:maven-dependency-plugin:3.8.1:build-classpath -Dmdep.outputFile="$cp_file" >&2
fi
exec java -Dtinybase.library.path="$lib" -cp "target/test-classes:target/classes:$(cat "$cp_file")" org.tinybase.Replay "$script"
