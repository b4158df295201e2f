/* BENCHMARKS.md W9 (C API half): W1 and W2 through the C API.
 *
 *   W1: on a fresh mergeable store, set N cells in one transaction (tb_store_transaction):
 *       cell i is table t{i%10}, row r{i/10}, cell c{i%3}, value "v{i}"   -> cells/s
 *   W2: then 10,000 single tb_store_set_cell calls (each its own transaction), cell(i) with
 *       value "w{i}"                                                       -> calls/s
 *
 * As in bench/src/ours.rs, the store's clock is fixed (1.7e12 ms) and its creation is inside
 * the W1 timed region; id and value strings are prepared before the timed regions (for W2 too,
 * where the Rust bench formats inside its loop).
 *
 *   bench_w1w2 [N ...] [--runs R]      (default N = 10000 100000 1000000, R = 3)
 *
 * Prints one JSON line per run and workload, then one summary line per workload and N:
 *   {"workload":"W1","api":"c","n":10000,"unit":"cells/s","run":1,"value":...}
 *   {"workload":"W1","api":"c","n":10000,"unit":"cells/s","runs":3,"min":...,"median":...,"max":...,"value":<median>}
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "tinybase.h"

#define W2_CALLS 10000

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double fixed_clock(void *user_data) {
    (void)user_data;
    return 1700000000000.0;
}

/* All ids and values of one size, in one arena: a[i] points into it. */
typedef struct {
    size_t n;
    char **table, **row, **cell, **value;
    char *arena;
} cells;

static char *xmalloc(size_t n) {
    char *p = malloc(n);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

static void cells_make(cells *c, size_t n, char value_prefix) {
    c->n = n;
    c->table = (char **)xmalloc(n * sizeof(char *));
    c->row = (char **)xmalloc(n * sizeof(char *));
    c->cell = (char **)xmalloc(n * sizeof(char *));
    c->value = (char **)xmalloc(n * sizeof(char *));
    /* t9\0 (3) + r99999999\0 (<=10) + c2\0 (3) + v99999999\0 (<=10): 32 bytes a cell is plenty */
    c->arena = xmalloc(n * 32);
    char *p = c->arena;
    for (size_t i = 0; i < n; i++) {
        c->table[i] = p;
        p += sprintf(p, "t%zu", i % 10) + 1;
        c->row[i] = p;
        p += sprintf(p, "r%zu", i / 10) + 1;
        c->cell[i] = p;
        p += sprintf(p, "c%zu", i % 3) + 1;
        c->value[i] = p;
        p += sprintf(p, "%c%zu", value_prefix, i) + 1;
    }
}

static void cells_free(cells *c) {
    free(c->table);
    free(c->row);
    free(c->cell);
    free(c->value);
    free(c->arena);
}

static void check(tb_status st, const char *what) {
    if (st != TB_OK) {
        fprintf(stderr, "%s failed: %d %s\n", what, (int)st, tb_last_error_message());
        exit(1);
    }
}

typedef struct {
    const cells *c;
    tb_status status;
} w1_ctx;

static bool w1_body(void *user_data, tb_store *store) {
    w1_ctx *ctx = (w1_ctx *)user_data;
    const cells *c = ctx->c;
    for (size_t i = 0; i < c->n; i++) {
        tb_value v = tb_value_string(c->value[i]);
        tb_status st = tb_store_set_cell(store, c->table[i], c->row[i], c->cell[i], &v);
        if (st != TB_OK) {
            ctx->status = st;
            return true;
        }
    }
    return false;
}

/* One round at size n: *w1 cells/s and *w2 calls/s. */
static void round_n(const cells *w1c, const cells *w2c, double *w1, double *w2) {
    double t0 = now_s();
    tb_mergeable_store *m = NULL;
    check(tb_mergeable_store_new_with_clock("bench", fixed_clock, NULL, NULL, &m), "tb_mergeable_store_new_with_clock");
    tb_store *s = tb_mergeable_store_as_store(m);
    w1_ctx ctx = {w1c, TB_OK};
    check(tb_store_transaction(s, w1_body, &ctx), "tb_store_transaction");
    check(ctx.status, "tb_store_set_cell (W1)");
    *w1 = (double)w1c->n / (now_s() - t0);

    t0 = now_s();
    for (size_t i = 0; i < w2c->n; i++) {
        tb_value v = tb_value_string(w2c->value[i]);
        check(tb_store_set_cell(s, w2c->table[i], w2c->row[i], w2c->cell[i], &v), "tb_store_set_cell (W2)");
    }
    *w2 = (double)w2c->n / (now_s() - t0);

    /* sanity: the last W2 write is there, and the row count is right */
    size_t rows = 0;
    check(tb_store_get_row_count(s, "t0", &rows), "tb_store_get_row_count");
    size_t expect = (w1c->n + 9) / 10;
    if (rows != expect) {
        fprintf(stderr, "W1 wrote %zu rows in t0, expected %zu\n", rows, expect);
        exit(1);
    }
    tb_mergeable_store_free(m);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void summary(const char *w, const char *unit, size_t n, double *v, int runs) {
    qsort(v, (size_t)runs, sizeof(double), cmp_double);
    double med = v[runs / 2];
    printf("{\"workload\":\"%s\",\"api\":\"c\",\"n\":%zu,\"unit\":\"%s\",\"runs\":%d,\"min\":%.0f,\"median\":%.0f,\"max\":%.0f,\"value\":%.0f}\n",
           w, n, unit, runs, v[0], med, v[runs - 1], med);
}

int main(int argc, char **argv) {
    size_t sizes[32];
    int nsizes = 0, runs = 3;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
            runs = atoi(argv[++i]);
        } else if (nsizes < 32) {
            sizes[nsizes++] = (size_t)strtoull(argv[i], NULL, 10);
        }
    }
    if (runs < 1) runs = 1;
    if (nsizes == 0) {
        sizes[0] = 10000;
        sizes[1] = 100000;
        sizes[2] = 1000000;
        nsizes = 3;
    }
    cells w2c;
    cells_make(&w2c, W2_CALLS, 'w');
    double *w1v = (double *)malloc((size_t)runs * sizeof(double));
    double *w2v = (double *)malloc((size_t)runs * sizeof(double));
    for (int k = 0; k < nsizes; k++) {
        size_t n = sizes[k];
        cells w1c;
        cells_make(&w1c, n, 'v');
        for (int r = 0; r < runs; r++) {
            round_n(&w1c, &w2c, &w1v[r], &w2v[r]);
            printf("{\"workload\":\"W1\",\"api\":\"c\",\"n\":%zu,\"unit\":\"cells/s\",\"run\":%d,\"value\":%.0f}\n", n, r + 1, w1v[r]);
            printf("{\"workload\":\"W2\",\"api\":\"c\",\"n\":%zu,\"unit\":\"calls/s\",\"run\":%d,\"value\":%.0f}\n", n, r + 1, w2v[r]);
            fflush(stdout);
        }
        summary("W1", "cells/s", n, w1v, runs);
        summary("W2", "calls/s", n, w2v, runs);
        fflush(stdout);
        cells_free(&w1c);
    }
    free(w1v);
    free(w2v);
    cells_free(&w2c);
    return 0;
}
