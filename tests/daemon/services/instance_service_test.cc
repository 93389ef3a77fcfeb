// InstanceService over gRPC: the seed API's two example batch bodies, single creates (whole
// machine and GPU-granular) and validate_only. Idempotency by request_id is in
// instance_idempotency_test.cc, errors in instance_errors_test.cc, status/delete/list/restart
// in instance_lifecycle_test.cc, the concurrent run in instance_concurrency_test.cc.
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>

#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/daemon/services/instance_test_fixture.h"
#include "tests/daemon/seed_bodies.h"

namespace nvlsched::daemon::testing {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;
using ::testing::Not;
using ::testing::SizeIs;


// The seed body with `"org"` added and its tenant / instance type ids (which name nothing
// here) replaced by the small fleet's; everything else untouched.
std::string ForSmallFleet(std::string body) {
  body = absl::StrReplaceAll(body, {{"f97df110-f4de-492e-8849-4a6af68026b0", f::kTenantId},
                                    {"41e36058-8403-4086-a9b8-39cb5bc9cb98", f::kTypeId},
                                    {"83e71f8f-65d3-44ba-92ba-19daac2e497a", f::kTypeId}});
  body.replace(0, 1, absl::StrCat("{\n  \"org\": \"", f::kOrg, "\","));
  return body;
}

v1::BatchCreateInstancesRequest ParseBody(const std::string& json) {
  v1::BatchCreateInstancesRequest req;
  auto status = google::protobuf::util::JsonStringToMessage(json, &req);
  EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << json;
  return req;
}

using InstanceCreateTest = InstanceServiceTest;

TEST_F(InstanceCreateTest, SeedTopologyOptimizedBodyLandsInOneDomainWithEveryInterface) {
  const v1::BatchCreateInstancesRequest req = ParseBody(ForSmallFleet(kSeedStrictBody));
  ASSERT_TRUE(req.has_topology_optimized());
  const v1::BatchCreateInstancesResponse resp = MustBatchCreate(req);
  ASSERT_THAT(resp.instances(), SizeIs(4));
  ASSERT_GE(DomainIndex(resp.nvlink_domain_id()), 0) << resp.nvlink_domain_id();
  EXPECT_FALSE(resp.batch_id().empty());

  std::set<std::string> machines;
  std::set<std::string> names;
  for (const v1::Instance& inst : resp.instances()) {
    SCOPED_TRACE(inst.name());
    EXPECT_EQ(inst.status(), v1::INSTANCE_STATUS_PENDING);
    EXPECT_THAT(inst.name(), MatchesRegex("^gpu-worker-[a-z0-9]{6}$"));
    names.insert(inst.name());
    machines.insert(inst.machine_id());
    EXPECT_EQ(inst.nvlink_domain_id(), resp.nvlink_domain_id());
    EXPECT_EQ(inst.batch_id(), resp.batch_id());
    EXPECT_TRUE(inst.topology_optimized());
    EXPECT_EQ(inst.gpu_count(), f::kGpusPerMachine);
    EXPECT_EQ(inst.tenant_id(), f::kTenantId);
    EXPECT_EQ(inst.instance_type_id(), f::kTypeId);
    EXPECT_EQ(inst.site_id(), f::kSiteId);
    EXPECT_EQ(inst.vpc_id(), "5e28ad7c-5fb7-46d6-a28a-fc0ba6fdc4a3");
    EXPECT_EQ(inst.description(), "GPU worker nodes for distributed training");
    EXPECT_EQ(inst.operating_system_id(), "eaeb86ee-c435-444e-9e01-8346f67f194b");
    EXPECT_THAT(inst.ssh_key_group_ids(), ElementsAre("497f6eca-6276-4993-bfeb-53cbbbba6f08"));

    ASSERT_THAT(inst.interfaces(), SizeIs(1));
    EXPECT_FALSE(inst.interfaces(0).id().empty());
    EXPECT_EQ(inst.interfaces(0).instance_id(), inst.id());
    EXPECT_EQ(inst.interfaces(0).subnet_id(), "1f232bf0-7b90-456e-b9b0-38d9fea4171a");
    EXPECT_TRUE(inst.interfaces(0).is_physical());

    ASSERT_THAT(inst.infiniband_interfaces(), SizeIs(1));
    const v1::InfiniBandInterface& ib = inst.infiniband_interfaces(0);
    EXPECT_FALSE(ib.id().empty());
    EXPECT_EQ(ib.instance_id(), inst.id());
    EXPECT_EQ(ib.partition_id(), "4f4decba-7d7f-46b9-9e5f-e5d71c2e0666");
    EXPECT_EQ(ib.device(), "MT2910 Family [ConnectX-7]");
    EXPECT_EQ(ib.device_instance(), 0);
    EXPECT_TRUE(ib.is_physical());

    ASSERT_THAT(inst.nv_link_interfaces(), SizeIs(2));
    for (int i = 0; i < 2; ++i) {
      const v1::NVLinkInterface& nv = inst.nv_link_interfaces(i);
      EXPECT_FALSE(nv.id().empty());
      EXPECT_EQ(nv.instance_id(), inst.id());
      EXPECT_EQ(nv.device_instance(), i);
      EXPECT_EQ(nv.nv_link_logical_partition_id(), "2f8676fd-d228-4db5-ac76-1cfc74f48a23");
      EXPECT_EQ(nv.nv_link_domain_id(), resp.nvlink_domain_id());
    }
    ASSERT_THAT(inst.status_history(), SizeIs(1));
    EXPECT_EQ(inst.status_history(0).status(), "Pending");

    // What was answered is what is stored.
    v1::Instance stored;
    ASSERT_TRUE(Get(inst.id(), &stored).ok());
    EXPECT_TRUE(MessageDifferencer::Equals(stored, inst)) << stored.DebugString();
  }
  EXPECT_EQ(machines.size(), 4u);
  EXPECT_EQ(names.size(), 4u);
  std::vector<int> expected_free(f::kDomains, 4);
  expected_free[DomainIndex(resp.nvlink_domain_id())] = 0;
  EXPECT_EQ(FreeByDomain(), expected_free);
}

TEST_F(InstanceCreateTest, SeedCrossDomainBodySpreadsEightMachinesWithLabels) {
  const v1::BatchCreateInstancesRequest req = ParseBody(ForSmallFleet(kSeedCrossDomainBody));
  const v1::BatchCreateInstancesResponse resp = MustBatchCreate(req);
  ASSERT_THAT(resp.instances(), SizeIs(8));
  EXPECT_TRUE(resp.nvlink_domain_id().empty()) << "8 machines cannot share a 4-machine domain";

  std::set<std::string> machines;
  std::set<std::string> domains;
  for (const v1::Instance& inst : resp.instances()) {
    SCOPED_TRACE(inst.name());
    EXPECT_EQ(inst.status(), v1::INSTANCE_STATUS_PENDING);
    EXPECT_THAT(inst.name(), MatchesRegex("^inference-node-[a-z0-9]{6}$"));
    EXPECT_FALSE(inst.topology_optimized());
    machines.insert(inst.machine_id());
    domains.insert(inst.nvlink_domain_id());
    absl::StatusOr<v1::Machine> machine = GetMachine(inst.machine_id());
    ASSERT_TRUE(machine.ok()) << machine.status();
    EXPECT_EQ(machine->domain_id(), inst.nvlink_domain_id());
    EXPECT_EQ(inst.labels().at("workload"), "inference");
    EXPECT_EQ(inst.labels().at("tier"), "production");
    ASSERT_THAT(inst.interfaces(), SizeIs(1));
    EXPECT_FALSE(inst.interfaces(0).id().empty());
    EXPECT_EQ(inst.interfaces(0).vpc_prefix_id(), "000bc42b-f946-472e-83d4-ddf7e365e148");
    ASSERT_THAT(inst.status_history(), SizeIs(1));
    EXPECT_EQ(inst.status_history(0).status(), "Pending");
  }
  EXPECT_EQ(machines.size(), 8u);
  // FILL takes whole domains first when all are equally free: two full domains.
  EXPECT_EQ(domains.size(), 2u);
  EXPECT_EQ(TotalFree(), 4);
}

TEST_F(InstanceCreateTest, AbsentTopologyOptimizedMeansOneDomain) {
  v1::BatchCreateInstancesRequest req = ParseBody(ForSmallFleet(kSeedStrictBody));
  req.clear_topology_optimized();
  req.set_count(3);
  const v1::BatchCreateInstancesResponse resp = MustBatchCreate(req);
  ASSERT_THAT(resp.instances(), SizeIs(3));
  ASSERT_FALSE(resp.nvlink_domain_id().empty());
  for (const v1::Instance& inst : resp.instances()) {
    EXPECT_EQ(inst.nvlink_domain_id(), resp.nvlink_domain_id());
    EXPECT_TRUE(inst.topology_optimized());
  }

  // The cross-domain seed body without its topologyOptimized=false is a strict batch of 8,
  // which no 4-machine domain can ever hold.
  v1::BatchCreateInstancesRequest cross = ParseBody(ForSmallFleet(kSeedCrossDomainBody));
  cross.clear_topology_optimized();
  v1::BatchCreateInstancesResponse ignored;
  EXPECT_TRUE(IsRpcError(BatchCreate(cross, &ignored), grpc::StatusCode::INVALID_ARGUMENT,
                         "infeasible"));
}

TEST_F(InstanceCreateTest, CrossDomainBatchThatLandsInOneDomainNamesIt) {
  // FILL keeps whole domains whole: a small cross-domain batch stays in one domain, and the
  // response then names it (nvlink_domain_id: "set when every instance is in one domain").
  const v1::BatchCreateInstancesResponse resp = MustBatchCreate(CrossDomainBatch(2));
  ASSERT_THAT(resp.instances(), SizeIs(2));
  EXPECT_EQ(resp.instances(0).nvlink_domain_id(), resp.instances(1).nvlink_domain_id());
  EXPECT_EQ(resp.nvlink_domain_id(), resp.instances(0).nvlink_domain_id());
  for (const v1::Instance& inst : resp.instances()) EXPECT_FALSE(inst.topology_optimized());
}

// ---- CreateInstance ----

TEST_F(InstanceCreateTest, SingleWithoutGpuCountTakesAWholeMachine) {
  const v1::Instance inst = MustCreate(Single("solo"));
  EXPECT_EQ(inst.name(), "solo");
  EXPECT_EQ(inst.gpu_count(), f::kGpusPerMachine);
  EXPECT_EQ(inst.status(), v1::INSTANCE_STATUS_PENDING);
  EXPECT_TRUE(inst.batch_id().empty());
  // All domains tie: the first domain, its lowest tray.
  EXPECT_EQ(inst.machine_id(), f::MachineId(0, 0));
  absl::StatusOr<v1::Machine> machine = GetMachine(inst.machine_id());
  ASSERT_TRUE(machine.ok()) << machine.status();
  EXPECT_EQ(machine->free_gpus(), 0);
  EXPECT_THAT(machine->instance_ids(), ElementsAre(inst.id()));
  EXPECT_EQ(FreeByDomain(), (std::vector<int>{3, 4, 4}));
}

TEST_F(InstanceCreateTest, GpuCountOneToFourHoldsThatManyGpusAndFourIsTheWholeMachine) {
  int held_gpus = 0;
  std::vector<std::string> machine_of(f::kGpusPerMachine + 1);
  for (int gpus = 1; gpus <= f::kGpusPerMachine; ++gpus) {
    SCOPED_TRACE(absl::StrCat("gpu_count ", gpus));
    const int free_before = TotalFree();
    const v1::Instance inst = MustCreate(Single(absl::StrCat("slice-", gpus), gpus));
    EXPECT_EQ(inst.gpu_count(), gpus);
    held_gpus += gpus;
    machine_of[gpus] = inst.machine_id();
    absl::StatusOr<v1::Machine> machine = GetMachine(inst.machine_id());
    ASSERT_TRUE(machine.ok()) << machine.status();
    if (gpus == f::kGpusPerMachine) {
      // A whole machine: the machine is its alone, and a whole machine left the pool.
      EXPECT_EQ(machine->free_gpus(), 0);
      EXPECT_THAT(machine->instance_ids(), ElementsAre(inst.id()));
      EXPECT_EQ(TotalFree(), free_before - 1);
    }
  }
  // 1+2 share a machine (fewest free GPUs that fit), 3 breaks a second, 4 takes a third.
  EXPECT_EQ(machine_of[1], machine_of[2]);
  EXPECT_EQ(std::set<std::string>(machine_of.begin() + 1, machine_of.end()).size(), 3u);
  int free_gpus = 0;
  v1::ListMachinesResponse machines;
  ASSERT_TRUE(inventory().ListMachines(Context().get(), {}, &machines).ok());
  for (const v1::Machine& m : machines.machines()) free_gpus += m.free_gpus();
  EXPECT_EQ(free_gpus, f::kDomains * f::kMachinesPerDomain * f::kGpusPerMachine - held_gpus);
  EXPECT_EQ(TotalFree(), 12 - 3);
  EXPECT_TRUE(Invariants().ok()) << Invariants();
}

TEST_F(InstanceCreateTest, TwoGpuSinglesShareAMachineInTheDomainABatchAlreadyBroke) {
  const v1::BatchCreateInstancesResponse batch = MustBatchCreate(Batch(2));
  const int broken = DomainIndex(batch.nvlink_domain_id());
  ASSERT_GE(broken, 0);

  const v1::Instance a = MustCreate(Single("half-a", 2));
  const v1::Instance b = MustCreate(Single("half-b", 2));
  EXPECT_EQ(a.machine_id(), b.machine_id());
  EXPECT_EQ(a.nvlink_domain_id(), batch.nvlink_domain_id());
  EXPECT_THAT(MachinesOf(batch.instances()), Not(::testing::Contains(a.machine_id())));
  absl::StatusOr<v1::Machine> machine = GetMachine(a.machine_id());
  ASSERT_TRUE(machine.ok()) << machine.status();
  EXPECT_EQ(machine->free_gpus(), 0);
  EXPECT_THAT(Sorted({machine->instance_ids().begin(), machine->instance_ids().end()}),
              Sorted({a.id(), b.id()}));

  // Whole domains stayed whole.
  std::vector<int> expected(f::kDomains, 4);
  expected[broken] = 1;
  EXPECT_EQ(FreeByDomain(), expected);
}

TEST_F(InstanceCreateTest, MachinePartlyHeldBySinglesIsNeverGivenToABatch) {
  // Quota above the fleet, so that capacity is what runs out.
  ASSERT_TRUE(UpsertTenant(TenantWithQuota(f::kTenantId, f::kOrg, 100)).ok());
  const v1::Instance slice = MustCreate(Single("slice", 1));
  const int d = DomainIndex(slice.nvlink_domain_id());
  ASSERT_GE(d, 0);
  EXPECT_EQ(FreeByDomain()[d], 3);

  // Two strict batches of 4 must skip the domain with the partly held machine.
  for (int i = 0; i < 2; ++i) {
    const v1::BatchCreateInstancesResponse full = MustBatchCreate(Batch(4));
    EXPECT_NE(full.nvlink_domain_id(), slice.nvlink_domain_id());
  }
  // Three are left there, none of them the slice's machine.
  const v1::BatchCreateInstancesResponse rest = MustBatchCreate(Batch(3));
  EXPECT_EQ(rest.nvlink_domain_id(), slice.nvlink_domain_id());
  EXPECT_THAT(MachinesOf(rest.instances()), Not(::testing::Contains(slice.machine_id())));

  v1::BatchCreateInstancesResponse ignored;
  EXPECT_TRUE(IsRpcError(BatchCreate(CrossDomainBatch(2), &ignored),
                         grpc::StatusCode::RESOURCE_EXHAUSTED, "not enough free capacity"));
  EXPECT_EQ(TotalFree(), 0);
  absl::StatusOr<v1::Machine> machine = GetMachine(slice.machine_id());
  ASSERT_TRUE(machine.ok());
  EXPECT_EQ(machine->free_gpus(), 3);
  EXPECT_TRUE(Invariants().ok()) << Invariants();
}

// ---- validate_only ----

TEST_F(InstanceCreateTest, ValidateOnlyBatchSaysWhereItWouldGoAndTakesNothing) {
  v1::BatchCreateInstancesRequest req = Batch(3);
  req.set_validate_only(true);
  const v1::BatchCreateInstancesResponse dry = MustBatchCreate(req);
  ASSERT_THAT(dry.instances(), SizeIs(3));
  EXPECT_GE(DomainIndex(dry.nvlink_domain_id()), 0) << "the domain it would go to";
  std::set<std::string> machines;
  for (const v1::Instance& inst : dry.instances()) {
    EXPECT_FALSE(inst.machine_id().empty());
    EXPECT_EQ(inst.nvlink_domain_id(), dry.nvlink_domain_id());
    EXPECT_TRUE(inst.id().empty()) << "nothing was created";
    machines.insert(inst.machine_id());
  }
  EXPECT_EQ(machines.size(), 3u);
  EXPECT_EQ(FreeByDomain(), (std::vector<int>{4, 4, 4}));
  EXPECT_THAT(ListAll(), IsEmpty());

  // Placement is deterministic: the real request goes exactly there.
  req.set_validate_only(false);
  const v1::BatchCreateInstancesResponse real = MustBatchCreate(req);
  EXPECT_EQ(real.nvlink_domain_id(), dry.nvlink_domain_id());
  EXPECT_EQ(MachinesOf(real.instances()), MachinesOf(dry.instances()));
}

TEST_F(InstanceCreateTest, ValidateOnlySingleTakesNothingAndFreesTheName) {
  v1::CreateInstanceRequest req = Single("dry-run", 2);
  req.set_validate_only(true);
  const v1::Instance dry = MustCreate(req);
  EXPECT_FALSE(dry.machine_id().empty());
  EXPECT_FALSE(dry.nvlink_domain_id().empty());
  EXPECT_EQ(dry.gpu_count(), 2);
  EXPECT_TRUE(dry.id().empty());
  EXPECT_EQ(FreeByDomain(), (std::vector<int>{4, 4, 4}));
  EXPECT_THAT(ListAll(), IsEmpty());
  req.set_validate_only(false);
  const v1::Instance real = MustCreate(req);  // the name was not taken by the dry run
  EXPECT_EQ(real.machine_id(), dry.machine_id());
}

}  // namespace
}  // namespace nvlsched::daemon::testing
