// Batches on a fleet of three sites, at random, against the reference model
// (reference_model.h): strict and cross-domain batches (FILL / MIN_DOMAINS / SPREAD), with a
// random site_id or none, on domains with and without spare trays, and releases. Every plan must equal the reference's choice (or
// refusal code and shortfall), no batch may span sites, and the invariants (per-site counts
// included) must hold after every step.
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "allocator/allocator.h"
#include "tests/allocator/reference_model.h"
#include "tests/allocator/test_fleet.h"

namespace nvlsched::allocator {
namespace {

using ::nvlsched::allocator::testing::ReferenceModel;

struct DomainSpec {
  const char* id;
  const char* site;
  int machines;
};
constexpr DomainSpec kFleet[] = {{"a0", "s1", 18}, {"a1", "s1", 7},  {"b0", "s2", 12},
                                 {"b1", "s2", 4},  {"b2", "s2", 9},  {"c0", "s3", 5},
                                 {"a2", "s1", 3}};
const char* const kSites[] = {"", "", "s1", "s2", "s3", "s9"};

void RunSeed(uint32_t seed) {
  SCOPED_TRACE(absl::StrCat("seed ", seed));
  std::mt19937 rng(seed);
  auto uniform = [&rng](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  Allocator alloc;
  ReferenceModel ref;
  ASSERT_OK(alloc.UpsertInstanceType({"gb200", "gb200-tray", "GB200", 4}));
  ref.AddType("gb200", 4);
  ASSERT_OK(alloc.UpsertTenant({"acme", "acme", "acme", {{"gb200", 1000}}}));
  ref.AddTenant("acme", {{"gb200", 1000}});
  for (const DomainSpec& d : kFleet) {
    // Spare trays in some domains (0-2, by seed): a site can place its machines less them.
    const int spares = uniform(0, 3) == 0 ? uniform(1, 2) : 0;
    ASSERT_OK(alloc.UpsertDomain({d.id, d.id, d.site, DomainState::kReady, "", spares}));
    ref.AddDomain(d.id, d.site, spares);
    for (int tray = 0; tray < d.machines; ++tray) {
      const std::string id = absl::StrCat(d.id, "-", tray);
      ASSERT_OK(alloc.UpsertMachine({id, d.id, tray, "gb200", 4}));
      ref.AddMachine(id, d.id, tray, "gb200", 4);
    }
  }
  std::vector<std::vector<std::pair<std::string, InstanceHandle>>> batches;
  int next_id = 0;
  int placed = 0;
  for (int step = 0; step < 600; ++step) {
    if (uniform(0, 99) < 40 && !batches.empty()) {
      const size_t i = static_cast<size_t>(uniform(0, static_cast<int>(batches.size()) - 1));
      std::vector<InstanceHandle> handles;
      std::vector<std::string> ids;
      for (const auto& [id, h] : batches[i]) {
        ids.push_back(id);
        handles.push_back(h);
      }
      absl::StatusOr<ReleasePlan> plan = alloc.PlanRelease(handles, /*machine_health_issue=*/false, /*clean=*/false);
      ASSERT_OK(plan);
      alloc.Apply(*plan);
      ASSERT_EQ(ref.Release(ids, false), absl::StatusCode::kOk);
      batches.erase(batches.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      BatchRequest r{"acme", "gb200", uniform(1, 30), uniform(0, 2) == 0,
                     static_cast<SpreadPolicy>(uniform(0, 2))};
      r.site_id = kSites[uniform(0, 5)];
      SCOPED_TRACE(absl::StrCat("step ", step, ": ", r.count,
                                r.topology_optimized ? " strict" : " cross", " site '",
                                r.site_id, "'"));
      absl::StatusOr<Placement> plan = alloc.PlanBatch(r);
      ReferenceModel::Decision want = ref.PlanBatch(r);
      ASSERT_EQ(plan.status().code(), want.code) << plan.status();
      if (!plan.ok()) {
        if (want.shortfall.has_value()) {
          EXPECT_EQ(GetCapacityShortfall(plan.status()), want.shortfall);
        }
      } else {
        std::vector<std::string> machines;
        std::set<std::string> sites;
        for (const PlacedInstance& p : plan->instances) {
          machines.push_back(alloc.MachineAt(p.machine).id);
          sites.insert(alloc.DomainAt(p.domain).site_id);
        }
        ASSERT_EQ(machines, want.machines);
        ASSERT_EQ(sites.size(), 1u) << "a batch spans sites";
        if (!r.site_id.empty()) EXPECT_EQ(*sites.begin(), r.site_id);
        std::vector<std::string> ids;
        for (size_t i = 0; i < machines.size(); ++i) ids.push_back(absl::StrCat("i", next_id++));
        std::vector<InstanceHandle> handles(ids.size());
        alloc.Apply(*plan, absl::StrCat("b", step), absl::MakeSpan(handles));
        ref.Apply(want, ids, absl::StrCat("b", step));
        std::vector<std::pair<std::string, InstanceHandle>> batch;
        for (size_t i = 0; i < ids.size(); ++i) batch.emplace_back(ids[i], handles[i]);
        batches.push_back(std::move(batch));
        ++placed;
      }
    }
    ASSERT_OK(alloc.CheckInvariants());
  }
  EXPECT_GT(placed, 50);
}

TEST(SiteRandomizedTest, BatchesOnThreeSitesMatchTheReferenceAndNeverSpanSites) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    RunSeed(seed);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace nvlsched::allocator
