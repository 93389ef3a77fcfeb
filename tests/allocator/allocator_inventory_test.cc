// Tests allocator/allocator_inventory.cc: upserts, drains, removals, and that a rejected
// change changes nothing.
#include "allocator/allocator.h"
#include "tests/allocator/test_fleet.h"

namespace nvlsched::allocator {
namespace {

using ::nvlsched::allocator::testing::kAcme;
using ::nvlsched::allocator::testing::kGb200;
using ::nvlsched::allocator::testing::TestFleet;

// Runs `change`, expects it to fail with code + substring, and checks nothing changed.
template <typename Change>
void ExpectRejectedWithoutEffect(TestFleet& fleet, Change change, absl::StatusCode code,
                                 const std::string& substring) {
  std::string before = testing::Snapshot(fleet.alloc());
  JournalMark mark = fleet.alloc().Mark();
  EXPECT_STATUS(change(fleet.alloc()), code, substring);
  EXPECT_EQ(testing::Snapshot(fleet.alloc()), before);
  EXPECT_EQ(fleet.alloc().Mark().position, mark.position) << "a rejected change was journaled";
  EXPECT_OK(fleet.alloc().CheckInvariants());
}

TEST(AllocatorInventoryTest, InstanceTypeValidation) {
  TestFleet fleet({{"a", "s1", 1}});
  using A = Allocator;
  ExpectRejectedWithoutEffect(
      fleet, [](A& a) { return a.UpsertInstanceType({"", "x", "X", 4}); },
      absl::StatusCode::kInvalidArgument, "instance type id must not be empty");
  ExpectRejectedWithoutEffect(
      fleet, [](A& a) { return a.UpsertInstanceType({"big", "x", "X", 17}); },
      absl::StatusCode::kInvalidArgument, "has gpus_per_machine 17; it must be 1..16");
  ExpectRejectedWithoutEffect(
      fleet, [](A& a) { return a.UpsertInstanceType({"neg", "x", "X", 4, 1, -5}); },
      absl::StatusCode::kInvalidArgument, "negative price");
  ExpectRejectedWithoutEffect(
      fleet, [](A& a) { return a.UpsertInstanceType({kGb200, "gb200-tray", "GB200", 8}); },
      absl::StatusCode::kFailedPrecondition,
      "has 1 machines; gpus_per_machine can change only while no machine has the type");
  // Renaming and repricing are fine.
  ASSERT_OK(fleet.alloc().UpsertInstanceType({kGb200, "gb200-nvl72", "GB200", 4, 1, 5000000}));
  EXPECT_EQ(fleet.alloc().FindInstanceType(kGb200)->price_per_hour_micros, 5000000);
}

TEST(AllocatorInventoryTest, MachineValidation) {
  TestFleet fleet({{"a", "s1", 2}});
  using A = Allocator;
  ExpectRejectedWithoutEffect(
      fleet, [](A& a) { return a.UpsertMachine({"m", "nowhere", 0, kGb200, 4}); },
      absl::StatusCode::kNotFound, "domain \"nowhere\" of machine m is not known");
  ExpectRejectedWithoutEffect(
      fleet, [](A& a) { return a.UpsertMachine({"m", "a", 5, "b300", 4}); },
      absl::StatusCode::kNotFound, "instance type \"b300\" of machine m is not known");
  ExpectRejectedWithoutEffect(
      fleet, [](A& a) { return a.UpsertMachine({"m", "a", 5, kGb200, 5}); },
      absl::StatusCode::kInvalidArgument, "has gpu_count 5; instance type gb200-tray allows 1..4");
  ExpectRejectedWithoutEffect(
      fleet, [](A& a) { return a.UpsertMachine({"m", "a", 1, kGb200, 4}); },
      absl::StatusCode::kInvalidArgument, "tray index 1 in domain rack a is already taken by machine a-1");
  ExpectRejectedWithoutEffect(
      fleet, [](A& a) { return a.UpsertMachine({"m", "a", -1, kGb200, 4}); },
      absl::StatusCode::kInvalidArgument, "tray_index -1; it must be >= 0");
  ExpectRejectedWithoutEffect(
      fleet, [](A& a) { return a.UpsertMachine({"", "a", 9, kGb200, 4}); },
      absl::StatusCode::kInvalidArgument, "machine id must not be empty");
}

TEST(AllocatorInventoryTest, HeldMachinesKeepTheirPlaceButMayChangeStateAndLabels) {
  TestFleet fleet({{"a", "s1", 2}, {"b", "s1", 2}});
  fleet.HoldWhole({"a-0"});
  Machine m = *fleet.alloc().FindMachine("a-0");
  m.labels["rack-row"] = "7";
  m.state_reason = "labelled";
  ASSERT_OK(fleet.alloc().UpsertMachine(m));
  EXPECT_EQ(fleet.alloc().FindMachine("a-0")->labels.at("rack-row"), "7");
  Machine moved = m;
  moved.domain_id = "b";
  moved.tray_index = 9;
  ExpectRejectedWithoutEffect(
      fleet, [&](Allocator& a) { return a.UpsertMachine(moved); },
      absl::StatusCode::kFailedPrecondition,
      "machine a-0 is held by instance hold-a-0; its domain, tray index, instance type and GPU "
      "count can change only while nothing holds it");
}

TEST(AllocatorInventoryTest, AnUnheldMachineCanMoveBetweenDomains) {
  TestFleet fleet({{"a", "s1", 2}, {"b", "s1", 2}});
  Machine m = *fleet.alloc().FindMachine("a-1");
  m.domain_id = "b";
  m.tray_index = 0;
  ExpectRejectedWithoutEffect(
      fleet, [&](Allocator& a) { return a.UpsertMachine(m); }, absl::StatusCode::kInvalidArgument,
      "tray index 0 in domain rack b is already taken by machine b-0");
  m.tray_index = 2;
  ASSERT_OK(fleet.alloc().UpsertMachine(m));
  EXPECT_EQ(fleet.FreeIn("a"), 1);
  EXPECT_EQ(fleet.FreeIn("b"), 3);
  EXPECT_OK(fleet.alloc().CheckInvariants());
}

TEST(AllocatorInventoryTest, DrainingAHeldMachineDoesNotEvictAndKeepsItOutOfThePool) {
  TestFleet fleet({{"a", "s1", 2}});
  ASSERT_OK(fleet.PlaceBatch(1));
  std::string instance = fleet.last_instances()[0];
  ASSERT_OK(fleet.alloc().SetMachineState("a-0", MachineState::kMaintenance, "firmware"));
  EXPECT_TRUE(fleet.Find(instance).has_value());
  ASSERT_OK(fleet.Release({instance}));
  EXPECT_EQ(fleet.FreeIn("a"), 1);  // drained: not back in the pool
  EXPECT_EQ(fleet.alloc().FindMachine("a-0")->state_reason, "firmware");
  ASSERT_OK(fleet.alloc().SetMachineState("a-0", MachineState::kReady, ""));
  EXPECT_EQ(fleet.FreeIn("a"), 2);
  EXPECT_STATUS(fleet.alloc().SetMachineState("zz", MachineState::kReady, ""),
                absl::StatusCode::kNotFound, "machine \"zz\" is not known");
  EXPECT_STATUS(fleet.alloc().SetMachineState("a-0", static_cast<MachineState>(9), ""),
                absl::StatusCode::kInvalidArgument, "unknown machine state");
  EXPECT_OK(fleet.alloc().CheckInvariants());
}

TEST(AllocatorInventoryTest, RemoveMachineOnlyWhenNothingHoldsIt) {
  TestFleet fleet({{"a", "s1", 3}});
  std::string partial = fleet.HoldGpus("a-1", 2);
  ExpectRejectedWithoutEffect(
      fleet, [](Allocator& a) { return a.RemoveMachine("a-1"); },
      absl::StatusCode::kFailedPrecondition,
      "machine a-1 is held by 1 GPU-granular instance(s) holding 2 GPUs; delete those instances first");
  ExpectRejectedWithoutEffect(
      fleet, [](Allocator& a) { return a.RemoveMachine("nope"); }, absl::StatusCode::kNotFound,
      "machine \"nope\" is not known");
  ASSERT_OK(fleet.alloc().RemoveMachine("a-0"));
  EXPECT_EQ(fleet.alloc().FindMachine("a-0"), nullptr);
  EXPECT_EQ(fleet.alloc().machine_count(), 2u);
  ASSERT_OK(fleet.Release({partial}));
  ASSERT_OK(fleet.alloc().RemoveMachine("a-1"));
  // The freed tray can be reused, and the machine id too.
  ASSERT_OK(fleet.alloc().UpsertMachine({"a-0", "a", 0, kGb200, 4}));
  EXPECT_EQ(fleet.FreeIn("a"), 2);
  EXPECT_OK(fleet.alloc().CheckInvariants());
}

TEST(AllocatorInventoryTest, TenantValidation) {
  TestFleet fleet({{"a", "s1", 1}});
  ExpectRejectedWithoutEffect(
      fleet, [](Allocator& a) { return a.UpsertTenant({"t", "o", "n", {{"b300", 1}}}); },
      absl::StatusCode::kNotFound, "quota for instance type \"b300\", which is not known");
  ExpectRejectedWithoutEffect(
      fleet, [](Allocator& a) { return a.UpsertTenant({"t", "o", "n", {{kGb200, -1}}}); },
      absl::StatusCode::kInvalidArgument, "has quota -1 for instance type gb200; it must be >= 0");
  ExpectRejectedWithoutEffect(
      fleet, [](Allocator& a) { return a.UpsertTenant({"", "o", "n", {}}); },
      absl::StatusCode::kInvalidArgument, "tenant id must not be empty");
  // Lowering a quota below usage evicts nothing; new requests fail.
  fleet.HoldWhole({"a-0"});
  ASSERT_OK(fleet.alloc().UpsertTenant({kAcme, "acme-org", "acme", {{kGb200, 0}}}));
  EXPECT_EQ(fleet.alloc().instance_count(), 1u);
  EXPECT_STATUS(fleet.PlaceSingle(1), absl::StatusCode::kResourceExhausted, "quota exceeded");
}

TEST(AllocatorInventoryTest, TenantPriorityIsKeptReadBackAndRolledBack) {
  TestFleet fleet({{"a", "s1", 1}});
  Tenant globex{"globex", "globex-org", "Globex", {{kGb200, 1}}};
  globex.priority = 250;
  ASSERT_OK(fleet.alloc().UpsertTenant(globex));
  ASSERT_NE(fleet.alloc().FindTenant("globex"), nullptr);
  EXPECT_EQ(fleet.alloc().FindTenant("globex")->priority, 250);
  EXPECT_EQ(fleet.alloc().FindTenant(kAcme)->priority, 0);
  int32_t listed = 0;
  fleet.alloc().ForEachTenant([&](const Tenant& t) {
    if (t.id == "globex") listed = t.priority;
  });
  EXPECT_EQ(listed, 250);

  // A rolled-back change restores the priority; priority alone is a change of the tenant.
  JournalMark mark = fleet.alloc().Mark();
  globex.priority = -1000;
  ASSERT_OK(fleet.alloc().UpsertTenant(globex));
  EXPECT_EQ(fleet.alloc().FindTenant("globex")->priority, -1000);
  fleet.alloc().RollbackTo(mark);
  EXPECT_EQ(fleet.alloc().FindTenant("globex")->priority, 250);
  EXPECT_OK(fleet.alloc().CheckInvariants());
}

TEST(AllocatorInventoryTest, DomainUpsertRenamesAndMovesSites) {
  TestFleet fleet({{"a", "s1", 2}});
  ExpectRejectedWithoutEffect(
      fleet, [](Allocator& a) { return a.UpsertDomain({"", "x", "s1"}); },
      absl::StatusCode::kInvalidArgument, "domain id must not be empty");
  ASSERT_OK(fleet.alloc().UpsertDomain({"a", "rack A1", "s2"}));
  EXPECT_EQ(fleet.alloc().FindDomain("a")->name, "rack A1");
  EXPECT_EQ(*fleet.PlaceSingle(0, "s2"), "a-0");
}

}  // namespace
}  // namespace nvlsched::allocator
