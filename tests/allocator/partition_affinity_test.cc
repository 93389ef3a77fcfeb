// Tests allocator/partition_affinity.h on a FleetState built through the Allocator's rules
// (the policies' use of it is tested in strict_batch_policy_test and gpu_granular_policy_test).
#include "allocator/partition_affinity.h"

#include "tests/allocator/test_fleet.h"

namespace nvlsched::allocator {
namespace {

class PartitionAffinityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    type_ = s_.AppendType({"gb200", "gb200-tray", "GB200", 4});
    a_ = s_.AppendDomain({"a", "rack a", "s1"});
    b_ = s_.AppendDomain({"b", "rack b", "s1"});
    p1_ = s_.InternPartition("p1");
    p2_ = s_.InternPartition("p2");
  }

  FleetState s_;
  TypeIndex type_ = kNoIndex;
  DomainIndex a_ = kNoIndex, b_ = kNoIndex;
  PartitionIndex p1_ = kNoIndex, p2_ = kNoIndex;
};

TEST_F(PartitionAffinityTest, UnusedPartitionsBindNothing) {
  std::vector<PartitionIndex> partitions = {p1_, p2_};
  EXPECT_TRUE(FindAffinityDomains(s_, partitions).empty());
}

TEST_F(PartitionAffinityTest, DomainsWithLiveInstancesAscendingAndUnique) {
  s_.partitions[p1_].domains = {{b_, 2}, {a_, 0}};
  s_.partitions[p2_].domains = {{a_, 1}, {b_, 1}};
  std::vector<PartitionIndex> only_p1 = {p1_};
  EXPECT_EQ(FindAffinityDomains(s_, only_p1), AffinityDomains({b_}));  // count 0 ignored
  std::vector<PartitionIndex> both = {p1_, p2_};
  EXPECT_EQ(FindAffinityDomains(s_, both), AffinityDomains({a_, b_}));
}

TEST_F(PartitionAffinityTest, DescriptionNamesPartitionDomainAndFreeCapacity) {
  s_.partitions[p1_].domains = {{b_, 1}};
  std::vector<PartitionIndex> partitions = {p1_};
  std::vector<DomainIndex> domains = {b_};
  EXPECT_EQ(DescribeAffinity(s_, type_, partitions, domains),
            "NVLink logical partition p1 has instances in domain rack b (0 of 0 gb200-tray "
            "machines free, most free GPUs on one machine: 0)");
}

}  // namespace
}  // namespace nvlsched::allocator
