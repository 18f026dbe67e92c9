// tests/cxx_check.h - CHECK for the C++/CUDA test programs that are not cmocka suites
// (test_thrust_alloc.cu, test_thrust_gpu.cu): a failed check is reported with its line and
// counted, and the program goes on; checks_exit_status() is what main returns.
#ifndef NALLOC_TEST_CXX_CHECK_H
#define NALLOC_TEST_CXX_CHECK_H

#include <cstdio>

static int failures = 0;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);         \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

// 0 when every check passed (saying so, with `what`), 1 otherwise.
static inline int checks_exit_status(const char *what)
{
    if (failures)
        std::fprintf(stderr, "%d checks failed\n", failures);
    else
        std::printf("all %s checks passed\n", what);
    return failures ? 1 : 0;
}

#endif // NALLOC_TEST_CXX_CHECK_H
