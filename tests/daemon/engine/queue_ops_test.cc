// The queue inside the engine's ops (daemon/engine/instance_ops.h, state.h), on a State with
// no engine: capacity freed earlier in a group goes to the queue before a later request of
// the same group; a rollback puts queue, records and reservations back exactly; cancelling
// the last queued batch drops its reservation.
#include <string>
#include <vector>

#include "absl/random/random.h"
#include "absl/time/clock.h"
#include "daemon/engine/instance_ops.h"
#include "daemon/engine/state.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nvlsched::daemon {
namespace {

namespace v1 = ::nvlsched::v1;

// Two domains "d0", "d1" of two 4-GPU machines; tenant "acme" of org "org".
class QueueOpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    allocator::Allocator& alloc = state_.allocator();
    ASSERT_TRUE(alloc.UpsertInstanceType({"gb200", "gb200-tray", "GB200", 4}).ok());
    for (int d = 0; d < 2; ++d) {
      const std::string domain = "d" + std::to_string(d);
      ASSERT_TRUE(alloc.UpsertDomain({domain, "rack", "s1"}).ok());
      for (int tray = 0; tray < 2; ++tray) {
        ASSERT_TRUE(
            alloc.UpsertMachine({domain + "-m" + std::to_string(tray), domain, tray, "gb200", 4}).ok());
      }
    }
    ASSERT_TRUE(alloc.UpsertTenant({"acme", "org", "acme", {{"gb200", 100}}}).ok());
    state_.ClearJournal();
  }

  OpContext Ctx() { return OpContext{absl::Now(), gen_}; }

  CreateRequest Single(const std::string& name, absl::Duration queue_timeout = absl::ZeroDuration()) {
    CreateRequest req;
    req.org = "org";
    req.spec.tenant_id = "acme";
    req.spec.instance_type_id = "gb200";
    req.name = name;
    req.queue_timeout = queue_timeout;
    return req;
  }
  CreateRequest Batch(int count, absl::Duration queue_timeout) {
    CreateRequest req = Single("", queue_timeout);
    req.count = count;
    req.name_prefix = "b";
    return req;
  }

  absl::StatusOr<v1::Instance> Create(const CreateRequest& req) {
    v1::Instance out;
    absl::Status s = CreateInstance(state_, Ctx(), req, &out);
    if (!s.ok()) return s;
    return out;
  }
  absl::Status Delete(std::vector<std::string> ids) {
    google::protobuf::RepeatedPtrField<v1::Instance> deleted;
    return DeleteInstances(state_, DeleteRequest{"org", std::move(ids), false}, &deleted);
  }
  v1::InstanceStatus StatusOf(const std::string& id) {
    const State::InstanceEntry* e = state_.FindInstance(id);
    return e == nullptr ? v1::INSTANCE_STATUS_UNSPECIFIED : e->record->status();
  }

  absl::BitGen gen_;
  State state_;
};

TEST_F(QueueOpsTest, CapacityFreedEarlierInAGroupGoesToTheQueueBeforeANewRequest) {
  std::vector<std::string> fillers;
  for (int i = 0; i < 4; ++i) {
    absl::StatusOr<v1::Instance> f = Create(Single("filler" + std::to_string(i)));
    ASSERT_TRUE(f.ok()) << f.status();
    fillers.push_back(f->id());
  }
  absl::StatusOr<v1::Instance> waiter = Create(Single("waiter", absl::Minutes(10)));
  ASSERT_TRUE(waiter.ok()) << waiter.status();
  ASSERT_EQ(waiter->status(), v1::INSTANCE_STATUS_QUEUED);
  state_.RunQueue(absl::Now());
  state_.ClearJournal();

  // One group: a delete, then a new request with no queue_timeout. The waiter arrived first.
  ASSERT_TRUE(Delete({fillers[0]}).ok());
  absl::StatusOr<v1::Instance> newcomer = Create(Single("newcomer"));
  EXPECT_EQ(newcomer.status().code(), absl::StatusCode::kResourceExhausted) << newcomer.status();
  EXPECT_EQ(StatusOf(waiter->id()), v1::INSTANCE_STATUS_PENDING);
  EXPECT_TRUE(state_.queue().empty());
}

TEST_F(QueueOpsTest, RollbackRestoresTheQueueRecordsAndReservations) {
  std::vector<std::string> fillers;
  for (int i = 0; i < 4; ++i) fillers.push_back(Create(Single("filler" + std::to_string(i)))->id());
  v1::BatchCreateInstancesResponse batch;
  ASSERT_TRUE(BatchCreateInstances(state_, Ctx(), Batch(2, absl::Minutes(10)), &batch).ok());
  ASSERT_TRUE(batch.queued());
  state_.RunQueue(absl::Now());
  state_.ClearJournal();
  ASSERT_EQ(state_.queue().reservations().size(), 1u);
  const std::vector<allocator::Reservation> reservations = state_.queue().reservations();

  // Free domain d1 and let a pass place the batch; then undo it all.
  const State::JournalMark mark = state_.Mark();
  std::vector<std::string> in_d1;
  for (const std::string& id : fillers) {
    if (state_.FindInstance(id)->record->machine_id().rfind("d1", 0) == 0) in_d1.push_back(id);
  }
  ASSERT_EQ(in_d1.size(), 2u);
  ASSERT_TRUE(Delete(in_d1).ok());
  State::QueuePass pass = state_.RunQueue(absl::Now());
  EXPECT_EQ(pass.placed, 1);
  EXPECT_TRUE(state_.queue().empty());
  state_.RollbackTo(mark);

  EXPECT_EQ(state_.queue().size(), 1u);
  for (const v1::Instance& i : batch.instances()) {
    EXPECT_EQ(StatusOf(i.id()), v1::INSTANCE_STATUS_QUEUED);
  }
  ASSERT_EQ(state_.queue().reservations().size(), 1u);
  EXPECT_EQ(state_.queue().reservations()[0].domains, reservations[0].domains);
  for (const std::string& id : in_d1) EXPECT_EQ(StatusOf(id), v1::INSTANCE_STATUS_PENDING);
  EXPECT_TRUE(state_.allocator().CheckInvariants().ok());
}

TEST_F(QueueOpsTest, CancellingTheLastQueuedBatchDropsItsReservation) {
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(Create(Single("filler" + std::to_string(i))).ok());
  v1::BatchCreateInstancesResponse batch;
  ASSERT_TRUE(BatchCreateInstances(state_, Ctx(), Batch(2, absl::Minutes(10)), &batch).ok());
  state_.RunQueue(absl::Now());
  ASSERT_EQ(state_.queue().reservations().size(), 1u);
  std::vector<std::string> ids;
  for (const v1::Instance& i : batch.instances()) ids.push_back(i.id());
  ASSERT_TRUE(Delete(ids).ok());
  EXPECT_TRUE(state_.queue_pass_due());
  state_.RunQueue(absl::Now());
  EXPECT_TRUE(state_.queue().reservations().empty());
  EXPECT_TRUE(state_.queue().ExclusionsForNew(0).empty());
}

TEST_F(QueueOpsTest, ASingleBoundToASiteWithoutMachinesOfItsTypeIsNotQueued) {
  ASSERT_TRUE(state_.allocator().UpsertDomain({"empty", "rack", "s2"}).ok());
  CreateRequest req = Single("nowhere", absl::Minutes(10));
  req.site_id = "s2";
  absl::StatusOr<v1::Instance> out = Create(req);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << out.status();
  EXPECT_THAT(std::string(out.status().message()), ::testing::HasSubstr("could never be placed"));
  EXPECT_TRUE(state_.queue().empty());
  // A site that has them queues as usual when full.
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(Create(Single("filler" + std::to_string(i))).ok());
  req.site_id = "s1";
  out = Create(req);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->status(), v1::INSTANCE_STATUS_QUEUED);
}

TEST_F(QueueOpsTest, DuplicateIdsInADeleteAreInvalidArgument) {
  absl::StatusOr<v1::Instance> one = Create(Single("one"));
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(Delete({one->id(), one->id()}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(StatusOf(one->id()), v1::INSTANCE_STATUS_PENDING);
}

// The write path's answers share State's records (daemon/services/instance_service.cc fills
// them in after the commit, off the engine thread): a batch create handed `created` leaves the
// answer's instances out and hands over the very records State holds, placed or queued; with
// a request id (the whole answer is remembered) they are in the answer as always. A delete
// hands over the records State held, in the order of the ids; the copying overload answers
// the same.
TEST_F(QueueOpsTest, BatchCreateAndDeleteHandOverStatesRecordsInsteadOfCopies) {
  v1::BatchCreateInstancesResponse placed_resp;
  std::vector<RecordPtr> placed;
  ASSERT_TRUE(BatchCreateInstances(state_, Ctx(), Batch(2, absl::ZeroDuration()), &placed_resp,
                                   &placed)
                  .ok());
  EXPECT_EQ(placed_resp.instances_size(), 0);
  EXPECT_FALSE(placed_resp.batch_id().empty());
  ASSERT_EQ(placed.size(), 2u);
  for (const RecordPtr& record : placed) {
    EXPECT_EQ(record->batch_id(), placed_resp.batch_id());
    EXPECT_EQ(record->status(), v1::INSTANCE_STATUS_PENDING);
    EXPECT_EQ(&*record, &*state_.FindInstance(record->id())->record) << "a copy, not State's";
  }

  // The other domain fills; the next batch waits in the queue.
  ASSERT_TRUE(BatchCreateInstances(state_, Ctx(), Batch(2, absl::ZeroDuration()), &placed_resp)
                  .ok());
  v1::BatchCreateInstancesResponse queued_resp;
  std::vector<RecordPtr> queued;
  ASSERT_TRUE(BatchCreateInstances(state_, Ctx(), Batch(2, absl::Minutes(10)), &queued_resp,
                                   &queued)
                  .ok());
  EXPECT_TRUE(queued_resp.queued());
  EXPECT_EQ(queued_resp.instances_size(), 0);
  ASSERT_EQ(queued.size(), 2u);
  for (const RecordPtr& record : queued) {
    EXPECT_EQ(record->status(), v1::INSTANCE_STATUS_QUEUED);
    EXPECT_EQ(&*record, &*state_.FindInstance(record->id())->record);
  }

  // With a request id the answer is remembered whole, so it holds its instances.
  CreateRequest remembered = Batch(2, absl::Minutes(10));
  remembered.request_id = "req-1";
  remembered.fingerprint = "fingerprint-1";
  v1::BatchCreateInstancesResponse remembered_resp;
  std::vector<RecordPtr> not_handed;
  ASSERT_TRUE(
      BatchCreateInstances(state_, Ctx(), remembered, &remembered_resp, &not_handed).ok());
  EXPECT_EQ(remembered_resp.instances_size(), 2);
  EXPECT_TRUE(not_handed.empty());

  // Delete: State's records, in the order of the ids, the last holders once State lets go.
  const std::vector<std::string> ids = {placed[1]->id(), placed[0]->id()};
  const v1::Instance* second = &*placed[1];
  placed.clear();
  std::vector<RecordPtr> deleted;
  ASSERT_TRUE(DeleteInstances(state_, DeleteRequest{"org", ids, false}, &deleted).ok());
  ASSERT_EQ(deleted.size(), 2u);
  EXPECT_EQ(deleted[0]->id(), ids[0]);
  EXPECT_EQ(deleted[1]->id(), ids[1]);
  EXPECT_EQ(&*deleted[0], second);
  EXPECT_EQ(state_.FindInstance(ids[0]), nullptr);

  // The copying overload answers the same records (the queued batch, cancelled whole).
  std::vector<std::string> queued_ids;
  std::vector<std::string> expected;
  for (const RecordPtr& record : queued) {
    queued_ids.push_back(record->id());
    expected.push_back(record->SerializeAsString());
  }
  google::protobuf::RepeatedPtrField<v1::Instance> copies;
  ASSERT_TRUE(DeleteInstances(state_, DeleteRequest{"org", queued_ids, false}, &copies).ok());
  ASSERT_EQ(copies.size(), 2);
  for (int i = 0; i < copies.size(); ++i) EXPECT_EQ(copies[i].SerializeAsString(), expected[i]);
}

}  // namespace
}  // namespace nvlsched::daemon
