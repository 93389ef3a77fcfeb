// Tests allocator/fleet_state.h: tray order, cells and index sync, slot reuse.
#include "allocator/fleet_state.h"

#include "allocator/invariants.h"
#include "tests/allocator/test_fleet.h"

namespace nvlsched::allocator {
namespace {

class FleetStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    type_ = s_.AppendType({"gb200", "gb200-tray", "GB200", 4});
    domain_ = s_.AppendDomain({"a", "rack a", "s1"});
  }

  MachineIndex Add(const std::string& id, int tray, int gpus = 4) {
    MachineIndex m = s_.machine_slots.Allocate(s_.machines);
    MachineRecord& rec = s_.machines[m];
    rec = MachineRecord{};
    rec.spec = {id, "a", tray, "gb200", gpus};
    rec.live = true;
    rec.domain = domain_;
    rec.type = type_;
    s_.machine_by_id.Insert(rec.spec.id, m);
    s_.LinkMachine(m);
    return m;
  }

  std::vector<std::string> TrayOrder() const {
    std::vector<std::string> out;
    for (MachineIndex m : s_.domains[domain_].machines_by_tray) out.push_back(s_.machines[m].spec.id);
    return out;
  }

  FleetState s_;
  TypeIndex type_ = kNoIndex;
  DomainIndex domain_ = kNoIndex;
};

TEST_F(FleetStateTest, LinkKeepsTrayOrderAndPositions) {
  Add("m5", 5);
  Add("m1", 1);
  Add("m3", 3);
  EXPECT_EQ(TrayOrder(), (std::vector<std::string>{"m1", "m3", "m5"}));
  EXPECT_EQ(s_.machines[s_.FindMachine("m5")].position, 2);
  s_.UnlinkMachine(s_.FindMachine("m1"));
  EXPECT_EQ(s_.machines[s_.FindMachine("m5")].position, 1);
  EXPECT_EQ(s_.cell(type_, domain_).free, 2);
  EXPECT_EQ(s_.type_states[type_].best_fit.FindBestFit(2), domain_);
}

TEST_F(FleetStateTest, CellsCountFreeMachinesAndFreeGpus) {
  MachineIndex a = Add("a0", 0);
  Add("a1", 1, /*gpus=*/2);
  const DomainCell& cell = s_.cell(type_, domain_);
  EXPECT_EQ(cell.total, 2);
  EXPECT_EQ(cell.free, 2);
  EXPECT_TRUE(cell.FullyFree());
  EXPECT_EQ(cell.granular_hist[4], 1);
  EXPECT_EQ(cell.granular_hist[2], 1);
  EXPECT_EQ(s_.type_states[type_].free_gpus, 6);
  EXPECT_EQ(s_.type_states[type_].LargestDomain(), 2);

  // Drain a0: RemoveContribution, change, AddContribution, SyncCell.
  s_.RemoveContribution(a);
  s_.machines[a].spec.state = MachineState::kMaintenance;
  s_.AddContribution(a);
  s_.SyncCell(type_, domain_);
  EXPECT_EQ(cell.free, 1);
  EXPECT_FALSE(cell.FullyFree());
  EXPECT_EQ(s_.type_states[type_].fully_free_domains, 0);
  EXPECT_TRUE(s_.type_states[type_].granular.Domains(2, /*fully_free_domain=*/false).Contains(domain_));
  EXPECT_OK(CheckFleetInvariants(s_));
}

// Apply and ReleaseClaims collect free machines taken or given back in a FreeMachineRun and
// update the cell once per run; a machine with another GPU count starts a new run.
TEST_F(FleetStateTest, FreeMachineRunsUpdateTheCellOncePerRun) {
  MachineIndex m[3] = {Add("r0", 0), Add("r1", 1, /*gpus=*/2), Add("r2", 2)};
  Add("r3", 3);
  const DomainCell& cell = s_.cell(type_, domain_);
  ClaimIndex c[3];
  FreeMachineRun take(/*taking=*/true);
  for (int i = 0; i < 3; ++i) {
    c[i] = s_.AllocateClaim();
    ClaimRecord& claim = s_.claims[c[i]];
    claim.machine = m[i];
    claim.gpu_count = s_.machines[m[i]].spec.gpu_count;
    claim.whole_machine = true;
    s_.HoldMachine(c[i], claim, s_.machines[m[i]], &take);
  }
  // GPU counts 4, 2, 4: each machine ended the previous run, so r0 and r1 are in the cell
  // and r2 is still pending.
  EXPECT_EQ(cell.free, 2);
  EXPECT_EQ(take.count, 1);
  EXPECT_TRUE(cell.free_mask.Test(2));
  s_.FlushRun(&take);
  EXPECT_EQ(take.count, 0);
  s_.SyncCell(type_, domain_);
  EXPECT_EQ(cell.free, 1);
  EXPECT_EQ(cell.free_mask.First(), 3);
  EXPECT_EQ(cell.granular_hist[4], 1);
  EXPECT_EQ(cell.granular_hist[2], 0);
  EXPECT_EQ(cell.granular_bits, 1u << 4);
  EXPECT_EQ(s_.type_states[type_].free_gpus, 4);
  EXPECT_EQ(s_.machines[m[2]].whole_claim, c[2]);

  FreeMachineRun give(/*taking=*/false);
  for (int i = 2; i >= 0; --i) s_.UnholdMachine(c[i], s_.claims[c[i]], s_.machines[m[i]], &give);
  s_.FlushRun(&give);
  s_.SyncCell(type_, domain_);
  EXPECT_EQ(cell.free, 4);
  EXPECT_TRUE(cell.FullyFree());
  EXPECT_EQ(cell.granular_hist[4], 3);
  EXPECT_EQ(cell.granular_hist[2], 1);
  EXPECT_EQ(s_.type_states[type_].free_gpus, 14);
  EXPECT_EQ(s_.machines[m[0]].whole_claim, kNoIndex);
}

TEST_F(FleetStateTest, AppendFreeMachinesTakesLowestTrays) {
  Add("t4", 4);
  Add("t0", 0);
  Add("t2", 2);
  Placement placement;
  s_.AppendFreeMachines(type_, domain_, 2, &placement);
  ASSERT_EQ(placement.size(), 2u);
  EXPECT_EQ(s_.machines[placement.instances[0].machine].spec.id, "t0");
  EXPECT_EQ(s_.machines[placement.instances[1].machine].spec.id, "t2");
  EXPECT_EQ(placement.instances[1].domain, domain_);
  EXPECT_EQ(placement.instances[1].gpu_count, 4);
}

TEST_F(FleetStateTest, SitesAndPartitionsAreInterned) {
  EXPECT_EQ(s_.InternSite("s1"), s_.FindSite("s1"));
  SiteIndex s2 = s_.InternSite("s2");
  EXPECT_EQ(s_.sites[s2], "s2");
  PartitionIndex p = s_.InternPartition("p");
  EXPECT_EQ(s_.InternPartition("p"), p);
  EXPECT_EQ(s_.FindPartition("q"), kNoIndex);
}

}  // namespace
}  // namespace nvlsched::allocator
