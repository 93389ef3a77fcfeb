// Tests allocator/invariants.h: a consistent FleetState passes; each kind of corruption is
// reported with the right code and names what is at fault.
#include "allocator/invariants.h"

#include <map>
#include <string>

#include "allocator/fleet_state.h"
#include "tests/allocator/test_fleet.h"

namespace nvlsched::allocator {
namespace {

// Two domains of 3 gb200 machines, built through FleetState's own maintenance API.
// Instances get test names through FleetState's InstanceNamer, as the daemon's ids would.
class InvariantsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    s_.instance_namer = [this](InstanceHandle h) {
      auto it = names_.find(h);
      return it == names_.end() ? std::string() : it->second;
    };
    type_ = s_.AppendType({"gb200", "gb200-tray", "GB200", 4});
    for (const char* d : {"a", "b"}) {
      DomainIndex domain = s_.AppendDomain({d, std::string("rack ") + d, "s1"});
      for (int tray = 0; tray < 3; ++tray) {
        MachineIndex m = s_.machine_slots.Allocate(s_.machines);
        MachineRecord& rec = s_.machines[m];
        rec.spec = {std::string(d) + "-" + std::to_string(tray), d, tray, "gb200", 4};
        rec.live = true;
        rec.domain = domain;
        rec.type = type_;
        s_.machine_by_id.Insert(rec.spec.id, m);
        s_.LinkMachine(m);
      }
    }
    s_.tenants.emplace_back();
    s_.tenants[0].spec.id = "acme";
    s_.tenant_by_id.emplace("acme", 0);
    s_.SetTenantQuota(0);
  }

  ClaimIndex Attach(const std::string& id, MachineIndex m, bool whole, int gpus,
                    const std::string& batch = "") {
    ClaimIndex c = s_.AllocateClaim();
    ClaimRecord& claim = s_.claims[c];
    claim.batch = batch.empty() ? kNoIndex : BatchNamed(batch);
    claim.tenant = 0;
    claim.type = type_;
    claim.machine = m;
    claim.whole_machine = whole;
    claim.gpu_count = gpus;
    s_.AttachClaim(c);
    s_.SyncCell(type_, s_.machines[m].domain);
    names_[s_.HandleOf(c)] = id;
    return c;
  }

  BatchIndex BatchNamed(const std::string& id) {
    auto [it, inserted] = batches_.try_emplace(id, kNoIndex);
    if (inserted) it->second = s_.AddBatch(id);
    return it->second;
  }

  FleetState s_;
  TypeIndex type_ = kNoIndex;
  std::map<InstanceHandle, std::string> names_;
  std::map<std::string, BatchIndex> batches_;
};

TEST_F(InvariantsTest, AConsistentFleetPasses) {
  Attach("w", 0, true, 4, "batch");
  Attach("w2", 1, true, 4, "batch");
  Attach("g", 2, false, 3);
  EXPECT_OK(CheckFleetInvariants(s_));
}

TEST_F(InvariantsTest, AStaleFreeCountIsInternalAndNamesTheDomain) {
  ++s_.type_states[type_].cells[1].free;  // as if a release forgot to SyncCell
  EXPECT_STATUS(CheckFleetInvariants(s_), absl::StatusCode::kInternal,
                "invariant 4: the free count of gb200-tray machines in domain rack b");
}

TEST_F(InvariantsTest, AStalePerSiteFreeCountIsInternalAndNamesTheSite) {
  EXPECT_EQ(s_.type_states[type_].site_free[s_.FindSite("s1")], 6);
  --s_.type_states[type_].site_free[s_.FindSite("s1")];
  EXPECT_STATUS(CheckFleetInvariants(s_), absl::StatusCode::kInternal,
                "invariant 4: placeable (free less spares) gb200-tray machines in site \"s1\" is 5 in "
                "the index but 6");
}

TEST_F(InvariantsTest, PerSiteCountsFollowADomainMovedToAnotherSite) {
  Attach("w", 0, true, 4);
  s_.SetDomainSpec(0, {"a", "rack a", "s2"});
  const TypeState& ts = s_.type_states[type_];
  EXPECT_EQ(ts.site_free[s_.FindSite("s1")], 3);
  EXPECT_EQ(ts.site_total[s_.FindSite("s1")], 3);
  EXPECT_EQ(ts.site_free[s_.FindSite("s2")], 2);
  EXPECT_EQ(ts.site_total[s_.FindSite("s2")], 3);
  EXPECT_OK(CheckFleetInvariants(s_));
  --const_cast<TypeState&>(ts).site_total[s_.FindSite("s2")];
  EXPECT_STATUS(CheckFleetInvariants(s_), absl::StatusCode::kInternal,
                "gb200-tray machines in site \"s2\" is 2 in the index but 3 on recount");
  ++const_cast<TypeState&>(ts).site_total[s_.FindSite("s2")];
  EXPECT_OK(CheckFleetInvariants(s_));
  // A spare tray in the moved domain leaves s2 one placeable and one machine less to place.
  Domain spec{"a", "rack a", "s2"};
  spec.spare_machines = 1;
  s_.SetDomainSpec(0, spec);
  EXPECT_EQ(ts.site_free[s_.FindSite("s2")], 1);
  EXPECT_EQ(ts.site_capacity[s_.FindSite("s2")], 2);
  EXPECT_EQ(ts.site_total[s_.FindSite("s2")], 3);
  EXPECT_OK(CheckFleetInvariants(s_));
  --const_cast<TypeState&>(ts).site_capacity[s_.FindSite("s2")];
  EXPECT_STATUS(CheckFleetInvariants(s_), absl::StatusCode::kInternal,
                "gb200-tray machines less spares in site \"s2\" is 1 in the index but 2");
}

TEST_F(InvariantsTest, AMissingBucketMoveIsInternal) {
  s_.type_states[type_].best_fit.Update(0, 3, 2);
  EXPECT_STATUS(CheckFleetInvariants(s_), absl::StatusCode::kInternal, "best-fit bucket");
}

TEST_F(InvariantsTest, AStaleGpuGranularIndexIsInternal) {
  s_.type_states[type_].granular.Erase(4, /*fully_free_domain=*/true, 0);
  EXPECT_STATUS(CheckFleetInvariants(s_), absl::StatusCode::kInternal,
                "domain rack a is missing from the GPU-granular index for 4 free GPUs");
}

TEST_F(InvariantsTest, MachineHoldingsThatDisagreeWithInstancesAreInternal) {
  Attach("g", 0, false, 2);
  s_.machines[0].granular_gpus = 1;
  EXPECT_STATUS(CheckFleetInvariants(s_), absl::StatusCode::kInternal,
                "the holdings recorded on machine a-0 disagree with its instances");
}

TEST_F(InvariantsTest, TwoWholeInstancesOnOneMachineBreakInvariantOne) {
  Attach("first", 0, true, 4);
  Attach("second", 0, true, 4);  // AttachClaim does not validate: RestoreInstance does
  EXPECT_STATUS(CheckFleetInvariants(s_), absl::StatusCode::kFailedPrecondition,
                "invariant 1: machine a-0 is held whole by two instances, first and second");
}

TEST_F(InvariantsTest, WholeAndGranularOnOneMachineBreakInvariantOne) {
  Attach("g", 1, false, 1);
  Attach("w", 1, true, 4);
  EXPECT_STATUS(CheckFleetInvariants(s_), absl::StatusCode::kFailedPrecondition,
                "invariant 1: machine a-1 is held whole by instance w and also by 1 GPU-granular");
}

TEST_F(InvariantsTest, TooManyGpusBreakInvariantOne) {
  Attach("g1", 2, false, 3);
  Attach("g2", 2, false, 2);
  EXPECT_STATUS(CheckFleetInvariants(s_), absl::StatusCode::kFailedPrecondition,
                "invariant 1: GPU-granular instances hold 5 GPUs of machine a-2, which has 4");
}

TEST_F(InvariantsTest, AStrictBatchAcrossDomainsBreaksInvariantTwo) {
  Attach("x", 0, true, 4, "b1");
  Attach("y", 3, true, 4, "b1");
  EXPECT_STATUS(CheckFleetInvariants(s_), absl::StatusCode::kFailedPrecondition,
                "invariant 2: topology-optimized batch b1 spans NVLink domains");
}

TEST_F(InvariantsTest, ABatchCountThatDisagreesIsInternal) {
  Attach("x", 0, true, 4, "b1");
  Attach("y", 1, true, 4, "b1");
  --s_.batches[batches_["b1"]].live_claims;
  EXPECT_STATUS(CheckFleetInvariants(s_), absl::StatusCode::kInternal,
                "the number of live instances of batch b1 is 1 in the index but 2 on recount");
}

TEST_F(InvariantsTest, AnInstanceOfAnEndedBatchIsInternal) {
  Attach("x", 0, true, 4, "b1");
  s_.batches[batches_["b1"]].live = false;
  EXPECT_STATUS(CheckFleetInvariants(s_), absl::StatusCode::kInternal,
                "instance x belongs to a batch that has ended");
}

TEST_F(InvariantsTest, AnInstanceItsHandleDoesNotFindIsInternal) {
  ClaimIndex c = Attach("x", 0, true, 4);
  s_.claims[c].generation = 0;
  EXPECT_STATUS(CheckFleetInvariants(s_), absl::StatusCode::kInternal,
                "is not found by its own handle");
}

TEST_F(InvariantsTest, QuotaUsageThatDisagreesIsInternal) {
  Attach("w", 0, true, 4);
  s_.tenants[0].used_gpus[type_] = 3;
  EXPECT_STATUS(CheckFleetInvariants(s_), absl::StatusCode::kInternal,
                "quota usage of tenant acme for gb200-tray (GPUs) is 3 in the index but 4 on recount");
}

TEST_F(InvariantsTest, ABrokenTrayOrderIsInternal) {
  std::swap(s_.domains[0].machines_by_tray[0], s_.domains[0].machines_by_tray[1]);
  EXPECT_STATUS(CheckFleetInvariants(s_), absl::StatusCode::kInternal, "out of tray order in domain rack a");
}

}  // namespace
}  // namespace nvlsched::allocator
