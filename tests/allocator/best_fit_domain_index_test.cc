// Tests allocator/best_fit_domain_index.h: the O(1) best-fit domain choice.
#include "allocator/best_fit_domain_index.h"

#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace nvlsched::allocator {
namespace {

TEST(BestFitDomainIndexTest, FindsFewestFreeThatHoldsKTiesByLowestIndex) {
  BestFitDomainIndex index;
  index.Reserve(8);
  // domain | free
  // 0      | 6
  // 1      | 4
  // 2      | 18
  // 3      | 4
  const int free[] = {6, 4, 18, 4};
  for (DomainIndex d = 0; d < 4; ++d) index.Update(d, 0, free[d]);
  EXPECT_EQ(index.FindBestFit(1), 1u);
  EXPECT_EQ(index.FindBestFit(4), 1u);
  EXPECT_EQ(index.FindBestFit(5), 0u);
  EXPECT_EQ(index.FindBestFit(7), 2u);
  EXPECT_EQ(index.FindBestFit(19), kNoIndex);
  EXPECT_EQ(index.LargestFree(), 18);
  index.Update(1, 4, 0);
  EXPECT_EQ(index.FindBestFit(4), 3u);
  EXPECT_FALSE(index.DomainsWithFree().Contains(1));
}

TEST(BestFitDomainIndexTest, BucketNavigation) {
  BestFitDomainIndex index;
  index.Reserve(4);
  index.Update(0, 0, 3);
  index.Update(1, 0, 144);
  EXPECT_EQ(index.BucketAtLeast(1), 3);
  EXPECT_EQ(index.BucketAtLeast(4), 144);
  EXPECT_EQ(index.BucketAtMost(143), 3);
  EXPECT_EQ(index.BucketAtMost(2), 0);
  EXPECT_EQ(index.BucketAtLeast(145), 0);
  EXPECT_EQ(index.Bucket(144).First(), 1u);
  EXPECT_EQ(index.DomainsWithFree().size(), 2u);
}

TEST(BestFitDomainIndexTest, MatchesABruteForceScan) {
  std::mt19937 rng(3);
  const uint32_t kDomains = 500;
  BestFitDomainIndex index;
  index.Reserve(kDomains);
  std::vector<int> free(kDomains, 0);
  for (int step = 0; step < 20000; ++step) {
    DomainIndex d = rng() % kDomains;
    int next = static_cast<int>(rng() % 19);
    index.Update(d, free[d], next);
    free[d] = next;
    int k = 1 + static_cast<int>(rng() % 18);
    DomainIndex want = kNoIndex;
    for (DomainIndex e = 0; e < kDomains; ++e) {
      if (free[e] >= k && (want == kNoIndex || free[e] < free[want])) want = e;
    }
    ASSERT_EQ(index.FindBestFit(k), want) << "k=" << k;
  }
}

}  // namespace
}  // namespace nvlsched::allocator
