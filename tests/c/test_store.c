/* Every tb_store function group: handles, typed and JSON getters/setters, transactions,
 * listeners of every kind (callbacks and buffered), errors, version, live-handle counting. */
#include "common.h"
#include <pthread.h>

static char *s; /* scratch for CHECK_JSON */

static void test_version(void) {
    char buf[64];
    snprintf(buf, sizeof buf, "%d.%d.%d", TB_VERSION_MAJOR, TB_VERSION_MINOR, TB_VERSION_PATCH);
    CHECK(strcmp(tb_version(), TB_VERSION_STRING) == 0);
    CHECK(strcmp(tb_version(), buf) == 0);
    const char *expected = getenv("TB_EXPECTED_VERSION"); /* set by run.sh from Cargo.toml */
    if (expected) CHECK(strcmp(tb_version(), expected) == 0);
}

static void test_handles(void) {
    int64_t base = tb_debug_live_handles();
    tb_store *a = NULL, *b = NULL;
    CHECK_OK(tb_store_new(&a));
    CHECK(a != NULL);
    CHECK(tb_debug_live_handles() == base + 1);
    CHECK_OK(tb_store_clone(a, &b));
    CHECK(b == a);
    CHECK(tb_debug_live_handles() == base + 2);
    tb_value v = tb_value_number(7);
    CHECK_OK(tb_store_set_value(b, "n", &v));
    tb_store_free(b); /* a still alive: the store survives */
    tb_value got;
    CHECK_OK(tb_store_get_value(a, "n", &got));
    CHECK(got.kind == TB_VALUE_NUMBER && got.number == 7);
    tb_value_free(&got);
    tb_mergeable_store *m = (tb_mergeable_store *)1;
    CHECK_STATUS(tb_store_as_mergeable(a, &m), TB_ERROR_INVALID_STATE);
    CHECK(m == (tb_mergeable_store *)1); /* out-param untouched on failure */
    tb_store_free(a);
    tb_store_free(NULL);
    CHECK(tb_debug_live_handles() == base);
}

static void test_values(tb_store *st) {
    tb_value v;
    v = tb_value_string("hi");
    CHECK_OK(tb_store_set_cell(st, "t", "r", "s", &v));
    v = tb_value_number(1.5);
    CHECK_OK(tb_store_set_cell(st, "t", "r", "n", &v));
    v = tb_value_boolean(true);
    CHECK_OK(tb_store_set_cell(st, "t", "r", "b", &v));
    v = tb_value_null();
    CHECK_OK(tb_store_set_cell(st, "t", "r", "z", &v));
    v = tb_value_json("{\"a\":[1,2]}");
    CHECK_OK(tb_store_set_cell(st, "t", "r", "j", &v));
    CHECK_OK(tb_store_set_cell_json(st, "t", "r2", "nul", "\"a\\u0000b\""));
    CHECK_OK(tb_store_set_cell_string(st, "u", "r", "str", "plain \xC3\xA9"));
    CHECK_STATUS(tb_store_set_cell_string(st, "u", "r", "str", "\xEF\xBF\xBC"), TB_ERROR_INVALID_VALUE); /* U+FFFC is reserved */

    tb_value g;
    CHECK_OK(tb_store_get_cell(st, "u", "r", "str", &g));
    CHECK(g.kind == TB_VALUE_STRING && strcmp(g.string, "plain \xC3\xA9") == 0);
    tb_value_free(&g);
    CHECK_OK(tb_store_del_table(st, "u"));
    CHECK_OK(tb_store_get_cell(st, "t", "r", "s", &g));
    CHECK(g.kind == TB_VALUE_STRING && g.owned && g.length == 2 && strcmp(g.string, "hi") == 0);
    tb_value_free(&g);
    CHECK(g.kind == TB_VALUE_ABSENT && g.string == NULL);
    tb_value_free(&g); /* twice is harmless */
    CHECK_OK(tb_store_get_cell(st, "t", "r", "n", &g));
    CHECK(g.kind == TB_VALUE_NUMBER && g.number == 1.5);
    tb_value_free(&g);
    CHECK_OK(tb_store_get_cell(st, "t", "r", "b", &g));
    CHECK(g.kind == TB_VALUE_BOOLEAN && g.boolean);
    CHECK_OK(tb_store_get_cell(st, "t", "r", "z", &g));
    CHECK(g.kind == TB_VALUE_NULL);
    CHECK_OK(tb_store_get_cell(st, "t", "r", "j", &g));
    CHECK(g.kind == TB_VALUE_JSON && strcmp(g.string, "{\"a\":[1,2]}") == 0);
    tb_value_free(&g);
    CHECK_OK(tb_store_get_cell(st, "t", "r", "missing", &g));
    CHECK(g.kind == TB_VALUE_ABSENT);
    CHECK_OK(tb_store_get_cell(st, "t", "r2", "nul", &g));
    CHECK(g.kind == TB_VALUE_STRING && g.length == 3 && memcmp(g.string, "a\0b", 4) == 0);
    tb_value_free(&g);

    v = tb_value_string("open");
    CHECK_OK(tb_store_set_value(st, "v1", &v));
    CHECK_OK(tb_store_set_value_json(st, "v2", "[true]"));
    CHECK_OK(tb_store_get_value(st, "v1", &g));
    CHECK(g.kind == TB_VALUE_STRING && strcmp(g.string, "open") == 0);
    tb_value_free(&g);
    CHECK_OK(tb_store_get_value(st, "v2", &g));
    CHECK(g.kind == TB_VALUE_JSON && strcmp(g.string, "[true]") == 0);
    tb_value_free(&g);
    CHECK_OK(tb_store_get_value(st, "nope", &g));
    CHECK(g.kind == TB_VALUE_ABSENT);
}

static void test_json(void) {
    tb_store *st;
    CHECK_OK(tb_store_new(&st));
    test_values(st);
    CHECK_JSON(tb_store_get_row_json(st, "t", "r", &s), s,
               "{\"s\":\"hi\",\"n\":1.5,\"b\":true,\"z\":null,\"j\":{\"a\":[1,2]}}");
    CHECK_JSON(tb_store_get_cell_ids_json(st, "t", "r", &s), s, "[\"s\",\"n\",\"b\",\"z\",\"j\"]");
    CHECK_JSON(tb_store_get_row_ids_json(st, "t", &s), s, "[\"r\",\"r2\"]");
    CHECK_JSON(tb_store_get_table_ids_json(st, &s), s, "[\"t\"]");
    CHECK_JSON(tb_store_get_table_cell_ids_json(st, "t", &s), s,
               "[\"s\",\"n\",\"b\",\"z\",\"j\",\"nul\"]");
    CHECK_JSON(tb_store_get_value_ids_json(st, &s), s, "[\"v1\",\"v2\"]");
    CHECK_JSON(tb_store_get_values_json(st, &s), s, "{\"v1\":\"open\",\"v2\":\"\xef\xbf\xbd[true]\"}");
    size_t n = 99;
    CHECK_OK(tb_store_get_row_count(st, "t", &n));
    CHECK(n == 2);
    bool b = false;
    CHECK_OK(tb_store_has_tables(st, &b)); CHECK(b);
    CHECK_OK(tb_store_has_table(st, "t", &b)); CHECK(b);
    CHECK_OK(tb_store_has_table(st, "x", &b)); CHECK(!b);
    CHECK_OK(tb_store_has_table_cell(st, "t", "nul", &b)); CHECK(b);
    CHECK_OK(tb_store_has_row(st, "t", "r2", &b)); CHECK(b);
    CHECK_OK(tb_store_has_cell(st, "t", "r", "j", &b)); CHECK(b);
    CHECK_OK(tb_store_has_values(st, &b)); CHECK(b);
    CHECK_OK(tb_store_has_value(st, "v2", &b)); CHECK(b);

    CHECK_OK(tb_store_set_tables_json(st, "{\"pets\":{\"fido\":{\"species\":\"dog\"}}}"));
    CHECK_JSON(tb_store_get_tables_json(st, &s), s, "{\"pets\":{\"fido\":{\"species\":\"dog\"}}}");
    CHECK_OK(tb_store_set_table_json(st, "pets", "{\"felix\":{\"species\":\"cat\",\"legs\":4}}"));
    CHECK_JSON(tb_store_get_table_json(st, "pets", &s), s, "{\"felix\":{\"species\":\"cat\",\"legs\":4}}");
    CHECK_OK(tb_store_set_row_json(st, "pets", "rex", "{\"species\":\"dog\"}"));
    CHECK_OK(tb_store_set_partial_row_json(st, "pets", "rex", "{\"legs\":3}"));
    CHECK_JSON(tb_store_get_row_json(st, "pets", "rex", &s), s, "{\"species\":\"dog\",\"legs\":3}");
    char *id = NULL;
    CHECK_OK(tb_store_add_row_json(st, "log", "{\"msg\":\"a\"}", false, &id));
    CHECK(id && strcmp(id, "0") == 0);
    tb_string_free(id);
    CHECK_OK(tb_store_add_row_json(st, "log", "{\"msg\":\"b\"}", false, &id));
    CHECK(id && strcmp(id, "1") == 0);
    tb_string_free(id);
    CHECK_OK(tb_store_set_values_json(st, "{\"open\":true}"));
    CHECK_OK(tb_store_set_partial_values_json(st, "{\"employees\":3}"));
    CHECK_JSON(tb_store_get_values_json(st, &s), s, "{\"open\":true,\"employees\":3}");
    CHECK_OK(tb_store_set_json(st, "[{\"a\":{\"1\":{\"c\":1}}},{\"v\":\"x\"}]"));
    CHECK_JSON(tb_store_get_json(st, &s), s, "[{\"a\":{\"1\":{\"c\":1}}},{\"v\":\"x\"}]");
    CHECK_OK(tb_store_set_content_json(st, "[{\"a\":{\"1\":{\"o\":{\"k\":1}}}},{}]"));
    CHECK_JSON(tb_store_get_content_json(st, &s), s, "[{\"a\":{\"1\":{\"o\":{\"k\":1}}}},{}]");
    CHECK_OK(tb_store_apply_changes_json(st, "[{\"a\":{\"1\":{\"o\":\"\xef\xbf\xbc\",\"p\":2}}},{\"w\":1},1]"));
    CHECK_JSON(tb_store_get_content_json(st, &s), s, "[{\"a\":{\"1\":{\"p\":2}}},{\"w\":1}]");

    CHECK_OK(tb_store_set_cell_json(st, "a", "1", "q", "3"));
    CHECK_OK(tb_store_del_cell(st, "a", "1", "q"));
    CHECK_OK(tb_store_has_cell(st, "a", "1", "q", &b)); CHECK(!b);
    CHECK_OK(tb_store_del_row(st, "a", "1"));
    CHECK_OK(tb_store_has_row(st, "a", "1", &b)); CHECK(!b);
    CHECK_OK(tb_store_set_cell_json(st, "a", "1", "q", "3"));
    CHECK_OK(tb_store_del_table(st, "a"));
    CHECK_OK(tb_store_has_table(st, "a", &b)); CHECK(!b);
    CHECK_OK(tb_store_set_cell_json(st, "a", "1", "q", "3"));
    CHECK_OK(tb_store_del_tables(st));
    CHECK_OK(tb_store_has_tables(st, &b)); CHECK(!b);
    CHECK_OK(tb_store_del_value(st, "w"));
    CHECK_OK(tb_store_has_value(st, "w", &b)); CHECK(!b);
    CHECK_OK(tb_store_set_value_json(st, "w", "1"));
    CHECK_OK(tb_store_del_values(st));
    CHECK_OK(tb_store_has_values(st, &b)); CHECK(!b);
    tb_store_free(st);
}

/* ---- transactions */

static bool tx_commit(void *ud, tb_store *st) {
    (void)ud;
    tb_value v = tb_value_number(1);
    tb_store_set_cell(st, "t", "r", "a", &v);
    tb_store_set_cell(st, "t", "r", "b", &v);
    char *c = NULL;
    tb_store_get_transaction_changes_json(st, &c);
    CHECK(c && strcmp(c, "[{\"t\":{\"r\":{\"a\":1,\"b\":1}}},{},1]") == 0);
    tb_string_free(c);
    return false;
}

static bool tx_rollback(void *ud, tb_store *st) {
    int *calls = ud;
    (*calls)++;
    tb_value v = tb_value_number(2);
    tb_store_set_cell(st, "t", "r", "a", &v);
    tb_store_set_value(st, "x", &v);
    return true;
}

static void test_transactions(void) {
    tb_store *st;
    CHECK_OK(tb_store_new(&st));
    CHECK_OK(tb_store_transaction(st, tx_commit, NULL));
    CHECK_JSON(tb_store_get_tables_json(st, &s), s, "{\"t\":{\"r\":{\"a\":1,\"b\":1}}}");
    int calls = 0;
    CHECK_OK(tb_store_transaction(st, tx_rollback, &calls));
    CHECK(calls == 1);
    CHECK_JSON(tb_store_get_json(st, &s), s, "[{\"t\":{\"r\":{\"a\":1,\"b\":1}}},{}]");
    CHECK_JSON(tb_store_get_transaction_changes_json(st, &s), s, "[{},{},1]");

    CHECK_OK(tb_store_start_transaction(st));
    CHECK_OK(tb_store_set_cell_json(st, "t", "r", "c", "\"x\""));
    CHECK_OK(tb_store_start_transaction(st)); /* nested joins */
    CHECK_OK(tb_store_set_value_json(st, "k", "1"));
    CHECK_OK(tb_store_finish_transaction(st, false));
    CHECK_OK(tb_store_finish_transaction(st, true)); /* outer rollback undoes both */
    CHECK_JSON(tb_store_get_json(st, &s), s, "[{\"t\":{\"r\":{\"a\":1,\"b\":1}}},{}]");
    CHECK_OK(tb_store_start_transaction(st));
    CHECK_OK(tb_store_set_value_json(st, "k", "1"));
    CHECK_OK(tb_store_finish_transaction(st, false));
    CHECK_JSON(tb_store_get_values_json(st, &s), s, "{\"k\":1}");
    CHECK_STATUS(tb_store_finish_transaction(st, false), TB_ERROR_INVALID_STATE);
    CHECK_STATUS(tb_store_transaction(st, NULL, NULL), TB_ERROR_NULL_PARAMETER);
    tb_store_free(st);
}

/* ---- listeners */

typedef struct {
    int calls;
    int released;
    int calls_after_release;
    tb_listener_kind last_kind;
    char ids[128];
    tb_value_kind new_kind, old_kind;
    double new_number;
    char new_string[32];
    bool has;
    size_t row_count;
    uint64_t self_id;
    char changes[256];
} rec;

static void on_event(void *ud, tb_store *st, const tb_event *e) {
    rec *r = ud;
    (void)st;
    if (r->released) r->calls_after_release++;
    r->calls++;
    r->last_kind = e->kind;
    snprintf(r->ids, sizeof r->ids, "%s/%s/%s/%s", e->table_id ? e->table_id : "-",
             e->row_id ? e->row_id : "-", e->cell_id ? e->cell_id : "-",
             e->value_id ? e->value_id : "-");
    r->new_kind = e->new_value.kind;
    r->old_kind = e->old_value.kind;
    r->new_number = e->new_value.number;
    r->new_string[0] = 0;
    if (e->new_value.kind == TB_VALUE_STRING)
        snprintf(r->new_string, sizeof r->new_string, "%s", e->new_value.string);
    r->has = e->has;
    r->row_count = e->row_count;
}

static void on_release(void *ud) { ((rec *)ud)->released++; }

static void on_self_remove(void *ud, tb_store *st, const tb_event *e) {
    rec *r = ud;
    r->calls++;
    CHECK_OK(tb_store_del_listener(st, e->listener_id));
    CHECK(r->released == 0); /* released only once this callback returns */
}

static void on_write_back(void *ud, tb_store *st, const tb_event *e) {
    rec *r = ud;
    r->calls++;
    if (e->new_value.kind == TB_VALUE_NUMBER) {
        tb_value v = tb_value_number(e->new_value.number * 10);
        CHECK_OK(tb_store_set_value(st, "echo", &v)); /* re-entrant write */
    }
}

static void on_did_finish(void *ud, tb_store *st, const tb_event *e) {
    rec *r = ud;
    (void)e;
    r->calls++;
    char *c = NULL;
    CHECK_OK(tb_store_get_transaction_changes_json(st, &c));
    if (c) snprintf(r->changes, sizeof r->changes, "%s", c);
    tb_string_free(c);
}

static void test_listeners(void) {
    int64_t base = tb_debug_live_handles();
    tb_store *st;
    CHECK_OK(tb_store_new(&st));

    /* every kind through the generic adder, all wildcards */
    rec all[22];
    uint64_t ids[22];
    memset(all, 0, sizeof all);
    for (tb_listener_kind k = 0; k < 22; k++)
        CHECK_OK(tb_store_add_listener(st, k, NULL, NULL, NULL, on_event, &all[k], on_release, &ids[k]));
    size_t count = 0;
    CHECK_OK(tb_store_get_listener_count(st, &count));
    CHECK(count == 22);
    CHECK_OK(tb_store_set_row_json(st, "t", "r", "{\"c\":\"x\"}"));
    CHECK_OK(tb_store_set_value_json(st, "v", "5"));
    for (int k = 0; k < 22; k++) {
        CHECK(all[k].calls >= 1);
        CHECK(all[k].last_kind == (tb_listener_kind)k);
    }
    CHECK(all[TB_LISTENER_START_TRANSACTION].calls == 2);
    CHECK(all[TB_LISTENER_DID_FINISH_TRANSACTION].calls == 2);
    CHECK(strcmp(all[TB_LISTENER_CELL].ids, "t/r/c/-") == 0);
    CHECK(all[TB_LISTENER_CELL].new_kind == TB_VALUE_STRING && strcmp(all[TB_LISTENER_CELL].new_string, "x") == 0);
    CHECK(all[TB_LISTENER_CELL].old_kind == TB_VALUE_ABSENT);
    CHECK(strcmp(all[TB_LISTENER_HAS_TABLE_CELL].ids, "t/-/c/-") == 0);
    CHECK(strcmp(all[TB_LISTENER_ROW].ids, "t/r/-/-") == 0);
    CHECK(strcmp(all[TB_LISTENER_TABLE].ids, "t/-/-/-") == 0);
    CHECK(strcmp(all[TB_LISTENER_VALUE].ids, "-/-/-/v") == 0);
    CHECK(all[TB_LISTENER_VALUE].new_kind == TB_VALUE_NUMBER && all[TB_LISTENER_VALUE].new_number == 5);
    CHECK(all[TB_LISTENER_ROW_COUNT].row_count == 1);
    CHECK(all[TB_LISTENER_HAS_ROW].has);
    CHECK(tb_debug_live_handles() == base + 1 + 22);
    for (int k = 0; k < 22; k++) {
        CHECK_OK(tb_store_del_listener(st, ids[k]));
        CHECK(all[k].released == 1);
    }
    CHECK_OK(tb_store_del_listener(st, ids[0])); /* again: ignored */
    CHECK_OK(tb_store_set_cell_json(st, "t", "r", "c", "1"));
    for (int k = 0; k < 22; k++) CHECK(all[k].released == 1 && all[k].calls_after_release == 0);
    CHECK_OK(tb_store_get_listener_count(st, &count));
    CHECK(count == 0);

    /* the named adders, with specific ids and wildcards (on an empty store, so that the
     * has-listeners see a change) */
    CHECK_OK(tb_store_del_tables(st));
    CHECK_OK(tb_store_del_values(st));
    rec r[22];
    uint64_t id[22];
    memset(r, 0, sizeof r);
    int i = 0;
    CHECK_OK(tb_store_add_has_tables_listener(st, on_event, &r[i], on_release, &id[i])); i++;
    CHECK_OK(tb_store_add_tables_listener(st, on_event, &r[i], on_release, &id[i])); i++;
    CHECK_OK(tb_store_add_table_ids_listener(st, on_event, &r[i], on_release, &id[i])); i++;
    CHECK_OK(tb_store_add_has_table_listener(st, "u", on_event, &r[i], on_release, &id[i])); i++;
    CHECK_OK(tb_store_add_table_listener(st, "u", on_event, &r[i], on_release, &id[i])); i++;
    CHECK_OK(tb_store_add_table_cell_ids_listener(st, NULL, on_event, &r[i], on_release, &id[i])); i++;
    CHECK_OK(tb_store_add_has_table_cell_listener(st, "u", "c", on_event, &r[i], on_release, &id[i])); i++;
    CHECK_OK(tb_store_add_row_count_listener(st, "u", on_event, &r[i], on_release, &id[i])); i++;
    CHECK_OK(tb_store_add_row_ids_listener(st, "u", on_event, &r[i], on_release, &id[i])); i++;
    CHECK_OK(tb_store_add_has_row_listener(st, "u", NULL, on_event, &r[i], on_release, &id[i])); i++;
    CHECK_OK(tb_store_add_row_listener(st, NULL, "r", on_event, &r[i], on_release, &id[i])); i++;
    CHECK_OK(tb_store_add_cell_ids_listener(st, "u", "r", on_event, &r[i], on_release, &id[i])); i++;
    CHECK_OK(tb_store_add_has_cell_listener(st, "u", "r", "c", on_event, &r[i], on_release, &id[i])); i++;
    CHECK_OK(tb_store_add_cell_listener(st, "u", "r", "c", on_event, &r[i], on_release, &id[i])); i++;
    CHECK_OK(tb_store_add_has_values_listener(st, on_event, &r[i], on_release, &id[i])); i++;
    CHECK_OK(tb_store_add_values_listener(st, on_event, &r[i], on_release, &id[i])); i++;
    CHECK_OK(tb_store_add_value_ids_listener(st, on_event, &r[i], on_release, &id[i])); i++;
    CHECK_OK(tb_store_add_has_value_listener(st, "w", on_event, &r[i], on_release, &id[i])); i++;
    CHECK_OK(tb_store_add_value_listener(st, "w", on_event, &r[i], on_release, &id[i])); i++;
    CHECK_OK(tb_store_add_start_transaction_listener(st, on_event, &r[i], on_release, &id[i])); i++;
    CHECK_OK(tb_store_add_will_finish_transaction_listener(st, on_event, &r[i], on_release, &id[i])); i++;
    CHECK_OK(tb_store_add_did_finish_transaction_listener(st, on_event, &r[i], on_release, &id[i])); i++;
    CHECK(i == 22);
    CHECK_OK(tb_store_set_cell_json(st, "other", "x", "c", "1")); /* not "u" */
    CHECK(r[TB_LISTENER_CELL].calls == 0 && r[TB_LISTENER_TABLE].calls == 0);
    CHECK(r[TB_LISTENER_TABLE_CELL_IDS].calls == 1); /* wildcard table */
    CHECK_OK(tb_store_set_cell_json(st, "u", "r", "c", "2"));
    CHECK_OK(tb_store_set_value_json(st, "w", "true"));
    for (int k = 0; k < 22; k++) CHECK(r[k].calls >= 1);
    CHECK(r[TB_LISTENER_CELL].new_kind == TB_VALUE_NUMBER && r[TB_LISTENER_CELL].new_number == 2);
    CHECK(r[TB_LISTENER_ROW].calls == 1);
    /* callListener: called now for what its ids match */
    int before = r[TB_LISTENER_CELL].calls;
    CHECK_OK(tb_store_call_listener(st, id[TB_LISTENER_CELL]));
    CHECK(r[TB_LISTENER_CELL].calls == before + 1);
    for (int k = 0; k < 22; k++) CHECK_OK(tb_store_del_listener(st, id[k]));
    for (int k = 0; k < 22; k++) CHECK(r[k].released == 1);

    /* a listener removing itself from its own callback */
    rec self;
    memset(&self, 0, sizeof self);
    uint64_t sid;
    CHECK_OK(tb_store_add_value_listener(st, NULL, on_self_remove, &self, on_release, &sid));
    CHECK_OK(tb_store_set_value_json(st, "a", "1"));
    CHECK(self.calls == 1 && self.released == 1);
    CHECK_OK(tb_store_set_value_json(st, "a", "2"));
    CHECK(self.calls == 1);

    /* a listener writing back into the store */
    rec wb;
    memset(&wb, 0, sizeof wb);
    uint64_t wid;
    CHECK_OK(tb_store_add_cell_listener(st, "n", NULL, NULL, on_write_back, &wb, NULL, &wid));
    CHECK_OK(tb_store_set_cell_json(st, "n", "r", "c", "4"));
    tb_value g;
    CHECK_OK(tb_store_get_value(st, "echo", &g));
    CHECK(g.kind == TB_VALUE_NUMBER && g.number == 40);
    CHECK_OK(tb_store_del_listener(st, wid));

    /* did-finish listeners see the transaction's changes */
    rec df;
    memset(&df, 0, sizeof df);
    uint64_t did;
    CHECK_OK(tb_store_add_did_finish_transaction_listener(st, on_did_finish, &df, on_release, &did));
    CHECK_OK(tb_store_set_cell_json(st, "n", "r", "d", "\"z\""));
    CHECK(df.calls == 1 && strcmp(df.changes, "[{\"n\":{\"r\":{\"d\":\"z\"}}},{},1]") == 0);

    /* listeners still registered are released when the last handle goes */
    rec left;
    memset(&left, 0, sizeof left);
    uint64_t lid;
    CHECK_OK(tb_store_add_tables_listener(st, on_event, &left, on_release, &lid));
    tb_store *clone;
    CHECK_OK(tb_store_clone(st, &clone));
    tb_store_free(st);
    CHECK(left.released == 0 && df.released == 0);
    tb_store_free(clone);
    CHECK(left.released == 1 && df.released == 1);
    CHECK(tb_debug_live_handles() == base);
}

/* ---- buffered delivery */

static void on_notify(void *ud) { (*(int *)ud)++; }
static void on_notify_release(void *ud) { (*(int *)ud) += 1000; }

typedef struct {
    tb_event_queue *q;
    char got[64];
} drainer;

static void *drain_thread(void *arg) {
    drainer *d = arg;
    tb_event *e = NULL;
    if (tb_event_queue_wait(d->q, 5000, &e) == TB_OK && e) {
        snprintf(d->got, sizeof d->got, "%s/%s/%s", e->table_id, e->row_id, e->cell_id);
        tb_event_free(e);
    }
    return NULL;
}

static void test_buffered(void) {
    int64_t base = tb_debug_live_handles();
    tb_store *st;
    CHECK_OK(tb_store_new(&st));
    int notified = 0;
    tb_event_queue *q = NULL;
    CHECK_OK(tb_event_queue_new(on_notify, &notified, on_notify_release, &q));
    uint64_t lid = 0, vid = 0;
    CHECK_OK(tb_store_add_buffered_listener(st, q, TB_LISTENER_CELL, "t", NULL, NULL, &lid));
    CHECK_OK(tb_store_add_buffered_listener(st, q, TB_LISTENER_VALUE, NULL, NULL, NULL, &vid));
    CHECK_OK(tb_store_set_row_json(st, "t", "r", "{\"a\":1,\"b\":\"two\"}"));
    CHECK_OK(tb_store_set_value_json(st, "v", "{\"o\":1}"));
    size_t len = 0;
    CHECK_OK(tb_event_queue_len(q, &len));
    CHECK(len == 3);
    CHECK(notified == 1); /* once: empty -> non-empty */
    tb_event *e = NULL;
    CHECK_OK(tb_event_queue_poll(q, &e));
    CHECK(e && e->listener_id == lid && e->kind == TB_LISTENER_CELL && strcmp(e->cell_id, "a") == 0);
    CHECK(e && e->new_value.kind == TB_VALUE_NUMBER && e->new_value.number == 1);
    tb_event_free(e);
    CHECK_OK(tb_event_queue_poll(q, &e));
    CHECK(e && e->new_value.kind == TB_VALUE_STRING && strcmp(e->new_value.string, "two") == 0 &&
          e->new_value.length == 3);
    tb_value_free(&e->new_value); /* borrowed (owned == false): a no-op */
    tb_event_free(e);
    CHECK_OK(tb_event_queue_poll(q, &e));
    CHECK(e && e->listener_id == vid && strcmp(e->value_id, "v") == 0 &&
          e->new_value.kind == TB_VALUE_JSON && strcmp(e->new_value.string, "{\"o\":1}") == 0);
    tb_event_free(e);
    CHECK_OK(tb_event_queue_poll(q, &e));
    CHECK(e == NULL);
    CHECK_OK(tb_event_queue_wait(q, 10, &e));
    CHECK(e == NULL);

    /* draining on another thread */
    drainer d = {q, ""};
    pthread_t th;
    pthread_create(&th, NULL, drain_thread, &d);
    CHECK_OK(tb_store_set_cell_json(st, "t", "x", "y", "0"));
    pthread_join(th, NULL);
    CHECK(strcmp(d.got, "t/x/y") == 0);

    /* removal discards the listener's queued events */
    CHECK_OK(tb_store_set_cell_json(st, "t", "x", "z", "0"));
    CHECK_OK(tb_store_set_value_json(st, "v", "2"));
    CHECK_OK(tb_event_queue_len(q, &len));
    CHECK(len == 2);
    CHECK_OK(tb_store_del_listener(st, lid));
    CHECK_OK(tb_event_queue_len(q, &len));
    CHECK(len == 1);
    CHECK_OK(tb_store_del_listener(st, vid));
    CHECK_OK(tb_event_queue_len(q, &len));
    CHECK(len == 0);

    /* an event left in the queue is freed with it; notify's release runs at the end */
    CHECK_OK(tb_store_add_buffered_listener(st, q, TB_LISTENER_TABLES, NULL, NULL, NULL, &lid));
    CHECK_OK(tb_store_set_cell_json(st, "t", "x", "z", "1"));
    tb_event_queue_free(q);
    CHECK(notified < 1000);
    CHECK_OK(tb_store_set_cell_json(st, "t", "x", "z", "2")); /* closed: dropped */
    tb_store_free(st);
    CHECK(notified >= 1000);
    tb_event_queue_free(NULL);
    tb_event_free(NULL);
    CHECK(tb_debug_live_handles() == base);
}

static void test_errors(void) {
    tb_store *st;
    CHECK_OK(tb_store_new(&st));
    tb_last_error_clear();
    CHECK(tb_last_error_status() == TB_OK && strcmp(tb_last_error_message(), "") == 0);
    CHECK_STATUS(tb_store_set_tables_json(st, "{\"t\":"), TB_ERROR_INVALID_JSON);
    CHECK(tb_last_error_status() == TB_ERROR_INVALID_JSON);
    const char *msg = tb_last_error_message();
    CHECK(strstr(msg, "invalid JSON") != NULL);
    size_t full = strlen(msg);
    char small[8];
    CHECK(tb_last_error_message_copy(small, sizeof small) == full);
    CHECK(strlen(small) == 7 && strncmp(small, msg, 7) == 0);
    char big[256];
    CHECK(tb_last_error_message_copy(big, sizeof big) == full && strcmp(big, msg) == 0);
    CHECK(tb_last_error_message_copy(NULL, 0) == full);
    /* a success does not clear it */
    CHECK_OK(tb_store_set_value_json(st, "a", "1"));
    CHECK(tb_last_error_status() == TB_ERROR_INVALID_JSON);
    tb_store_free(st);
}

int main(void) {
    int64_t base = tb_debug_live_handles();
    test_version();
    test_handles();
    test_json();
    test_transactions();
    test_listeners();
    test_buffered();
    test_errors();
    CHECK(tb_debug_live_handles() == base);
    return tb_finish("test_store");
}
