/* Rust's nightly TSan instrumentation (LLVM) calls __tsan_memcpy/memmove/memset, which older
 * GCC libtsan runtimes lack. Forward them to the libc functions, which TSan intercepts (so the
 * accesses are still checked). Linked only into the TSan build of test_threads. */
#include <string.h>

void *__tsan_memcpy(void *dst, const void *src, size_t n) { return memcpy(dst, src, n); }
void *__tsan_memmove(void *dst, const void *src, size_t n) { return memmove(dst, src, n); }
void *__tsan_memset(void *dst, int c, size_t n) { return memset(dst, c, n); }
