/* Timing helpers of the multi-threaded C tests: sleeps, a monotonic clock, and a scale for
 * timeouts (generous under valgrind, which runs everything several times slower). */
#ifndef TB_TEST_TIMING_H
#define TB_TEST_TIMING_H

#include <time.h>
#include <valgrind/valgrind.h>

static inline void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static inline double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline double scale(void) { return RUNNING_ON_VALGRIND ? 4.0 : 1.0; }

#endif
