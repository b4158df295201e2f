/* Misuse that must be refused or repaired, never undefined behaviour or a hang: transactions
 * finished by someone who does not own them, threads that end inside start_transaction,
 * listeners that remove each other or write the store that calls them, event queues freed
 * under a waiter. Every wait has a deadline, so a regression fails instead of hanging. */
#define _GNU_SOURCE
#include "common.h"
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <stdint.h>
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

/* ---- listeners */

static void noop_listener(void *ud, tb_store *st, const tb_event *e) {
    (void)ud;
    (void)st;
    (void)e;
}

static void count_listener(void *ud, tb_store *st, const tb_event *e) {
    (void)st;
    (void)e;
    atomic_fetch_add((atomic_int *)ud, 1);
}

static void ids_are_never_reused(void) {
    tb_store *st;
    CHECK_OK(tb_store_new(&st));
    uint64_t old = 0, fresh = 0;
    atomic_int calls = 0;
    CHECK_OK(tb_store_add_values_listener(st, noop_listener, NULL, NULL, &old));
    CHECK_OK(tb_store_del_listener(st, old));
    CHECK_OK(tb_store_add_values_listener(st, count_listener, &calls, NULL, &fresh));
    CHECK(fresh != old && fresh != 0 && old != 0);
    /* An old handle's removal removes nothing. */
    CHECK_OK(tb_store_del_listener(st, old));
    set_value(st, "a", 1);
    CHECK(atomic_load(&calls) == 1);
    size_t count = 0;
    CHECK_OK(tb_store_get_listener_count(st, &count));
    CHECK(count == 1);
    tb_store_free(st);
}

/* Two listeners that remove each other, each called on its own thread, both inside their
 * callbacks at once (a barrier): neither removal may wait for the other. */
static pthread_barrier_t both_inside;
static uint64_t mutual_ids[2];

static void remove_other(void *ud, tb_store *st, const tb_event *e) {
    (void)e;
    int other = (int)(intptr_t)ud;
    pthread_barrier_wait(&both_inside);
    CHECK_OK(tb_store_del_listener(st, mutual_ids[other]));
}

static void *write_x(void *p) {
    set_value(p, "x", 1);
    return NULL;
}

static void *write_y(void *p) {
    set_value(p, "y", 1);
    return NULL;
}

static void mutual_removal_body(void *p) {
    (void)p;
    tb_store *st;
    CHECK_OK(tb_store_new(&st));
    pthread_barrier_init(&both_inside, NULL, 2);
    CHECK_OK(tb_store_add_value_listener(st, "x", remove_other, (void *)(intptr_t)1, NULL, &mutual_ids[0]));
    CHECK_OK(tb_store_add_value_listener(st, "y", remove_other, (void *)(intptr_t)0, NULL, &mutual_ids[1]));
    pthread_t a, b;
    pthread_create(&a, NULL, write_x, st);
    pthread_create(&b, NULL, write_y, st);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    size_t count = 1;
    CHECK_OK(tb_store_get_listener_count(st, &count));
    CHECK(count == 0);
    pthread_barrier_destroy(&both_inside);
    tb_store_free(st);
}

static void mutual_removal(void) { CHECK(run_within(mutual_removal_body, NULL, 10)); }

/* A value listener that writes the value again, as long as it can. */
static atomic_int nesting_refusals;

static void write_again(void *ud, tb_store *st, const tb_event *e) {
    (void)ud;
    if (e->new_value.kind != TB_VALUE_NUMBER) return;
    tb_value v = tb_value_number(e->new_value.number + 1);
    tb_status s = tb_store_set_value(st, "n", &v);
    if (s == TB_ERROR_INVALID_STATE && strstr(tb_last_error_message(), "nested")) atomic_fetch_add(&nesting_refusals, 1);
    else if (s != TB_OK) fprintf(stderr, "  unexpected status %d\n", (int)s);
}

static void nesting_body(void *p) {
    (void)p;
    tb_store *st;
    uint64_t id;
    atomic_store(&nesting_refusals, 0);
    CHECK_OK(tb_store_new(&st));
    CHECK_OK(tb_store_add_value_listener(st, "n", write_again, NULL, NULL, &id));
    set_value(st, "n", 0);
    CHECK(atomic_load(&nesting_refusals) == 1);
    /* The refused write changed nothing: the last value is the deepest accepted one. */
    CHECK(value_of(st, "n") > 10 && value_of(st, "n") < 5000);
    tb_store_free(st);
}

static void *nesting_thread(void *p) {
    nesting_body(p);
    return NULL;
}

static void nesting_is_bounded(void) {
    nesting_body(NULL); /* the main thread's stack */
    /* A small thread stack (a mobile platform's secondary thread: 512 KiB). */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 512 * 1024);
    pthread_t th;
    CHECK(pthread_create(&th, &attr, nesting_thread, NULL) == 0);
    pthread_join(th, NULL);
    pthread_attr_destroy(&attr);
}

/* ---- event queues */

static void *wait_on_queue(void *p) {
    tb_event *e = (tb_event *)1;
    CHECK_OK(tb_event_queue_wait(p, 10000, &e));
    CHECK(e == NULL);
    return NULL;
}

static void queue_freed_under_a_waiter(void) {
    tb_event_queue *q;
    CHECK_OK(tb_event_queue_new(NULL, NULL, NULL, &q));
    pthread_t th;
    pthread_create(&th, NULL, wait_on_queue, q);
    usleep(100 * 1000); /* the waiter is inside tb_event_queue_wait */
    tb_event_queue_free(q);
    pthread_join(th, NULL);
}

/* Runs every test, or only the one named as the first argument. */
#define RUN(test) if (!only || strcmp(only, #test) == 0) test()

int main(int argc, char **argv) {
    const char *only = argc > 1 ? argv[1] : NULL;
    RUN(finish_inside_transaction);
    RUN(finish_inside_listener);
    RUN(thread_ends_inside_transaction);
    RUN(ids_are_never_reused);
    RUN(mutual_removal);
    RUN(nesting_is_bounded);
    RUN(queue_freed_under_a_waiter);
    return tb_finish("test_soundness");
}
