#include "tests/testing/counting_allocator.h"

#include <cstdlib>
#include <new>

namespace {
long long g_allocations = 0;
}  // namespace

namespace nvlsched::testing {
long long AllocationCount() { return g_allocations; }
}  // namespace nvlsched::testing

// GCC cannot see that the matching operator new used malloc, so it flags free() here; the
// pairing is correct.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void* operator new(std::size_t size) {
  ++g_allocations;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return ::operator new(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
