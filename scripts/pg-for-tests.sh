# Sourced by a binding's test script (bash):   . "$REPO/scripts/pg-for-tests.sh"
# The PostgreSQL persister tests need a server: unless TB_TEST_POSTGRES_DSN already names one
# (test-all.sh starts one for every step), start a throwaway one with scripts/pg.sh and export
# TB_TEST_POSTGRES_DSN; it is stopped and its folder removed when the calling script exits (this
# sets the caller's EXIT trap). When none can start, the PostgreSQL tests skip (and fail under
# CI=true).
TB_PG_SH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/pg.sh"
TB_PG_DIR=""
tb_stop_pg() {
    if [ -n "$TB_PG_DIR" ]; then
        "$TB_PG_SH" stop "$TB_PG_DIR" >/dev/null 2>&1 || true
        rm -rf "$TB_PG_DIR"
    fi
}
trap tb_stop_pg EXIT
if [ -z "${TB_TEST_POSTGRES_DSN:-}" ]; then
    TB_PG_DIR="$(mktemp -d /tmp/tb-pg.XXXXXX)"
    rmdir "$TB_PG_DIR"  # pg.sh wants a folder that does not exist or is empty, and creates it
    echo "== PostgreSQL for the persister tests (scripts/pg.sh start $TB_PG_DIR)"
    if tb_pg_env="$("$TB_PG_SH" start "$TB_PG_DIR")"; then
        eval "$tb_pg_env"
        export TB_TEST_POSTGRES_DSN
    else
        echo "PostgreSQL did not start: the PostgreSQL persister tests will skip (and fail under CI=true)" >&2
    fi
fi
