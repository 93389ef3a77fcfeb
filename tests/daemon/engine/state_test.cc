// Tests daemon/state.h: each instance record keeps the allocator's handle for it, handles map
// back to ids (so the allocator's messages name instances by id), and RollbackTo puts
// records, handles and ids back exactly, both ways.
#include "daemon/engine/state.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/types/span.h"

namespace nvlsched::daemon {
namespace {

namespace v1 = ::nvlsched::v1;
using ::testing::HasSubstr;

// One domain "d" of four 4-GPU machines m0..m3; tenant "acme".
class StateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    allocator::Allocator& alloc = state_.allocator();
    ASSERT_TRUE(alloc.UpsertInstanceType({"gb200", "gb200-tray", "GB200", 4}).ok());
    ASSERT_TRUE(alloc.UpsertDomain({"d", "rack d", "s1"}).ok());
    for (int tray = 0; tray < 4; ++tray) {
      ASSERT_TRUE(alloc.UpsertMachine({"m" + std::to_string(tray), "d", tray, "gb200", 4}).ok());
    }
    ASSERT_TRUE(alloc.UpsertTenant({"acme", "org", "acme", {{"gb200", 100}}}).ok());
    state_.ClearJournal();
  }

  // Places a strict batch of `count` and records instances "<prefix>0", "<prefix>1", ...
  std::vector<std::string> Create(int count, const std::string& prefix) {
    absl::StatusOr<allocator::Placement> plan =
        state_.allocator().PlanBatch({"acme", "gb200", count});
    EXPECT_TRUE(plan.ok()) << plan.status();
    if (!plan.ok()) return {};
    std::vector<allocator::InstanceHandle> handles(plan->size());
    state_.allocator().Apply(*plan, "batch-" + prefix, absl::MakeSpan(handles));
    std::vector<std::string> ids;
    for (size_t i = 0; i < handles.size(); ++i) {
      v1::Instance record;
      record.set_id(prefix + std::to_string(i));
      record.set_tenant_id("acme");
      record.set_name(record.id());
      record.set_machine_id(state_.allocator().MachineAt(plan->instances[i].machine).id);
      state_.PutInstance(record, handles[i]);
      ids.push_back(record.id());
    }
    return ids;
  }

  allocator::InstanceHandle HandleOf(const std::string& id) const {
    const State::InstanceEntry* entry = state_.FindInstance(id);
    return entry == nullptr ? allocator::InstanceHandle{} : entry->handle;
  }

  // Releases the instances and erases their records, as BatchDeleteInstances does.
  absl::Status Delete(const std::vector<std::string>& ids, bool health_issue = false) {
    std::vector<allocator::InstanceHandle> handles;
    for (const std::string& id : ids) handles.push_back(HandleOf(id));
    absl::StatusOr<allocator::ReleasePlan> plan =
        state_.allocator().PlanRelease(handles, health_issue);
    if (!plan.ok()) return plan.status();
    state_.allocator().Apply(*plan);
    for (const std::string& id : ids) state_.EraseInstance(id);
    return absl::OkStatus();
  }

  State state_;
};

TEST_F(StateTest, RecordsKeepTheirHandlesAndHandlesMapBackToIds) {
  std::vector<std::string> ids = Create(2, "i");
  ASSERT_EQ(ids.size(), 2u);
  for (const std::string& id : ids) {
    allocator::InstanceHandle handle = HandleOf(id);
    EXPECT_EQ(state_.InstanceIdOf(handle), id);
    std::optional<allocator::InstanceClaim> claim = state_.allocator().FindInstance(handle);
    ASSERT_TRUE(claim.has_value()) << id;
    EXPECT_EQ(claim->machine_id, state_.FindInstance(id)->record->machine_id());
  }
  EXPECT_NE(HandleOf(ids[0]), HandleOf(ids[1]));
  EXPECT_EQ(state_.InstanceIdOf(allocator::InstanceHandle{}), "");
}

TEST_F(StateTest, TheAllocatorNamesInstancesByTheirIds) {
  std::vector<std::string> ids = Create(2, "i");
  absl::StatusOr<allocator::ReleasePlan> twice =
      state_.allocator().PlanRelease({HandleOf(ids[1]), HandleOf(ids[1])}, false);
  EXPECT_EQ(twice.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(twice.status().message()),
              HasSubstr("instance \"i1\" is listed twice; list each instance once"));

  std::string machine = state_.FindInstance(ids[0])->record->machine_id();
  ASSERT_TRUE(Delete({ids[0]}, /*health_issue=*/true).ok());
  EXPECT_EQ(state_.allocator().FindMachine(machine)->state_reason,
            "health issue reported when instance i0 was released");
  EXPECT_EQ(state_.InstanceIdOf(HandleOf(ids[0])), "");  // the record is gone
}

TEST_F(StateTest, RollbackRestoresRecordsHandlesAndIdsBothWays) {
  std::vector<std::string> kept = Create(2, "k");
  state_.ClearJournal();
  const allocator::InstanceHandle k0 = HandleOf(kept[0]);
  const allocator::InstanceHandle k1 = HandleOf(kept[1]);

  State::JournalMark mark = state_.Mark();
  ASSERT_TRUE(Delete(kept).ok());
  std::vector<std::string> added = Create(2, "a");
  const allocator::InstanceHandle a0 = HandleOf(added[0]);
  EXPECT_EQ(state_.InstanceIdOf(a0), "a0");
  state_.RollbackTo(mark);

  // Deleted since the mark: back, under the same handles, named by id again.
  EXPECT_EQ(HandleOf(kept[0]), k0);
  EXPECT_EQ(HandleOf(kept[1]), k1);
  EXPECT_EQ(state_.InstanceIdOf(k0), "k0");
  EXPECT_TRUE(state_.allocator().FindInstance(k1).has_value());
  // Added since the mark: gone, and its handle stale in the allocator too.
  EXPECT_EQ(state_.FindInstance(added[0]), nullptr);
  EXPECT_EQ(state_.InstanceIdOf(a0), "");
  EXPECT_FALSE(state_.allocator().FindInstance(a0).has_value());
  EXPECT_EQ(state_.allocator().instance_count(), 2u);
  EXPECT_TRUE(state_.allocator().CheckInvariants().ok());
  ASSERT_TRUE(Delete(kept).ok());  // reachable by the restored handles
}


// The change record is the only source of the rows a group commits: each record changed since
// the mark is written once, as it is now (an instance created and deleted in one group is a
// delete; a machine drained twice is one row), in the order first changed.
TEST_F(StateTest, ChangesSinceDerivesNetRowsFromTheChangeRecord) {
  const State::JournalMark mark = state_.Mark();
  EXPECT_FALSE(state_.ChangedSince(mark));
  const std::vector<std::string> kept = Create(2, "k");
  const std::vector<std::string> gone = Create(1, "g");
  ASSERT_TRUE(Delete(gone).ok());
  ASSERT_TRUE(state_.SetMachineState("m3", allocator::MachineState::kMaintenance, "one").ok());
  ASSERT_TRUE(state_.SetMachineState("m3", allocator::MachineState::kError, "two").ok());
  state_.PutIdempotency("acme", "r1", IdempotencyEntry{"fp", "resp", 7});
  EXPECT_TRUE(state_.ChangedSince(mark));

  const store::ChangeSet cs = state_.ChangesSince(mark);
  ASSERT_EQ(cs.upsert_instances.size(), 2u);
  EXPECT_EQ(cs.upsert_instances[0].id, "k0");
  EXPECT_EQ(cs.upsert_instances[1].id, "k1");
  EXPECT_TRUE(cs.upsert_instances[0].whole_machine);
  EXPECT_EQ(cs.delete_instance_ids, std::vector<std::string>{"g0"});
  ASSERT_EQ(cs.upsert_machines.size(), 1u);
  EXPECT_EQ(cs.upsert_machines[0].id, "m3");
  EXPECT_EQ(cs.upsert_machines[0].state_reason, "two");
  ASSERT_EQ(cs.put_idempotency.size(), 1u);
  EXPECT_EQ(cs.put_idempotency[0].tenant_id, "acme");
  EXPECT_EQ(cs.put_idempotency[0].request_id, "r1");
  EXPECT_EQ(cs.put_idempotency[0].response, "resp");

  // The same record undoes it all.
  state_.RollbackTo(mark);
  EXPECT_EQ(state_.FindInstance("k0"), nullptr);
  EXPECT_EQ(state_.FindIdempotency("acme", "r1"), nullptr);
  EXPECT_EQ(state_.allocator().FindMachine("m3")->state, allocator::MachineState::kReady);
  EXPECT_FALSE(state_.ChangedSince(mark));
  EXPECT_TRUE(state_.ChangesSince(mark).upsert_machines.empty());
}

// Releasing with a machine health issue drains the machines; the change record names them, so
// the drained machine rows are committed with the deletes.
TEST_F(StateTest, ReleaseWithHealthIssueRecordsTheDrainedMachines) {
  const std::vector<std::string> ids = Create(2, "h");
  state_.ClearJournal();
  const State::JournalMark mark = state_.Mark();
  absl::StatusOr<allocator::ReleasePlan> plan =
      state_.allocator().PlanRelease({HandleOf(ids[0])}, /*machine_health_issue=*/true);
  ASSERT_TRUE(plan.ok()) << plan.status();
  const std::string machine = state_.FindInstance(ids[0])->record->machine_id();
  state_.ReleaseInstances(*plan, {ids[0]});
  const store::ChangeSet cs = state_.ChangesSince(mark);
  EXPECT_EQ(cs.delete_instance_ids, std::vector<std::string>{ids[0]});
  ASSERT_EQ(cs.upsert_machines.size(), 1u);
  EXPECT_EQ(cs.upsert_machines[0].id, machine);
  EXPECT_EQ(cs.upsert_machines[0].state, store::kMachineMaintenance);
}

}  // namespace
}  // namespace nvlsched::daemon
