// InventoryService over gRPC: machines, domains, instance types, tenants (ApplyFleet is in
// inventory_fleet_test.cc).
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/daemon/services/service_fixture.h"

namespace nvlsched::daemon::testing {
namespace {

namespace f = small_fleet;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

class InventoryServiceTest : public ServiceTest {
 protected:
  void SetUp() override {
    ServiceTest::SetUp();
    ASSERT_TRUE(ApplySmallFleet().ok());
  }

  v1::ListMachinesResponse ListMachines(v1::ListMachinesRequest req = {}) {
    v1::ListMachinesResponse resp;
    grpc::Status status = inventory().ListMachines(Context().get(), req, &resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return resp;
  }

  grpc::Status SetState(const std::string& id, v1::MachineState state,
                        const std::string& reason = "", v1::Machine* out = nullptr) {
    v1::SetMachineStateRequest req;
    req.set_id(id);
    req.set_state(state);
    req.set_reason(reason);
    v1::Machine ignored;
    return inventory().SetMachineState(Context().get(), req, out != nullptr ? out : &ignored);
  }

  grpc::Status Remove(const std::string& id, v1::RemoveMachineResponse* out = nullptr) {
    v1::RemoveMachineRequest req;
    req.set_id(id);
    v1::RemoveMachineResponse ignored;
    return inventory().RemoveMachine(Context().get(), req, out != nullptr ? out : &ignored);
  }

  v1::ListDomainsResponse ListDomains(const std::string& site_id = "") {
    v1::ListDomainsRequest req;
    req.set_site_id(site_id);
    v1::ListDomainsResponse resp;
    grpc::Status status = inventory().ListDomains(Context().get(), req, &resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return resp;
  }

  grpc::Status Upsert(const v1::Tenant& tenant, v1::Tenant* out = nullptr) {
    v1::UpsertTenantRequest req;
    *req.mutable_tenant() = tenant;
    v1::Tenant ignored;
    return inventory().UpsertTenant(Context().get(), req, out != nullptr ? out : &ignored);
  }

  v1::ListTenantsResponse ListTenants(const std::string& org = "") {
    v1::ListTenantsRequest req;
    req.set_org(org);
    v1::ListTenantsResponse resp;
    grpc::Status status = inventory().ListTenants(Context().get(), req, &resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return resp;
  }
};

std::vector<std::string> AllMachineIds() {
  std::vector<std::string> ids;
  for (int d = 0; d < f::kDomains; ++d) {
    for (int t = 0; t < f::kMachinesPerDomain; ++t) ids.push_back(f::MachineId(d, t));
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::vector<std::string> IdsOf(const v1::ListMachinesResponse& resp) {
  std::vector<std::string> ids;
  for (const v1::Machine& m : resp.machines()) ids.push_back(m.id());
  return ids;
}

TEST_F(InventoryServiceTest, ListMachinesReturnsEveryMachineInIdOrderWithFreeGpus) {
  v1::ListMachinesResponse resp = ListMachines();
  EXPECT_EQ(resp.total_size(), 12);
  EXPECT_TRUE(resp.next_page_token().empty());
  EXPECT_EQ(IdsOf(resp), AllMachineIds());
  for (const v1::Machine& m : resp.machines()) {
    EXPECT_EQ(m.free_gpus(), 4) << m.id();
    EXPECT_EQ(m.gpu_count(), 4);
    EXPECT_EQ(m.state(), v1::MACHINE_STATE_READY);
    EXPECT_EQ(m.instance_type_id(), f::kTypeId);
    EXPECT_THAT(m.instance_ids(), IsEmpty());
  }
}

TEST_F(InventoryServiceTest, PaginationWalksEveryMachineOnceWithoutGaps) {
  for (int page_size : {1, 5, 11, 12, 1000}) {
    SCOPED_TRACE(absl::StrCat("page_size ", page_size));
    std::vector<std::string> seen;
    v1::ListMachinesRequest req;
    req.set_page_size(page_size);
    int pages = 0;
    do {
      v1::ListMachinesResponse resp = ListMachines(req);
      EXPECT_EQ(resp.total_size(), 12);
      EXPECT_LE(resp.machines_size(), page_size);
      for (const std::string& id : IdsOf(resp)) seen.push_back(id);
      req.set_page_token(resp.next_page_token());
      ASSERT_LT(++pages, 20) << "pagination does not end";
    } while (!req.page_token().empty());
    EXPECT_EQ(pages, (12 + page_size - 1) / page_size);
    EXPECT_EQ(seen, AllMachineIds());  // sorted, so no duplicates and no gaps
  }
}

TEST_F(InventoryServiceTest, PaginationSurvivesRemovalOfAMachineAlreadyListed) {
  v1::ListMachinesRequest req;
  req.set_page_size(5);
  v1::ListMachinesResponse first = ListMachines(req);
  ASSERT_TRUE(Remove(first.machines(4).id()).ok());  // the page's last id: the token's key
  req.set_page_token(first.next_page_token());
  v1::ListMachinesResponse second = ListMachines(req);
  EXPECT_EQ(second.total_size(), 11);
  std::vector<std::string> expected = AllMachineIds();
  EXPECT_EQ(IdsOf(second), std::vector<std::string>(expected.begin() + 5, expected.begin() + 10));
}

TEST_F(InventoryServiceTest, ListMachinesFilters) {
  v1::ListMachinesRequest by_domain;
  by_domain.set_domain_id(f::DomainId(1));
  v1::ListMachinesResponse resp = ListMachines(by_domain);
  EXPECT_EQ(resp.total_size(), 4);
  for (const v1::Machine& m : resp.machines()) EXPECT_EQ(m.domain_id(), f::DomainId(1));

  ASSERT_TRUE(SetState(f::MachineId(2, 3), v1::MACHINE_STATE_MAINTENANCE, "fan").ok());
  v1::ListMachinesRequest by_state;
  by_state.set_state(v1::MACHINE_STATE_MAINTENANCE);
  EXPECT_EQ(IdsOf(ListMachines(by_state)), std::vector<std::string>{f::MachineId(2, 3)});
  by_state.set_state(v1::MACHINE_STATE_READY);
  EXPECT_EQ(ListMachines(by_state).total_size(), 11);

  v1::ListMachinesRequest by_type;
  by_type.set_instance_type_id(TestUuid(999));
  EXPECT_EQ(ListMachines(by_type).total_size(), 0);
  by_type.set_instance_type_id(f::kTypeId);
  EXPECT_EQ(ListMachines(by_type).total_size(), 12);
}

TEST_F(InventoryServiceTest, ListMachinesRejectsBadPageTokenAndPageSize) {
  v1::ListMachinesRequest req;
  req.set_page_token("not base64!");
  v1::ListMachinesResponse resp;
  grpc::Status status = inventory().ListMachines(Context().get(), req, &resp);
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::INVALID_ARGUMENT, "page_token"));
  ASSERT_TRUE(DetailsOf(status).bad_request.has_value());
  EXPECT_THAT(ViolationFields(*DetailsOf(status).bad_request), ElementsAre("page_token"));

  req.Clear();
  req.set_page_size(1001);
  status = inventory().ListMachines(Context().get(), req, &resp);
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::INVALID_ARGUMENT, "between 0 and 1000"));
  EXPECT_THAT(ViolationFields(*DetailsOf(status).bad_request), ElementsAre("page_size"));

  req.Clear();
  req.set_domain_id("rack-1");
  status = inventory().ListMachines(Context().get(), req, &resp);
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::INVALID_ARGUMENT, "domain_id"));
  EXPECT_THAT(ViolationFields(*DetailsOf(status).bad_request), ElementsAre("domain_id"));
}

TEST_F(InventoryServiceTest, GetMachineAndItsErrors) {
  absl::StatusOr<v1::Machine> machine = GetMachine(f::MachineId(1, 2));
  ASSERT_TRUE(machine.ok()) << machine.status();
  EXPECT_EQ(machine->domain_id(), f::DomainId(1));
  EXPECT_EQ(machine->tray_index(), 2);
  EXPECT_EQ(machine->labels().at("rack"), "1");
  EXPECT_EQ(machine->free_gpus(), 4);

  v1::GetMachineRequest req;
  req.set_id(TestUuid(4242));
  v1::Machine resp;
  grpc::Status status = inventory().GetMachine(Context().get(), req, &resp);
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::NOT_FOUND, "ListMachines"));
  std::optional<google::rpc::ResourceInfo> info = DetailsOf(status).resource_info;
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->resource_type(), "nvlsched.v1.Machine");
  EXPECT_EQ(info->resource_name(), TestUuid(4242));

  req.set_id("");
  status = inventory().GetMachine(Context().get(), req, &resp);
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::INVALID_ARGUMENT, "id is required"));
  EXPECT_THAT(ViolationFields(*DetailsOf(status).bad_request), ElementsAre("id"));
}

TEST_F(InventoryServiceTest, SetMachineStateDrainsAndUndrains) {
  v1::Machine drained;
  ASSERT_TRUE(SetState(f::MachineId(0, 1), v1::MACHINE_STATE_MAINTENANCE, "PSU swap", &drained).ok());
  EXPECT_EQ(drained.state(), v1::MACHINE_STATE_MAINTENANCE);
  EXPECT_EQ(drained.state_reason(), "PSU swap");
  EXPECT_EQ(drained.free_gpus(), 0);  // never chosen while drained
  EXPECT_EQ(ListDomains().domains(0).free_machines(), 3);

  v1::Machine ready;
  ASSERT_TRUE(SetState(f::MachineId(0, 1), v1::MACHINE_STATE_READY, "", &ready).ok());
  EXPECT_EQ(ready.state(), v1::MACHINE_STATE_READY);
  EXPECT_EQ(ready.free_gpus(), 4);
  EXPECT_EQ(ListDomains().domains(0).free_machines(), 4);
}

TEST_F(InventoryServiceTest, SetMachineStateErrors) {
  grpc::Status status = SetState(f::MachineId(0, 0), v1::MACHINE_STATE_UNSPECIFIED);
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::INVALID_ARGUMENT, "MACHINE_STATE_READY"));
  EXPECT_THAT(ViolationFields(*DetailsOf(status).bad_request), ElementsAre("state"));

  status = SetState(f::MachineId(0, 0), static_cast<v1::MachineState>(17));
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::INVALID_ARGUMENT, "state"));

  status = SetState(TestUuid(77), v1::MACHINE_STATE_ERROR, "dead");
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::NOT_FOUND, "does not exist"));
  ASSERT_TRUE(DetailsOf(status).resource_info.has_value());
  EXPECT_EQ(DetailsOf(status).resource_info->resource_name(), TestUuid(77));
}

TEST_F(InventoryServiceTest, DrainingAHeldMachineDoesNotEvict) {
  absl::StatusOr<v1::Instance> instance = CreateWholeMachineInstance("trainer-1");
  ASSERT_TRUE(instance.ok()) << instance.status();
  const std::string machine_id = instance->machine_id();

  v1::Machine drained;
  ASSERT_TRUE(SetState(machine_id, v1::MACHINE_STATE_ERROR, "GPU fell off the bus", &drained).ok());
  EXPECT_THAT(drained.instance_ids(), ElementsAre(instance->id()));

  v1::GetInstanceRequest get;
  get.set_org(f::kOrg);
  get.set_id(instance->id());
  v1::Instance still;
  ASSERT_TRUE(instances().GetInstance(Context().get(), get, &still).ok());
  EXPECT_EQ(still.machine_id(), machine_id);

  // Undraining keeps the holder too: the machine is still not free.
  v1::Machine ready;
  ASSERT_TRUE(SetState(machine_id, v1::MACHINE_STATE_READY, "", &ready).ok());
  EXPECT_THAT(ready.instance_ids(), ElementsAre(instance->id()));
  EXPECT_EQ(ready.free_gpus(), 0);
}

TEST_F(InventoryServiceTest, DrainedMachinesAreNeverChosen) {
  for (int t = 0; t < f::kMachinesPerDomain; ++t) {
    ASSERT_TRUE(SetState(f::MachineId(0, t), v1::MACHINE_STATE_MAINTENANCE, "rack 0 work").ok());
  }
  absl::StatusOr<v1::Instance> instance = CreateWholeMachineInstance("trainer-2");
  ASSERT_TRUE(instance.ok()) << instance.status();
  EXPECT_NE(instance->nvlink_domain_id(), f::DomainId(0));
}

TEST_F(InventoryServiceTest, RemoveMachine) {
  v1::RemoveMachineResponse removed;
  ASSERT_TRUE(Remove(f::MachineId(2, 0), &removed).ok());
  EXPECT_EQ(removed.machine().id(), f::MachineId(2, 0));
  EXPECT_EQ(removed.machine().domain_id(), f::DomainId(2));
  EXPECT_EQ(GetMachine(f::MachineId(2, 0)).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ListMachines().total_size(), 11);
  EXPECT_EQ(ListDomains().domains(2).total_machines(), 3);

  grpc::Status status = Remove(f::MachineId(2, 0));
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::NOT_FOUND, f::MachineId(2, 0)));
  ASSERT_TRUE(DetailsOf(status).resource_info.has_value());
  EXPECT_EQ(DetailsOf(status).resource_info->resource_type(), "nvlsched.v1.Machine");

  status = Remove("m-1");
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::INVALID_ARGUMENT, "id"));
  EXPECT_THAT(ViolationFields(*DetailsOf(status).bad_request), ElementsAre("id"));
}

TEST_F(InventoryServiceTest, RemoveMachineWhileHeldFailsNamingTheHolders) {
  absl::StatusOr<v1::Instance> a = CreateGpuInstance("slice-a", 1);
  ASSERT_TRUE(a.ok()) << a.status();
  absl::StatusOr<v1::Instance> b = CreateGpuInstance("slice-b", 2);
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_EQ(a->machine_id(), b->machine_id());  // fewest free GPUs that still fit

  absl::StatusOr<v1::Machine> machine = GetMachine(a->machine_id());
  ASSERT_TRUE(machine.ok());
  EXPECT_EQ(machine->free_gpus(), 1);
  std::set<std::string> holders(machine->instance_ids().begin(), machine->instance_ids().end());
  EXPECT_EQ(holders, (std::set<std::string>{a->id(), b->id()}));

  grpc::Status status = Remove(a->machine_id());
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::FAILED_PRECONDITION, "held by 2 instance(s)"));
  EXPECT_NE(status.error_message().find(a->id()), std::string::npos);
  EXPECT_NE(status.error_message().find(b->id()), std::string::npos);
  EXPECT_NE(status.error_message().find("DeleteInstance"), std::string::npos);
  std::optional<google::rpc::PreconditionFailure> failure = DetailsOf(status).precondition_failure;
  ASSERT_TRUE(failure.has_value());
  std::set<std::string> subjects;
  for (const auto& v : failure->violations()) {
    EXPECT_EQ(v.type(), "HELD");
    subjects.insert(v.subject());
  }
  EXPECT_EQ(subjects, (std::set<std::string>{"instance:" + a->id(), "instance:" + b->id()}));
  EXPECT_TRUE(GetMachine(a->machine_id()).ok());  // still there
}

TEST_F(InventoryServiceTest, ListDomainsCountsFreeAndTotalMachines) {
  v1::ListDomainsResponse resp = ListDomains();
  ASSERT_EQ(resp.domains_size(), 3);
  for (int d = 0; d < 3; ++d) {
    EXPECT_EQ(resp.domains(d).id(), f::DomainId(d));
    EXPECT_EQ(resp.domains(d).name(), absl::StrCat("nvl72-rack-", d));
    EXPECT_EQ(resp.domains(d).site_id(), f::kSiteId);
    EXPECT_EQ(resp.domains(d).total_machines(), 4);
    EXPECT_EQ(resp.domains(d).free_machines(), 4);
  }
  absl::StatusOr<v1::Instance> instance = CreateWholeMachineInstance("trainer-3");
  ASSERT_TRUE(instance.ok()) << instance.status();
  resp = ListDomains();
  int free = 0;
  for (const v1::Domain& d : resp.domains()) {
    free += d.free_machines();
    EXPECT_EQ(d.free_machines(), d.id() == instance->nvlink_domain_id() ? 3 : 4);
  }
  EXPECT_EQ(free, 11);

  EXPECT_EQ(ListDomains(f::kSiteId).domains_size(), 3);
  EXPECT_EQ(ListDomains(TestUuid(5)).domains_size(), 0);

  v1::ListDomainsRequest bad;
  bad.set_site_id("site one");
  v1::ListDomainsResponse ignored;
  grpc::Status status = inventory().ListDomains(Context().get(), bad, &ignored);
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::INVALID_ARGUMENT, "site_id"));
  EXPECT_THAT(ViolationFields(*DetailsOf(status).bad_request), ElementsAre("site_id"));
}

TEST_F(InventoryServiceTest, ListInstanceTypes) {
  v1::ListInstanceTypesResponse resp;
  ASSERT_TRUE(inventory().ListInstanceTypes(Context().get(), {}, &resp).ok());
  ASSERT_EQ(resp.instance_types_size(), 1);
  const v1::InstanceType& type = resp.instance_types(0);
  EXPECT_EQ(type.id(), f::kTypeId);
  EXPECT_EQ(type.name(), f::kTypeName);
  EXPECT_EQ(type.gpu_model(), f::kGpuModel);
  EXPECT_EQ(type.gpus_per_machine(), 4);
  EXPECT_EQ(type.gpu_memory_mib(), 177383);
  EXPECT_DOUBLE_EQ(type.price_per_hour(), 42.0);
  EXPECT_EQ(type.interconnect(), "NVLink 5 (NVL72)");
}

TEST_F(InventoryServiceTest, CallsAfterTheEngineStoppedAreUnavailable) {
  harness().engine().Stop();
  v1::ListMachinesResponse resp;
  grpc::Status status = inventory().ListMachines(Context().get(), {}, &resp);
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::UNAVAILABLE, "shutting down"));
  status = SetState(f::MachineId(0, 0), v1::MACHINE_STATE_MAINTENANCE);
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::UNAVAILABLE, "shutting down"));
}

TEST_F(InventoryServiceTest, EverythingSurvivesARestart) {
  ASSERT_TRUE(SetState(f::MachineId(1, 1), v1::MACHINE_STATE_MAINTENANCE, "cabling").ok());
  ASSERT_TRUE(Remove(f::MachineId(2, 3)).ok());
  absl::StatusOr<v1::Instance> instance = CreateGpuInstance("slice-c", 3);
  ASSERT_TRUE(instance.ok()) << instance.status();
  v1::Tenant tenant;
  tenant.set_id(TestUuid(102));
  tenant.set_org("globex");
  ASSERT_TRUE(Upsert(tenant).ok());

  const v1::ListMachinesResponse machines = ListMachines();
  const v1::ListDomainsResponse domains = ListDomains();
  const v1::ListTenantsResponse tenants = ListTenants();
  Restart();
  EXPECT_EQ(ListMachines().SerializeAsString(), machines.SerializeAsString());
  EXPECT_EQ(ListDomains().SerializeAsString(), domains.SerializeAsString());
  EXPECT_EQ(ListTenants().SerializeAsString(), tenants.SerializeAsString());
  EXPECT_EQ(GetMachine(f::MachineId(1, 1))->state_reason(), "cabling");
}

}  // namespace
}  // namespace nvlsched::daemon::testing
