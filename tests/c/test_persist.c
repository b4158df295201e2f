/* Persisters through the C API: file round trips (mergeable and plain stores), misuse of every
 * function (NULLs, invalid UTF-8, bad modes and durations; user_data never taken over on
 * failure), status and stats, the durable callback with the hashes made durable, auto-save +
 * flush + reload in a new store, auto-load of another persister's writes, a corrupt file
 * (TB_ERROR_CORRUPT, the file untouched, saves refused, then moved aside), a callback freeing
 * its own persister, SQLite in JSON and incremental modes, PostgreSQL when
 * TB_TEST_POSTGRES_DSN is set, persisting while a local-bus synchronizer syncs the same store,
 * release exactly once, and live handles back to their start value. */
#define _POSIX_C_SOURCE 200809L
#include "common.h"
#include <stdatomic.h>
#include <math.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>
#include "timing.h"

#define BAD "\xff\xfe"
#define NUL TB_ERROR_NULL_PARAMETER
#define UTF TB_ERROR_INVALID_UTF8

/* Failures seen on other threads (callbacks): checked at the end. */
static atomic_int thread_failures;
#define EXPECT(c) do { if (!(c)) { atomic_fetch_add(&thread_failures, 1); \
    fprintf(stderr, "thread check failed %s:%d: %s\n", __FILE__, __LINE__, #c); } } while (0)

static char dir[256];

static void path_of(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

/* The whole file, or NULL when it cannot be read. */
static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = 0;
    fclose(f);
    return s;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(2); }
    fputs(text, f);
    fclose(f);
}

/* Whether the file's bytes contain `needle` (a database's schema text, say). */
static int file_contains(const char *path, const char *needle) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = strlen(needle), have = 0, cap = 1 << 16;
    char *buf = malloc(cap);
    int found = 0;
    for (;;) {
        size_t got = fread(buf + have, 1, cap - have, f);
        have += got;
        for (size_t i = 0; !found && i + n <= have; i++) found = memcmp(buf + i, needle, n) == 0;
        if (found || got == 0) break;
        /* keep the last n-1 bytes: a match may straddle two reads */
        if (have >= n) {
            memmove(buf, buf + have - (n - 1), n - 1);
            have = n - 1;
        }
    }
    free(buf);
    fclose(f);
    return found;
}

static int has_cell(tb_store *st, const char *t, const char *r, const char *c) {
    bool out = false;
    return tb_store_has_cell(st, t, r, c, &out) == TB_OK && out;
}

static int has_value(tb_store *st, const char *v) {
    bool out = false;
    return tb_store_has_value(st, v, &out) == TB_OK && out;
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* The store's content as JSON (owned by the caller: free()). */
static char *content_of(tb_store *st) {
    char *out = NULL;
    if (tb_store_get_content_json(st, &out) != TB_OK) return NULL;
    char *copy = strdup(out);
    tb_string_free(out);
    return copy;
}

/* Mergeable stores holding the same stamps (the hashes do not depend on insertion order). */
static int same_hashes(tb_mergeable_store *a, tb_mergeable_store *b) {
    uint32_t ta = 0, va = 0, tb = 1, vb = 1;
    if (tb_mergeable_store_get_mergeable_content_hashes(a, &ta, &va) != TB_OK) return 0;
    if (tb_mergeable_store_get_mergeable_content_hashes(b, &tb, &vb) != TB_OK) return 0;
    if (ta != tb || va != vb) fprintf(stderr, "  hashes differ: [%u, %u] [%u, %u]\n", ta, va, tb, vb);
    return ta == tb && va == vb;
}

static int same_content(tb_store *a, tb_store *b) {
    char *x = content_of(a), *y = content_of(b);
    int same = x && y && strcmp(x, y) == 0;
    if (!same) fprintf(stderr, "  content differs:\n    %s\n    %s\n", x ? x : "(null)", y ? y : "(null)");
    free(x);
    free(y);
    return same;
}

/* ------------------------------------------------------------------------- callbacks */

typedef struct sink {
    atomic_int durables, errors, released;
    atomic_uint last_tables_hash, last_values_hash;
    atomic_ullong last_saves;
    atomic_int last_error_status;
    char last_error[512];
    /* when set, on_durable frees this persister (its own) */
    tb_persister *_Atomic free_me;
    atomic_int freed_in_callback;
} sink;

static void on_durable(void *ud, const tb_durable_info *info) {
    sink *s = ud;
    EXPECT(info != NULL);
    if (!info) return;
    atomic_store(&s->last_tables_hash, info->tables_hash);
    atomic_store(&s->last_values_hash, info->values_hash);
    atomic_store(&s->last_saves, info->saves);
    atomic_fetch_add(&s->durables, 1);
    tb_persister *p = atomic_exchange(&s->free_me, NULL);
    if (p) {
        /* Commands of its own persister are refused here; getters work; the free is deferred. */
        uint64_t loads = 0, saves = 0;
        EXPECT(tb_persister_get_stats(p, &loads, &saves) == TB_OK);
        EXPECT(tb_persister_save(p) == TB_ERROR_INVALID_STATE);
        EXPECT(tb_persister_destroy(p) == TB_ERROR_INVALID_STATE);
        bool durable = false;
        EXPECT(tb_persister_flush(p, 1.0, &durable) == TB_ERROR_INVALID_STATE);
        tb_persister_free(p);
        atomic_store(&s->freed_in_callback, 1);
    }
}

static void on_error(void *ud, tb_status status, const char *message) {
    sink *s = ud;
    EXPECT(message != NULL);
    atomic_store(&s->last_error_status, (int)status);
    if (message) snprintf(s->last_error, sizeof s->last_error, "%s", message);
    atomic_fetch_add(&s->errors, 1);
}

static void on_release(void *ud) { atomic_fetch_add(&((sink *)ud)->released, 1); }

static tb_persister_options options_for(sink *s) {
    tb_persister_options o;
    memset(&o, 0, sizeof o);
    o.on_durable = on_durable;
    o.on_ignored_error = on_error;
    o.user_data = s;
    o.release = on_release;
    o.auto_load_interval_seconds = 0.02;
    o.lock_timeout_seconds = 5;
    return o;
}

/* Waits up to `seconds` (scaled under valgrind) for *flag to reach at least `n`. */
static int wait_for(atomic_int *flag, int n, double seconds) {
    double end = now_s() + seconds * scale();
    while (atomic_load(flag) < n) {
        if (now_s() > end) return 0;
        sleep_ms(5);
    }
    return 1;
}

/* ----------------------------------------------------------------------------- misuse */

static void misuse(void) {
    char path[512];
    path_of(path, sizeof path, "misuse.json");
    tb_mergeable_store *m = NULL;
    CHECK_OK(tb_mergeable_store_new("misuse", &m));
    tb_store *st = tb_mergeable_store_as_store(m);
    tb_persister *p = NULL;
    sink k;
    memset(&k, 0, sizeof k);
    tb_persister_options o = options_for(&k);

    /* constructors: every pointer, UTF-8, modes and durations; release never called */
    CHECK_STATUS(tb_file_persister_new(NULL, path, &o, &p), NUL);
    CHECK_STATUS(tb_file_persister_new(st, NULL, &o, &p), NUL);
    CHECK_STATUS(tb_file_persister_new(st, path, &o, NULL), NUL);
    CHECK_STATUS(tb_file_persister_new(st, BAD, &o, &p), UTF);
    CHECK_STATUS(tb_sqlite_persister_new(NULL, path, TB_SQLITE_JSON, &o, &p), NUL);
    CHECK_STATUS(tb_sqlite_persister_new(st, NULL, TB_SQLITE_JSON, &o, &p), NUL);
    CHECK_STATUS(tb_sqlite_persister_new(st, BAD, TB_SQLITE_JSON, &o, &p), UTF);
    CHECK_STATUS(tb_sqlite_persister_new(st, path, TB_SQLITE_JSON, &o, NULL), NUL);
    CHECK_STATUS(tb_sqlite_persister_new(st, path, 7, &o, &p), TB_ERROR_INVALID_ARGUMENT);
    CHECK_STATUS(tb_postgres_persister_new(st, NULL, "room", &o, &p), NUL);
    CHECK_STATUS(tb_postgres_persister_new(st, "host=127.0.0.1", NULL, &o, &p), NUL);
    CHECK_STATUS(tb_postgres_persister_new(st, BAD, "room", &o, &p), UTF);
    CHECK_STATUS(tb_postgres_persister_new(st, "host=127.0.0.1", BAD, &o, &p), UTF);
    CHECK_STATUS(tb_postgres_persister_new(NULL, "host=127.0.0.1", "room", &o, &p), NUL);
    o.auto_load_interval_seconds = -1;
    CHECK_STATUS(tb_file_persister_new(st, path, &o, &p), TB_ERROR_INVALID_ARGUMENT);
    o.auto_load_interval_seconds = INFINITY;
    CHECK_STATUS(tb_file_persister_new(st, path, &o, &p), TB_ERROR_INVALID_ARGUMENT);
    o = options_for(&k);
    o.lock_timeout_seconds = -0.5;
    CHECK_STATUS(tb_file_persister_new(st, path, &o, &p), TB_ERROR_INVALID_ARGUMENT);
    o = options_for(&k);
    o.sqlite_table_name = BAD;
    CHECK_STATUS(tb_sqlite_persister_new(st, path, TB_SQLITE_JSON, &o, &p), UTF);
    o = options_for(&k);
    o.sqlite_id_column_name = BAD;
    CHECK_STATUS(tb_sqlite_persister_new(st, path, TB_SQLITE_JSON, &o, &p), UTF);
    o = options_for(&k);
    o.sqlite_store_column_name = BAD;
    CHECK_STATUS(tb_sqlite_persister_new(st, path, TB_SQLITE_JSON, &o, &p), UTF);
    CHECK(p == NULL);
    CHECK(atomic_load(&k.released) == 0);

    /* an incremental layout needs a mergeable store: refused, user_data not taken over */
    tb_store *plain = NULL;
    CHECK_OK(tb_store_new(&plain));
    char db[512];
    path_of(db, sizeof db, "misuse.db");
    o = options_for(&k);
    CHECK_STATUS(tb_sqlite_persister_new(plain, db, TB_SQLITE_INCREMENTAL, &o, &p), TB_ERROR_INVALID_STATE);
    CHECK(p == NULL);
    CHECK(atomic_load(&k.released) == 0);

    /* every function with a NULL persister or NULL out-parameter */
    bool b = false;
    uint64_t u = 0;
    tb_persister_status ps = 0;
    char *s = NULL;
    CHECK_STATUS(tb_persister_load(NULL, &b), NUL);
    CHECK_STATUS(tb_persister_save(NULL), NUL);
    CHECK_STATUS(tb_persister_start_auto_load(NULL), NUL);
    CHECK_STATUS(tb_persister_stop_auto_load(NULL), NUL);
    CHECK_STATUS(tb_persister_start_auto_save(NULL), NUL);
    CHECK_STATUS(tb_persister_stop_auto_save(NULL), NUL);
    CHECK_STATUS(tb_persister_is_auto_loading(NULL, &b), NUL);
    CHECK_STATUS(tb_persister_is_auto_saving(NULL, &b), NUL);
    CHECK_STATUS(tb_persister_get_status(NULL, &ps), NUL);
    CHECK_STATUS(tb_persister_get_stats(NULL, &u, &u), NUL);
    CHECK_STATUS(tb_persister_flush(NULL, 1, &b), NUL);
    CHECK_STATUS(tb_persister_move_aside_unreadable(NULL, &s), NUL);
    CHECK_STATUS(tb_persister_describe(NULL, &s), NUL);
    CHECK_STATUS(tb_persister_destroy(NULL), NUL);
    tb_persister_free(NULL);

    CHECK_OK(tb_file_persister_new(st, path, NULL, &p));
    CHECK(p != NULL);
    CHECK_STATUS(tb_persister_is_auto_loading(p, NULL), NUL);
    CHECK_STATUS(tb_persister_is_auto_saving(p, NULL), NUL);
    CHECK_STATUS(tb_persister_get_status(p, NULL), NUL);
    CHECK_STATUS(tb_persister_get_stats(p, NULL, &u), NUL);
    CHECK_STATUS(tb_persister_get_stats(p, &u, NULL), NUL);
    CHECK_STATUS(tb_persister_flush(p, 1, NULL), NUL);
    CHECK_STATUS(tb_persister_flush(p, -1, &b), TB_ERROR_INVALID_ARGUMENT);
    CHECK_STATUS(tb_persister_flush(p, NAN, &b), TB_ERROR_INVALID_ARGUMENT);
    CHECK_STATUS(tb_persister_move_aside_unreadable(p, NULL), NUL);
    CHECK_STATUS(tb_persister_describe(p, NULL), NUL);
    /* nothing stored yet: load says so, the store is untouched, no file appears */
    CHECK_OK(tb_store_set_cell_json(st, "t", "r", "c", "1"));
    b = true;
    CHECK_OK(tb_persister_load(p, &b));
    CHECK(b == false);
    CHECK_OK(tb_persister_load(p, NULL));
    CHECK(!exists(path));
    char *c = content_of(st);
    CHECK(c && strcmp(c, "[{\"t\":{\"r\":{\"c\":1}}},{}]") == 0);
    free(c);
    /* nothing failed to load: nothing to move aside */
    s = (char *)1;
    CHECK_OK(tb_persister_move_aside_unreadable(p, &s));
    CHECK(s == NULL);
    /* after destroy: commands refused, getters work; destroy is idempotent */
    CHECK_OK(tb_persister_destroy(p));
    CHECK_OK(tb_persister_destroy(p));
    CHECK_STATUS(tb_persister_save(p), TB_ERROR_INVALID_STATE);
    CHECK_STATUS(tb_persister_load(p, &b), TB_ERROR_INVALID_STATE);
    CHECK_STATUS(tb_persister_start_auto_save(p), TB_ERROR_INVALID_STATE);
    CHECK_OK(tb_persister_get_status(p, &ps));
    CHECK(ps == TB_PERSISTER_IDLE);
    CHECK_OK(tb_persister_is_auto_saving(p, &b));
    CHECK(!b);
    tb_persister_free(p);

    tb_store_free(plain);
    tb_mergeable_store_free(m);
}

/* ------------------------------------------------------------------------ round trips */

/* Saves `st` through `make`, then loads it into `fresh` through a second persister. */
typedef tb_status (*make_fn)(tb_store *st, const char *where, const tb_persister_options *o, tb_persister **out);

static tb_status make_file(tb_store *st, const char *where, const tb_persister_options *o, tb_persister **out) {
    return tb_file_persister_new(st, where, o, out);
}
static tb_status make_sqlite_json(tb_store *st, const char *where, const tb_persister_options *o, tb_persister **out) {
    return tb_sqlite_persister_new(st, where, TB_SQLITE_JSON, o, out);
}
static tb_status make_sqlite_incremental(tb_store *st, const char *where, const tb_persister_options *o, tb_persister **out) {
    return tb_sqlite_persister_new(st, where, TB_SQLITE_INCREMENTAL, o, out);
}
static const char *pg_dsn;
static tb_status make_postgres(tb_store *st, const char *where, const tb_persister_options *o, tb_persister **out) {
    return tb_postgres_persister_new(st, pg_dsn, where, o, out);
}

static void fill(tb_store *st) {
    CHECK_OK(tb_store_set_cell_json(st, "pets", "fido", "species", "\"dog\""));
    CHECK_OK(tb_store_set_cell_json(st, "pets", "fido", "legs", "4"));
    CHECK_OK(tb_store_set_cell_json(st, "pets", "tom", "species", "\"cat\""));
    CHECK_OK(tb_store_set_cell_json(st, "pets", "tom", "toys", "{\"ball\":[1,2]}"));
    CHECK_OK(tb_store_set_cell_json(st, "pets", "tom", "sold", "true"));
    CHECK_OK(tb_store_set_value_json(st, "open", "true"));
    CHECK_OK(tb_store_set_value_json(st, "name", "\"pet shop \xC3\xA9\""));
}

/* A mergeable store through `make`: save, durable callback with the store's hashes, stats,
 * status, describe; a new store loads the same content (merged with what it had). */
static void round_trip_mergeable(const char *label, make_fn make, const char *where) {
    fprintf(stderr, "  round trip (mergeable): %s\n", label);
    tb_mergeable_store *m = NULL;
    CHECK_OK(tb_mergeable_store_new("writer", &m));
    tb_store *st = tb_mergeable_store_as_store(m);
    fill(st);
    sink k;
    memset(&k, 0, sizeof k);
    tb_persister_options o = options_for(&k);
    tb_persister *p = NULL;
    CHECK_OK(make(st, where, &o, &p));
    if (!p) {
        tb_mergeable_store_free(m);
        return;
    }
    tb_persister_status ps = 99;
    CHECK_OK(tb_persister_get_status(p, &ps));
    CHECK(ps == TB_PERSISTER_IDLE);
    char *d = NULL;
    CHECK_OK(tb_persister_describe(p, &d));
    CHECK(d != NULL && strlen(d) > 0);
    tb_string_free(d);
    CHECK_OK(tb_persister_save(p));
    /* save() calls on_durable on this thread before it returns */
    CHECK(atomic_load(&k.durables) == 1);
    uint32_t th = 0, vh = 0;
    CHECK_OK(tb_mergeable_store_get_mergeable_content_hashes(m, &th, &vh));
    CHECK(atomic_load(&k.last_tables_hash) == th && atomic_load(&k.last_values_hash) == vh);
    CHECK(th != 0 && vh != 0);
    CHECK(atomic_load(&k.last_saves) == 1);
    uint64_t loads = 9, saves = 9;
    CHECK_OK(tb_persister_get_stats(p, &loads, &saves));
    /* (a save that first merges what the storage holds counts that merge as a load: SQLite
     * does for a database it has not read yet) */
    CHECK(loads <= 1 && saves == 1);

    /* a new replica with content of its own loads: both kept (a merge, not a replacement) */
    tb_mergeable_store *m2 = NULL;
    CHECK_OK(tb_mergeable_store_new("reader", &m2));
    tb_store *st2 = tb_mergeable_store_as_store(m2);
    CHECK_OK(tb_store_set_cell_json(st2, "mine", "r", "c", "\"kept\""));
    tb_persister *p2 = NULL;
    CHECK_OK(make(st2, where, NULL, &p2));
    bool loaded = false;
    CHECK_OK(tb_persister_load(p2, &loaded));
    CHECK(loaded);
    CHECK_OK(tb_persister_get_stats(p2, &loads, &saves));
    CHECK(loads == 1 && saves == 0);
    CHECK_OK(tb_store_del_table(st2, "mine"));
    /* the deletion is a newer stamp; the rest equals the writer's content */
    CHECK(same_content(st, st2));
    uint32_t th2 = 0, vh2 = 0;
    CHECK_OK(tb_mergeable_store_get_mergeable_content_hashes(m2, &th2, &vh2));
    CHECK(vh2 == vh);

    tb_persister_free(p2);
    tb_persister_free(p);
    CHECK(atomic_load(&k.released) == 1);
    CHECK(atomic_load(&k.errors) == 0);
    tb_mergeable_store_free(m2);
    tb_mergeable_store_free(m);
}

/* A plain store: save, reload into a new plain store holding a cell of its own. */
static void round_trip_plain(const char *label, make_fn make, const char *where) {
    fprintf(stderr, "  round trip (plain): %s\n", label);
    tb_store *st = NULL;
    CHECK_OK(tb_store_new(&st));
    fill(st);
    sink k;
    memset(&k, 0, sizeof k);
    tb_persister_options o = options_for(&k);
    tb_persister *p = NULL;
    CHECK_OK(make(st, where, &o, &p));
    if (!p) {
        tb_store_free(st);
        return;
    }
    CHECK_OK(tb_persister_save(p));
    CHECK(atomic_load(&k.durables) == 1);
    CHECK(atomic_load(&k.last_tables_hash) == 0 && atomic_load(&k.last_values_hash) == 0);

    tb_store *st2 = NULL;
    CHECK_OK(tb_store_new(&st2));
    CHECK_OK(tb_store_set_value_json(st2, "open", "false"));
    CHECK_OK(tb_store_set_cell_json(st2, "mine", "r", "c", "1"));
    tb_persister *p2 = NULL;
    CHECK_OK(make(st2, where, NULL, &p2));
    bool loaded = false;
    CHECK_OK(tb_persister_load(p2, &loaded));
    CHECK(loaded);
    /* stored cells win over the store's, what only the store has is kept */
    CHECK(has_cell(st2, "mine", "r", "c"));
    CHECK_OK(tb_store_del_table(st2, "mine"));
    CHECK(same_content(st, st2));
    tb_persister_free(p2);
    tb_persister_free(p);
    CHECK(atomic_load(&k.released) == 1);
    tb_store_free(st2);
    tb_store_free(st);
}

/* TinyBase's file formats: a mergeable store's file is its wire content with hashes, a plain
 * store's `[tables, values]`. */
static void file_formats(void) {
    char path[512];
    path_of(path, sizeof path, "format-m.json");
    tb_mergeable_store *m = NULL;
    CHECK_OK(tb_mergeable_store_new("fmt", &m));
    tb_store *st = tb_mergeable_store_as_store(m);
    CHECK_OK(tb_store_set_cell_json(st, "t", "r", "c", "1"));
    tb_persister *p = NULL;
    CHECK_OK(tb_file_persister_new(st, path, NULL, &p));
    CHECK_OK(tb_persister_save(p));
    char *text = read_file(path), *wire = NULL;
    CHECK_OK(tb_mergeable_store_get_mergeable_content_json(m, &wire));
    CHECK(text && wire && strcmp(text, wire) == 0);
    if (text && wire && strcmp(text, wire) != 0) fprintf(stderr, "  file: %s\n  wire: %s\n", text, wire);
    tb_string_free(wire);
    free(text);
    tb_persister_free(p);
    tb_mergeable_store_free(m);

    path_of(path, sizeof path, "format-p.json");
    tb_store *plain = NULL;
    CHECK_OK(tb_store_new(&plain));
    CHECK_OK(tb_store_set_cell_json(plain, "t", "r", "c", "1"));
    CHECK_OK(tb_store_set_value_json(plain, "v", "\"x\""));
    CHECK_OK(tb_file_persister_new(plain, path, NULL, &p));
    CHECK_OK(tb_persister_save(p));
    text = read_file(path);
    CHECK(text && strcmp(text, "[{\"t\":{\"r\":{\"c\":1}}},{\"v\":\"x\"}]") == 0);
    if (text) fprintf(stderr, "  plain file: %s\n", text);
    free(text);
    tb_persister_free(p);
    tb_store_free(plain);
}

/* Auto-save: every transaction written on the persister's thread; flush waits for it; a new
 * store (another "process") loads it all. Auto-load of a second persister follows along. */
static void auto_save_and_load(const char *label, make_fn make, const char *where) {
    fprintf(stderr, "  auto-save + flush + reload, auto-load: %s\n", label);
    tb_mergeable_store *m = NULL, *m2 = NULL;
    CHECK_OK(tb_mergeable_store_new("auto-writer", &m));
    CHECK_OK(tb_mergeable_store_new("auto-reader", &m2));
    tb_store *st = tb_mergeable_store_as_store(m), *st2 = tb_mergeable_store_as_store(m2);
    sink k, k2;
    memset(&k, 0, sizeof k);
    memset(&k2, 0, sizeof k2);
    tb_persister_options o = options_for(&k), o2 = options_for(&k2);
    tb_persister *p = NULL, *p2 = NULL;
    CHECK_OK(make(st, where, &o, &p));
    CHECK_OK(make(st2, where, &o2, &p2));
    if (!p || !p2) goto out;
    bool b = true;
    CHECK_OK(tb_persister_is_auto_saving(p, &b));
    CHECK(!b);
    CHECK_OK(tb_persister_start_auto_save(p));
    CHECK_OK(tb_persister_is_auto_saving(p, &b));
    CHECK(b);
    CHECK_OK(tb_persister_start_auto_load(p2));
    CHECK_OK(tb_persister_is_auto_loading(p2, &b));
    CHECK(b);
    for (int i = 0; i < 20; i++) {
        char row[16], val[16];
        snprintf(row, sizeof row, "r%d", i);
        snprintf(val, sizeof val, "%d", i * i);
        CHECK_OK(tb_store_set_cell_json(st, "squares", row, "n", val));
    }
    CHECK_OK(tb_store_set_value_json(st, "count", "20"));
    CHECK_OK(tb_store_del_row(st, "squares", "r0"));
    bool durable = false;
    CHECK_OK(tb_persister_flush(p, 10 * scale(), &durable));
    CHECK(durable);
    uint32_t th = 0, vh = 0;
    CHECK_OK(tb_mergeable_store_get_mergeable_content_hashes(m, &th, &vh));
    uint64_t loads = 0, saves = 0;
    CHECK_OK(tb_persister_get_stats(p, &loads, &saves));
    CHECK(saves >= 2);
    /* flush may return before the callback of that save ran: it follows at once */
    double until = now_s() + 5 * scale();
    while (atomic_load(&k.last_saves) < saves && now_s() < until) sleep_ms(5);
    CHECK(atomic_load(&k.last_saves) == saves);
    CHECK(atomic_load(&k.durables) >= 2);

    /* the auto-loading persister sees the writes */
    double end = now_s() + 10 * scale();
    uint32_t th2 = 0, vh2 = 0;
    do {
        sleep_ms(10);
        CHECK_OK(tb_mergeable_store_get_mergeable_content_hashes(m2, &th2, &vh2));
    } while ((th2 != th || vh2 != vh) && now_s() < end);
    CHECK(th2 == th && vh2 == vh);
    CHECK(same_content(st, st2));
    CHECK_OK(tb_persister_stop_auto_load(p2));
    CHECK_OK(tb_persister_is_auto_loading(p2, &b));
    CHECK(!b);
    CHECK_OK(tb_persister_stop_auto_save(p));
    CHECK_OK(tb_persister_is_auto_saving(p, &b));
    CHECK(!b);

    /* a third store loads it all */
    tb_mergeable_store *m3 = NULL;
    CHECK_OK(tb_mergeable_store_new("auto-third", &m3));
    tb_persister *p3 = NULL;
    CHECK_OK(make(tb_mergeable_store_as_store(m3), where, NULL, &p3));
    CHECK_OK(tb_persister_load(p3, &b));
    CHECK(b);
    CHECK(same_content(st, tb_mergeable_store_as_store(m3)));
    tb_persister_free(p3);
    tb_mergeable_store_free(m3);
    CHECK(atomic_load(&k.errors) == 0 && atomic_load(&k2.errors) == 0);
out:
    tb_persister_free(p2);
    tb_persister_free(p);
    CHECK(atomic_load(&k.released) == (p ? 1 : 0));
    CHECK(atomic_load(&k2.released) == (p2 ? 1 : 0));
    tb_mergeable_store_free(m2);
    tb_mergeable_store_free(m);
}

/* A file that is not TinyBase content: TB_ERROR_CORRUPT, the store and the file untouched,
 * saves refused; auto-load reports a file corrupted later through on_ignored_error; moving
 * it aside lets saves start afresh. */
static void corrupt_file(void) {
    char path[512];
    path_of(path, sizeof path, "corrupt.json");
    const char *junk = "[[{\"t\":{\"r\":{\"c\":1}}},\"not an hlc\",12]";
    write_file(path, junk);
    tb_mergeable_store *m = NULL;
    CHECK_OK(tb_mergeable_store_new("corrupt", &m));
    tb_store *st = tb_mergeable_store_as_store(m);
    CHECK_OK(tb_store_set_value_json(st, "mine", "1"));
    sink k;
    memset(&k, 0, sizeof k);
    tb_persister_options o = options_for(&k);
    tb_persister *p = NULL;
    CHECK_OK(tb_file_persister_new(st, path, &o, &p));
    bool b = true;
    CHECK_STATUS(tb_persister_load(p, &b), TB_ERROR_CORRUPT);
    CHECK(tb_last_error_status() == TB_ERROR_CORRUPT);
    CHECK(strlen(tb_last_error_message()) > 0);
    CHECK(b == true); /* out-parameters are written only on success */
    char *c = content_of(st);
    CHECK(c && strcmp(c, "[{},{\"mine\":1}]") == 0);
    free(c);
    CHECK_STATUS(tb_persister_save(p), TB_ERROR_INVALID_STATE);
    CHECK(strstr(tb_last_error_message(), "move") != NULL);
    CHECK_STATUS(tb_persister_start_auto_save(p), TB_ERROR_INVALID_STATE);
    CHECK_STATUS(tb_persister_start_auto_load(p), TB_ERROR_CORRUPT);
    char *text = read_file(path);
    CHECK(text && strcmp(text, junk) == 0);
    free(text);

    char *aside = NULL;
    CHECK_OK(tb_persister_move_aside_unreadable(p, &aside));
    CHECK(aside != NULL && strstr(aside, "corrupt") != NULL);
    if (aside) {
        text = read_file(aside);
        CHECK(text && strcmp(text, junk) == 0);
        free(text);
        tb_string_free(aside);
    }
    CHECK(!exists(path));
    CHECK_OK(tb_persister_save(p));
    CHECK(exists(path));

    /* auto-load notices a file corrupted by another process, reports it, keeps the file */
    CHECK_OK(tb_persister_start_auto_load(p));
    sleep_ms(50);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    write_file(tmp, "{\"not\": \"tinybase\"}");
    CHECK(rename(tmp, path) == 0);
    CHECK(wait_for(&k.errors, 1, 10));
    CHECK(atomic_load(&k.last_error_status) == TB_ERROR_CORRUPT);
    CHECK_OK(tb_persister_stop_auto_load(p));
    CHECK_STATUS(tb_persister_save(p), TB_ERROR_INVALID_STATE);
    text = read_file(path);
    CHECK(text && strcmp(text, "{\"not\": \"tinybase\"}") == 0);
    free(text);
    c = content_of(st);
    CHECK(c && strcmp(c, "[{},{\"mine\":1}]") == 0);
    free(c);

    tb_persister_free(p);
    CHECK(atomic_load(&k.released) == 1);
    tb_mergeable_store_free(m);
}

/* A durable callback on the persister's thread frees its own persister: no deadlock, release
 * once, after the thread stopped. A save's callback (on the calling thread) may too. */
static void free_from_callback(void) {
    char path[512];
    path_of(path, sizeof path, "free-self.json");
    tb_mergeable_store *m = NULL;
    CHECK_OK(tb_mergeable_store_new("free-self", &m));
    tb_store *st = tb_mergeable_store_as_store(m);
    int64_t before = tb_debug_live_handles();

    /* on the persister's thread (auto-save) */
    sink k;
    memset(&k, 0, sizeof k);
    tb_persister_options o = options_for(&k);
    tb_persister *p = NULL;
    CHECK_OK(tb_file_persister_new(st, path, &o, &p));
    CHECK_OK(tb_persister_start_auto_save(p));
    CHECK(wait_for(&k.durables, 1, 5));
    atomic_store(&k.free_me, p);
    CHECK_OK(tb_store_set_cell_json(st, "t", "r", "c", "1"));
    CHECK(wait_for(&k.freed_in_callback, 1, 10));
    CHECK(wait_for(&k.released, 1, 10));
    CHECK(atomic_load(&k.released) == 1);
    CHECK(tb_debug_live_handles() == before);

    /* on the calling thread (save) */
    sink k2;
    memset(&k2, 0, sizeof k2);
    o = options_for(&k2);
    CHECK_OK(tb_file_persister_new(st, path, &o, &p));
    atomic_store(&k2.free_me, p);
    CHECK_OK(tb_persister_save(p)); /* the call keeps the persister until it returns */
    CHECK(atomic_load(&k2.freed_in_callback) == 1);
    CHECK(wait_for(&k2.released, 1, 10));
    CHECK(atomic_load(&k2.released) == 1);
    CHECK(tb_debug_live_handles() == before);
    CHECK(atomic_load(&k.errors) == 0 && atomic_load(&k2.errors) == 0);
    tb_mergeable_store_free(m);
}

/* A store listener running on the persister's thread (auto-load merging another process's
 * write) frees the persister: no deadlock, release once. */
static tb_persister *_Atomic listener_frees;
static atomic_int listener_freed;
static void free_persister_listener(void *ud, tb_store *st, const tb_event *e) {
    (void)ud;
    (void)st;
    (void)e;
    tb_persister *p = atomic_exchange(&listener_frees, NULL);
    if (p) {
        tb_persister_free(p);
        atomic_store(&listener_freed, 1);
    }
}

static void free_from_store_listener(void) {
    char path[512];
    path_of(path, sizeof path, "free-listener.json");
    tb_mergeable_store *a = NULL, *b = NULL;
    CHECK_OK(tb_mergeable_store_new("listener-a", &a));
    CHECK_OK(tb_mergeable_store_new("listener-b", &b));
    sink k;
    memset(&k, 0, sizeof k);
    tb_persister_options o = options_for(&k);
    tb_persister *pa = NULL, *pb = NULL;
    CHECK_OK(tb_file_persister_new(tb_mergeable_store_as_store(a), path, NULL, &pa));
    CHECK_OK(tb_file_persister_new(tb_mergeable_store_as_store(b), path, &o, &pb));
    CHECK_OK(tb_persister_start_auto_load(pb));
    uint64_t id = 0;
    CHECK_OK(tb_store_add_value_listener(tb_mergeable_store_as_store(b), "go", free_persister_listener, NULL, NULL, &id));
    atomic_store(&listener_frees, pb);
    CHECK_OK(tb_store_set_value_json(tb_mergeable_store_as_store(a), "go", "true"));
    CHECK_OK(tb_persister_save(pa));
    CHECK(wait_for(&listener_freed, 1, 10));
    CHECK(wait_for(&k.released, 1, 10));
    CHECK(atomic_load(&k.released) == 1);
    CHECK_OK(tb_store_del_listener(tb_mergeable_store_as_store(b), id));
    tb_persister_free(pa);
    tb_mergeable_store_free(a);
    tb_mergeable_store_free(b);
}

/* Persisting while a local-bus synchronizer syncs the same store: what arrives through sync
 * is saved too, and what is loaded reaches the peer. */
static void persist_while_syncing(void) {
    char path[512];
    path_of(path, sizeof path, "synced.json");
    tb_local_bus *bus = NULL;
    CHECK_OK(tb_local_bus_new(&bus));
    tb_mergeable_store *a = NULL, *b = NULL;
    CHECK_OK(tb_mergeable_store_new("sync-a", &a));
    CHECK_OK(tb_mergeable_store_new("sync-b", &b));
    tb_synchronizer_options so;
    memset(&so, 0, sizeof so);
    so.request_timeout_seconds = 1;
    tb_synchronizer *sa = NULL, *sb = NULL;
    CHECK_OK(tb_local_bus_create_synchronizer(bus, a, &so, &sa));
    CHECK_OK(tb_local_bus_create_synchronizer(bus, b, &so, &sb));
    sink k;
    memset(&k, 0, sizeof k);
    tb_persister_options o = options_for(&k);
    tb_persister *p = NULL;
    CHECK_OK(tb_file_persister_new(tb_mergeable_store_as_store(a), path, &o, &p));
    CHECK_OK(tb_persister_start_auto_load(p));
    CHECK_OK(tb_persister_start_auto_save(p));
    CHECK_OK(tb_synchronizer_start_sync(sa, NULL));
    CHECK_OK(tb_synchronizer_start_sync(sb, NULL));
    for (int i = 0; i < 10; i++) {
        char row[16];
        snprintf(row, sizeof row, "a%d", i);
        CHECK_OK(tb_store_set_cell_json(tb_mergeable_store_as_store(a), "t", row, "by", "\"a\""));
        snprintf(row, sizeof row, "b%d", i);
        CHECK_OK(tb_store_set_cell_json(tb_mergeable_store_as_store(b), "t", row, "by", "\"b\""));
    }
    bool idle = false;
    CHECK_OK(tb_local_bus_wait_for_idle(bus, 20 * scale(), &idle));
    CHECK(idle);
    CHECK(same_hashes(a, b));
    bool durable = false;
    CHECK_OK(tb_persister_flush(p, 10 * scale(), &durable));
    CHECK(durable);

    /* the file holds both peers' writes */
    tb_mergeable_store *c = NULL;
    CHECK_OK(tb_mergeable_store_new("sync-c", &c));
    tb_persister *pc = NULL;
    CHECK_OK(tb_file_persister_new(tb_mergeable_store_as_store(c), path, NULL, &pc));
    CHECK_OK(tb_persister_load(pc, &durable));
    CHECK(has_cell(tb_mergeable_store_as_store(c), "t", "b9", "by"));
    CHECK(same_hashes(a, c));

    /* another process writes the file: A auto-loads it, and sync carries it to B */
    CHECK_OK(tb_store_set_value_json(tb_mergeable_store_as_store(c), "from_file", "true"));
    CHECK_OK(tb_persister_save(pc));
    double end = now_s() + 10 * scale();
    while (!has_value(tb_mergeable_store_as_store(b), "from_file") && now_s() < end) sleep_ms(10);
    CHECK(has_value(tb_mergeable_store_as_store(a), "from_file"));
    CHECK(has_value(tb_mergeable_store_as_store(b), "from_file"));
    CHECK(atomic_load(&k.errors) == 0);
    if (atomic_load(&k.errors)) fprintf(stderr, "  ignored error: %s\n", k.last_error);

    tb_persister_free(pc);
    tb_mergeable_store_free(c);
    tb_synchronizer_free(sa);
    tb_synchronizer_free(sb);
    tb_persister_free(p);
    CHECK(atomic_load(&k.released) == 1);
    tb_local_bus_free(bus);
    tb_mergeable_store_free(a);
    tb_mergeable_store_free(b);
}

/* SQLite JSON mode with TinyBase's layout and names of our choosing. */
static void sqlite_names(void) {
    char db[512];
    path_of(db, sizeof db, "names.db");
    tb_mergeable_store *m = NULL;
    CHECK_OK(tb_mergeable_store_new("names", &m));
    fill(tb_mergeable_store_as_store(m));
    tb_persister_options o;
    memset(&o, 0, sizeof o);
    o.sqlite_table_name = "my_store";
    o.sqlite_id_column_name = "my_id";
    o.sqlite_store_column_name = "my_content";
    tb_persister *p = NULL;
    CHECK_OK(tb_sqlite_persister_new(tb_mergeable_store_as_store(m), db, TB_SQLITE_JSON, &o, &p));
    if (p) CHECK_OK(tb_persister_save(p));
    tb_persister_free(p);
    CHECK(file_contains(db, "my_content"));
    /* read back with the same names; the default names find nothing */
    tb_mergeable_store *m2 = NULL;
    CHECK_OK(tb_mergeable_store_new("names2", &m2));
    p = NULL;
    CHECK_OK(tb_sqlite_persister_new(tb_mergeable_store_as_store(m2), db, TB_SQLITE_JSON, NULL, &p));
    bool loaded = true;
    if (p) CHECK_OK(tb_persister_load(p, &loaded));
    CHECK(!loaded);
    tb_persister_free(p);
    p = NULL;
    CHECK_OK(tb_sqlite_persister_new(tb_mergeable_store_as_store(m2), db, TB_SQLITE_JSON, &o, &p));
    if (p) CHECK_OK(tb_persister_load(p, &loaded));
    CHECK(loaded);
    CHECK(same_content(tb_mergeable_store_as_store(m), tb_mergeable_store_as_store(m2)));
    tb_persister_free(p);
    tb_mergeable_store_free(m2);
    tb_mergeable_store_free(m);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/tb-test-persist-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    int64_t base = tb_debug_live_handles();
    char where[512];

    misuse();
    CHECK(tb_debug_live_handles() == base);
    file_formats();
    CHECK(tb_debug_live_handles() == base);

    path_of(where, sizeof where, "m.json");
    round_trip_mergeable("file", make_file, where);
    path_of(where, sizeof where, "p.json");
    round_trip_plain("file", make_file, where);
    path_of(where, sizeof where, "auto.json");
    auto_save_and_load("file", make_file, where);
    CHECK(tb_debug_live_handles() == base);

    corrupt_file();
    CHECK(tb_debug_live_handles() == base);
    free_from_callback();
    CHECK(tb_debug_live_handles() == base);
    free_from_store_listener();
    CHECK(tb_debug_live_handles() == base);
    persist_while_syncing();
    CHECK(tb_debug_live_handles() == base);

    path_of(where, sizeof where, "m-json.db");
    round_trip_mergeable("sqlite json", make_sqlite_json, where);
    path_of(where, sizeof where, "p-json.db");
    round_trip_plain("sqlite json", make_sqlite_json, where);
    path_of(where, sizeof where, "auto-json.db");
    auto_save_and_load("sqlite json", make_sqlite_json, where);
    path_of(where, sizeof where, "m-inc.db");
    round_trip_mergeable("sqlite incremental", make_sqlite_incremental, where);
    path_of(where, sizeof where, "auto-inc.db");
    auto_save_and_load("sqlite incremental", make_sqlite_incremental, where);
    sqlite_names();
    CHECK(tb_debug_live_handles() == base);

    pg_dsn = getenv("TB_TEST_POSTGRES_DSN");
    if (pg_dsn && *pg_dsn) {
        char room[64];
        snprintf(room, sizeof room, "c-test-%ld-m", (long)getpid());
        round_trip_mergeable("postgres", make_postgres, room);
        snprintf(room, sizeof room, "c-test-%ld-auto", (long)getpid());
        auto_save_and_load("postgres", make_postgres, room);
        /* the incremental layout needs a mergeable store; an unreachable server is an I/O
         * error; the user_data is not taken over either time */
        tb_store *plain = NULL;
        CHECK_OK(tb_store_new(&plain));
        sink k;
        memset(&k, 0, sizeof k);
        tb_persister_options o = options_for(&k);
        tb_persister *p = NULL;
        CHECK_STATUS(tb_postgres_persister_new(plain, pg_dsn, room, &o, &p), TB_ERROR_INVALID_STATE);
        tb_store_free(plain);
        tb_mergeable_store *m = NULL;
        CHECK_OK(tb_mergeable_store_new("pg-unreachable", &m));
        CHECK_STATUS(tb_postgres_persister_new(tb_mergeable_store_as_store(m), "host=127.0.0.1 port=1 connect_timeout=5", room, &o, &p),
                     TB_ERROR_IO);
        tb_mergeable_store_free(m);
        CHECK(p == NULL && atomic_load(&k.released) == 0);
        CHECK(tb_debug_live_handles() == base);
    } else {
        fprintf(stderr, "  postgres: skipped (TB_TEST_POSTGRES_DSN is not set)\n");
    }

    CHECK(atomic_load(&thread_failures) == 0);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return tb_finish("test_persist");
}
