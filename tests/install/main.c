/* A C program built against an installed tinybase only (tests/install/run.sh builds it with
 * `pkg-config --cflags --libs [--static] tinybase` and through find_package(tinybase)): it checks
 * that the library it runs with is the one its header describes and that a MergeableStore works.
 * Exits 0 and prints "ok ..." on success, 1 with the reason otherwise. */
#include <tinybase.h>

#include <stdio.h>
#include <string.h>

/* Reports a failed check with the library's last error (when there is one). */
static int fail(const char *what) {
    const char *why = tb_last_error_message();
    fprintf(stderr, "FAILED: %s%s%s\n", what, why ? ": " : "", why ? why : "");
    return 1;
}

int main(void) {
    if (strcmp(tb_version(), TB_VERSION_STRING) != 0) {
        fprintf(stderr, "FAILED: tb_version() is %s, the header says %s\n", tb_version(), TB_VERSION_STRING);
        return 1;
    }
    tb_mergeable_store *mergeable = NULL;
    if (tb_mergeable_store_new("install-c", &mergeable) != TB_OK) return fail("tb_mergeable_store_new");
    tb_store *store = tb_mergeable_store_as_store(mergeable);

    int rc = 0;
    tb_value cell = tb_value_string("installed");
    tb_value read = tb_value_absent();
    if (tb_store_set_cell(store, "pets", "fido", "status", &cell) != TB_OK) {
        rc = fail("tb_store_set_cell");
    } else if (tb_store_get_cell(store, "pets", "fido", "status", &read) != TB_OK) {
        rc = fail("tb_store_get_cell");
    } else if (read.kind != TB_VALUE_STRING || read.length != strlen("installed") ||
               memcmp(read.string, "installed", read.length) != 0) {
        fprintf(stderr, "FAILED: the cell read back is not the string \"installed\" (kind %u)\n", (unsigned)read.kind);
        rc = 1;
    }
    tb_value_free(&read);
    tb_mergeable_store_free(mergeable);
    if (rc == 0 && tb_debug_live_handles() != 0) {
        fprintf(stderr, "FAILED: %lld handles still live\n", (long long)tb_debug_live_handles());
        rc = 1;
    }
    if (rc == 0) printf("ok: C, tinybase %s\n", tb_version());
    return rc;
}
