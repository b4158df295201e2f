/* WebSocket synchronizers through the C API, against a server this test starts itself
 * ($TB_SERVER_BIN, tinybase-server, on 127.0.0.1 and a free port; killed at exit whatever
 * happens): misuse of tb_ws_synchronizer_new (NULLs, bad UTF-8, invalid URLs, NaN and negative
 * durations, bad headers; nothing created, release not called), a refused connection without
 * reconnect, two stores syncing in a legacy room and on a multiplexed channel (with fragments),
 * the status callback seeing CONNECTING then OPEN, tb_synchronizer_get_connection_state, a
 * tb_ws_client (two stores per socket, channels kept apart, misuse), a
 * reconnect after the server restarts, destroy/free releasing user_data exactly once, and the
 * live-handle count back where it started (the run under valgrind checks for leaks). */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE
#include "common.h"
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include "timing.h"

#define BAD "\xff\xfe"

/* ------------------------------------------------------------------------------ the server */

static pid_t server_pid = -1;
static int server_port = 0;
static char data_dir[256];

static void stop_server(void) {
    if (server_pid > 0) {
        kill(server_pid, SIGKILL);
        waitpid(server_pid, NULL, 0);
        server_pid = -1;
    }
}

static void on_signal(int sig) {
    if (server_pid > 0) kill(server_pid, SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* The port of a "listening" line: the last number in it ("listening on 127.0.0.1:43127"). */
static int port_of(const char *line) {
    int port = 0;
    for (const char *p = line; *p; p++)
        if (*p >= '0' && *p <= '9' && (p == line || p[-1] < '0' || p[-1] > '9')) port = atoi(p);
    return port;
}

static void *drain_stdout(void *arg) {
    FILE *f = arg;
    char line[512];
    while (fgets(line, sizeof line, f)) {
    }
    fclose(f);
    return NULL;
}

/* Starts $TB_SERVER_BIN on 127.0.0.1 (port 0 picks a free one) and waits for its "listening"
 * line; returns the port, 0 on failure. */
static int start_server(int port) {
    const char *bin = getenv("TB_SERVER_BIN");
    if (!bin || !*bin) {
        fprintf(stderr, "TB_SERVER_BIN is not set (tests/c/run.sh sets it to target/release/tinybase-server)\n");
        return 0;
    }
    int fds[2];
    if (pipe(fds) != 0) return 0;
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    pid_t pid = fork();
    if (pid < 0) return 0;
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execl(bin, bin, "--listen", listen, "--data", data_dir, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    server_pid = pid;
    FILE *f = fdopen(fds[0], "r");
    char line[512];
    int found = 0;
    double deadline = now_s() + 30;
    while (now_s() < deadline && fgets(line, sizeof line, f)) {
        if (!strstr(line, "listening")) continue;
        found = port_of(line);
        break;
    }
    /* Whatever the server prints later is read and dropped, so that it never blocks on a
     * full pipe; the thread ends (and closes the pipe) when the server exits. */
    pthread_t t;
    if (pthread_create(&t, NULL, drain_stdout, f) == 0) pthread_detach(t);
    else fclose(f);
    if (!found) {
        fprintf(stderr, "the server printed no listening line\n");
        stop_server();
    }
    return found;
}

/* ------------------------------------------------------------------------------ helpers */

static atomic_int released;
static void release_cb(void *ud) {
    (void)ud;
    atomic_fetch_add(&released, 1);
}

/* What the status callback saw: connection states in order (deduplicated), last values. */
typedef struct {
    pthread_mutex_t mu;
    int states[64];
    int n;
    int bad;
    unsigned close_code;
} seen;

static void status_cb(void *ud, const tb_sync_status_info *s) {
    seen *w = ud;
    pthread_mutex_lock(&w->mu);
    if (!s || s->state > TB_SYNC_STATE_ERROR || s->connection > TB_CONNECTION_CLOSED) w->bad++;
    else {
        if ((s->connection == TB_CONNECTION_CLOSED) != (s->close_reason != NULL)) w->bad++;
        if ((s->state == TB_SYNC_STATE_ERROR) != (s->last_error != NULL)) w->bad++;
        if (w->n < 64 && (w->n == 0 || w->states[w->n - 1] != (int)s->connection))
            w->states[w->n++] = (int)s->connection;
        if (s->connection == TB_CONNECTION_CLOSED) w->close_code = s->close_code;
    }
    pthread_mutex_unlock(&w->mu);
}

static int saw_in_order(seen *w, const int *want, int n) {
    pthread_mutex_lock(&w->mu);
    int i = 0;
    for (int k = 0; k < w->n && i < n; k++)
        if (w->states[k] == want[i]) i++;
    pthread_mutex_unlock(&w->mu);
    return i == n;
}

/* The reports went CONNECTING (possibly missed), then OPEN. */
static int opened_cleanly(seen *w) {
    pthread_mutex_lock(&w->mu);
    int k = 0;
    while (k < w->n && w->states[k] == TB_CONNECTION_CONNECTING) k++;
    int ok = k < w->n && w->states[k] == TB_CONNECTION_OPEN;
    pthread_mutex_unlock(&w->mu);
    return ok;
}

static char url_buf[128];
static const char *url(const char *path) {
    snprintf(url_buf, sizeof url_buf, "ws://127.0.0.1:%d%s", server_port, path);
    return url_buf;
}

static tb_connection_state connection_of(tb_synchronizer *s, uint16_t *code) {
    tb_connection_state st = 99;
    uint16_t c = 0;
    char *reason = NULL;
    CHECK_OK(tb_synchronizer_get_connection_state(s, &st, &c, &reason));
    CHECK((st == TB_CONNECTION_CLOSED) == (reason != NULL));
    tb_string_free(reason);
    if (code) *code = c;
    return st;
}

static int wait_connection(tb_synchronizer *s, tb_connection_state want, double seconds) {
    double deadline = now_s() + seconds * scale();
    while (now_s() < deadline) {
        if (connection_of(s, NULL) == want) return 1;
        sleep_ms(10);
    }
    return 0;
}

/* Waits until the cell reads `want` (a string cell). */
static int wait_cell(tb_mergeable_store *m, const char *row, const char *want, double seconds) {
    double deadline = now_s() + seconds * scale();
    for (;;) {
        tb_value v;
        int ok = 0;
        if (tb_store_get_cell(tb_mergeable_store_as_store(m), "t", row, "c", &v) == TB_OK) {
            ok = v.kind == TB_VALUE_STRING && strcmp(v.string, want) == 0;
            tb_value_free(&v);
        }
        if (ok) return 1;
        if (now_s() > deadline) return 0;
        sleep_ms(10);
    }
}

static int same_content(tb_mergeable_store *a, tb_mergeable_store *b) {
    char *ja = NULL, *jb = NULL;
    int same = 0;
    if (tb_store_get_content_json(tb_mergeable_store_as_store(a), &ja) == TB_OK &&
        tb_store_get_content_json(tb_mergeable_store_as_store(b), &jb) == TB_OK)
        same = strcmp(ja, jb) == 0;
    tb_string_free(ja);
    tb_string_free(jb);
    return same;
}

static int wait_same(tb_mergeable_store *a, tb_mergeable_store *b, double seconds) {
    double deadline = now_s() + seconds * scale();
    while (now_s() < deadline) {
        if (same_content(a, b)) return 1;
        sleep_ms(20);
    }
    return 0;
}

static tb_ws_synchronizer_options base_options(void) {
    tb_ws_synchronizer_options o;
    memset(&o, 0, sizeof o);
    o.sync.request_timeout_seconds = 2 * scale();
    o.reconnect_min_seconds = 0.05;
    o.reconnect_max_seconds = 0.5;
    return o;
}

/* ------------------------------------------------------------------------------ tests */

/* tb_ws_synchronizer_new must fail with `want` (-1: any failure), writing nothing to `out`; a
 * synchronizer created by mistake is freed. */
static void refuse_at(int line, tb_mergeable_store *m, const char *u, const tb_ws_synchronizer_options *o, int want) {
    tb_synchronizer *s = (tb_synchronizer *)0x1;
    tb_status st = tb_ws_synchronizer_new(m, u, o, &s);
    int ok = want < 0 ? st != TB_OK : (int)st == want;
    CHECK(ok);
    CHECK(s == (tb_synchronizer *)0x1);
    CHECK(st == TB_OK || strlen(tb_last_error_message()) > 0);
    if (!ok) fprintf(stderr, "  line %d: status %d for url %s (%s)\n", line, (int)st, u ? u : "NULL", st ? tb_last_error_message() : "created");
    if (st == TB_OK) tb_synchronizer_free(s);
}
#define REFUSE(m, u, o, want) refuse_at(__LINE__, m, u, o, want)

static void test_misuse(void) {
    int64_t live = tb_debug_live_handles();
    tb_mergeable_store *m = NULL;
    CHECK_OK(tb_mergeable_store_new("m", &m));
    tb_synchronizer *s = (tb_synchronizer *)0x1;
    tb_ws_synchronizer_options o = base_options();
    seen w = {.mu = PTHREAD_MUTEX_INITIALIZER};
    o.sync.on_status = status_cb; /* never called: nothing is created */
    o.sync.user_data = &w;
    o.sync.release = release_cb;
    atomic_store(&released, 0);

    REFUSE(NULL, url("/r"), &o, TB_ERROR_NULL_PARAMETER);
    REFUSE(m, NULL, &o, TB_ERROR_NULL_PARAMETER);
    CHECK_STATUS(tb_ws_synchronizer_new(m, url("/r"), &o, NULL), TB_ERROR_NULL_PARAMETER);
    CHECK(s == (tb_synchronizer *)0x1);
    REFUSE(m, "ws://127.0.0.1:1/" BAD, &o, TB_ERROR_INVALID_UTF8);
    const char *bad_urls[] = {"", "not a url", "http://127.0.0.1:1/", "ws://", "ftp://x/", "ws://[::1/"};
    for (size_t i = 0; i < sizeof bad_urls / sizeof *bad_urls; i++) REFUSE(m, bad_urls[i], &o, -1);
    {
        tb_ws_synchronizer_options b = o;
        b.sync.request_timeout_seconds = NAN;
        REFUSE(m, url("/r"), &b, TB_ERROR_INVALID_ARGUMENT);
        b = o;
        b.ping_interval_seconds = -1;
        REFUSE(m, url("/r"), &b, TB_ERROR_INVALID_ARGUMENT);
        b = o;
        b.connect_timeout_seconds = INFINITY;
        REFUSE(m, url("/r"), &b, TB_ERROR_INVALID_ARGUMENT);
        b = o;
        b.reconnect_max_seconds = NAN;
        REFUSE(m, url("/r"), &b, TB_ERROR_INVALID_ARGUMENT);
        b = o;
        b.channel_id = BAD;
        REFUSE(m, url("/r"), &b, TB_ERROR_INVALID_UTF8);
        b = o;
        b.ca_file = BAD;
        REFUSE(m, url("/r"), &b, TB_ERROR_INVALID_UTF8);
        b = o;
        b.ca_file = "/nonexistent/ca.pem";
        b.no_reconnect = true;
        REFUSE(m, "wss://127.0.0.1:1/r", &b, -1);
        b = o;
        b.header_count = 1;
        REFUSE(m, url("/r"), &b, TB_ERROR_NULL_PARAMETER);
        const char *no_colon[] = {"Authorization Bearer x"};
        b.headers = no_colon;
        REFUSE(m, url("/r"), &b, TB_ERROR_INVALID_ARGUMENT);
        const char *bad_utf8[] = {"X-A: " BAD};
        b.headers = bad_utf8;
        REFUSE(m, url("/r"), &b, TB_ERROR_INVALID_UTF8);
        const char *null_line[] = {NULL};
        b.headers = null_line;
        REFUSE(m, url("/r"), &b, TB_ERROR_NULL_PARAMETER);
    }
    /* A plain store is not a mergeable one. */
    tb_store *plain = NULL;
    CHECK_OK(tb_store_new(&plain));
    REFUSE((tb_mergeable_store *)plain, url("/r"), &o, TB_ERROR_INVALID_STATE);
    tb_store_free(plain);

    /* No server there, no reconnect: the creating call fails after its one attempt. */
    {
        tb_ws_synchronizer_options b = o;
        b.no_reconnect = true;
        b.connect_timeout_seconds = 2;
        REFUSE(m, "ws://127.0.0.1:1/r", &b, TB_ERROR_INVALID_STATE);
        CHECK(strstr(tb_last_error_message(), "tinybase:5") != NULL);
    }
    CHECK(atomic_load(&released) == 0); /* not taken over on failure */

    /* Connection state of a synchronizer without a connection; NULL outs. */
    tb_local_bus *bus = NULL;
    CHECK_OK(tb_local_bus_new(&bus));
    tb_synchronizer *local = NULL;
    CHECK_OK(tb_local_bus_create_synchronizer(bus, m, NULL, &local));
    tb_connection_state cs = 99;
    uint16_t code = 7;
    char *reason = (char *)0x1;
    CHECK_OK(tb_synchronizer_get_connection_state(local, &cs, &code, &reason));
    CHECK(cs == TB_CONNECTION_NONE && code == 0 && reason == NULL);
    CHECK_OK(tb_synchronizer_get_connection_state(local, &cs, NULL, NULL));
    CHECK_STATUS(tb_synchronizer_get_connection_state(local, NULL, &code, &reason), TB_ERROR_NULL_PARAMETER);
    CHECK_STATUS(tb_synchronizer_get_connection_state(NULL, &cs, &code, &reason), TB_ERROR_NULL_PARAMETER);
    tb_synchronizer_free(local);
    tb_local_bus_free(bus);

    tb_mergeable_store_free(m);
    CHECK(tb_debug_live_handles() == live);
}

/* Two stores in one room: legacy framing or a multiplexed channel, optionally fragmented. */
static void test_pair(const char *path, const char *channel, size_t fragment_size) {
    int64_t live = tb_debug_live_handles();
    tb_mergeable_store *a = NULL, *b = NULL;
    CHECK_OK(tb_mergeable_store_new("a", &a));
    CHECK_OK(tb_mergeable_store_new("b", &b));
    CHECK_OK(tb_store_set_cell_string(tb_mergeable_store_as_store(a), "t", "before", "c", "from a"));

    seen wa = {.mu = PTHREAD_MUTEX_INITIALIZER}, wb = {.mu = PTHREAD_MUTEX_INITIALIZER};
    atomic_store(&released, 0);
    tb_ws_synchronizer_options o = base_options();
    o.channel_id = channel;
    o.fragment_size = fragment_size;
    o.sync.on_status = status_cb;
    o.sync.release = release_cb;
    const char *headers[] = {"X-Test: tinybase C"};
    o.headers = headers;
    o.header_count = 1;
    tb_synchronizer *sa = NULL, *sb = NULL;
    o.sync.user_data = &wa;
    CHECK_OK(tb_ws_synchronizer_new(a, url(path), &o, &sa));
    o.sync.user_data = &wb;
    o.no_reconnect = true; /* waits for the socket */
    CHECK_OK(tb_ws_synchronizer_new(b, url(path), &o, &sb));
    if (!sa || !sb) {
        tb_synchronizer_free(sa);
        tb_synchronizer_free(sb);
        tb_mergeable_store_free(a);
        tb_mergeable_store_free(b);
        return;
    }
    CHECK(connection_of(sb, NULL) == TB_CONNECTION_OPEN);
    CHECK(wait_connection(sa, TB_CONNECTION_OPEN, 10));
    CHECK_OK(tb_synchronizer_start_sync(sa, NULL));
    CHECK_OK(tb_synchronizer_start_sync(sb, NULL));

    CHECK(wait_cell(b, "before", "from a", 10));
    CHECK_OK(tb_store_set_cell_string(tb_mergeable_store_as_store(b), "t", "after", "c", "from b"));
    CHECK(wait_cell(a, "after", "from b", 10));
    /* A payload far over the fragment size. */
    char big[20000];
    for (size_t i = 0; i < sizeof big - 1; i++) big[i] = (char)('a' + i % 26);
    big[sizeof big - 1] = 0;
    CHECK_OK(tb_store_set_cell_string(tb_mergeable_store_as_store(a), "t", "big", "c", big));
    CHECK(wait_cell(b, "big", big, 10));
    CHECK(wait_same(a, b, 10));

    uint64_t sends = 0, receives = 0;
    CHECK_OK(tb_synchronizer_get_stats(sa, &sends, &receives));
    CHECK(sends > 0 && receives > 0);

    /* CONNECTING, then OPEN (a report carries the state when it runs: one made after the
     * socket opened says OPEN, so CONNECTING may be missed, but nothing else comes first). */
    CHECK(opened_cleanly(&wa));
    CHECK(opened_cleanly(&wb));
    CHECK(wa.bad == 0 && wb.bad == 0);

    CHECK_OK(tb_synchronizer_destroy(sa));
    uint16_t code = 0;
    CHECK(connection_of(sa, &code) == TB_CONNECTION_CLOSED);
    CHECK(code == 1000);
    CHECK_STATUS(tb_synchronizer_start_sync(sa, NULL), TB_ERROR_INVALID_STATE);
    tb_synchronizer_free(sa);
    CHECK(atomic_load(&released) == 1);
    tb_synchronizer_free(sb); /* free without destroy */
    CHECK(atomic_load(&released) == 2);
    tb_mergeable_store_free(a);
    tb_mergeable_store_free(b);
    CHECK(tb_debug_live_handles() == live);
}

/* The server goes away and comes back on the same port: the synchronizer sees CLOSED, then
 * CONNECTING and OPEN again, and pulls what the other store wrote meanwhile. */
static void test_reconnect(void) {
    int64_t live = tb_debug_live_handles();
    tb_mergeable_store *a = NULL, *b = NULL;
    CHECK_OK(tb_mergeable_store_new("ra", &a));
    CHECK_OK(tb_mergeable_store_new("rb", &b));
    seen wa = {.mu = PTHREAD_MUTEX_INITIALIZER};
    tb_ws_synchronizer_options o = base_options();
    o.sync.on_status = status_cb;
    o.sync.user_data = &wa;
    o.sync.anti_entropy_seconds = 0.5;
    tb_synchronizer *sa = NULL, *sb = NULL;
    CHECK_OK(tb_ws_synchronizer_new(a, url("/reconnect"), &o, &sa));
    o.sync.on_status = NULL;
    o.sync.user_data = NULL;
    CHECK_OK(tb_ws_synchronizer_new(b, url("/reconnect"), &o, &sb));
    if (sa && sb) {
        CHECK(wait_connection(sa, TB_CONNECTION_OPEN, 10));
        CHECK_OK(tb_synchronizer_start_sync(sa, NULL));
        CHECK_OK(tb_synchronizer_start_sync(sb, NULL));
        CHECK_OK(tb_store_set_cell_string(tb_mergeable_store_as_store(a), "t", "one", "c", "1"));
        CHECK(wait_cell(b, "one", "1", 10));

        int port = server_port;
        stop_server();
        CHECK(wait_connection(sa, TB_CONNECTION_CLOSED, 10) || wait_connection(sa, TB_CONNECTION_CONNECTING, 10));
        /* Edits while the server is down reach the other side after the reconnect. */
        CHECK_OK(tb_store_set_cell_string(tb_mergeable_store_as_store(b), "t", "two", "c", "2"));
        CHECK(start_server(port) == port);
        CHECK(wait_connection(sa, TB_CONNECTION_OPEN, 15));
        CHECK(wait_connection(sb, TB_CONNECTION_OPEN, 15));
        CHECK(wait_cell(a, "two", "2", 15));
        CHECK(wait_same(a, b, 15));
        /* Open, lost, open again (a report may skip a state that passed before it ran). */
        const int via_closed[] = {TB_CONNECTION_OPEN, TB_CONNECTION_CLOSED, TB_CONNECTION_OPEN};
        const int via_connecting[] = {TB_CONNECTION_OPEN, TB_CONNECTION_CONNECTING, TB_CONNECTION_OPEN};
        CHECK(saw_in_order(&wa, via_closed, 3) || saw_in_order(&wa, via_connecting, 3));
        CHECK(wa.bad == 0);
    }
    tb_synchronizer_free(sa);
    tb_synchronizer_free(sb);
    tb_mergeable_store_free(a);
    tb_mergeable_store_free(b);
    CHECK(tb_debug_live_handles() == live);
}


/* Several stores over one socket: a tb_ws_client per side, two channels each; what is written
 * on one channel reaches only that channel. Misuse of the client functions. */
static void test_shared_client(void) {
    int64_t live = tb_debug_live_handles();
    tb_ws_synchronizer_options o = base_options();
    tb_ws_client *cx = NULL, *cy = NULL;
    CHECK_STATUS(tb_ws_client_new(NULL, &o, &cx), TB_ERROR_NULL_PARAMETER);
    CHECK_STATUS(tb_ws_client_new(url("/c"), &o, NULL), TB_ERROR_NULL_PARAMETER);
    CHECK(tb_ws_client_new("not a url", &o, &cx) != TB_OK && cx == NULL);
    CHECK_STATUS(tb_ws_client_new("ws://127.0.0.1:1/" BAD, &o, &cx), TB_ERROR_INVALID_UTF8);
    CHECK_OK(tb_ws_client_new(url("/c-shared"), &o, &cx));
    o.no_reconnect = true;
    CHECK_OK(tb_ws_client_new(url("/c-shared"), &o, &cy));
    tb_ws_client_free(NULL);

    tb_mergeable_store *x1 = NULL, *x2 = NULL, *y1 = NULL, *y2 = NULL;
    CHECK_OK(tb_mergeable_store_new("x1", &x1));
    CHECK_OK(tb_mergeable_store_new("x2", &x2));
    CHECK_OK(tb_mergeable_store_new("y1", &y1));
    CHECK_OK(tb_mergeable_store_new("y2", &y2));
    tb_synchronizer_options so = {0};
    so.request_timeout_seconds = 2 * scale();
    tb_synchronizer *sx1 = NULL, *sx2 = NULL, *sy1 = NULL, *sy2 = NULL, *dup = (tb_synchronizer *)0x1;
    CHECK_STATUS(tb_ws_client_create_synchronizer(NULL, x1, "one", &so, &sx1), TB_ERROR_NULL_PARAMETER);
    CHECK_STATUS(tb_ws_client_create_synchronizer(cx, NULL, "one", &so, &sx1), TB_ERROR_NULL_PARAMETER);
    CHECK_STATUS(tb_ws_client_create_synchronizer(cx, x1, NULL, &so, &sx1), TB_ERROR_NULL_PARAMETER);
    CHECK_STATUS(tb_ws_client_create_synchronizer(cx, x1, "one", &so, NULL), TB_ERROR_NULL_PARAMETER);
    CHECK_STATUS(tb_ws_client_create_synchronizer(cx, x1, BAD, &so, &sx1), TB_ERROR_INVALID_UTF8);
    CHECK(tb_ws_client_create_synchronizer(cx, x1, "bad\nchannel", &so, &sx1) != TB_OK && sx1 == NULL);
    CHECK_OK(tb_ws_client_create_synchronizer(cx, x1, "one", &so, &sx1));
    CHECK_OK(tb_ws_client_create_synchronizer(cx, x2, "two", NULL, &sx2));
    CHECK(tb_ws_client_create_synchronizer(cx, y1, "one", &so, &dup) != TB_OK); /* taken */
    CHECK(dup == (tb_synchronizer *)0x1);
    CHECK_OK(tb_ws_client_create_synchronizer(cy, y1, "one", &so, &sy1));
    CHECK_OK(tb_ws_client_create_synchronizer(cy, y2, "two", &so, &sy2));
    /* The host's client handles may go: the synchronizers hold the connections. */
    tb_ws_client_free(cy);
    cy = NULL;
    if (sx1 && sx2 && sy1 && sy2) {
        CHECK(wait_connection(sx1, TB_CONNECTION_OPEN, 10) && wait_connection(sx2, TB_CONNECTION_OPEN, 10));
        tb_connection_state cs = 99;
        CHECK_OK(tb_ws_client_get_connection_state(cx, &cs, NULL, NULL));
        CHECK(cs == TB_CONNECTION_OPEN);
        CHECK_STATUS(tb_ws_client_get_connection_state(NULL, &cs, NULL, NULL), TB_ERROR_NULL_PARAMETER);
        CHECK_STATUS(tb_ws_client_get_connection_state(cx, NULL, NULL, NULL), TB_ERROR_NULL_PARAMETER);
        tb_synchronizer *all[] = {sx1, sx2, sy1, sy2};
        for (int i = 0; i < 4; i++) CHECK_OK(tb_synchronizer_start_sync(all[i], NULL));
        CHECK_OK(tb_store_set_cell_string(tb_mergeable_store_as_store(x1), "t", "r", "c", "one"));
        CHECK_OK(tb_store_set_cell_string(tb_mergeable_store_as_store(y2), "t", "r", "c", "two"));
        CHECK(wait_cell(y1, "r", "one", 10));
        CHECK(wait_cell(x2, "r", "two", 10));
        CHECK(wait_same(x1, y1, 10) && wait_same(x2, y2, 10));
        CHECK(!same_content(x1, x2));
    }
    tb_synchronizer_free(sx1);
    tb_synchronizer_free(sx2);
    tb_synchronizer_free(sy1);
    tb_synchronizer_free(sy2);
    tb_ws_client_free(cx);
    tb_mergeable_store_free(x1);
    tb_mergeable_store_free(x2);
    tb_mergeable_store_free(y1);
    tb_mergeable_store_free(y2);
    CHECK(tb_debug_live_handles() == live);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    atexit(stop_server);
    snprintf(data_dir, sizeof data_dir, "/tmp/tb-ws-c-XXXXXX");
    if (!mkdtemp(data_dir)) {
        perror("mkdtemp");
        return 1;
    }
    server_port = start_server(0);
    CHECK(server_port > 0);
    if (server_port > 0) {
        test_misuse();
        test_pair("/legacy", NULL, 0);
        test_pair("/fragments", NULL, 1000);
        test_pair("/mux", "channel-1", 0);
        test_pair("/mux", "channel-2", 777);
        test_shared_client();
        test_reconnect();
    }
    stop_server();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", data_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", data_dir);
    return tb_finish("test_ws");
}
