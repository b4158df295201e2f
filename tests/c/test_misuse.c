/* Misuse: NULL everywhere, invalid UTF-8, malformed JSON, bad values and kinds, wrong state,
 * freeing NULL. Every call must return an error code (never crash) and leave out-params and
 * the store untouched. */
#include "common.h"
#include <pthread.h>

#define BAD "\xff\xfe"
#define NUL TB_ERROR_NULL_PARAMETER
#define UTF TB_ERROR_INVALID_UTF8
#define JSN TB_ERROR_INVALID_JSON

static void cb(void *ud, tb_store *st, const tb_event *e) { (void)ud; (void)st; (void)e; }
static int released = 0;
static void rel(void *ud) { (void)ud; released++; }

typedef struct {
    tb_store *store;
    tb_status status;
} finish_arg;

static void *finish_elsewhere(void *arg) {
    finish_arg *a = arg;
    a->status = tb_store_finish_transaction(a->store, false);
    return NULL;
}

int main(void) {
    int64_t base = tb_debug_live_handles();
    tb_store *st;
    tb_mergeable_store *m;
    CHECK_OK(tb_store_new(&st));
    CHECK_OK(tb_mergeable_store_new("m", &m));
    CHECK_OK(tb_store_set_cell_json(st, "t", "r", "c", "1"));
    char *out = (char *)0x1;
    tb_value v = tb_value_number(1), got;
    bool b;
    size_t n;
    uint32_t h1, h2;
    uint64_t id;

    /* NULL handles */
    CHECK_STATUS(tb_store_new(NULL), NUL);
    CHECK_STATUS(tb_mergeable_store_new(NULL, NULL), NUL);
    CHECK_STATUS(tb_mergeable_store_new_with_clock("x", NULL, NULL, rel, &m), NUL);
    CHECK_STATUS(tb_store_clone(NULL, &st), NUL);
    CHECK_STATUS(tb_store_clone(st, NULL), NUL);
    CHECK_STATUS(tb_mergeable_store_clone(NULL, &m), NUL);
    CHECK_STATUS(tb_store_as_mergeable(NULL, &m), NUL);
    CHECK_STATUS(tb_store_get_tables_json(NULL, &out), NUL);
    CHECK_STATUS(tb_store_get_tables_json(st, NULL), NUL);
    CHECK_STATUS(tb_store_get_values_json(NULL, &out), NUL);
    CHECK_STATUS(tb_store_get_json(NULL, &out), NUL);
    CHECK_STATUS(tb_store_get_content_json(NULL, &out), NUL);
    CHECK_STATUS(tb_store_get_table_json(st, NULL, &out), NUL);
    CHECK_STATUS(tb_store_get_row_json(st, "t", NULL, &out), NUL);
    CHECK_STATUS(tb_store_get_table_ids_json(NULL, &out), NUL);
    CHECK_STATUS(tb_store_get_table_cell_ids_json(st, NULL, &out), NUL);
    CHECK_STATUS(tb_store_get_row_ids_json(st, NULL, &out), NUL);
    CHECK_STATUS(tb_store_get_cell_ids_json(st, NULL, "r", &out), NUL);
    CHECK_STATUS(tb_store_get_value_ids_json(st, NULL), NUL);
    CHECK_STATUS(tb_store_get_row_count(st, "t", NULL), NUL);
    CHECK_STATUS(tb_store_get_cell(st, "t", "r", NULL, &got), NUL);
    CHECK_STATUS(tb_store_get_cell(st, "t", "r", "c", NULL), NUL);
    CHECK_STATUS(tb_store_get_value(NULL, "v", &got), NUL);
    CHECK_STATUS(tb_store_has_tables(st, NULL), NUL);
    CHECK_STATUS(tb_store_has_table(NULL, "t", &b), NUL);
    CHECK_STATUS(tb_store_has_table_cell(st, "t", NULL, &b), NUL);
    CHECK_STATUS(tb_store_has_row(st, NULL, "r", &b), NUL);
    CHECK_STATUS(tb_store_has_cell(st, "t", "r", "c", NULL), NUL);
    CHECK_STATUS(tb_store_has_values(NULL, &b), NUL);
    CHECK_STATUS(tb_store_has_value(st, NULL, &b), NUL);
    CHECK_STATUS(tb_store_set_tables_json(st, NULL), NUL);
    CHECK_STATUS(tb_store_set_values_json(NULL, "{}"), NUL);
    CHECK_STATUS(tb_store_set_json(st, NULL), NUL);
    CHECK_STATUS(tb_store_set_content_json(st, NULL), NUL);
    CHECK_STATUS(tb_store_set_partial_values_json(st, NULL), NUL);
    CHECK_STATUS(tb_store_apply_changes_json(st, NULL), NUL);
    CHECK_STATUS(tb_store_set_table_json(st, NULL, "{}"), NUL);
    CHECK_STATUS(tb_store_set_row_json(st, "t", "r", NULL), NUL);
    CHECK_STATUS(tb_store_set_partial_row_json(st, "t", NULL, "{}"), NUL);
    CHECK_STATUS(tb_store_add_row_json(st, "t", "{\"a\":1}", false, NULL), NUL);
    CHECK_STATUS(tb_store_set_cell(st, "t", "r", "c", NULL), NUL);
    CHECK_STATUS(tb_store_set_cell(NULL, "t", "r", "c", &v), NUL);
    CHECK_STATUS(tb_store_set_cell_json(st, "t", "r", "c", NULL), NUL);
    CHECK_STATUS(tb_store_set_cell_string(st, "t", "r", "c", NULL), NUL);
    CHECK_STATUS(tb_store_set_cell_string(NULL, "t", "r", "c", "x"), NUL);
    CHECK_STATUS(tb_store_set_cell_string(st, NULL, "r", "c", "x"), NUL);
    CHECK_STATUS(tb_store_set_value(st, NULL, &v), NUL);
    CHECK_STATUS(tb_store_set_value_json(st, "v", NULL), NUL);
    CHECK_STATUS(tb_store_del_tables(NULL), NUL);
    CHECK_STATUS(tb_store_del_table(st, NULL), NUL);
    CHECK_STATUS(tb_store_del_row(st, "t", NULL), NUL);
    CHECK_STATUS(tb_store_del_cell(st, "t", "r", NULL), NUL);
    CHECK_STATUS(tb_store_del_values(NULL), NUL);
    CHECK_STATUS(tb_store_del_value(st, NULL), NUL);
    CHECK_STATUS(tb_store_transaction(NULL, NULL, NULL), NUL);
    CHECK_STATUS(tb_store_start_transaction(NULL), NUL);
    CHECK_STATUS(tb_store_finish_transaction(NULL, false), NUL);
    CHECK_STATUS(tb_store_get_transaction_changes_json(st, NULL), NUL);
    CHECK_STATUS(tb_store_add_listener(NULL, TB_LISTENER_CELL, NULL, NULL, NULL, cb, NULL, rel, &id), NUL);
    CHECK_STATUS(tb_store_add_cell_listener(st, NULL, NULL, NULL, NULL, NULL, rel, &id), NUL);
    CHECK_STATUS(tb_store_add_tables_listener(st, cb, NULL, rel, NULL), NUL);
    CHECK_STATUS(tb_store_del_listener(NULL, 0), NUL);
    CHECK_STATUS(tb_store_call_listener(NULL, 0), NUL);
    CHECK_STATUS(tb_store_get_listener_count(st, NULL), NUL);
    CHECK_STATUS(tb_store_add_buffered_listener(st, NULL, TB_LISTENER_CELL, NULL, NULL, NULL, &id), NUL);
    CHECK_STATUS(tb_event_queue_new(NULL, NULL, rel, NULL), NUL);
    CHECK_STATUS(tb_event_queue_poll(NULL, NULL), NUL);
    CHECK_STATUS(tb_event_queue_wait(NULL, 0, NULL), NUL);
    CHECK_STATUS(tb_event_queue_len(NULL, &n), NUL);
    CHECK_STATUS(tb_mergeable_store_get_mergeable_content_json(NULL, &out), NUL);
    CHECK_STATUS(tb_mergeable_store_get_encoded_mergeable_content_json(m, NULL), NUL);
    CHECK_STATUS(tb_mergeable_store_get_mergeable_content_hashes(m, &h1, NULL), NUL);
    CHECK_STATUS(tb_mergeable_store_get_mergeable_content_hashes_json(NULL, &out), NUL);
    CHECK_STATUS(tb_mergeable_store_get_transaction_mergeable_changes_json(NULL, true, &out), NUL);
    CHECK_STATUS(tb_mergeable_store_get_encoded_transaction_mergeable_changes_json(m, true, NULL), NUL);
    CHECK_STATUS(tb_mergeable_store_apply_mergeable_changes_json(m, NULL), NUL);
    CHECK_STATUS(tb_mergeable_store_apply_decoded_mergeable_changes_json(NULL, "[]"), NUL);
    CHECK_STATUS(tb_mergeable_store_set_mergeable_content_json(m, NULL), NUL);
    CHECK_STATUS(tb_mergeable_store_set_decoded_mergeable_content_json(m, NULL), NUL);
    CHECK_STATUS(tb_mergeable_store_set_default_content_json(m, NULL), NUL);
    CHECK_STATUS(tb_mergeable_store_merge(m, NULL), NUL);
    CHECK_STATUS(tb_mergeable_store_merge(NULL, m), NUL);
    CHECK_STATUS(tb_mergeable_store_get_mergeable_table_hashes_json(NULL, &out), NUL);
    CHECK_STATUS(tb_mergeable_store_get_mergeable_table_diff_json(m, NULL, &out), NUL);
    CHECK_STATUS(tb_mergeable_store_get_mergeable_row_hashes_json(m, "{}", NULL), NUL);
    CHECK_STATUS(tb_mergeable_store_get_mergeable_row_diff_json(NULL, "{}", &out), NUL);
    CHECK_STATUS(tb_mergeable_store_get_mergeable_cell_hashes_json(m, NULL, &out), NUL);
    CHECK_STATUS(tb_mergeable_store_get_mergeable_cell_diff_json(m, NULL, &out), NUL);
    CHECK_STATUS(tb_mergeable_store_get_mergeable_value_hashes_json(m, NULL), NUL);
    CHECK_STATUS(tb_mergeable_store_get_mergeable_value_diff_json(m, NULL, &out), NUL);
    CHECK_STATUS(tb_mergeable_store_compute_content_hashes(NULL, &h1, &h2), NUL);
    CHECK(out == (char *)0x1); /* never written on failure */
    CHECK(released == 0);      /* failed registrations never release */

    /* invalid UTF-8 */
    CHECK_STATUS(tb_store_set_cell_json(st, BAD, "r", "c", "1"), UTF);
    CHECK_STATUS(tb_store_set_cell_string(st, "t", "r", "c", BAD), UTF);
    CHECK_STATUS(tb_store_set_cell_json(st, "t", "r", "c", "\"" BAD "\""), UTF);
    v = tb_value_string(BAD);
    CHECK_STATUS(tb_store_set_cell(st, "t", "r", "c", &v), UTF);
    CHECK_STATUS(tb_store_set_value(st, "v", &v), UTF);
    CHECK_STATUS(tb_store_get_cell(st, "t", BAD, "c", &got), UTF);
    CHECK_STATUS(tb_store_has_value(st, BAD, &b), UTF);
    CHECK_STATUS(tb_store_set_tables_json(st, BAD), UTF);
    CHECK_STATUS(tb_mergeable_store_new(BAD, &m), UTF);
    CHECK_STATUS(tb_store_add_row_listener(st, "t", BAD, cb, NULL, rel, &id), UTF);
    CHECK_STATUS(tb_mergeable_store_apply_mergeable_changes_json(m, BAD), UTF);

    /* malformed JSON */
    const char *bad_json[] = {"", "{", "{\"t\":}", "[1,]", "nul", "{\"a\":1} x", "\"\\ud800\""};
    for (size_t i = 0; i < sizeof bad_json / sizeof *bad_json; i++) {
        CHECK_STATUS(tb_store_set_tables_json(st, bad_json[i]), JSN);
        CHECK_STATUS(tb_store_set_values_json(st, bad_json[i]), JSN);
        CHECK_STATUS(tb_store_set_json(st, bad_json[i]), JSN);
        CHECK_STATUS(tb_store_set_content_json(st, bad_json[i]), JSN);
        CHECK_STATUS(tb_store_apply_changes_json(st, bad_json[i]), JSN);
        CHECK_STATUS(tb_store_set_table_json(st, "t", bad_json[i]), JSN);
        CHECK_STATUS(tb_store_set_row_json(st, "t", "r", bad_json[i]), JSN);
        CHECK_STATUS(tb_store_set_partial_row_json(st, "t", "r", bad_json[i]), JSN);
        CHECK_STATUS(tb_store_add_row_json(st, "t", bad_json[i], false, &out), JSN);
        CHECK_STATUS(tb_store_set_cell_json(st, "t", "r", "c", bad_json[i]), JSN);
        CHECK_STATUS(tb_store_set_value_json(st, "v", bad_json[i]), JSN);
        CHECK_STATUS(tb_store_set_partial_values_json(st, bad_json[i]), JSN);
        v = tb_value_json(bad_json[i]);
        CHECK_STATUS(tb_store_set_cell(st, "t", "r", "c", &v), JSN);
        CHECK_STATUS(tb_mergeable_store_apply_mergeable_changes_json(m, bad_json[i]), JSN);
        CHECK_STATUS(tb_mergeable_store_apply_decoded_mergeable_changes_json(m, bad_json[i]), JSN);
        CHECK_STATUS(tb_mergeable_store_set_mergeable_content_json(m, bad_json[i]), JSN);
        CHECK_STATUS(tb_mergeable_store_set_decoded_mergeable_content_json(m, bad_json[i]), JSN);
        CHECK_STATUS(tb_mergeable_store_set_default_content_json(m, bad_json[i]), JSN);
        CHECK_STATUS(tb_mergeable_store_get_mergeable_table_diff_json(m, bad_json[i], &out), JSN);
        CHECK_STATUS(tb_mergeable_store_get_mergeable_row_hashes_json(m, bad_json[i], &out), JSN);
        CHECK_STATUS(tb_mergeable_store_get_mergeable_row_diff_json(m, bad_json[i], &out), JSN);
        CHECK_STATUS(tb_mergeable_store_get_mergeable_cell_hashes_json(m, bad_json[i], &out), JSN);
        CHECK_STATUS(tb_mergeable_store_get_mergeable_cell_diff_json(m, bad_json[i], &out), JSN);
        CHECK_STATUS(tb_mergeable_store_get_mergeable_value_diff_json(m, bad_json[i], &out), JSN);
    }
    CHECK(out == (char *)0x1);
    /* well-formed JSON of the wrong shape */
    CHECK_STATUS(tb_store_set_tables_json(st, "[1]"), TB_ERROR_INVALID_SHAPE);
    CHECK_STATUS(tb_store_set_json(st, "[1,2]"), TB_ERROR_INVALID_SHAPE); /* ("{}" is tables: TinyBase) */
    CHECK_STATUS(tb_mergeable_store_apply_mergeable_changes_json(m, "{\"a\":1}"), TB_ERROR_INVALID_SHAPE);
    /* an HLC far in the future is refused, and nothing is applied */
    CHECK(tb_mergeable_store_apply_mergeable_changes_json(
              m, "[[{\"t\":[{\"r\":[{\"c\":[1,\"zzzzzzzzzzzzzzzz\"]}]}]}],[{}],1]") != TB_OK);

    /* bad values and kinds */
    v = tb_value_number(0.0 / 0.0);
    CHECK_STATUS(tb_store_set_cell(st, "t", "r", "c", &v), TB_ERROR_INVALID_VALUE);
    v = tb_value_absent();
    CHECK_STATUS(tb_store_set_cell(st, "t", "r", "c", &v), TB_ERROR_INVALID_VALUE);
    v.kind = 99;
    CHECK_STATUS(tb_store_set_value(st, "v", &v), TB_ERROR_INVALID_VALUE);
    v = tb_value_string("\xef\xbf\xbc"); /* U+FFFC is reserved */
    CHECK_STATUS(tb_store_set_cell(st, "t", "r", "c", &v), TB_ERROR_INVALID_VALUE);
    v = tb_value_string(NULL);
    CHECK_STATUS(tb_store_set_cell(st, "t", "r", "c", &v), NUL);
    CHECK_STATUS(tb_store_add_listener(st, 22, NULL, NULL, NULL, cb, NULL, rel, &id), TB_ERROR_INVALID_ARGUMENT);
    CHECK_STATUS(tb_store_add_buffered_listener(st, (tb_event_queue *)0, 99, NULL, NULL, NULL, &id), TB_ERROR_INVALID_ARGUMENT);
    CHECK(released == 0);
    CHECK_JSON(tb_store_get_json(st, &out), out, "[{\"t\":{\"r\":{\"c\":1}}},{}]"); /* untouched */

    /* wrong state */
    tb_mergeable_store *not_m = (tb_mergeable_store *)0x1;
    CHECK_STATUS(tb_store_as_mergeable(st, &not_m), TB_ERROR_INVALID_STATE);
    CHECK(not_m == (tb_mergeable_store *)0x1);
    CHECK_STATUS(tb_mergeable_store_merge(m, (tb_mergeable_store *)st), TB_ERROR_INVALID_STATE);
    CHECK_STATUS(tb_store_finish_transaction(st, false), TB_ERROR_INVALID_STATE);
    CHECK_OK(tb_store_del_listener(st, 12345));
    CHECK_OK(tb_store_call_listener(st, 12345));
    CHECK_OK(tb_store_start_transaction(st));
    finish_arg fa = {st, TB_OK};
    pthread_t th;
    pthread_create(&th, NULL, finish_elsewhere, &fa);
    pthread_join(th, NULL);
    CHECK(fa.status == TB_ERROR_INVALID_STATE);
    CHECK_OK(tb_store_finish_transaction(st, false));

    /* freeing NULL */
    tb_store_free(NULL);
    tb_mergeable_store_free(NULL);
    tb_string_free(NULL);
    tb_value_free(NULL);
    tb_event_free(NULL);
    tb_event_queue_free(NULL);
    got = tb_value_string("not owned");
    tb_value_free(&got); /* not owned: left alone */

    tb_store_free(st);
    tb_mergeable_store_free(m);
    CHECK(tb_debug_live_handles() == base);
    return tb_finish("test_misuse");
}
