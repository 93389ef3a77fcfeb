// Tests PlanConstraints (allocator/placement.h) through Allocator::PlanBatch / PlanSingle
// with constraints, and the planning queries (Allocator::TypeIndexOf ... MostFreeDomain).
//
// Rules, one literal table each: no policy chooses an excluded domain (strict best fit, with
// a site filter, with partition affinity; whole-machine singles; FILL / MIN_DOMAINS /
// SPREAD) except a GPU-granular single, which may take a partly held machine there but never
// a free one (with and without a site filter or partition affinity; LargestFreeGpus
// agrees); and the quota check counts committed GPUs, refusing exactly past the boundary.
// Then a reference: on seeded random fleets, the constrained plan equals the unconstrained
// plan on a copy of the fleet whose excluded domains' machines are all drained, or for a
// GPU-granular single only their free machines (every GPU free); and LargestFreeGpus is the
// largest single that plan places.
#include <algorithm>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "allocator/allocator.h"
#include "allocator/string_view_compat.h"
#include "tests/allocator/test_fleet.h"

namespace nvlsched::allocator {
namespace {

using ::nvlsched::allocator::testing::kAcme;
using ::nvlsched::allocator::testing::kGb200;
using ::nvlsched::allocator::testing::kH100;
using ::nvlsched::allocator::testing::TestFleet;
using ::nvlsched::allocator::testing::Trays;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

constexpr bool kStrict = true;
constexpr bool kCrossDomain = false;

std::vector<DomainIndex> Indices(const Allocator& alloc, const std::vector<std::string>& ids) {
  std::vector<DomainIndex> out;
  for (const std::string& id : ids) {
    DomainIndex d = alloc.DomainIndexOf(id);
    EXPECT_NE(d, kNoIndex) << id;
    out.push_back(d);
  }
  return out;
}

std::vector<std::string> MachinesOf(const Allocator& alloc, const Placement& plan) {
  std::vector<std::string> out;
  for (const PlacedInstance& p : plan.instances) out.push_back(alloc.MachineAt(p.machine).id);
  return out;
}

// Plans a batch of acme's gb200 machines excluding the named domains; the machine ids.
absl::StatusOr<std::vector<std::string>> PlanBatchExcluding(
    TestFleet& fleet, int count, bool strict, SpreadPolicy policy,
    const std::vector<std::string>& excluded, std::vector<std::string> partitions = {}) {
  std::vector<DomainIndex> indices = Indices(fleet.alloc(), excluded);
  BatchRequest request{kAcme, kGb200, count, strict, policy, std::move(partitions)};
  absl::StatusOr<Placement> plan = fleet.alloc().PlanBatch(request, PlanConstraints{indices});
  if (!plan.ok()) return plan.status();
  return MachinesOf(fleet.alloc(), *plan);
}

// Plans one single (gpus 0 = whole machine) excluding the named domains; the machine id.
absl::StatusOr<std::string> PlanSingleExcluding(TestFleet& fleet, int gpus,
                                                const std::vector<std::string>& excluded,
                                                const std::string& site = "",
                                                std::vector<std::string> partitions = {}) {
  std::vector<DomainIndex> indices = Indices(fleet.alloc(), excluded);
  SingleRequest request{kAcme, kGb200, gpus, site, std::move(partitions)};
  absl::StatusOr<Placement> plan = fleet.alloc().PlanSingle(request, PlanConstraints{indices});
  if (!plan.ok()) return plan.status();
  return MachinesOf(fleet.alloc(), *plan).front();
}

// An expected outcome: machines, or a capacity error with its shortfall counts.
struct Want {
  std::vector<std::string> machines;  // empty: RESOURCE_EXHAUSTED capacity
  int64_t largest_free = 0;
  int64_t total_free = 0;
};

void ExpectOutcome(const absl::StatusOr<std::vector<std::string>>& got, const Want& want,
                   int64_t requested) {
  if (!want.machines.empty()) {
    ASSERT_OK(got);
    EXPECT_THAT(*got, ElementsAreArray(want.machines));
    return;
  }
  EXPECT_STATUS(got, absl::StatusCode::kResourceExhausted, "not enough free capacity now");
  std::optional<CapacityShortfall> shortfall = GetCapacityShortfall(got.status());
  ASSERT_TRUE(shortfall.has_value()) << got.status();
  EXPECT_EQ(shortfall->requested, requested);
  EXPECT_EQ(shortfall->largest_domain_free, want.largest_free);
  EXPECT_EQ(shortfall->total_free, want.total_free);
}

// ------------------------------------------------------------------ strict best fit

// domain | machines | held   | free
// a      | 4        | 0,1    | 2     <- best fit for 1..2
// b      | 8        | 0..2   | 5
// c      | 18       | -      | 18
// b is in site s2 (for the site filter of singles); cross-domain tests put it in s1, as a
// batch never spans sites (batch_site_test.cc).
TestFleet ThreeDomains(int64_t quota_machines = 100000, const std::string& site_of_b = "s2") {
  TestFleet fleet({{"a", "s1", 4}, {"b", site_of_b, 8}, {"c", "s1", 18}}, quota_machines);
  fleet.HoldWhole({"a-0", "a-1", "b-0", "b-1", "b-2"});
  return fleet;
}

TEST(PlanConstraintsTest, StrictBestFitNeverPicksAnExcludedDomain) {
  struct Row {
    int count;
    std::vector<std::string> excluded;
    Want want;
  };
  const Row rows[] = {
      // count excluded          machines (or shortfall: largest, total)
      {2, {}, {{"a-2", "a-3"}}},                 // best fit, unconstrained
      {2, {"a"}, {{"b-3", "b-4"}}},              // the next best fit
      {2, {"a", "b"}, {{"c-0", "c-1"}}},
      {2, {"b", "a"}, {{"c-0", "c-1"}}},         // any order
      {2, {"a", "a", "b"}, {{"c-0", "c-1"}}},    // duplicates are harmless
      {5, {}, {Trays("b", 3, 8)}},
      {5, {"b"}, {Trays("c", 0, 5)}},
      {6, {"c"}, {{}, 5, 7}},                    // only c fits: capacity, counts without c
      {2, {"a", "b", "c"}, {{}, 0, 0}},
      {1, {"a", "c"}, {{"b-3"}}},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(absl::StrCat("count ", row.count, " excluding ", row.excluded.size()));
    TestFleet fleet = ThreeDomains();
    ExpectOutcome(PlanBatchExcluding(fleet, row.count, kStrict, SpreadPolicy::kFill, row.excluded),
                  row.want, row.count);
  }
}

TEST(PlanConstraintsTest, StrictBatchErrorStaysTheCapacityErrorWithCountsOutsideExcluded) {
  TestFleet fleet = ThreeDomains();
  auto got = PlanBatchExcluding(fleet, 6, kStrict, SpreadPolicy::kFill, {"c"});
  EXPECT_STATUS(got, absl::StatusCode::kResourceExhausted,
                "needs 6 free machines in one NVLink domain, but the most free in any domain is 5 "
                "(7 free in total)");
  // More than the largest domain could ever hold is still "infeasible", excluded or not.
  EXPECT_STATUS(PlanBatchExcluding(fleet, 19, kStrict, SpreadPolicy::kFill, {"c"}),
                absl::StatusCode::kInvalidArgument, "infeasible");
}

TEST(PlanConstraintsTest, WholeMachineSingleNeverPicksAnExcludedDomain) {
  struct Row {
    std::string site;
    std::vector<std::string> excluded;
    std::string want;  // "" = capacity error
  };
  const Row rows[] = {
      // site excluded         machine
      {"", {}, "a-2"},
      {"", {"a"}, "b-3"},
      {"", {"a", "b"}, "c-0"},
      {"", {"a", "b", "c"}, ""},
      {"s1", {}, "a-2"},        // site filter: a and c
      {"s1", {"a"}, "c-0"},     // b is not in s1
      {"s1", {"c", "a"}, ""},   // nothing left in s1, though b has 5 free
      {"s2", {"a", "c"}, "b-3"},
      {"s2", {"b"}, ""},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(absl::StrCat("site '", row.site, "' excluding ", row.excluded.size()));
    TestFleet fleet = ThreeDomains();
    auto got = PlanSingleExcluding(fleet, 0, row.excluded, row.site);
    if (!row.want.empty()) {
      ASSERT_OK(got);
      EXPECT_EQ(*got, row.want);
    } else {
      EXPECT_STATUS(got, absl::StatusCode::kResourceExhausted, "no READY gb200-tray machine is free");
      ASSERT_TRUE(GetCapacityShortfall(got.status()).has_value());
      EXPECT_EQ(GetCapacityShortfall(got.status())->total_free, 0);
    }
  }
}

TEST(PlanConstraintsTest, SiteFilteredStrictPathSkipsExcludedInBestFitOrder) {
  // Site s1: x (1 free), y (2 free), z (2 free); s2: w (1 free). Best fit in s1 for 1 is x;
  // excluding x gives y (lowest index of the 2-free bucket); excluding x, y gives z.
  TestFleet fleet({{"x", "s1", 2}, {"y", "s1", 3}, {"z", "s1", 2}, {"w", "s2", 1}});
  fleet.HoldWhole({"x-0", "y-0"});
  EXPECT_EQ(*PlanSingleExcluding(fleet, 0, {}, "s1"), "x-1");
  EXPECT_EQ(*PlanSingleExcluding(fleet, 0, {"x"}, "s1"), "y-1");
  EXPECT_EQ(*PlanSingleExcluding(fleet, 0, {"x", "y"}, "s1"), "z-0");
  EXPECT_EQ(*PlanSingleExcluding(fleet, 0, {"x", "y"}, "s2"), "w-0");
  auto none = PlanSingleExcluding(fleet, 0, {"x", "y", "z"}, "s1");
  EXPECT_STATUS(none, absl::StatusCode::kResourceExhausted, "in site s1");
}

TEST(PlanConstraintsTest, PartitionAffinityNeverPicksAnExcludedDomain) {
  // Partition p1 has instances in a and c; b is free but not bound.
  // domain | machines | free
  // a      | 4        | 3 (a-0 holds p1)
  // b      | 4        | 4
  // c      | 6        | 5 (c-0 holds p1)
  TestFleet fleet({{"a", "s1", 4}, {"b", "s1", 4}, {"c", "s1", 6}});
  for (const std::string& machine : {std::string("a-0"), std::string("c-0")}) {
    InstanceClaim claim;
    claim.tenant_id = kAcme;
    claim.instance_type_id = kGb200;
    claim.machine_id = machine;
    claim.nvlink_partition_ids = {"p1"};
    ASSERT_OK(fleet.Restore("p1-" + machine, claim));
  }
  struct Row {
    int count;
    std::vector<std::string> excluded;
    Want want;
  };
  const Row rows[] = {
      {2, {}, {{"a-1", "a-2"}}},          // best fit among a, c
      {2, {"a"}, {{"c-1", "c-2"}}},       // never b: it is not bound
      {2, {"b"}, {{"a-1", "a-2"}}},
      {4, {}, {Trays("c", 1, 5)}},
      {2, {"a", "c"}, {{}, 0, 0}},        // bound domains all excluded: capacity error
      {4, {"c"}, {{}, 3, 3}},             // a remains, with 3 free
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(absl::StrCat("count ", row.count, " excluding ", row.excluded.size()));
    auto got = PlanBatchExcluding(fleet, row.count, kStrict, SpreadPolicy::kFill, row.excluded,
                                  {"p1"});
    ExpectOutcome(got, row.want, row.count);
    if (row.want.machines.empty()) {
      EXPECT_THAT(std::string(got.status().message()), HasSubstr("bound to"));
    }
  }
  // A whole-machine single with the partition, and a GPU-granular one, are bound the same way.
  EXPECT_EQ(*PlanSingleExcluding(fleet, 0, {"a"}, "", {"p1"}), "c-1");
  EXPECT_EQ(*PlanSingleExcluding(fleet, 2, {"a"}, "", {"p1"}), "c-1");
  EXPECT_STATUS(PlanSingleExcluding(fleet, 2, {"c", "a"}, "", {"p1"}),
                absl::StatusCode::kResourceExhausted, "bound to");
}

// ------------------------------------------------------------------ GPU-granular

TEST(PlanConstraintsTest, GpuGranularTakesOnlyPartlyHeldMachinesInExcludedDomains) {
  // domain | site | machines (free GPUs)               | kind
  // a      | s1   | a-0 (2, partly held), a-1 (4, free) | broken
  // b      | s2   | b-0 (3, partly held), b-1 (4, free) | broken
  // c      | s1   | c-0 (2, partly held), c-1 (4, free) | broken, after a
  // d      | s1   | d-0, d-1 (4, free)                  | fully free
  TestFleet fleet({{"a", "s1", 2}, {"b", "s2", 2}, {"c", "s1", 2}, {"d", "s1", 2}});
  fleet.HoldGpus("a-0", 2);
  fleet.HoldGpus("b-0", 1);
  fleet.HoldGpus("c-0", 2);
  struct Row {
    int gpus;
    std::string site;
    std::vector<std::string> excluded;
    std::string want;  // "" = capacity error
    int64_t most_on_one_machine = 0;
    int64_t total_free = 0;
  };
  const Row rows[] = {
      // gpus site excluded           machine (or shortfall: most on one machine, total)
      {2, "", {}, "a-0"},                   // fewest free GPUs that fit, lowest domain
      {2, "", {"a"}, "a-0"},                // partly held: still taken in an excluded domain
      {1, "", {"a", "b", "c", "d"}, "a-0"},
      {3, "", {}, "b-0"},
      {3, "", {"b", "a", "c"}, "b-0"},
      {4, "", {}, "a-1"},                   // a is broken, so before d
      {4, "", {"a"}, "b-1"},                // a-1 is free: never taken while a is excluded
      {4, "", {"a", "b", "c"}, "d-0"},
      {4, "", {"a", "c", "d"}, "b-1"},
      {4, "", {"a", "b", "c", "d"}, "", 3, 7},  // counts: the partly held machines only
      {3, "s1", {"a", "c"}, "d-0"},         // b is in s2; a-0, c-0 have 2
      {2, "s1", {"a", "c"}, "a-0"},
      {2, "s2", {"b"}, "b-0"},
      {4, "s2", {"b"}, "", 3, 3},
      {4, "s1", {"a", "c", "d"}, "", 2, 4},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(absl::StrCat(row.gpus, " GPUs, site '", row.site, "' excluding ",
                              row.excluded.size()));
    auto got = PlanSingleExcluding(fleet, row.gpus, row.excluded, row.site);
    if (!row.want.empty()) {
      ASSERT_OK(got);
      EXPECT_EQ(*got, row.want);
      continue;
    }
    EXPECT_STATUS(got, absl::StatusCode::kResourceExhausted, "free GPUs");
    std::optional<CapacityShortfall> shortfall = GetCapacityShortfall(got.status());
    ASSERT_TRUE(shortfall.has_value());
    EXPECT_EQ(shortfall->unit, CapacityUnit::kGpus);
    EXPECT_EQ(shortfall->largest_domain_free, row.most_on_one_machine);
    EXPECT_EQ(shortfall->total_free, row.total_free);
  }
  // The shortfall counts leave the free machines of excluded domains out: without d (no
  // partly held machine), a (2 + 4), b (3 + 4) and c (2 + 4) have 19 free GPUs, at most 4
  // on one machine.
  EXPECT_EQ(*PlanSingleExcluding(fleet, 4, {"d"}), "a-1");
  fleet.HoldGpus("a-1", 1);
  fleet.HoldGpus("b-1", 1);
  fleet.HoldGpus("c-1", 1);  // now a: 2 + 3, b: 3 + 3, c: 2 + 3 = 16 free GPUs, 3 at most
  auto none = PlanSingleExcluding(fleet, 4, {"d"});
  EXPECT_STATUS(none, absl::StatusCode::kResourceExhausted,
                "the most free on one machine is 3 (16 free GPUs in total)");
  std::optional<CapacityShortfall> shortfall = GetCapacityShortfall(none.status());
  ASSERT_TRUE(shortfall.has_value());
  EXPECT_EQ(shortfall->largest_domain_free, 3);
  EXPECT_EQ(shortfall->total_free, 16);
}

TEST(PlanConstraintsTest, ReservedDomainTakesGpuSinglesOnlyOnItsPartlyHeldMachine) {
  // r is reserved (excluded): r-0 has 1 of 4 GPUs held, r-1 is free. o is held whole.
  TestFleet fleet({{"r", "s1", 2}, {"o", "s1", 2}});
  fleet.HoldGpus("r-0", 1);
  fleet.HoldWhole({"o-0", "o-1"});
  const Allocator& alloc = fleet.alloc();
  const TypeIndex gb = alloc.TypeIndexOf(kGb200);
  const std::vector<DomainIndex> r = Indices(alloc, {"r"});

  EXPECT_EQ(*PlanSingleExcluding(fleet, 1, {"r"}), "r-0");
  EXPECT_EQ(*PlanSingleExcluding(fleet, 3, {"r"}), "r-0");
  EXPECT_EQ(alloc.LargestFreeGpus(gb, r), 3);
  EXPECT_EQ(alloc.LargestFreeGpus(gb, {}), 4);
  // The free machine is the reservation's: no GPU single, whole-machine single or batch.
  auto four = PlanSingleExcluding(fleet, 4, {"r"});
  EXPECT_STATUS(four, absl::StatusCode::kResourceExhausted,
                "the most free on one machine is 3 (3 free GPUs in total)");
  EXPECT_STATUS(PlanSingleExcluding(fleet, 0, {"r"}), absl::StatusCode::kResourceExhausted,
                "no READY gb200-tray machine is free");
  ExpectOutcome(PlanBatchExcluding(fleet, 1, kStrict, SpreadPolicy::kFill, {"r"}), {{}, 0, 0}, 1);
  ExpectOutcome(PlanBatchExcluding(fleet, 1, kCrossDomain, SpreadPolicy::kFill, {"r"}), {{}, 0, 0},
                1);
  EXPECT_EQ(*PlanSingleExcluding(fleet, 4, {}), "r-1");  // not excluded: the free machine

  // Once r-0 is full, nothing in r is left for GPU singles, though r-1 is still free.
  fleet.HoldGpus("r-0", 3);
  EXPECT_EQ(alloc.LargestFreeGpus(gb, r), 0);
  EXPECT_STATUS(PlanSingleExcluding(fleet, 1, {"r"}), absl::StatusCode::kResourceExhausted,
                "the most free on one machine is 0 (0 free GPUs in total)");
  EXPECT_EQ(*PlanSingleExcluding(fleet, 1, {}), "r-1");
}

TEST(PlanConstraintsTest, ReservedDomainBoundByAffinityTakesGpuSinglesOnItsPartlyHeldMachine) {
  // Partition p1 has a 1-GPU instance on r-0, so GPU singles naming p1 are bound to r.
  TestFleet fleet({{"r", "s1", 2}, {"o", "s1", 2}});
  InstanceClaim claim;
  claim.tenant_id = kAcme;
  claim.instance_type_id = kGb200;
  claim.machine_id = "r-0";
  claim.whole_machine = false;
  claim.gpu_count = 1;
  claim.nvlink_partition_ids = {"p1"};
  ASSERT_OK(fleet.Restore("p1-r-0", claim));
  EXPECT_EQ(*PlanSingleExcluding(fleet, 2, {"r"}, "", {"p1"}), "r-0");
  EXPECT_EQ(*PlanSingleExcluding(fleet, 3, {"r"}, "", {"p1"}), "r-0");
  EXPECT_STATUS(PlanSingleExcluding(fleet, 4, {"r"}, "", {"p1"}),
                absl::StatusCode::kResourceExhausted, "bound to");  // r-1 is free: not taken
  EXPECT_EQ(*PlanSingleExcluding(fleet, 4, {}, "", {"p1"}), "r-1");
  // The site path as well.
  EXPECT_EQ(*PlanSingleExcluding(fleet, 3, {"r"}, "s1"), "r-0");
  EXPECT_EQ(*PlanSingleExcluding(fleet, 4, {"r"}, "s1"), "o-0");
}

// ------------------------------------------------------------------ cross-domain

TEST(PlanConstraintsTest, CrossDomainPoliciesNeverPickAnExcludedDomain) {
  // ThreeDomains: a has 2 free (a-2, a-3), b 5 (b-3..b-7), c 18.
  auto concat = [](std::vector<std::string> x, const std::vector<std::string>& y) {
    x.insert(x.end(), y.begin(), y.end());
    return x;
  };
  struct Row {
    SpreadPolicy policy;
    int count;
    std::vector<std::string> excluded;
    Want want;
  };
  const Row rows[] = {
      {SpreadPolicy::kFill, 6, {}, {concat({"a-2", "a-3"}, Trays("b", 3, 7))}},
      {SpreadPolicy::kFill, 6, {"a"}, {concat(Trays("b", 3, 8), {"c-0"})}},
      {SpreadPolicy::kFill, 6, {"b"}, {concat({"a-2", "a-3"}, Trays("c", 0, 4))}},
      {SpreadPolicy::kFill, 3, {"a", "b"}, {Trays("c", 0, 3)}},
      {SpreadPolicy::kFill, 8, {"c"}, {{}, 5, 7}},
      {SpreadPolicy::kMinDomains, 3, {}, {Trays("c", 0, 3)}},
      {SpreadPolicy::kMinDomains, 3, {"c"}, {Trays("b", 3, 6)}},
      {SpreadPolicy::kMinDomains, 6, {"c"}, {concat(Trays("b", 3, 8), {"a-2"})}},
      {SpreadPolicy::kMinDomains, 20, {"c"}, {{}, 5, 7}},
      {SpreadPolicy::kMinDomains, 19, {"a"}, {concat(Trays("c", 0, 18), {"b-3"})}},
      // SPREAD: a, b, c round-robin without exclusion; a and c with b excluded.
      {SpreadPolicy::kSpread, 3, {}, {{"a-2", "b-3", "c-0"}}},
      {SpreadPolicy::kSpread, 3, {"b"}, {{"a-2", "a-3", "c-0"}}},
      {SpreadPolicy::kSpread, 8, {"b"}, {concat({"a-2", "a-3"}, Trays("c", 0, 6))}},
      {SpreadPolicy::kSpread, 4, {"a"}, {{"b-3", "b-4", "c-0", "c-1"}}},
      {SpreadPolicy::kSpread, 3, {"a", "c"}, {Trays("b", 3, 6)}},
      {SpreadPolicy::kSpread, 6, {"a", "c"}, {{}, 5, 5}},
      {SpreadPolicy::kSpread, 1, {"a", "b", "c"}, {{}, 0, 0}},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(absl::StrCat(AbslView(SpreadPolicyName(row.policy)), " ", row.count, " excluding ",
                              row.excluded.size()));
    TestFleet fleet = ThreeDomains(100000, "s1");
    ExpectOutcome(PlanBatchExcluding(fleet, row.count, kCrossDomain, row.policy, row.excluded),
                  row.want, row.count);
  }
}

TEST(PlanConstraintsTest, CrossDomainShortfallCountsOnlyDomainsNotExcluded) {
  TestFleet fleet = ThreeDomains(100000, "s1");
  auto got = PlanBatchExcluding(fleet, 8, kCrossDomain, SpreadPolicy::kFill, {"c", "c"});
  EXPECT_STATUS(got, absl::StatusCode::kResourceExhausted,
                "but only 7 are free (most in one domain: 5)");
  // Cross-domain "infeasible" is still about the whole fleet.
  EXPECT_STATUS(PlanBatchExcluding(fleet, 31, kCrossDomain, SpreadPolicy::kFill, {"c"}),
                absl::StatusCode::kInvalidArgument, "infeasible");
}

TEST(PlanConstraintsTest, UnknownExcludedIndicesAreIgnored) {
  TestFleet fleet = ThreeDomains(100000, "s1");
  const DomainIndex unknown[] = {fleet.alloc().domain_count(), kNoIndex};
  PlanConstraints constraints{unknown};
  BatchRequest strict{kAcme, kGb200, 2};
  EXPECT_THAT(MachinesOf(fleet.alloc(), *fleet.alloc().PlanBatch(strict, constraints)),
              ElementsAreArray({"a-2", "a-3"}));
  BatchRequest cross{kAcme, kGb200, 3, kCrossDomain, SpreadPolicy::kSpread};
  EXPECT_THAT(MachinesOf(fleet.alloc(), *fleet.alloc().PlanBatch(cross, constraints)),
              ElementsAreArray({"a-2", "b-3", "c-0"}));
  EXPECT_EQ(fleet.alloc().TotalFreeMachines(0, unknown), 25);
}

TEST(PlanConstraintsTest, AConstrainedPlanAppliesLikeAnyOther) {
  TestFleet fleet = ThreeDomains();
  std::vector<DomainIndex> excluded = Indices(fleet.alloc(), {"a"});
  absl::StatusOr<Placement> plan =
      fleet.alloc().PlanBatch(BatchRequest{kAcme, kGb200, 2}, PlanConstraints{excluded});
  ASSERT_OK(plan);
  EXPECT_THAT(fleet.ApplyPlan(*plan, "queued-1"), ElementsAreArray({"b-3", "b-4"}));
  EXPECT_OK(fleet.alloc().CheckInvariants());
  EXPECT_EQ(fleet.FreeIn("b"), 3);
}

// ------------------------------------------------------------------ quota

// acme may hold 10 gb200 machines (40 GPUs) and holds 2 (8 GPUs).
TEST(PlanConstraintsTest, QuotaCountsCommittedGpusAndRefusesExactlyPastTheLimit) {
  TestFleet fleet = ThreeDomains(/*quota_machines=*/10);
  Allocator& alloc = fleet.alloc();
  // ThreeDomains holds 5 machines for acme: 20 GPUs in use.
  ASSERT_EQ(*alloc.QuotaUsageGpus(kAcme, kGb200), 20);
  struct Row {
    int batch;      // machines (4 GPUs each); 0 = a single of `gpus`
    int gpus;
    int64_t committed;
    bool ok;
  };
  const Row rows[] = {
      // 20 in use + committed + requested <= 40
      {5, 0, 0, true},     // 20 + 0 + 20 = 40
      {5, 0, 1, false},    // 41
      {2, 0, 12, true},    // 20 + 12 + 8 = 40
      {2, 0, 13, false},
      {0, 1, 19, true},    // 20 + 19 + 1 = 40
      {0, 1, 20, false},
      {0, 4, 16, true},
      {0, 4, 17, false},
      {0, 0, 16, true},    // a whole machine: 4 GPUs
      {0, 0, 17, false},
      {1, 0, 20, false},   // quota fully committed
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(absl::StrCat("batch ", row.batch, " gpus ", row.gpus, " committed ",
                              row.committed));
    PlanConstraints constraints;
    constraints.committed_quota_gpus = row.committed;
    absl::Status status =
        row.batch > 0
            ? alloc.PlanBatch(BatchRequest{kAcme, kGb200, row.batch}, constraints).status()
            : alloc.PlanSingle(SingleRequest{kAcme, kGb200, row.gpus}, constraints).status();
    if (row.ok) {
      EXPECT_OK(status);
      continue;
    }
    EXPECT_STATUS(status, absl::StatusCode::kResourceExhausted, "quota exceeded");
    EXPECT_THAT(std::string(status.message()),
                HasSubstr(absl::StrCat("committed to queued requests (", row.committed,
                                       " committed)")));
    std::optional<QuotaViolation> violation = GetQuotaViolation(status);
    ASSERT_TRUE(violation.has_value());
    EXPECT_EQ(violation->in_use_gpus, 20 + row.committed);
    EXPECT_EQ(violation->limit_gpus, 40);
  }
  // Without committed GPUs the message is as before.
  absl::Status plain = alloc.PlanBatch(BatchRequest{kAcme, kGb200, 6}).status();
  EXPECT_STATUS(plain, absl::StatusCode::kResourceExhausted,
                "20 GPUs are in use and this request needs 24 more");
}

TEST(PlanConstraintsTest, QuotaIsCheckedBeforeCapacityEvenWithExcludedDomains) {
  TestFleet fleet = ThreeDomains(/*quota_machines=*/10);
  std::vector<DomainIndex> all = Indices(fleet.alloc(), {"a", "b", "c"});
  PlanConstraints constraints{all, /*committed_quota_gpus=*/20};
  EXPECT_STATUS(fleet.alloc().PlanBatch(BatchRequest{kAcme, kGb200, 1}, constraints),
                absl::StatusCode::kResourceExhausted, "quota exceeded");
}

// ------------------------------------------------------------------ queries

// domain | site | gb200 machines             | h100 machines
// a      | s1   | 4: a-0 held, a-3 MAINTENANCE| -
// b      | s1   | 6: b-0 has 1 GPU held        | -
// c      | s2   | 2: both held                 | 2: c-10 has 3 of 8 GPUs held
// e      | s2   | -                            | -
TestFleet QueryFleet() {
  TestFleet fleet({{"a", "s1", 3}, {"b", "s1", 6}, {"c", "s2", 2}, {"e", "s2", 0}});
  fleet.AddMachines({{"a-3", "a", 3, 4, MachineState::kMaintenance},
                     {"c-10", "c", 10, 8, MachineState::kReady, kH100},
                     {"c-11", "c", 11, 8, MachineState::kReady, kH100}});
  fleet.HoldWhole({"a-0", "c-0", "c-1"});
  fleet.HoldGpus("b-0", 1);
  fleet.HoldGpus("c-10", 3);
  return fleet;
}

TEST(PlanConstraintsTest, IndexLookups) {
  TestFleet fleet = QueryFleet();
  const Allocator& alloc = fleet.alloc();
  EXPECT_EQ(alloc.TypeIndexOf(kGb200), 0u);
  EXPECT_EQ(alloc.TypeIndexOf(kH100), 1u);
  EXPECT_EQ(alloc.TypeIndexOf("nope"), kNoIndex);
  EXPECT_EQ(alloc.TenantIndexOf(kAcme), 0u);
  EXPECT_EQ(alloc.TenantIndexOf("nobody"), kNoIndex);
  EXPECT_EQ(alloc.DomainIndexOf("a"), 0u);
  EXPECT_EQ(alloc.DomainIndexOf("e"), 3u);
  EXPECT_EQ(alloc.DomainIndexOf("zz"), kNoIndex);
  EXPECT_EQ(alloc.domain_count(), 4u);
  EXPECT_EQ(&alloc.DomainAt(alloc.DomainIndexOf("c")), alloc.FindDomain("c"));
}

TEST(PlanConstraintsTest, MachineCountQueries) {
  TestFleet fleet = QueryFleet();
  const Allocator& alloc = fleet.alloc();
  const TypeIndex gb = alloc.TypeIndexOf(kGb200);
  const TypeIndex h = alloc.TypeIndexOf(kH100);
  const DomainIndex a = 0, b = 1, c = 2, e = 3;
  struct Row {
    TypeIndex type;
    DomainIndex domain;
    int free;
    int total;
  };
  const Row rows[] = {
      {gb, a, 2, 4},  // a-1, a-2 free; a-3 drained still counts in total
      {gb, b, 5, 6},  // b-0 partly held is not free
      {gb, c, 0, 2},
      {gb, e, 0, 0},
      {h, a, 0, 0},
      {h, c, 1, 2},
      {kNoIndex, a, 0, 0},  // unknown type or domain: 0
      {gb, 99, 0, 0},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(absl::StrCat("type ", row.type, " domain ", row.domain));
    EXPECT_EQ(alloc.DomainFreeMachines(row.type, row.domain), row.free);
    EXPECT_EQ(alloc.DomainTotalMachines(row.type, row.domain), row.total);
  }

  struct Excluding {
    std::vector<DomainIndex> excluded;
    int largest_free_in_domain;
    int64_t total_free;
  };
  const Excluding gb200_rows[] = {
      {{}, 5, 7},
      {{b}, 2, 2},
      {{b, b}, 2, 2},      // duplicates counted once
      {{c, e}, 5, 7},      // no free there
      {{a, b}, 0, 0},
      {{99, a}, 5, 5},     // unknown index ignored
  };
  for (const Excluding& row : gb200_rows) {
    SCOPED_TRACE(absl::StrCat("excluding ", row.excluded.size()));
    EXPECT_EQ(alloc.LargestFreeInDomain(gb, row.excluded), row.largest_free_in_domain);
    EXPECT_EQ(alloc.TotalFreeMachines(gb, row.excluded), row.total_free);
  }
  EXPECT_EQ(alloc.LargestFreeInDomain(h, {}), 1);
  EXPECT_EQ(alloc.TotalFreeMachines(h, std::vector<DomainIndex>{c}), 0);
  EXPECT_EQ(alloc.LargestFreeInDomain(kNoIndex, {}), 0);
  EXPECT_EQ(alloc.TotalFreeMachines(kNoIndex, {}), 0);
}

TEST(PlanConstraintsTest, LargestFreeGpus) {
  TestFleet fleet = QueryFleet();
  const Allocator& alloc = fleet.alloc();
  const TypeIndex gb = alloc.TypeIndexOf(kGb200);
  const TypeIndex h = alloc.TypeIndexOf(kH100);
  const DomainIndex a = 0, b = 1, c = 2;
  struct Row {
    TypeIndex type;
    std::vector<DomainIndex> excluded;
    int want;
  };
  const Row rows[] = {
      {gb, {}, 4},
      {gb, {a}, 4},   // b-1..b-5
      {gb, {b}, 4},   // a-1, a-2 (a-3 is drained)
      {gb, {a, b}, 3},  // b-0 is partly held: still usable; c's machines are held whole
      {h, {}, 8},     // c-11
      {h, {c}, 5},    // c-10 is partly held, c-11 free: only c-10 counts
      {h, {c, c}, 5},
      {gb, {a, b, 99}, 3},
      {kNoIndex, {}, 0},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(absl::StrCat("type ", row.type, " excluding ", row.excluded.size()));
    EXPECT_EQ(alloc.LargestFreeGpus(row.type, row.excluded), row.want);
  }
  // Only partly held machines left: b-0 (3 free) and c-10 (5 free).
  fleet.HoldWhole({"a-1", "a-2", "b-1", "b-2", "b-3", "b-4", "b-5", "c-11"});
  EXPECT_EQ(alloc.LargestFreeGpus(gb, {}), 3);
  EXPECT_EQ(alloc.LargestFreeGpus(h, {}), 5);
  EXPECT_EQ(alloc.LargestFreeGpus(gb, std::vector<DomainIndex>{b}), 3);
  EXPECT_EQ(alloc.LargestFreeGpus(h, std::vector<DomainIndex>{c}), 5);
  fleet.HoldGpus("b-0", 3);  // full: no GPU of gb200 left anywhere
  EXPECT_EQ(alloc.LargestFreeGpus(gb, {}), 0);
  EXPECT_EQ(alloc.LargestFreeGpus(gb, std::vector<DomainIndex>{b}), 0);
}

TEST(PlanConstraintsTest, MostFreeDomain) {
  // domain | gb200 total | free
  // p      | 4           | 2
  // q      | 8           | 2
  // r      | 3           | 3
  // s      | 8           | 0
  TestFleet fleet({{"p", "s1", 4}, {"q", "s1", 8}, {"r", "s1", 3}, {"s", "s1", 8}});
  fleet.HoldWhole({"p-0", "p-1"});
  fleet.HoldWhole(Trays("q", 0, 6));
  fleet.HoldWhole(Trays("s", 0, 8));
  const Allocator& alloc = fleet.alloc();
  const TypeIndex gb = alloc.TypeIndexOf(kGb200);
  const DomainIndex p = 0, q = 1, r = 2, s = 3;
  struct Row {
    int min_total;
    std::vector<DomainIndex> excluded;
    DomainIndex want;
  };
  const Row rows[] = {
      // min_total excluded   domain
      {1, {}, r},             // most free
      {0, {}, r},             // min_total < 1 counts as 1
      {1, {r}, p},            // tie p / q at 2: lowest index
      {4, {}, p},             // r has only 3
      {5, {}, q},             // p has only 4
      {5, {q}, s},            // s: 0 free but large enough
      {8, {q, s}, kNoIndex},
      {9, {}, kNoIndex},      // larger than any domain
      {1, {p, q, r}, s},
      {1, {p, q, r, s}, kNoIndex},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(absl::StrCat("min_total ", row.min_total, " excluding ", row.excluded.size()));
    EXPECT_EQ(alloc.MostFreeDomain(gb, row.min_total, row.excluded), row.want);
  }
  EXPECT_EQ(alloc.MostFreeDomain(alloc.TypeIndexOf(kH100), 1, {}), kNoIndex);  // no h100s
  EXPECT_EQ(alloc.MostFreeDomain(kNoIndex, 1, {}), kNoIndex);
}

// ------------------------------------------------------------------ reference

// Builds the same random fleet into any allocator: `seed` decides everything.
struct RandomFleet {
  struct MachineSpec {
    std::string id;
    std::string domain;
    MachineState state;
  };
  std::vector<std::string> domains;
  std::vector<MachineSpec> machines;

  static void Check(const absl::Status& status) { ASSERT_TRUE(status.ok()) << status; }

  void Build(uint32_t seed, Allocator* alloc) {
    std::mt19937 rng(seed);
    auto uniform = [&](int lo, int hi) { return lo + static_cast<int>(rng() % (hi - lo + 1)); };
    Check(alloc->UpsertInstanceType({kGb200, "gb200-tray", "GB200", 4}));
    Check(alloc->UpsertInstanceType({kH100, "h100-8x", "H100", 8}));
    Check(alloc->UpsertTenant({kAcme, kAcme, kAcme, {{kGb200, 100000}, {kH100, 100000}}}));
    Check(alloc->UpsertTenant({"small", "small", "small", {{kGb200, 6}, {kH100, 1}}}));
    domains.clear();
    machines.clear();
    int domain_count = uniform(2, 8);
    for (int d = 0; d < domain_count; ++d) {
      std::string id = absl::StrCat("d", d);
      domains.push_back(id);
      Check(alloc->UpsertDomain({id, id, uniform(0, 2) == 0 ? "s2" : "s1"}));
      int gb200 = uniform(0, 18);
      int h100 = uniform(0, 3) == 0 ? uniform(1, 4) : 0;
      for (int tray = 0; tray < gb200 + h100; ++tray) {
        bool is_gb200 = tray < gb200;
        Machine m;
        m.id = absl::StrCat(id, "-", tray);
        m.domain_id = id;
        m.tray_index = tray;
        m.instance_type_id = is_gb200 ? kGb200 : kH100;
        m.gpu_count = is_gb200 ? 4 : 8;
        Check(alloc->UpsertMachine(m));
        // Holds first (a drained machine keeps what it holds).
        int dice = uniform(0, 99);
        if (dice < 30 || (dice < 45 && m.gpu_count > 1)) {
          InstanceClaim claim;
          claim.tenant_id = uniform(0, 3) == 0 ? "small" : kAcme;
          claim.instance_type_id = m.instance_type_id;
          claim.machine_id = m.id;
          claim.whole_machine = dice < 30;
          claim.gpu_count = claim.whole_machine ? 0 : uniform(1, m.gpu_count - 1);
          if (uniform(0, 4) == 0) claim.nvlink_partition_ids = {absl::StrCat("p", uniform(0, 2))};
          absl::StatusOr<InstanceHandle> handle = alloc->RestoreInstance(claim);
          Check(handle.status());
        }
        MachineState state = uniform(0, 9) == 0 ? MachineState::kMaintenance : MachineState::kReady;
        if (state != MachineState::kReady) Check(alloc->SetMachineState(m.id, state, "random"));
        machines.push_back({m.id, id, state});
      }
    }
    alloc->ClearJournal();
  }
};

// Everything a plan decides, as text: code, shortfall / quota payloads, machines and GPUs.
std::string Outcome(const Allocator& alloc, const absl::StatusOr<Placement>& plan,
                    bool compare_message) {
  if (!plan.ok()) {
    std::string out = absl::StatusCodeToString(plan.status().code());
    if (std::optional<CapacityShortfall> s = GetCapacityShortfall(plan.status())) {
      absl::StrAppend(&out, " shortfall ", s->instance_type_id, " ",
                      AbslView(CapacityUnitName(s->unit)), " ", s->requested, " ", s->largest_domain_free,
                      " ", s->total_free);
    }
    if (std::optional<QuotaViolation> q = GetQuotaViolation(plan.status())) {
      absl::StrAppend(&out, " quota ", q->in_use_gpus, " ", q->requested_gpus);
    }
    if (compare_message) absl::StrAppend(&out, " '", plan.status().message(), "'");
    return out;
  }
  std::string out = "OK";
  for (const PlacedInstance& p : plan->instances) {
    absl::StrAppend(&out, " ", alloc.MachineAt(p.machine).id, ":", p.gpu_count,
                    p.whole_machine ? "w" : "g");
  }
  return out;
}

TEST(PlanConstraintsTest, ConstrainedPlanEqualsPlanOnAFleetWithExcludedDomainsDrained) {
  const SpreadPolicy policies[] = {SpreadPolicy::kFill, SpreadPolicy::kMinDomains,
                                   SpreadPolicy::kSpread};
  const char* const tenants[] = {kAcme, kAcme, kAcme, "small"};
  const char* const sites[] = {"", "", "s1", "s2"};
  std::map<std::string, int> outcomes;
  for (uint32_t seed = 1; seed <= 100; ++seed) {
    SCOPED_TRACE(absl::StrCat("seed ", seed));
    Allocator constrained;
    Allocator drained;
    RandomFleet fleet;
    fleet.Build(seed, &constrained);
    fleet.Build(seed, &drained);
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    std::mt19937 rng(seed * 7919u);
    auto uniform = [&](int lo, int hi) { return lo + static_cast<int>(rng() % (hi - lo + 1)); };
    const uint32_t domain_count = constrained.domain_count();
    std::map<std::string, MachineState> drained_state;  // what `drained` has now, by machine
    for (const RandomFleet::MachineSpec& m : fleet.machines) drained_state[m.id] = m.state;
    // Drains, in the copy, the machines of excluded domains that the request may not use:
    // all of them, or for a GPU-granular single only the free ones (READY and held by
    // nothing in `constrained`); every other machine gets its own state back.
    auto drain = [&](absl::Span<const DomainIndex> excluded, bool gpu_single) {
      std::map<std::string, bool> held;
      constrained.ForEachInstance(
          [&](InstanceHandle, const InstanceClaim& claim) { held[claim.machine_id] = true; });
      for (const RandomFleet::MachineSpec& m : fleet.machines) {
        bool out = ListsDomain(excluded, drained.DomainIndexOf(m.domain)) &&
                   (!gpu_single || (m.state == MachineState::kReady && !held.count(m.id)));
        MachineState want = out ? MachineState::kMaintenance : m.state;
        if (drained_state[m.id] == want) continue;
        ASSERT_OK(drained.SetMachineState(m.id, want, out ? "excluded" : "random"));
        drained_state[m.id] = want;
      }
    };
    for (int round = 0; round < 6; ++round) {
      // Pick the excluded domains (duplicates and an unknown index now and then).
      std::vector<DomainIndex> excluded;
      for (int i = uniform(0, 3); i > 0; --i) excluded.push_back(uniform(0, domain_count - 1));
      if (!excluded.empty() && uniform(0, 4) == 0) excluded.push_back(excluded.front());
      if (uniform(0, 9) == 0) excluded.push_back(domain_count + 3);
      PlanConstraints constraints{excluded};
      for (int step = 0; step < 25; ++step) {
        std::string tenant = tenants[rng() % 4];
        std::string type = uniform(0, 4) == 0 ? kH100 : kGb200;
        std::vector<std::string> partitions;
        if (uniform(0, 3) == 0) partitions = {absl::StrCat("p", uniform(0, 3))};
        absl::StatusOr<Placement> got;
        absl::StatusOr<Placement> want;
        std::string what;
        int kind = uniform(0, 3);
        bool gpu_single = kind == 3;
        drain(excluded, gpu_single);
        ASSERT_FALSE(::testing::Test::HasFatalFailure());
        if (kind <= 1) {
          bool strict = kind == 0;
          BatchRequest r{tenant, type, strict ? uniform(1, 12) : uniform(1, 30), strict,
                         policies[rng() % 3], partitions};
          what = absl::StrCat(strict ? "strict " : "cross ", AbslView(SpreadPolicyName(r.spread_policy)),
                              " ", r.count, " ", type);
          got = constrained.PlanBatch(r, constraints);
          want = drained.PlanBatch(r);
        } else {
          int max_gpus = type == kH100 ? 8 : 4;
          SingleRequest r{tenant, type, gpu_single ? uniform(1, max_gpus) : 0, sites[rng() % 4],
                          partitions};
          what = absl::StrCat("single ", r.gpu_count, " ", type, " site '", r.site_id, "'");
          got = constrained.PlanSingle(r, constraints);
          want = drained.PlanSingle(r);
          if (gpu_single) {
            // The queue's fit test agrees with the plan: the largest single that fits.
            const int largest = constrained.LargestFreeGpus(constrained.TypeIndexOf(type),
                                                            excluded);
            SingleRequest bare{kAcme, type, largest};
            if (largest > 0) {
              ASSERT_OK(constrained.PlanSingle(bare, constraints));
            }
            if (largest < max_gpus) {
              bare.gpu_count = largest + 1;
              ASSERT_FALSE(constrained.PlanSingle(bare, constraints).ok());
            }
          }
        }
        SCOPED_TRACE(absl::StrCat("round ", round, " step ", step, ": ", what, " excluding ",
                                  excluded.size(), partitions.empty() ? "" : " with partition"));
        // Affinity messages describe the bound domains' free counts, which draining changes.
        bool compare_message = partitions.empty();
        ASSERT_EQ(Outcome(constrained, got, compare_message),
                  Outcome(drained, want, compare_message));
        if (got.ok()) {
          for (const PlacedInstance& p : got->instances) {
            if (!ListsDomain(excluded, p.domain)) continue;
            // Only a GPU single, only on a machine that was partly held.
            ASSERT_TRUE(gpu_single);
            ASSERT_FALSE(p.whole_machine);
            ++outcomes["OK in an excluded domain"];
          }
        }
        ++outcomes[got.ok()                                     ? "OK"
                   : GetQuotaViolation(got.status()).has_value() ? "QUOTA"
                                                                 : absl::StatusCodeToString(
                                                                       got.status().code())];
        if (got.ok() && uniform(0, 1) == 0) {  // both fleets move on identically
          std::vector<InstanceHandle> handles(got->size());
          constrained.Apply(*got, "", absl::MakeSpan(handles));
          drained.Apply(*want, "", absl::MakeSpan(handles));
          ASSERT_OK(constrained.CheckInvariants());
        }
      }
    }
  }
  // The loop must exercise both outcomes, or it proves little.
  EXPECT_GT(outcomes["OK"], 1000);
  EXPECT_GT(outcomes["RESOURCE_EXHAUSTED"], 500);
  EXPECT_GT(outcomes["QUOTA"], 50);
  EXPECT_GT(outcomes["OK in an excluded domain"], 50);
  for (const auto& [outcome, n] : outcomes) std::printf("%s: %d\n", outcome.c_str(), n);
}

}  // namespace
}  // namespace nvlsched::allocator
