// InstanceService over gRPC after creation: status updates, deletes (single, with a machine
// health issue, all-or-nothing batches), listing (filters, pagination) and a restart that
// must give back exactly what was acknowledged.
#include <google/protobuf/util/message_differencer.h>
#include <google/protobuf/util/time_util.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "daemon/api/status_mapping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/daemon/services/instance_test_fixture.h"

namespace nvlsched::daemon::testing {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::google::protobuf::util::TimeUtil;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

using InstanceLifecycleTest = InstanceServiceTest;

std::vector<std::string> HistoryWords(const v1::Instance& inst) {
  std::vector<std::string> words;
  for (const v1::StatusDetail& d : inst.status_history()) words.push_back(d.status());
  return words;
}

TEST_F(InstanceLifecycleTest, StatusUpdatesAppendToHistoryAndBumpUpdated) {
  const v1::Instance created = MustCreate(Single("booting"));
  v1::Instance provisioning;
  ASSERT_TRUE(UpdateStatus(created.id(), v1::INSTANCE_STATUS_PROVISIONING, "imaging",
                           &provisioning).ok());
  EXPECT_EQ(provisioning.status(), v1::INSTANCE_STATUS_PROVISIONING);
  EXPECT_THAT(HistoryWords(provisioning), ElementsAre("Pending", "Provisioning"));
  EXPECT_EQ(provisioning.status_history(1).message(), "imaging");

  v1::Instance configuring;
  ASSERT_TRUE(UpdateStatus(created.id(), v1::INSTANCE_STATUS_CONFIGURING, "cloud-init",
                           &configuring).ok());
  v1::Instance ready;
  ASSERT_TRUE(UpdateStatus(created.id(), v1::INSTANCE_STATUS_READY, "up", &ready).ok());
  EXPECT_EQ(ready.status(), v1::INSTANCE_STATUS_READY);
  EXPECT_THAT(HistoryWords(ready), ElementsAre("Pending", "Provisioning", "Configuring", "Ready"));
  // `updated` is the time of the last change; `created` never moves.
  EXPECT_EQ(ready.updated(), ready.status_history(3).created());
  EXPECT_EQ(ready.created(), created.created());
  EXPECT_GE(ready.updated(), provisioning.updated());
  EXPECT_GE(provisioning.updated(), created.updated());
  // Nothing else changed: same machine, same id, same name.
  EXPECT_EQ(ready.machine_id(), created.machine_id());
  EXPECT_EQ(ready.name(), created.name());

  v1::Instance stored;
  ASSERT_TRUE(Get(created.id(), &stored).ok());
  EXPECT_TRUE(MessageDifferencer::Equals(stored, ready)) << stored.DebugString();
  EXPECT_EQ(TotalFree(), 11) << "a status update neither takes nor frees machines";
}

TEST_F(InstanceLifecycleTest, DeleteFreesTheMachineAtOnce) {
  const v1::BatchCreateInstancesResponse batch = MustBatchCreate(Batch(2));
  ASSERT_EQ(TotalFree(), 10);
  const v1::Instance& victim = batch.instances(0);
  v1::DeleteInstanceResponse resp;
  ASSERT_TRUE(Delete(victim.id(), false, &resp).ok());
  EXPECT_TRUE(MessageDifferencer::Equals(resp.instance(), victim)) << resp.DebugString();
  EXPECT_EQ(TotalFree(), 11);
  v1::Instance ignored;
  EXPECT_TRUE(IsRpcError(Get(victim.id(), &ignored), grpc::StatusCode::NOT_FOUND, victim.id()));
  absl::StatusOr<v1::Machine> machine = GetMachine(victim.machine_id());
  ASSERT_TRUE(machine.ok());
  EXPECT_EQ(machine->state(), v1::MACHINE_STATE_READY);
  EXPECT_EQ(machine->free_gpus(), f::kGpusPerMachine);
  EXPECT_THAT(machine->instance_ids(), IsEmpty());
  EXPECT_THAT(IdsOf(ListAll()), ElementsAre(batch.instances(1).id()));
  // A second delete of the same id finds nothing.
  EXPECT_TRUE(IsRpcError(Delete(victim.id()), grpc::StatusCode::NOT_FOUND, "does not exist"));
  EXPECT_TRUE(Invariants().ok()) << Invariants();
}

TEST_F(InstanceLifecycleTest, DeleteWithHealthIssueSendsTheMachineToMaintenanceForGood) {
  const v1::Instance inst = MustCreate(Single("faulty"));
  ASSERT_TRUE(Delete(inst.id(), /*machine_health_issue=*/true).ok());
  absl::StatusOr<v1::Machine> machine = GetMachine(inst.machine_id());
  ASSERT_TRUE(machine.ok());
  EXPECT_EQ(machine->state(), v1::MACHINE_STATE_MAINTENANCE);
  EXPECT_EQ(machine->state_reason(),
            "health issue reported when instance " + inst.id() + " was released");
  EXPECT_THAT(machine->instance_ids(), IsEmpty());
  EXPECT_EQ(TotalFree(), 11) << "the machine does not go back to the pool";

  // Everything else can still be had, but never that machine.
  const v1::BatchCreateInstancesResponse rest = MustBatchCreate(CrossDomainBatch(11));
  EXPECT_THAT(MachinesOf(rest.instances()), ::testing::Not(::testing::Contains(inst.machine_id())));
  v1::Instance ignored;
  EXPECT_TRUE(IsRpcError(Create(Single("one-more"), &ignored),
                         grpc::StatusCode::RESOURCE_EXHAUSTED, "not enough free capacity"));

  // The maintenance state is durable.
  Restart();
  machine = GetMachine(inst.machine_id());
  ASSERT_TRUE(machine.ok());
  EXPECT_EQ(machine->state(), v1::MACHINE_STATE_MAINTENANCE);
  EXPECT_EQ(TotalFree(), 0);
}

TEST_F(InstanceLifecycleTest, BatchDeleteIsAllOrNothing) {
  const v1::BatchCreateInstancesResponse batch = MustBatchCreate(Batch(3));
  const std::vector<std::string> ids = IdsOf(batch.instances());
  const std::vector<int> free_before = FreeByDomain();

  const grpc::Status status = BatchDelete({ids[0], ids[1], kUnknownUuid});
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::NOT_FOUND, kUnknownUuid));
  ASSERT_TRUE(DetailsOf(status).resource_info.has_value());
  EXPECT_EQ(DetailsOf(status).resource_info->resource_name(), kUnknownUuid);
  EXPECT_EQ(FreeByDomain(), free_before);
  for (const std::string& id : ids) {
    v1::Instance still;
    EXPECT_TRUE(Get(id, &still).ok()) << id;
  }

  // The same id twice is refused as a whole as well.
  EXPECT_EQ(BatchDelete({ids[0], ids[0]}).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(ListAll(), SizeIs(3));

  v1::BatchDeleteInstancesResponse resp;
  ASSERT_TRUE(BatchDelete(ids, &resp).ok());
  EXPECT_EQ(IdsOf(resp.instances()), ids);
  EXPECT_EQ(FreeByDomain(), (std::vector<int>{4, 4, 4}));
  EXPECT_THAT(ListAll(), IsEmpty());
}

TEST_F(InstanceLifecycleTest, ListFiltersByTenantBatchAndLabels) {
  ASSERT_TRUE(UpsertTenant(TenantWithQuota(kSecondTenantId, f::kOrg, 12)).ok());
  v1::BatchCreateInstancesRequest team_a = Batch(2);
  (*team_a.mutable_labels())["team"] = "a";
  (*team_a.mutable_labels())["tier"] = "prod";
  const v1::BatchCreateInstancesResponse a = MustBatchCreate(team_a);
  v1::BatchCreateInstancesRequest team_b = Batch(2);
  (*team_b.mutable_labels())["team"] = "b";
  (*team_b.mutable_labels())["tier"] = "prod";
  const v1::BatchCreateInstancesResponse b = MustBatchCreate(team_b);
  v1::CreateInstanceRequest second = Single("second-tenant", 1);
  second.set_tenant_id(kSecondTenantId);
  (*second.mutable_labels())["team"] = "a";
  const v1::Instance other_tenant = MustCreate(second);

  v1::ListInstancesRequest by_tenant;
  by_tenant.set_tenant_id(kSecondTenantId);
  EXPECT_THAT(IdsOf(ListAll(by_tenant)), ElementsAre(other_tenant.id()));
  by_tenant.set_tenant_id(f::kTenantId);
  EXPECT_EQ(Sorted(IdsOf(ListAll(by_tenant))),
            Sorted({a.instances(0).id(), a.instances(1).id(), b.instances(0).id(),
                    b.instances(1).id()}));

  v1::ListInstancesRequest by_batch;
  by_batch.set_batch_id(b.batch_id());
  EXPECT_EQ(Sorted(IdsOf(ListAll(by_batch))), Sorted(IdsOf(b.instances())));

  v1::ListInstancesRequest by_label;
  (*by_label.mutable_labels())["team"] = "a";
  EXPECT_EQ(Sorted(IdsOf(ListAll(by_label))),
            Sorted({a.instances(0).id(), a.instances(1).id(), other_tenant.id()}));
  (*by_label.mutable_labels())["tier"] = "prod";  // every pair must match
  EXPECT_EQ(Sorted(IdsOf(ListAll(by_label))), Sorted(IdsOf(a.instances())));
  (*by_label.mutable_labels())["tier"] = "dev";
  EXPECT_THAT(ListAll(by_label), IsEmpty());

  v1::ListInstancesResponse counted;
  v1::ListInstancesRequest all;
  all.set_org(f::kOrg);
  ASSERT_TRUE(List(all, &counted).ok());
  EXPECT_EQ(counted.total_size(), 5);
}

TEST_F(InstanceLifecycleTest, PaginationWalksEveryInstanceOnceWithoutGaps) {
  std::vector<std::string> expected;
  const v1::BatchCreateInstancesResponse strict = MustBatchCreate(Batch(3));
  const v1::BatchCreateInstancesResponse cross = MustBatchCreate(CrossDomainBatch(2));
  for (const auto* batch : {&strict, &cross}) {
    for (const v1::Instance& i : batch->instances()) expected.push_back(i.id());
  }
  for (int k = 0; k < 2; ++k) expected.push_back(MustCreate(Single(absl::StrCat("s", k), 1)).id());
  ASSERT_EQ(expected.size(), 7u);

  v1::ListInstancesRequest req;
  req.set_org(f::kOrg);
  req.set_page_size(2);
  std::vector<std::string> seen;
  int pages = 0;
  do {
    v1::ListInstancesResponse resp;
    ASSERT_TRUE(List(req, &resp).ok());
    EXPECT_EQ(resp.total_size(), 7);
    EXPECT_LE(resp.instances_size(), 2);
    EXPECT_GT(resp.instances_size(), 0) << "no empty pages";
    for (const std::string& id : IdsOf(resp.instances())) seen.push_back(id);
    req.set_page_token(resp.next_page_token());
    ASSERT_LT(++pages, 10) << "pagination does not end";
  } while (!req.page_token().empty());
  EXPECT_EQ(pages, 4);
  EXPECT_EQ(seen, Sorted(expected)) << "every instance once, in id order";
}

TEST_F(InstanceLifecycleTest, GarbagePageTokenIsInvalidArgument) {
  MustBatchCreate(Batch(2));
  // Not base64 at all, base64 of something this server never issued, and a token that is
  // valid base64 of arbitrary bytes.
  for (const std::string token : {"%%%", "bm90LWFuLWlk", "not-a-page-token"}) {
    SCOPED_TRACE(token);
    v1::ListInstancesRequest req;
    req.set_org(f::kOrg);
    req.set_page_token(token);
    v1::ListInstancesResponse resp;
    const grpc::Status status = List(req, &resp);
    EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::INVALID_ARGUMENT, "page_token"));
    ASSERT_TRUE(DetailsOf(status).bad_request.has_value());
    EXPECT_THAT(ViolationFields(*DetailsOf(status).bad_request), ElementsAre("page_token"));
  }
}

TEST_F(InstanceLifecycleTest, RestartGivesBackEveryInstanceAndFreeCountExactly) {
  ASSERT_TRUE(UpsertTenant(TenantWithQuota(kSecondTenantId, f::kOrg, 12)).ok());
  v1::BatchCreateInstancesRequest strict = Batch(3);
  v1::NVLinkInterfaceCreateRequest* nv = strict.add_nv_link_interfaces();
  nv->set_nv_link_logical_partition_id(TestUuid(55));
  nv->set_device_instance(1);
  (*strict.mutable_labels())["job"] = "train";
  strict.set_request_id("restart-strict");
  MustBatchCreate(strict);
  v1::BatchCreateInstancesRequest cross = CrossDomainBatch(3);
  cross.set_spread_policy(v1::SPREAD_POLICY_SPREAD);
  const v1::BatchCreateInstancesResponse spread = MustBatchCreate(cross);
  const v1::Instance half = MustCreate(Single("half", 2));
  MustCreate(Single("quarter", 1));
  v1::CreateInstanceRequest other = Single("other-tenant");
  other.set_tenant_id(kSecondTenantId);
  MustCreate(other);
  v1::Instance updated;
  for (v1::InstanceStatus s : {v1::INSTANCE_STATUS_PROVISIONING, v1::INSTANCE_STATUS_CONFIGURING,
                               v1::INSTANCE_STATUS_READY}) {
    ASSERT_TRUE(UpdateStatus(half.id(), s, "up", &updated).ok());
  }
  ASSERT_TRUE(Delete(spread.instances(0).id(), /*machine_health_issue=*/true).ok());

  const std::vector<v1::Instance> before = ListAll();
  const std::vector<int> free_before = FreeByDomain();
  ASSERT_THAT(before, SizeIs(3 + 2 + 3));
  std::map<std::string, v1::Machine> machines_before;
  for (const v1::Instance& i : before) machines_before[i.machine_id()] = *GetMachine(i.machine_id());

  Restart();
  const std::vector<v1::Instance> after = ListAll();
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_TRUE(MessageDifferencer::Equals(after[i], before[i]))
        << "before:\n" << before[i].DebugString() << "after:\n" << after[i].DebugString();
  }
  EXPECT_EQ(FreeByDomain(), free_before);
  for (const auto& [id, machine] : machines_before) {
    absl::StatusOr<v1::Machine> now = GetMachine(id);
    ASSERT_TRUE(now.ok());
    EXPECT_EQ(Sorted({now->instance_ids().begin(), now->instance_ids().end()}),
              Sorted({machine.instance_ids().begin(), machine.instance_ids().end()}));
    EXPECT_EQ(now->free_gpus(), machine.free_gpus());
    EXPECT_EQ(now->state(), machine.state());
  }
  absl::StatusOr<v1::Machine> drained = GetMachine(spread.instances(0).machine_id());
  ASSERT_TRUE(drained.ok());
  EXPECT_EQ(drained->state(), v1::MACHINE_STATE_MAINTENANCE);
  EXPECT_TRUE(Invariants().ok()) << Invariants();

  // The names are still taken after the restart.
  v1::Instance ignored;
  EXPECT_TRUE(IsRpcError(Create(Single("half", 1), &ignored), grpc::StatusCode::ALREADY_EXISTS,
                         "'half'"));
}

TEST_F(InstanceLifecycleTest, OnlyTheSeedsTransitionsAreAcceptedAndInterfacesFollow) {
  v1::CreateInstanceRequest req = Single("lifecycle");
  const v1::Instance created = MustCreate(req);
  v1::Instance out;
  // Skipping a step is refused, naming what may come next.
  grpc::Status skip = UpdateStatus(created.id(), v1::INSTANCE_STATUS_READY, "", &out);
  EXPECT_EQ(skip.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(skip.error_message(), ::testing::HasSubstr("INSTANCE_STATUS_PROVISIONING"));
  v1::Instance stored;
  ASSERT_TRUE(Get(created.id(), &stored).ok());
  EXPECT_EQ(stored.status(), v1::INSTANCE_STATUS_PENDING) << "a refused report changes nothing";

  for (v1::InstanceStatus s :
       {v1::INSTANCE_STATUS_PROVISIONING, v1::INSTANCE_STATUS_PROVISIONING,
        v1::INSTANCE_STATUS_CONFIGURING, v1::INSTANCE_STATUS_READY, v1::INSTANCE_STATUS_UPDATING,
        v1::INSTANCE_STATUS_READY, v1::INSTANCE_STATUS_REBOOTING, v1::INSTANCE_STATUS_READY}) {
    ASSERT_TRUE(UpdateStatus(created.id(), s, "", &out).ok()) << v1::InstanceStatus_Name(s);
  }
  for (const v1::Interface& i : out.interfaces()) {
    EXPECT_EQ(i.status(), v1::INTERFACE_STATUS_READY);
  }
  EXPECT_EQ(UpdateStatus(created.id(), v1::INSTANCE_STATUS_PENDING, "", &out).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  ASSERT_TRUE(UpdateStatus(created.id(), v1::INSTANCE_STATUS_ERROR, "gpu fell off", &out).ok());
  for (const v1::Interface& i : out.interfaces()) {
    EXPECT_EQ(i.status(), v1::INTERFACE_STATUS_ERROR);
  }
  EXPECT_EQ(UpdateStatus(created.id(), v1::INSTANCE_STATUS_READY, "", &out).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  ASSERT_TRUE(UpdateStatus(created.id(), v1::INSTANCE_STATUS_TERMINATING, "", &out).ok());
  for (const v1::Interface& i : out.interfaces()) {
    EXPECT_EQ(i.status(), v1::INTERFACE_STATUS_DELETING);
  }
  EXPECT_EQ(UpdateStatus(created.id(), v1::INSTANCE_STATUS_READY, "", &out).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

}  // namespace
}  // namespace nvlsched::daemon::testing
