/* The release of a store's last handle while callbacks that hold it run on other threads: a
 * listener called on a synchronizer's worker thread (which writes the store through its own
 * reference, not the host's). The last tb_mergeable_store_free() / tb_store_free() returns only
 * after that callback returned and the listener's user_data was released, so a host may free
 * its context right after it (valgrind sees any later use). Called from inside such a callback,
 * the free does not wait (no deadlock): the store is torn down when the callback returns.
 * Also the header's lock contract for listeners (which run with the store's lock held). */
#define _POSIX_C_SOURCE 200809L
#include "common.h"
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>
#include "timing.h"

/* A deadlock fails the run instead of hanging it. */
static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "test_release: timed out (deadlock?)\n";
    ssize_t n = write(2, msg, sizeof msg - 1);
    (void)n;
    _exit(3);
}

/* Waits until *flag is set, up to `seconds`. */
static bool wait_flag(atomic_int *flag, double seconds) {
    double end = now_s() + seconds * scale();
    while (!atomic_load(flag) && now_s() < end) sleep_ms(2);
    return atomic_load(flag) != 0;
}

/* The host's context for one listener: heap memory the host frees once the library is done. */
typedef struct {
    atomic_int entered;
    atomic_int finished;
    tb_mergeable_store *free_me; /* freed by the callback itself (second scenario) */
    int writes;                  /* plain memory the callback touches after its pause */
} host_ctx;

static atomic_int released;            /* release(user_data) calls */
static atomic_int finished_at_release; /* callbacks finished when release ran */
static atomic_int callbacks_done;      /* callbacks finished, all contexts */
static atomic_int thread_failures;     /* failed calls on other threads (CHECK is not atomic) */

static void slow_listener(void *ud, tb_store *view, const tb_event *e) {
    (void)e;
    host_ctx *c = ud;
    atomic_fetch_add(&c->entered, 1);
    sleep_ms(150);
    size_t n = 0;
    (void)tb_store_get_listener_count(view, &n); /* the borrowed view is still usable */
    if (c->free_me) {
        tb_mergeable_store *m = c->free_me;
        c->free_me = NULL;
        tb_mergeable_store_free(m); /* the last reference, from inside the callback */
        sleep_ms(50);               /* still running: release must wait for the return */
    }
    c->writes++;
    atomic_fetch_add(&c->finished, 1);
    atomic_fetch_add(&callbacks_done, 1);
}

static void ctx_release(void *ud) {
    host_ctx *c = ud;
    atomic_store(&finished_at_release, atomic_load(&c->finished));
    atomic_fetch_add(&released, 1);
}

typedef struct {
    tb_local_bus *bus;
    tb_mergeable_store *a, *b;
    tb_synchronizer *sa, *sb;
} pair;

static void pair_start(pair *p) {
    memset(p, 0, sizeof *p);
    CHECK_OK(tb_local_bus_new(&p->bus));
    CHECK_OK(tb_mergeable_store_new("a", &p->a));
    CHECK_OK(tb_mergeable_store_new("b", &p->b));
    CHECK_OK(tb_local_bus_create_synchronizer(p->bus, p->a, NULL, &p->sa));
    CHECK_OK(tb_local_bus_create_synchronizer(p->bus, p->b, NULL, &p->sb));
    CHECK_OK(tb_synchronizer_start_sync(p->sa, NULL));
    CHECK_OK(tb_synchronizer_start_sync(p->sb, NULL));
}

static void pair_stop(pair *p) {
    tb_synchronizer_free(p->sa);
    tb_synchronizer_free(p->sb);
    tb_mergeable_store_free(p->a);
    tb_local_bus_free(p->bus);
}

/* The host frees its last reference to b while b's listener runs on b's synchronizer worker. */
static void last_free_waits_for_callback_on_other_thread(bool through_store_view) {
    pair p;
    pair_start(&p);
    atomic_store(&released, 0);
    atomic_store(&finished_at_release, -1);
    host_ctx *c = calloc(1, sizeof *c);
    uint64_t id = 0;
    CHECK_OK(tb_store_add_value_listener(tb_mergeable_store_as_store(p.b), "v", slow_listener, c, ctx_release, &id));
    CHECK_OK(tb_store_set_value_json(tb_mergeable_store_as_store(p.a), "v", "1"));
    CHECK(wait_flag(&c->entered, 10)); /* the worker applies a's change to b: the listener runs */
    if (through_store_view) {
        /* the same last reference released through a tb_store owned reference */
        tb_store *s = NULL;
        CHECK_OK(tb_store_clone(tb_mergeable_store_as_store(p.b), &s));
        tb_mergeable_store_free(p.b);
        CHECK(atomic_load(&released) == 0); /* not the last reference */
        tb_store_free(s);
    } else {
        tb_mergeable_store_free(p.b);
    }
    /* returned: the callback has returned and user_data has been released */
    CHECK(atomic_load(&c->finished) == atomic_load(&c->entered));
    CHECK(atomic_load(&released) == 1);
    CHECK(atomic_load(&finished_at_release) == atomic_load(&c->entered));
    free(c); /* what a host does next: any later use is a use-after-free (valgrind) */
    /* b lives on in its synchronizer: later changes reach it without calling anything */
    CHECK_OK(tb_store_set_value_json(tb_mergeable_store_as_store(p.a), "v", "2"));
    bool idle = false;
    CHECK_OK(tb_local_bus_wait_for_idle(p.bus, 10 * scale(), &idle));
    pair_stop(&p);
    CHECK(atomic_load(&released) == 1);
}

/* The callback itself frees the host's last reference: no deadlock, and the listener's
 * user_data is released only after the callback returned. */
static void last_free_from_inside_callback(void) {
    pair p;
    pair_start(&p);
    atomic_store(&released, 0);
    atomic_store(&finished_at_release, -1);
    atomic_store(&callbacks_done, 0);
    host_ctx *c = calloc(1, sizeof *c);
    c->free_me = p.b;
    uint64_t id = 0;
    CHECK_OK(tb_store_add_value_listener(tb_mergeable_store_as_store(p.b), "v", slow_listener, c, ctx_release, &id));
    CHECK_OK(tb_store_set_value_json(tb_mergeable_store_as_store(p.a), "v", "1"));
    CHECK(wait_flag(&released, 10));
    CHECK(atomic_load(&finished_at_release) == 1);
    CHECK(atomic_load(&callbacks_done) == 1);
    free(c);
    pair_stop(&p);
    CHECK(atomic_load(&released) == 1);
}

/* A plain store: the callback runs on the writer's thread, which holds its own reference
 * (tb_store_clone); the host thread frees its reference meanwhile: not the last, no wait. */
typedef struct {
    tb_store *ref;
    host_ctx *c;
} writer_arg;

static void *writer(void *arg) {
    writer_arg *w = arg;
    if (tb_store_set_value_json(w->ref, "v", "1") != TB_OK) atomic_fetch_add(&thread_failures, 1);
    tb_store_free(w->ref); /* the last reference, after the callback returned */
    return NULL;
}

static void plain_store_clone_on_writer_thread(void) {
    atomic_store(&released, 0);
    atomic_store(&finished_at_release, -1);
    tb_store *s = NULL;
    CHECK_OK(tb_store_new(&s));
    host_ctx *c = calloc(1, sizeof *c);
    uint64_t id = 0;
    CHECK_OK(tb_store_add_value_listener(s, "v", slow_listener, c, ctx_release, &id));
    writer_arg w = {NULL, c};
    CHECK_OK(tb_store_clone(s, &w.ref));
    pthread_t t;
    pthread_create(&t, NULL, writer, &w);
    CHECK(wait_flag(&c->entered, 10));
    tb_store_free(s); /* not the last: returns at once */
    pthread_join(t, NULL);
    CHECK(atomic_load(&released) == 1);
    CHECK(atomic_load(&finished_at_release) == 1);
    free(c);
}

/* ---- the header's lock contract for listeners: change listeners after
 * tb_store_finish_transaction() run with the store's lock released (another thread's write
 * completes meanwhile); start- and will-finish-transaction listeners run with it held (another
 * thread's write waits until the transaction is over). */
static tb_store *lc_store;
static atomic_int lc_writer_done;
static atomic_int lc_armed;
static atomic_int lc_seen; /* 1: the writer completed while the listener waited */
static pthread_t lc_thread;

static void *lc_writer(void *arg) {
    (void)arg;
    if (tb_store_set_value_json(lc_store, "other", "1") == TB_OK) atomic_store(&lc_writer_done, 1);
    return NULL;
}

static void lc_spawn_writer(void) {
    atomic_store(&lc_writer_done, 0);
    pthread_create(&lc_thread, NULL, lc_writer, NULL);
}

static void lc_change_listener(void *ud, tb_store *st, const tb_event *e) {
    (void)ud; (void)st; (void)e;
    if (!atomic_exchange(&lc_armed, 0)) return;
    lc_spawn_writer();
    atomic_store(&lc_seen, wait_flag(&lc_writer_done, 5));
}

static void lc_locked_listener(void *ud, tb_store *st, const tb_event *e) {
    (void)ud; (void)st; (void)e;
    if (!atomic_exchange(&lc_armed, 0)) return;
    lc_spawn_writer();
    sleep_ms(100); /* the writer cannot finish while this transaction holds the lock */
    atomic_store(&lc_seen, atomic_load(&lc_writer_done));
}

static void listener_lock_contract(void) {
    CHECK_OK(tb_store_new(&lc_store));
    uint64_t id = 0;
    /* change listener after start/finish: unlocked */
    CHECK_OK(tb_store_add_value_listener(lc_store, "v", lc_change_listener, NULL, NULL, &id));
    atomic_store(&lc_armed, 1);
    atomic_store(&lc_seen, -1);
    CHECK_OK(tb_store_start_transaction(lc_store));
    CHECK_OK(tb_store_set_value_json(lc_store, "v", "1"));
    CHECK_OK(tb_store_finish_transaction(lc_store, false));
    pthread_join(lc_thread, NULL);
    CHECK(atomic_load(&lc_seen) == 1);
    CHECK_OK(tb_store_del_listener(lc_store, id));
    /* start- and will-finish-transaction listeners: locked */
    tb_listener_kind kinds[2] = {TB_LISTENER_START_TRANSACTION, TB_LISTENER_WILL_FINISH_TRANSACTION};
    for (int k = 0; k < 2; k++) {
        CHECK_OK(tb_store_add_listener(lc_store, kinds[k], NULL, NULL, NULL, lc_locked_listener, NULL, NULL, &id));
        atomic_store(&lc_armed, 1);
        atomic_store(&lc_seen, -1);
        CHECK_OK(tb_store_start_transaction(lc_store));
        CHECK_OK(tb_store_set_value_json(lc_store, "v", k ? "3" : "2"));
        CHECK_OK(tb_store_finish_transaction(lc_store, false));
        pthread_join(lc_thread, NULL); /* the writer went through once the transaction ended */
        CHECK(atomic_load(&lc_seen) == 0);
        CHECK(atomic_load(&lc_writer_done) == 1);
        CHECK_OK(tb_store_del_listener(lc_store, id));
    }
    tb_store_free(lc_store);
}

/* ---- the last reference freed by a callback of a call made with it, on the same thread: a
 * listener fired by the host's own write, a transaction body. Allowed: the call keeps the
 * store alive until it returns, the listeners are removed (release called) once the callback
 * returned, and nothing reads freed memory (valgrind). */
static tb_store *own_last;
static atomic_int own_released;
static void own_release(void *ud) { (void)ud; atomic_fetch_add(&own_released, 1); }

static void own_free_listener(void *ud, tb_store *view, const tb_event *e) {
    (void)ud; (void)view; (void)e;
    tb_store *s = own_last;
    own_last = NULL;
    if (s) tb_store_free(s);
}

static void own_other_listener(void *ud, tb_store *view, const tb_event *e) {
    (void)ud; (void)e;
    size_t n = 0;
    (void)tb_store_get_listener_count(view, &n);
}

static bool own_free_tx(void *ud, tb_store *s) {
    (void)ud;
    if (tb_store_set_value_json(s, "v", "2") != TB_OK) atomic_fetch_add(&thread_failures, 1);
    tb_store_free(s); /* the only reference: the transaction call still holds the store */
    return false;
}

static void last_free_inside_own_call(void) {
    uint64_t id = 0;
    for (int round = 0; round < 2; round++) {
        tb_store *s = NULL;
        CHECK_OK(tb_store_new(&s));
        atomic_store(&own_released, 0);
        /* the other listeners run after the freeing one (or are removed before they run) */
        for (int i = 0; i < 3; i++)
            CHECK_OK(tb_store_add_value_listener(s, "v", i == 0 && round == 0 ? own_free_listener : own_other_listener, NULL, own_release, &id));
        if (round == 0) {
            own_last = s;
            CHECK_OK(tb_store_set_value_json(s, "v", "1")); /* a listener frees s: returns fine */
            CHECK(own_last == NULL);
        } else {
            CHECK_OK(tb_store_transaction(s, own_free_tx, NULL));
        }
        CHECK(atomic_load(&own_released) == 3); /* every listener removed once the call returned */
    }
}

int main(void) {
    signal(SIGALRM, on_alarm);
    alarm(RUNNING_ON_VALGRIND ? 300 : 60);
    int64_t base = tb_debug_live_handles();
    last_free_waits_for_callback_on_other_thread(false);
    CHECK(tb_debug_live_handles() == base);
    last_free_waits_for_callback_on_other_thread(true);
    CHECK(tb_debug_live_handles() == base);
    last_free_from_inside_callback();
    CHECK(tb_debug_live_handles() == base);
    plain_store_clone_on_writer_thread();
    CHECK(tb_debug_live_handles() == base);
    listener_lock_contract();
    CHECK(tb_debug_live_handles() == base);
    last_free_inside_own_call();
    CHECK(tb_debug_live_handles() == base);
    CHECK(atomic_load(&thread_failures) == 0);
    return tb_finish("test_release");
}
