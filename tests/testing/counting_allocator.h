// A counting replacement of the global operator new/delete, for the no-allocation checks of
// the hot path (tests/allocator/hot_path_allocation_test.cc) and the allocs_per_iter counter of
// bench/core_bench.cc. Linking the nvlsched_counting_allocator object library into a binary
// replaces the allocation functions of that whole binary.
//
// Thread-safety: the count is a plain counter, read and written by the one thread the checks
// run on.
#ifndef NVLSCHED_TESTS_TESTING_COUNTING_ALLOCATOR_H_
#define NVLSCHED_TESTS_TESTING_COUNTING_ALLOCATOR_H_

namespace nvlsched::testing {

// Calls of operator new (and new[]) since the program started.
long long AllocationCount();

}  // namespace nvlsched::testing

#endif  // NVLSCHED_TESTS_TESTING_COUNTING_ALLOCATOR_H_
