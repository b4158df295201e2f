/* 8 pthreads writing, reading, merging and listening on one mergeable store at once.
 * Checks: no lost write, no torn transaction (readers never see half of one), listeners see
 * every change exactly once, listener removal under load is safe, nothing leaks. */
#include "common.h"
#include <pthread.h>
#include <stdatomic.h>

#define THREADS 8
#ifndef ITER
#define ITER 150
#endif

static tb_mergeable_store *shared;
static atomic_int cell_events;
static atomic_int torn;
static atomic_int failures;
static atomic_int transient_calls;
static atomic_int transient_released;
static atomic_int queued;

typedef struct {
    int index;
    char row[16];
    int k;
} writer;

#define EXPECT(c) do { if (!(c)) { atomic_fetch_add(&failures, 1); \
    fprintf(stderr, "thread check failed %s:%d: %s (%s)\n", __FILE__, __LINE__, #c, tb_last_error_message()); } } while (0)

static double read_number(tb_store *st, const char *row, const char *cell) {
    tb_value v;
    if (tb_store_get_cell(st, "w", row, cell, &v) != TB_OK || v.kind != TB_VALUE_NUMBER) return -1;
    return v.number;
}

static bool write_tx(void *ud, tb_store *st) {
    writer *w = ud;
    char cell[16];
    tb_value v = tb_value_number(w->k);
    EXPECT(tb_store_set_cell(st, "w", w->row, "a", &v) == TB_OK);
    snprintf(cell, sizeof cell, "k%d", w->k);
    EXPECT(tb_store_set_cell(st, "w", w->row, cell, &v) == TB_OK);
    EXPECT(tb_store_set_cell(st, "w", w->row, "b", &v) == TB_OK);
    return false;
}

static bool extra_tx(void *ud, tb_store *st) {
    writer *w = ud;
    tb_value v = tb_value_number(w->k);
    EXPECT(tb_store_set_cell(st, "w", w->row, "x", &v) == TB_OK);
    return false;
}

static bool read_tx(void *ud, tb_store *st) {
    (void)ud;
    /* inside a transaction no other thread's transaction can interleave */
    for (int i = 0; i < THREADS; i++) {
        char row[16];
        snprintf(row, sizeof row, "row%d", i);
        if (read_number(st, row, "a") != read_number(st, row, "b")) atomic_fetch_add(&torn, 1);
    }
    return false;
}

#ifdef TB_TEST_RACE /* proves the TSan stage catches races: a plain counter from listeners */
static int racy;
#endif

static void on_cell(void *ud, tb_store *st, const tb_event *e) {
    (void)ud;
    atomic_fetch_add(&cell_events, 1);
#ifdef TB_TEST_RACE
    racy++;
#endif
    /* runs after commit on the writing thread (the only writer of this row) */
    if (read_number(st, e->row_id, "a") != read_number(st, e->row_id, "b")) atomic_fetch_add(&torn, 1);
}

static void on_transient(void *ud, tb_store *st, const tb_event *e) {
    (void)st; (void)e;
    atomic_int *alive = ud;
    if (atomic_load(alive) != 1) atomic_fetch_add(&failures, 1); /* called after release */
    atomic_fetch_add(&transient_calls, 1);
}

static void transient_release(void *ud) {
    atomic_int *alive = ud;
    atomic_store(alive, 0);
    atomic_fetch_add(&transient_released, 1);
}

static void *run(void *arg) {
    writer *w = arg;
    tb_store *st = tb_mergeable_store_as_store(shared);
    tb_mergeable_store *mine = NULL;
    char id[16];
    snprintf(id, sizeof id, "t%d", w->index);
    EXPECT(tb_mergeable_store_new(id, &mine) == TB_OK);
    tb_event_queue *q = NULL;
    EXPECT(tb_event_queue_new(NULL, NULL, NULL, &q) == TB_OK);
    for (w->k = 0; w->k < ITER; w->k++) {
        EXPECT(tb_store_transaction(st, write_tx, w) == TB_OK);
        EXPECT(tb_store_transaction(st, read_tx, NULL) == TB_OK);
        /* a single read call is atomic too */
        char *row = NULL;
        if (tb_store_get_row_json(st, "w", "row0", &row) == TB_OK && row) {
            const char *a = strstr(row, "\"a\":"), *b = strstr(row, "\"b\":");
            if (a && b && atoi(a + 4) != atoi(b + 4)) atomic_fetch_add(&torn, 1);
            tb_string_free(row);
        }
        if (w->k % 15 == 0) { /* merge with a private replica */
            char cell[16];
            snprintf(cell, sizeof cell, "m%d", w->k);
            EXPECT(tb_store_set_cell_json(tb_mergeable_store_as_store(mine), "m", id, cell, "1") == TB_OK);
            EXPECT(tb_mergeable_store_merge(shared, mine) == TB_OK);
        }
        if (w->k % 25 == 0) { /* add and remove listeners while others fire */
            atomic_int *alive = malloc(sizeof *alive);
            atomic_store(alive, 1);
            uint64_t lid, bid;
            EXPECT(tb_store_add_cell_listener(st, "w", NULL, NULL, on_transient, alive, transient_release, &lid) == TB_OK);
            EXPECT(tb_store_add_buffered_listener(st, q, TB_LISTENER_ROW, "w", NULL, NULL, &bid) == TB_OK);
            EXPECT(tb_store_transaction(st, extra_tx, w) == TB_OK);
            EXPECT(tb_store_del_listener(st, lid) == TB_OK);
            EXPECT(atomic_load(alive) == 0); /* released by the time del returns */
            free(alive);
            tb_event *e = NULL;
            while (tb_event_queue_poll(q, &e) == TB_OK && e) {
                atomic_fetch_add(&queued, 1);
                tb_event_free(e);
            }
            EXPECT(tb_store_del_listener(st, bid) == TB_OK);
        }
    }
    tb_event_queue_free(q);
    tb_mergeable_store_free(mine);
    return NULL;
}

int main(void) {
    int64_t base = tb_debug_live_handles();
    CHECK_OK(tb_mergeable_store_new("shared", &shared));
    tb_store *st = tb_mergeable_store_as_store(shared);
    uint64_t lid;
    CHECK_OK(tb_store_add_cell_listener(st, "w", NULL, NULL, on_cell, NULL, NULL, &lid));
    pthread_t th[THREADS];
    writer w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i].index = i;
        snprintf(w[i].row, sizeof w[i].row, "row%d", i);
        pthread_create(&th[i], NULL, run, &w[i]);
    }
    for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);

    CHECK(atomic_load(&failures) == 0);
    CHECK(atomic_load(&torn) == 0);
    int extra = (ITER + 24) / 25; /* the extra transactions, made while adding listeners */
    for (int i = 0; i < THREADS; i++) {
        char *ids = NULL;
        CHECK_OK(tb_store_get_cell_ids_json(st, "w", w[i].row, &ids));
        int count = 0;
        for (char *p = ids; p && *p; p++) count += *p == ',';
        CHECK(ids && count + 1 == ITER + 3); /* a, b, x and every k<n>: no lost write */
        tb_string_free(ids);
        CHECK(read_number(st, w[i].row, "a") == ITER - 1 && read_number(st, w[i].row, "b") == ITER - 1);
        bool has = false;
        char id[16];
        snprintf(id, sizeof id, "t%d", i);
        CHECK_OK(tb_store_has_row(st, "m", id, &has));
        CHECK(has); /* merged writes arrived */
    }
    /* a, b and a new k cell change in every write transaction; x in every extra one */
    int expected = THREADS * (ITER * 3 + extra);
    CHECK(atomic_load(&cell_events) == expected);
    if (atomic_load(&cell_events) != expected)
        fprintf(stderr, "cell events %d, expected %d\n", atomic_load(&cell_events), expected);
    CHECK(atomic_load(&transient_released) == THREADS * extra);
    CHECK(atomic_load(&queued) >= THREADS * extra);
    uint32_t t1, v1, t2, v2;
    CHECK_OK(tb_mergeable_store_get_mergeable_content_hashes(shared, &t1, &v1));
    CHECK_OK(tb_mergeable_store_compute_content_hashes(shared, &t2, &v2));
    CHECK(t1 == t2 && v1 == v2);
    CHECK_OK(tb_store_del_listener(st, lid));
    tb_mergeable_store_free(shared);
    CHECK(tb_debug_live_handles() == base);
    return tb_finish("test_threads");
}
