// Helpers shared by the C++ test suites: timing that stretches under valgrind, and waiting for
// a condition that other threads (synchronizer workers, persister threads) make true.
#ifndef TINYBASE_TEST_SUPPORT_HPP
#define TINYBASE_TEST_SUPPORT_HPP

#include <chrono>
#include <thread>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif

namespace tinybase_test {

/// How much longer than natively everything takes: valgrind runs code several times slower,
/// so timeouts and deadlines are multiplied by this.
inline double scale() {
#ifdef RUNNING_ON_VALGRIND
    return RUNNING_ON_VALGRIND ? 4.0 : 1.0;
#else
    return 1.0;
#endif
}

/// Polls `cond` until it holds (true) or `seconds` (times scale()) passed (false).
template <class F>
bool eventually(F&& cond, double seconds = 10) {
    auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds * scale());
    while (!cond()) {
        if (std::chrono::steady_clock::now() > end) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
}

}  // namespace tinybase_test

#endif  // TINYBASE_TEST_SUPPORT_HPP
