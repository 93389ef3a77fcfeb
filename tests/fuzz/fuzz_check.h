// FUZZ_CHECK: the assertion of the libFuzzer targets. A broken property prints what broke and
// aborts, which libFuzzer reports as a crash and saves the input as crash-<sha1>.
#ifndef NVLSCHED_TESTS_FUZZ_FUZZ_CHECK_H_
#define NVLSCHED_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>
#include <string>

#define FUZZ_CHECK(condition, what)                                                       \
  do {                                                                                    \
    if (!(condition)) {                                                                   \
      std::fprintf(stderr, "FUZZ_CHECK failed at %s:%d: %s\n  %s\n", __FILE__, __LINE__, \
                   #condition, std::string(what).c_str());                                \
      std::abort();                                                                       \
    }                                                                                     \
  } while (0)

#endif  // NVLSCHED_TESTS_FUZZ_FUZZ_CHECK_H_
