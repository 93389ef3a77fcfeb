// Tests allocator/gpu_granular_index.h.
#include "allocator/gpu_granular_index.h"

#include "gtest/gtest.h"

namespace nvlsched::allocator {
namespace {

TEST(GpuGranularIndexTest, KeepsBrokenAndFullyFreeDomainsApartPerFreeGpuCount) {
  GpuGranularIndex index;
  index.Reserve(10);
  index.Insert(4, /*fully_free_domain=*/true, 7);
  index.Insert(4, /*fully_free_domain=*/false, 9);
  index.Insert(1, /*fully_free_domain=*/false, 2);
  EXPECT_EQ(index.Domains(4, true).First(), 7u);
  EXPECT_EQ(index.Domains(4, false).First(), 9u);
  EXPECT_EQ(index.Domains(1, false).First(), 2u);
  EXPECT_TRUE(index.Domains(1, true).Empty());
  EXPECT_TRUE(index.Domains(kMaxGpusPerMachine, false).Empty());
  index.Erase(4, true, 7);
  EXPECT_TRUE(index.Domains(4, true).Empty());
}

}  // namespace
}  // namespace nvlsched::allocator
