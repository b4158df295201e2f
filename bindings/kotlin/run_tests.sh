#!/usr/bin/env bash
# Builds what the Kotlin tests use (the library, tinybase-server, the sync_peer and replay
# examples), then runs the Kotlin suite and the jar test (`mvn verify`: surefire, then the jar
# with libtinybase.so inside, then failsafe's JarIT). Fails when a test fails or when no test ran.
#   bindings/kotlin/run_tests.sh [MAVEN ARGS...]     e.g. -Dtest=BaseTest
#   SKIP_CARGO=1 bindings/kotlin/run_tests.sh         when those are built already
# Needs a JDK >= 17 and Maven: installs them with apt-get on Debian when missing (as root).
# Maven downloads the pinned plugins and dependencies from Maven Central into ~/.m2 on first use.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
cd "$REPO"

apt_install() { # apt_install PACKAGE...: Debian only, as root (or through sudo)
    command -v apt-get >/dev/null 2>&1 || return 1
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

jdk_major() { # jdk_major JAVAC: the feature version of that JDK (0 when unusable)
    "$1" -version 2>&1 | awk '/^javac/ { split($2, v, "."); print v[1] + 0; found = 1 } END { if (!found) print 0 }'
}

# A JDK >= 17 (the Kotlin compiler's and the tests' JVM target): javac on PATH, else one under
# /usr/lib/jvm, else Debian's default JDK.
have_jdk() {
    if command -v javac >/dev/null 2>&1 && [ "$(jdk_major javac)" -ge 17 ]; then return 0; fi
    local home
    for home in /usr/lib/jvm/*; do
        if [ -x "$home/bin/javac" ] && [ "$(jdk_major "$home/bin/javac")" -ge 17 ]; then
            export JAVA_HOME="$home" PATH="$home/bin:$PATH"
            return 0
        fi
    done
    return 1
}
if ! have_jdk; then
    echo "== no JDK >= 17: installing default-jdk-headless with apt-get"
    apt_install default-jdk-headless || true
    have_jdk || { echo "a JDK >= 17 is needed (Debian: apt-get install default-jdk-headless)" >&2; exit 1; }
fi
if ! command -v mvn >/dev/null 2>&1; then
    echo "== no Maven: installing maven with apt-get"
    apt_install maven || { echo "Maven is needed (Debian: apt-get install maven)" >&2; exit 1; }
fi

# scripts/build-native.sh: one cargo invocation, the same package selection as the other
# binding scripts (see why there).
# SKIP_CARGO=1 (test-all.sh, after steps that built them): use what target/release holds.
if [ "${SKIP_CARGO:-}" = 1 ]; then
    for f in target/release/libtinybase.so target/release/tinybase-server \
        target/release/examples/sync_peer target/release/examples/replay; do
        [ -x "$f" ] || { echo "SKIP_CARGO=1 but $f was not built" >&2; exit 1; }
    done
else
    echo "== cargo build --release (the library, tinybase-server, the sync_peer and replay examples)"
    scripts/build-native.sh
fi

# A throwaway PostgreSQL for the persister tests unless TB_TEST_POSTGRES_DSN names one (stopped
# at exit).
. "$REPO/scripts/pg-for-tests.sh"

cd "$HERE"
# Reports of an earlier run must not count as tests of this one.
rm -rf target/surefire-reports target/failsafe-reports
echo "== mvn verify (the suite, then the jar and the jar test)"
mvn -q -B verify "$@"

# Maven's -q hides the counts: sum them from the reports, and fail when nothing ran.
read -r tests failures errors skipped < <(
    cat target/surefire-reports/TEST-*.xml target/failsafe-reports/TEST-*.xml 2>/dev/null |
        awk 'match($0, /<testsuite [^>]*>/) {
                 s = substr($0, RSTART, RLENGTH)
                 for (k = split("tests failures errors skipped", key, " "); k > 0; k--)
                     if (match(s, " " key[k] "=\"[0-9]+\"")) n[k] += substr(s, RSTART + length(key[k]) + 3, RLENGTH - length(key[k]) - 4)
             }
             END { printf "%d %d %d %d\n", n[1], n[2], n[3], n[4] }'
)
echo "== Kotlin: $tests tests, $failures failures, $errors errors, $skipped skipped"
if [ "$tests" -eq 0 ]; then
    echo "no Kotlin test ran: failing" >&2
    exit 1
fi
