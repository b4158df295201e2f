/* Tiny test harness shared by the C tests: CHECK counts, a closing "N passed, M failed". */
#ifndef TB_TEST_COMMON_H
#define TB_TEST_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tinybase.h"

static int tb_passed = 0;
static int tb_failed = 0;

#define CHECK(cond)                                                                          \
    do {                                                                                     \
        if (cond) {                                                                          \
            tb_passed++;                                                                     \
        } else {                                                                             \
            tb_failed++;                                                                     \
            fprintf(stderr, "FAIL %s:%d: %s (last error: %s)\n", __FILE__, __LINE__, #cond,  \
                    tb_last_error_message());                                                \
        }                                                                                    \
    } while (0)

#define CHECK_OK(call) CHECK((call) == TB_OK)
#define CHECK_STATUS(call, status) CHECK((call) == (status))

/* Compares an owned library string with the expected text, then frees it. */
#define CHECK_JSON(call_with_out, out, expected)                                             \
    do {                                                                                     \
        out = NULL;                                                                          \
        CHECK_OK(call_with_out);                                                             \
        CHECK(out != NULL && strcmp(out, expected) == 0);                                    \
        if (out && strcmp(out, expected) != 0)                                               \
            fprintf(stderr, "  got:      %s\n  expected: %s\n", out, expected);              \
        tb_string_free(out);                                                                 \
        out = NULL;                                                                          \
    } while (0)

static int tb_finish(const char *name) {
    printf("[%s]\n%d passed, %d failed\n", name, tb_passed, tb_failed);
    return tb_failed == 0 ? 0 : 1;
}

#endif
