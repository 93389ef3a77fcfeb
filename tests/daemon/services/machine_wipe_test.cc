// Cleaning cannot be skipped (issue 19, review finding), over gRPC with --require_cleaning: a
// machine whose last instance leaves while it is drained (MAINTENANCE, ERROR) waits for its
// wipe too (Machine.wipe_pending), so neither SetMachineState READY nor a fleet saying READY
// hands it out unwiped — both make it CLEANING — and CLEANING -> MAINTENANCE -> READY keeps
// the wipe. CompleteCleaning takes a drained machine that waits for a wipe, clears it and
// leaves the drain alone. The bit survives a restart.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/daemon/services/instance_test_fixture.h"

namespace nvlsched::daemon::testing {
namespace {

using ::testing::HasSubstr;

class MachineWipeTest : public InstanceServiceTest {
 protected:
  HarnessOptions Options() override {
    HarnessOptions options = InstanceServiceTest::Options();
    options.require_cleaning = true;
    return options;
  }

  v1::Machine MachineNow(const std::string& id) {
    absl::StatusOr<v1::Machine> m = GetMachine(id);
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? *m : v1::Machine();
  }
  grpc::Status SetState(const std::string& id, v1::MachineState state, const std::string& reason,
                        v1::Machine* out = nullptr) {
    v1::SetMachineStateRequest req;
    req.set_id(id);
    req.set_state(state);
    req.set_reason(reason);
    v1::Machine ignored;
    return inventory().SetMachineState(Context().get(), req, out != nullptr ? out : &ignored);
  }
  grpc::Status CompleteCleaning(const std::vector<std::string>& ids, bool failed = false,
                                const std::string& reason = "") {
    v1::CompleteCleaningRequest req;
    for (const std::string& id : ids) req.add_machine_ids(id);
    req.set_failed(failed);
    req.set_reason(reason);
    v1::CompleteCleaningResponse ignored;
    return inventory().CompleteCleaning(Context().get(), req, &ignored);
  }
  grpc::Status ApplyFleetSaying(v1::MachineState state) {
    v1::ApplyFleetRequest req;
    *req.mutable_fleet() = SmallFleet();
    for (v1::Machine& m : *req.mutable_fleet()->mutable_machines()) m.set_state(state);
    v1::ApplyFleetResponse ignored;
    return inventory().ApplyFleet(Context().get(), req, &ignored);
  }
  // A single on a whole machine, drained while held, then deleted: the machine stays
  // MAINTENANCE and now waits for its wipe.
  std::string DrainedThenReleased(const std::string& name) {
    const v1::Instance single = MustCreate(Single(name));
    EXPECT_TRUE(SetState(single.machine_id(), v1::MACHINE_STATE_MAINTENANCE, "bad DIMM").ok());
    EXPECT_TRUE(Delete(single.id()).ok());
    return single.machine_id();
  }
};

TEST_F(MachineWipeTest, AMachineDrainedWhileHeldWaitsForItsWipeAfterItsInstanceLeaves) {
  const std::string machine = DrainedThenReleased("drained");
  v1::Machine m = MachineNow(machine);
  EXPECT_EQ(m.state(), v1::MACHINE_STATE_MAINTENANCE);
  EXPECT_EQ(m.state_reason(), "bad DIMM");  // the drain stands
  EXPECT_TRUE(m.wipe_pending());
  ASSERT_TRUE(Invariants().ok());

  // Undrained: not READY but CLEANING; never placed until wiped.
  v1::Machine undrained;
  ASSERT_TRUE(SetState(machine, v1::MACHINE_STATE_READY, "DIMM replaced", &undrained).ok());
  EXPECT_EQ(undrained.state(), v1::MACHINE_STATE_CLEANING);
  EXPECT_TRUE(undrained.wipe_pending());
  EXPECT_THAT(undrained.state_reason(), HasSubstr("not been reported wiped"));
  EXPECT_THAT(undrained.state_reason(), HasSubstr("DIMM replaced"));
  EXPECT_EQ(undrained.free_gpus(), 0);
  // Asking READY again is the CLEANING rule: refused.
  grpc::Status again = SetState(machine, v1::MACHINE_STATE_READY, "");
  EXPECT_EQ(again.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(again.error_message(), HasSubstr("CompleteCleaning"));

  ASSERT_TRUE(CompleteCleaning({machine}).ok());
  m = MachineNow(machine);
  EXPECT_EQ(m.state(), v1::MACHINE_STATE_READY);
  EXPECT_FALSE(m.wipe_pending());
  ASSERT_TRUE(Invariants().ok());
}

TEST_F(MachineWipeTest, CleaningThenMaintenanceThenReadyKeepsTheWipe) {
  const v1::Instance single = MustCreate(Single("one"));
  ASSERT_TRUE(Delete(single.id()).ok());
  const std::string machine = single.machine_id();
  ASSERT_EQ(MachineNow(machine).state(), v1::MACHINE_STATE_CLEANING);
  ASSERT_TRUE(MachineNow(machine).wipe_pending());
  ASSERT_TRUE(SetState(machine, v1::MACHINE_STATE_MAINTENANCE, "rack work").ok());
  v1::Machine m = MachineNow(machine);
  EXPECT_EQ(m.state(), v1::MACHINE_STATE_MAINTENANCE);
  EXPECT_TRUE(m.wipe_pending());
  ASSERT_TRUE(SetState(machine, v1::MACHINE_STATE_ERROR, "PSU").ok());
  EXPECT_TRUE(MachineNow(machine).wipe_pending());
  v1::Machine back;
  ASSERT_TRUE(SetState(machine, v1::MACHINE_STATE_READY, "", &back).ok());
  EXPECT_EQ(back.state(), v1::MACHINE_STATE_CLEANING);
  EXPECT_TRUE(back.wipe_pending());
  ASSERT_TRUE(Invariants().ok());
}

TEST_F(MachineWipeTest, AFleetSayingReadyMakesADrainedUnwipedMachineCleaning) {
  const std::string machine = DrainedThenReleased("drained");
  const std::string other = f::MachineId(2, 3);
  ASSERT_TRUE(SetState(other, v1::MACHINE_STATE_MAINTENANCE, "drained, never held").ok());
  // A fleet saying MAINTENANCE changes nothing of the wipe.
  ASSERT_TRUE(ApplyFleetSaying(v1::MACHINE_STATE_MAINTENANCE).ok());
  EXPECT_TRUE(MachineNow(machine).wipe_pending());
  ASSERT_TRUE(ApplyFleetSaying(v1::MACHINE_STATE_READY).ok());
  v1::Machine m = MachineNow(machine);
  EXPECT_EQ(m.state(), v1::MACHINE_STATE_CLEANING);
  EXPECT_TRUE(m.wipe_pending());
  // A machine that held nothing since its last wipe is READY as the fleet says.
  EXPECT_EQ(MachineNow(other).state(), v1::MACHINE_STATE_READY);
  EXPECT_FALSE(MachineNow(other).wipe_pending());
  // The wipe_pending of a fleet file is ignored (read-only).
  v1::ApplyFleetRequest req;
  *req.mutable_fleet() = SmallFleet();
  for (v1::Machine& fm : *req.mutable_fleet()->mutable_machines()) fm.set_wipe_pending(true);
  v1::ApplyFleetResponse applied;
  ASSERT_TRUE(inventory().ApplyFleet(Context().get(), req, &applied).ok());
  EXPECT_FALSE(MachineNow(other).wipe_pending());
  ASSERT_TRUE(Invariants().ok());
}

TEST_F(MachineWipeTest, CompleteCleaningTakesADrainedMachineAndLeavesTheDrain) {
  const std::string machine = DrainedThenReleased("wiped-ok");
  const std::string failed = DrainedThenReleased("wipe-failed");
  const std::string never = f::MachineId(2, 3);
  // A machine that waits for no wipe is refused, and then nothing changes.
  grpc::Status refused = CompleteCleaning({machine, never});
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(refused.error_message(), HasSubstr("waits for no wipe"));
  EXPECT_TRUE(MachineNow(machine).wipe_pending());

  ASSERT_TRUE(CompleteCleaning({machine}).ok());
  v1::Machine m = MachineNow(machine);
  EXPECT_EQ(m.state(), v1::MACHINE_STATE_MAINTENANCE);
  EXPECT_EQ(m.state_reason(), "bad DIMM");
  EXPECT_FALSE(m.wipe_pending());
  // Wiped: the operator's undrain is READY now.
  v1::Machine undrained;
  ASSERT_TRUE(SetState(machine, v1::MACHINE_STATE_READY, "", &undrained).ok());
  EXPECT_EQ(undrained.state(), v1::MACHINE_STATE_READY);

  ASSERT_TRUE(CompleteCleaning({failed}, /*failed=*/true, "secure erase failed").ok());
  m = MachineNow(failed);
  EXPECT_EQ(m.state(), v1::MACHINE_STATE_MAINTENANCE);
  EXPECT_EQ(m.state_reason(), "cleaning failed: secure erase failed");
  EXPECT_FALSE(m.wipe_pending());
  ASSERT_TRUE(Invariants().ok());
}

TEST_F(MachineWipeTest, AHealthIssueAndAReplacementLeaveTheWipePending) {
  const v1::Instance sick = MustCreate(Single("sick"));
  ASSERT_TRUE(Delete(sick.id(), /*machine_health_issue=*/true).ok());
  v1::Machine m = MachineNow(sick.machine_id());
  EXPECT_EQ(m.state(), v1::MACHINE_STATE_MAINTENANCE);
  EXPECT_TRUE(m.wipe_pending());
  v1::Machine back;
  ASSERT_TRUE(SetState(sick.machine_id(), v1::MACHINE_STATE_READY, "repaired", &back).ok());
  EXPECT_EQ(back.state(), v1::MACHINE_STATE_CLEANING);

  // ReplaceInstance off a drained machine: the old one waits for its wipe.
  const v1::Instance moving = MustCreate(Single("moving"));
  ASSERT_TRUE(SetState(moving.machine_id(), v1::MACHINE_STATE_MAINTENANCE, "fan").ok());
  v1::ReplaceInstanceRequest req;
  req.set_org(f::kOrg);
  req.set_id(moving.id());
  v1::Instance moved;
  grpc::Status status = instances().ReplaceInstance(Context().get(), req, &moved);
  ASSERT_TRUE(status.ok()) << status.error_message();
  m = MachineNow(moving.machine_id());
  EXPECT_EQ(m.state(), v1::MACHINE_STATE_MAINTENANCE);
  EXPECT_TRUE(m.wipe_pending());
  ASSERT_TRUE(Invariants().ok());
}

TEST_F(MachineWipeTest, TheWipeSurvivesARestart) {
  const std::string drained = DrainedThenReleased("drained");
  const v1::Instance single = MustCreate(Single("cleaning"));
  ASSERT_TRUE(Delete(single.id()).ok());
  Restart();
  EXPECT_TRUE(MachineNow(drained).wipe_pending());
  EXPECT_EQ(MachineNow(drained).state(), v1::MACHINE_STATE_MAINTENANCE);
  EXPECT_TRUE(MachineNow(single.machine_id()).wipe_pending());
  ASSERT_TRUE(Invariants().ok());
  v1::Machine back;
  ASSERT_TRUE(SetState(drained, v1::MACHINE_STATE_READY, "", &back).ok());
  EXPECT_EQ(back.state(), v1::MACHINE_STATE_CLEANING);
  ASSERT_TRUE(CompleteCleaning({drained}).ok());
  Restart();
  EXPECT_FALSE(MachineNow(drained).wipe_pending());
  EXPECT_EQ(MachineNow(drained).state(), v1::MACHINE_STATE_READY);
  ASSERT_TRUE(Invariants().ok());
}

}  // namespace
}  // namespace nvlsched::daemon::testing
