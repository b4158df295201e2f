/* Misuse that must be refused or repaired, never undefined behaviour or a hang: transactions
 * finished by someone who does not own them, threads that end inside start_transaction,
 * listeners that remove each other or write the store that calls them, event queues freed
 * under a waiter. Every wait has a deadline, so a regression fails instead of hanging. */
#define _GNU_SOURCE
#include "common.h"
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

/* ---- running something with a deadline */

typedef struct {
    void (*fn)(void *);
    void *arg;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
} timed;

static void *timed_main(void *p) {
    timed *t = p;
    t->fn(t->arg);
    pthread_mutex_lock(&t->mu);
    t->done = 1;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

/* Runs fn(arg) on a new thread; true when it returned within `seconds`. On a timeout the
 * thread is left behind (the process exits at the end of the test) and `t` leaks on purpose. */
static bool run_within(void (*fn)(void *), void *arg, int seconds) {
    timed *t = calloc(1, sizeof *t);
    t->fn = fn;
    t->arg = arg;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    pthread_t th;
    if (pthread_create(&th, NULL, timed_main, t) != 0) return false;
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += seconds;
    pthread_mutex_lock(&t->mu);
    while (!t->done && pthread_cond_timedwait(&t->cv, &t->mu, &deadline) == 0) {
    }
    int done = t->done;
    pthread_mutex_unlock(&t->mu);
    if (!done) {
        pthread_detach(th);
        fprintf(stderr, "  deadline of %d s passed (deadlock)\n", seconds);
        return false;
    }
    pthread_join(th, NULL);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    free(t);
    return true;
}

static double value_of(tb_store *st, const char *id) {
    tb_value v;
    if (tb_store_get_value(st, id, &v) != TB_OK || v.kind != TB_VALUE_NUMBER) return -1;
    return v.number;
}

static void set_value(tb_store *st, const char *id, double n) {
    tb_value v = tb_value_number(n);
    CHECK_OK(tb_store_set_value(st, id, &v));
}

static void write_c(void *p) { set_value(p, "c", 3); }

/* ---- transactions */

static tb_status inner_finish;

static bool tx_finishes(void *ud, tb_store *st) {
    (void)ud;
    set_value(st, "a", 1);
    inner_finish = tb_store_finish_transaction(st, false);
    set_value(st, "b", 2);
    return false;
}

static void finish_inside_transaction(void) {
    tb_store *st;
    CHECK_OK(tb_store_new(&st));
    CHECK_OK(tb_store_transaction(st, tx_finishes, NULL));
    CHECK_STATUS(inner_finish, TB_ERROR_INVALID_STATE);
    CHECK(value_of(st, "a") == 1 && value_of(st, "b") == 2);
    CHECK(run_within(write_c, st, 10));
    CHECK(value_of(st, "c") == 3);
    tb_store_free(st);
}

static atomic_int listener_finishes_refused;

static void on_will_finish(void *ud, tb_store *st, const tb_event *e) {
    (void)ud;
    (void)e;
    if (tb_store_finish_transaction(st, true) == TB_ERROR_INVALID_STATE) atomic_fetch_add(&listener_finishes_refused, 1);
}

static void finish_inside_listener(void) {
    tb_store *st;
    uint64_t id;
    CHECK_OK(tb_store_new(&st));
    CHECK_OK(tb_store_add_will_finish_transaction_listener(st, on_will_finish, NULL, NULL, &id));
    CHECK_OK(tb_store_start_transaction(st));
    set_value(st, "a", 1);
    CHECK_OK(tb_store_finish_transaction(st, false));
    CHECK(atomic_load(&listener_finishes_refused) == 1);
    CHECK(value_of(st, "a") == 1);
    CHECK_STATUS(tb_store_finish_transaction(st, false), TB_ERROR_INVALID_STATE);
    CHECK(run_within(write_c, st, 10));
    tb_store_free(st);
}

static void *start_and_exit(void *p) {
    tb_store *st = p;
    CHECK_OK(tb_store_start_transaction(st));
    set_value(st, "lost", 2);
    return NULL; /* ends with the transaction open */
}

static void thread_ends_inside_transaction(void) {
    tb_store *st;
    CHECK_OK(tb_store_new(&st));
    set_value(st, "kept", 1);
    pthread_t th;
    pthread_create(&th, NULL, start_and_exit, st);
    pthread_join(th, NULL);
    CHECK(run_within(write_c, st, 10));
    CHECK(value_of(st, "kept") == 1 && value_of(st, "lost") == -1 && value_of(st, "c") == 3);
#ifndef TB_BEFORE_FIX
    uint64_t abandoned = 0;
    CHECK_OK(tb_store_get_abandoned_transaction_count(st, &abandoned));
    CHECK(abandoned == 1);
#endif
    tb_store_free(st);
}

int main(void) {
    finish_inside_transaction();
    finish_inside_listener();
    thread_ends_inside_transaction();
    return tb_finish("test_soundness");
}
