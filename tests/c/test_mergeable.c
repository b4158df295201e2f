/* tb_mergeable_store_*: creation (with/without id, host clock), views, mergeable content in
 * both forms, transaction mergeable changes, apply/set/merge, hashes and every diff method. */
#include "common.h"
#include <time.h>

static char *s;

typedef struct {
    double now;
    int calls;
    int released;
} clock_data;

static double clock_now(void *ud) {
    clock_data *c = ud;
    c->calls++;
    return c->now;
}
static void clock_release(void *ud) { ((clock_data *)ud)->released++; }

static char *content_of(tb_mergeable_store *m) {
    char *out = NULL;
    CHECK_OK(tb_mergeable_store_get_encoded_mergeable_content_json(m, &out));
    return out;
}

static int same_tables(tb_mergeable_store *a, tb_mergeable_store *b) {
    char *x = NULL, *y = NULL;
    tb_store_get_json(tb_mergeable_store_as_store(a), &x);
    tb_store_get_json(tb_mergeable_store_as_store(b), &y);
    int same = x && y && strcmp(x, y) == 0;
    if (!same) fprintf(stderr, "  %s\n  %s\n", x, y);
    tb_string_free(x);
    tb_string_free(y);
    return same;
}

static int same_hashes(tb_mergeable_store *a, tb_mergeable_store *b) {
    uint32_t at = 1, av = 1, bt = 2, bv = 2;
    CHECK_OK(tb_mergeable_store_get_mergeable_content_hashes(a, &at, &av));
    CHECK_OK(tb_mergeable_store_get_mergeable_content_hashes(b, &bt, &bv));
    return at == bt && av == bv;
}

typedef struct {
    char changes[1024];
    char decoded[1024];
} tx_rec;

static void on_did_finish(void *ud, tb_store *st, const tb_event *e) {
    tx_rec *r = ud;
    (void)e;
    tb_mergeable_store *m = NULL;
    CHECK_OK(tb_store_as_mergeable(st, &m));
    char *c = NULL;
    CHECK_OK(tb_mergeable_store_get_encoded_transaction_mergeable_changes_json(m, false, &c));
    if (c) snprintf(r->changes, sizeof r->changes, "%s", c);
    tb_string_free(c);
    CHECK_OK(tb_mergeable_store_get_transaction_mergeable_changes_json(m, true, &c));
    if (c) snprintf(r->decoded, sizeof r->decoded, "%s", c);
    tb_string_free(c);
}

int main(void) {
    int64_t base = tb_debug_live_handles();

    /* creation */
    tb_mergeable_store *a = NULL, *b = NULL, *r = NULL, *a2 = NULL;
    CHECK_OK(tb_mergeable_store_new("a", &a));
    CHECK_OK(tb_mergeable_store_new(NULL, &r)); /* random id */
    clock_data clk = {(double)time(NULL) * 1000.0, 0, 0};
    CHECK_OK(tb_mergeable_store_new_with_clock("b", clock_now, &clk, clock_release, &b));
    CHECK_OK(tb_mergeable_store_clone(a, &a2));
    CHECK(a2 == a);
    CHECK(tb_debug_live_handles() == base + 4);

    /* views */
    tb_store *as = tb_mergeable_store_as_store(a);
    tb_store *bs = tb_mergeable_store_as_store(b);
    CHECK(as != NULL && tb_mergeable_store_as_store(NULL) == NULL);
    tb_mergeable_store *back = NULL;
    CHECK_OK(tb_store_as_mergeable(as, &back));
    CHECK(back == a);

    /* writes through the Store view, content in both forms */
    CHECK_OK(tb_store_set_cell_json(as, "pets", "fido", "species", "\"dog\""));
    CHECK_OK(tb_store_set_cell_json(as, "pets", "fido", "tags", "[\"good\"]"));
    CHECK_OK(tb_store_set_value_json(as, "open", "true"));
    char *enc = content_of(a);
    CHECK(enc && strstr(enc, "\"species\":[\"dog\",\"") != NULL);
    CHECK(enc && strstr(enc, "\"\xef\xbf\xbd[\\\"good\\\"]\"") != NULL); /* wire form */
    char *dec = NULL;
    CHECK_OK(tb_mergeable_store_get_mergeable_content_json(a, &dec));
    CHECK(dec && strstr(dec, "\"tags\":[[\"good\"],\"") != NULL); /* decoded form */
    uint32_t th = 0, vh = 0, ct = 1, cv = 1;
    CHECK_OK(tb_mergeable_store_get_mergeable_content_hashes(a, &th, &vh));
    CHECK(th != 0 && vh != 0);
    CHECK_OK(tb_mergeable_store_compute_content_hashes(a, &ct, &cv));
    CHECK(ct == th && cv == vh);
    char expect[64];
    snprintf(expect, sizeof expect, "[%u,%u]", th, vh);
    CHECK_JSON(tb_mergeable_store_get_mergeable_content_hashes_json(a, &s), s, expect);

    /* setMergeableContent in both forms */
    tb_mergeable_store *c = NULL, *d = NULL;
    CHECK_OK(tb_mergeable_store_new("c", &c));
    CHECK_OK(tb_mergeable_store_new("d", &d));
    CHECK_OK(tb_mergeable_store_set_mergeable_content_json(c, enc));
    CHECK(same_tables(a, c) && same_hashes(a, c));
    CHECK_OK(tb_mergeable_store_set_decoded_mergeable_content_json(d, dec));
    CHECK(same_tables(a, d) && same_hashes(a, d));
    tb_string_free(dec);

    /* applyMergeableChanges (wire and decoded), and transaction mergeable changes */
    tx_rec rec;
    memset(&rec, 0, sizeof rec);
    uint64_t lid;
    CHECK_OK(tb_store_add_did_finish_transaction_listener(bs, on_did_finish, &rec, NULL, &lid));
    CHECK_OK(tb_store_set_cell_json(bs, "pets", "felix", "species", "\"cat\""));
    CHECK(strstr(rec.changes, "\"felix\"") != NULL && strstr(rec.changes, "\"cat\"") != NULL);
    CHECK(strstr(rec.decoded, "\"felix\"") != NULL);
    CHECK(clk.calls > 0);
    tb_mergeable_store *e = NULL, *f = NULL;
    CHECK_OK(tb_mergeable_store_new("e", &e));
    CHECK_OK(tb_mergeable_store_new("f", &f));
    CHECK_OK(tb_mergeable_store_apply_mergeable_changes_json(e, rec.changes));
    CHECK_JSON(tb_store_get_json(tb_mergeable_store_as_store(e), &s), s,
               "[{\"pets\":{\"felix\":{\"species\":\"cat\"}}},{}]");
    CHECK_OK(tb_mergeable_store_apply_decoded_mergeable_changes_json(f, rec.decoded));
    CHECK(same_tables(e, f));
    CHECK_OK(tb_mergeable_store_apply_mergeable_changes_json(e, enc)); /* content works too */
    CHECK_JSON(tb_store_get_table_ids_json(tb_mergeable_store_as_store(e), &s), s, "[\"pets\"]");
    CHECK_OK(tb_store_del_listener(bs, lid));
    /* outside a transaction: only the container stamps */
    CHECK_OK(tb_mergeable_store_get_transaction_mergeable_changes_json(a, false, &s));
    CHECK(s != NULL);
    tb_string_free(s);
    tb_string_free(enc);

    /* the diff methods: b learns what a has, step by step as a synchronizer would */
    CHECK_OK(tb_store_set_value_json(bs, "b_only", "1"));
    char *bt = NULL, *diff = NULL, *rows = NULL, *cells = NULL;
    CHECK_OK(tb_mergeable_store_get_mergeable_table_hashes_json(b, &bt));
    CHECK(bt && strstr(bt, "\"pets\":") != NULL);
    CHECK_OK(tb_mergeable_store_get_mergeable_table_diff_json(a, "{}", &diff));
    CHECK(diff && strstr(diff, "\"fido\"") != NULL);
    tb_string_free(diff);
    CHECK_OK(tb_mergeable_store_get_mergeable_table_diff_json(a, bt, &diff));
    CHECK(diff && strstr(diff, "\"pets\":") != NULL); /* differing table hash */
    tb_string_free(diff);
    CHECK_OK(tb_mergeable_store_get_mergeable_row_hashes_json(b, bt, &rows)); /* b's rows */
    tb_string_free(rows);
    char *at = NULL;
    CHECK_OK(tb_mergeable_store_get_mergeable_table_hashes_json(a, &at));
    CHECK_OK(tb_mergeable_store_get_mergeable_row_hashes_json(b, at, &rows));
    CHECK(rows && strstr(rows, "\"felix\":") != NULL);
    CHECK_OK(tb_mergeable_store_get_mergeable_row_diff_json(a, rows, &diff));
    CHECK(diff && strstr(diff, "\"fido\"") != NULL); /* a row b lacks */
    tb_string_free(diff);
    CHECK_OK(tb_mergeable_store_get_mergeable_cell_hashes_json(b, rows, &cells));
    CHECK(cells != NULL);
    CHECK_OK(tb_mergeable_store_get_mergeable_cell_diff_json(a, "{\"pets\":{\"fido\":{}}}", &diff));
    CHECK(diff && strstr(diff, "\"species\":[\"dog\"") != NULL);
    tb_string_free(diff);
    char *vhashes = NULL;
    CHECK_OK(tb_mergeable_store_get_mergeable_value_hashes_json(b, &vhashes));
    CHECK(vhashes && strstr(vhashes, "\"b_only\":") != NULL);
    CHECK_OK(tb_mergeable_store_get_mergeable_value_diff_json(a, vhashes, &diff));
    CHECK(diff && strstr(diff, "\"open\":[true,\"") != NULL);
    tb_string_free(diff);
    tb_string_free(vhashes);
    tb_string_free(cells);
    tb_string_free(rows);
    tb_string_free(at);
    tb_string_free(bt);

    /* merge: both converge */
    bool has0 = false;
    CHECK(!same_hashes(a, b));
    CHECK_OK(tb_mergeable_store_merge(a, b));
    CHECK(same_hashes(a, b)); /* same content (ids in each store's own insertion order) */
    CHECK_OK(tb_store_has_row(bs, "pets", "fido", &has0));
    CHECK(has0);
    CHECK_OK(tb_mergeable_store_merge(a, a));
    bool has = false;
    CHECK_OK(tb_store_has_value(as, "b_only", &has));
    CHECK(has);

    /* setDefaultContent only fills what has no stamp */
    CHECK_OK(tb_mergeable_store_set_default_content_json(r, "[{\"t\":{\"r\":{\"c\":1}}},{\"v\":2}]"));
    CHECK_JSON(tb_store_get_json(tb_mergeable_store_as_store(r), &s), s, "[{\"t\":{\"r\":{\"c\":1}}},{\"v\":2}]");
    CHECK_OK(tb_store_set_value_json(tb_mergeable_store_as_store(r), "v", "3"));
    CHECK_OK(tb_mergeable_store_set_default_content_json(r, "[{},{\"v\":4}]"));
    CHECK_JSON(tb_store_get_values_json(tb_mergeable_store_as_store(r), &s), s, "{\"v\":3}");

    /* a mergeable clone as a plain store reference */
    tb_store *owned_view = NULL;
    CHECK_OK(tb_store_clone(as, &owned_view));
    tb_store_free(owned_view);

    /* hashes: content whose hashes are not integers in 0..2^32-1 is refused whole (store
     * untouched); made-up hashes are recomputed; diff methods refuse what is not a hash */
    {
        tb_mergeable_store *h = NULL;
        CHECK_OK(tb_mergeable_store_new("h", &h));
        CHECK_OK(tb_store_set_value_json(tb_mergeable_store_as_store(h), "keep", "1"));
        char *before = content_of(h);
        const char *bad[] = {"-1", "4294967296", "1.5", "\"5\"", "null", "[1]"};
        char buf[256];
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
            snprintf(buf, sizeof buf, "[[{\"t\":[{\"r\":[{\"c\":[1,\"NjEtLV-----Z21Zg\",0]},\"\",0]},\"\",0]},\"\",%s],[{},\"\",0]]", bad[i]);
            CHECK_STATUS(tb_mergeable_store_set_mergeable_content_json(h, buf), TB_ERROR_INVALID_SHAPE);
            char *after = content_of(h);
            CHECK(before && after && strcmp(before, after) == 0);
            tb_string_free(after);
            char *diff = NULL;
            snprintf(buf, sizeof buf, "{\"keep\":%s}", bad[i]);
            CHECK_STATUS(tb_mergeable_store_get_mergeable_value_diff_json(h, buf, &diff), TB_ERROR_INVALID_SHAPE);
            snprintf(buf, sizeof buf, "{\"t\":{\"r\":%s}}", bad[i]);
            CHECK_STATUS(tb_mergeable_store_get_mergeable_row_diff_json(h, buf, &diff), TB_ERROR_INVALID_SHAPE);
            CHECK(diff == NULL);
        }
        tb_string_free(before);
        CHECK_OK(tb_mergeable_store_set_mergeable_content_json(
            h, "[[{\"t\":[{\"r\":[{\"c\":[1,\"NjEtLV-----Z21Zg\",1]},\"\",2]},\"\",3]},\"\",4],[{},\"\",5]]"));
        uint32_t ht = 0, hv = 0, ct = 1, cv = 1;
        CHECK_OK(tb_mergeable_store_get_mergeable_content_hashes(h, &ht, &hv));
        CHECK_OK(tb_mergeable_store_compute_content_hashes(h, &ct, &cv));
        CHECK(ht == ct && hv == cv && ht != 4 && hv == 0);
        tb_mergeable_store_free(h);
    }

    /* clock bounds: a get_now at or past 2^42 ms, or an HLC counter used up at the largest
     * time, refuses local writes (TinyBase's tinybase:13) and leaves the store untouched */
    {
        clock_data cd = {1700000000000.0, 0, 0};
        tb_mergeable_store *k = NULL;
        CHECK_OK(tb_mergeable_store_new_with_clock("k", clock_now, &cd, NULL, &k));
        tb_store *ks = tb_mergeable_store_as_store(k);
        CHECK_OK(tb_store_set_cell_json(ks, "t", "r", "c", "1"));
        char *before = content_of(k);
        cd.now = 4398046511104.0; /* 2^42 */
        CHECK_STATUS(tb_store_set_cell_json(ks, "t", "r", "c", "2"), TB_ERROR_INVALID_STATE);
        CHECK_STATUS(tb_store_set_value_json(ks, "v", "2"), TB_ERROR_INVALID_STATE);
        CHECK_OK(tb_store_del_cell(ks, "t", "r", "c")); /* deletions report nothing but change nothing */
        char *after = content_of(k);
        CHECK(before && after && strcmp(before, after) == 0);
        tb_string_free(after);
        tb_string_free(before);
        cd.now = 4398046511103.0; /* the largest time: works, until a peer used up its counter */
        CHECK_OK(tb_store_set_cell_json(ks, "t", "r", "c", "3"));
        CHECK_OK(tb_mergeable_store_apply_mergeable_changes_json(
            k, "[[{\"t\":[{\"r\":[{\"c\":[4,\"zzzzzzzzzzzzzzzz\"]}]}]}],[{}],1]"));
        before = content_of(k);
        CHECK_STATUS(tb_store_set_cell_json(ks, "t", "r", "c", "5"), TB_ERROR_INVALID_STATE);
        after = content_of(k);
        CHECK(before && after && strcmp(before, after) == 0);
        tb_string_free(after);
        tb_string_free(before);
        tb_mergeable_store_free(k);
    }

    /* releasing: the clock's user_data is released exactly once, with the store */
    tb_mergeable_store_free(b);
    CHECK(clk.released == 1);
    tb_mergeable_store_free(a);
    tb_mergeable_store_free(a2);
    tb_mergeable_store_free(r);
    tb_mergeable_store_free(c);
    tb_mergeable_store_free(d);
    tb_mergeable_store_free(e);
    tb_mergeable_store_free(f);
    tb_mergeable_store_free(NULL);
    CHECK(clk.released == 1);
    CHECK(tb_debug_live_handles() == base);
    return tb_finish("test_mergeable");
}
