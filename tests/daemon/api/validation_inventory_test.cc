// Validation of fleets and of the other InventoryService and CapacityService requests.
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "daemon/api/fleet.h"
#include "daemon/api/validation.h"
#include "tests/daemon/bad_request_matchers.h"

namespace nvlsched::daemon {
namespace {

namespace v1 = ::nvlsched::v1;
using testing::ExpectInvalid;

constexpr char kOtherUuid[] = "0b9f6c7e-1a2b-4c3d-8e4f-5a6b7c8d9e0f";

// 2 domains x 4 machines x 4 GPUs, one type, one tenant.
v1::Fleet SmallFleet() {
  FleetShape shape;
  shape.domains = 2;
  shape.machines_per_domain = 4;
  absl::StatusOr<v1::Fleet> fleet = GenerateFleet(shape);
  EXPECT_TRUE(fleet.ok()) << fleet.status();
  return *fleet;
}

TEST(FleetValidationTest, GeneratedAndDemoFleetsAreValid) {
  EXPECT_TRUE(ValidateFleet(SmallFleet(), {}).ok());
  EXPECT_TRUE(ValidateFleet(DemoFleet(), {}).ok()) << ValidateFleet(DemoFleet(), {});
  v1::ApplyFleetRequest request;
  *request.mutable_fleet() = DemoFleet();
  EXPECT_TRUE(ValidateApplyFleetRequest(request, {}).ok());
}

TEST(FleetValidationTest, ReferencesMayResolveInTheInventory) {
  v1::Fleet fleet = SmallFleet();
  fleet.clear_instance_types();
  fleet.clear_domains();
  ValidationContext context;
  context.known_domain = [&](absl::string_view id) {
    return id == SmallFleet().domains(0).id() || id == SmallFleet().domains(1).id();
  };
  context.known_instance_type_gpus = [&](absl::string_view id) {
    return id == SmallFleet().instance_types(0).id() ? 4 : 0;
  };
  EXPECT_TRUE(ValidateFleet(fleet, context).ok()) << ValidateFleet(fleet, context);

  // The inventory's type has 8 GPUs: the machines' 4 no longer match.
  context.known_instance_type_gpus = [](absl::string_view) { return 8; };
  const absl::Status status = ValidateFleet(fleet, context);
  EXPECT_EQ(testing::ViolationFields(status).size(), 8u) << status;
  EXPECT_NE(std::string(status.message())
                .find("machines[0].gpu_count must equal gpus_per_machine of its instance type "
                      "(8), got 4"),
            std::string::npos);
}

struct BadFleet {
  std::string name;
  std::function<void(v1::Fleet&)> mutate;
  std::vector<std::string> fields;
  std::string message;
};

std::vector<BadFleet> BadFleets() {
  return {
      {"Empty", [](auto& f) { f.Clear(); }, {"instance_types"}, "the fleet is empty"},
      {"TypeIdNotUuid",
       [](auto& f) { f.mutable_instance_types(0)->set_id("gb200"); },
       // Machines and the quota now reference a type that is not in the fleet.
       {"instance_types[0].id", "machines[0].instance_type_id", "machines[1].instance_type_id",
        "machines[2].instance_type_id", "machines[3].instance_type_id",
        "machines[4].instance_type_id", "machines[5].instance_type_id",
        "machines[6].instance_type_id", "machines[7].instance_type_id",
        "tenants[0].quotas[0].instance_type_id"},
       "instance_types[0].id must be a UUID"},
      {"TypeIdRepeated",
       [](auto& f) {
         v1::InstanceType copy = f.instance_types(0);
         copy.set_name("other");
         *f.add_instance_types() = copy;
       },
       {"instance_types[1].id"},
       "is already the instance type id of instance_types[0].id"},
      {"TypeNameRepeated",
       [](auto& f) {
         v1::InstanceType copy = f.instance_types(0);
         copy.set_id(kOtherUuid);
         *f.add_instance_types() = copy;
       },
       {"instance_types[1].name"},
       "\"gb200-tray\" is already the instance type name"},
      {"TypeNameMissing",
       [](auto& f) { f.mutable_instance_types(0)->clear_name(); },
       {"instance_types[0].name"},
       "instance_types[0].name is required"},
      {"GpuModelMissing",
       [](auto& f) { f.mutable_instance_types(0)->clear_gpu_model(); },
       {"instance_types[0].gpu_model"},
       "gpu_model is required"},
      {"ZeroGpusPerMachine",
       [](auto& f) { f.mutable_instance_types(0)->set_gpus_per_machine(0); },
       {"instance_types[0].gpus_per_machine"},
       "instance_types[0].gpus_per_machine must be between 1 and 16, got 0"},
      // One limit with the allocator's (allocator::kMaxGpusPerMachine = 16): a 32-GPU type
      // used to pass here and then be refused by the allocator without a field violation.
      {"ThirtyTwoGpusPerMachine",
       [](auto& f) { f.mutable_instance_types(0)->set_gpus_per_machine(32); },
       {"instance_types[0].gpus_per_machine"},
       "instance_types[0].gpus_per_machine must be between 1 and 16, got 32"},
      {"TooManyGpusPerMachine",
       [](auto& f) { f.mutable_instance_types(0)->set_gpus_per_machine(65); },
       {"instance_types[0].gpus_per_machine"},
       "got 65"},
      {"NegativeMemory",
       [](auto& f) { f.mutable_instance_types(0)->set_gpu_memory_mib(-1); },
       {"instance_types[0].gpu_memory_mib"},
       "0 or more, got -1"},
      {"NegativePrice",
       [](auto& f) { f.mutable_instance_types(0)->set_price_per_hour(-0.5); },
       {"instance_types[0].price_per_hour"},
       "instance_types[0].price_per_hour must be between 0 and 1000000 USD per machine-hour, got "
       "-0.5"},
      {"DomainIdRepeated",
       [](auto& f) {
         v1::Domain copy = f.domains(0);
         copy.set_name("again");
         *f.add_domains() = copy;
       },
       {"domains[2].id"},
       "is already the domain id of domains[0].id: each domain id must be unique"},
      {"DomainSiteNotUuid",
       [](auto& f) { f.mutable_domains(0)->set_site_id("site-1"); },
       {"domains[0].site_id"},
       "domains[0].site_id must be a UUID"},
      {"MachineIdRepeated",
       [](auto& f) { f.mutable_machines(5)->set_id(f.machines(2).id()); },
       {"machines[5].id"},
       "is already the machine id of machines[2].id"},
      {"MachineIdMissing",
       [](auto& f) { f.mutable_machines(0)->clear_id(); },
       {"machines[0].id"},
       "machines[0].id is required: the UUID of the machine"},
      {"MachineInUnknownDomain",
       [](auto& f) { f.mutable_machines(0)->set_domain_id(kOtherUuid); },
       {"machines[0].domain_id"},
       "names no domain of the fleet or the inventory: add it to domains"},
      {"MachineOfUnknownType",
       [](auto& f) { f.mutable_machines(7)->set_instance_type_id(kOtherUuid); },
       {"machines[7].instance_type_id"},
       "names no instance type of the fleet or the inventory: add it to instance_types"},
      {"MachineGpuCountMismatch",
       [](auto& f) { f.mutable_machines(3)->set_gpu_count(8); },
       {"machines[3].gpu_count"},
       "machines[3].gpu_count must equal gpus_per_machine of its instance type (4), got 8"},
      {"NegativeTray",
       [](auto& f) { f.mutable_machines(0)->set_tray_index(-1); },
       {"machines[0].tray_index"},
       "machines[0].tray_index must be 0 or more, got -1"},
      {"TrayRepeatedInDomain",
       [](auto& f) { f.mutable_machines(1)->set_tray_index(0); },
       {"machines[1].tray_index"},
       "machines[1].tray_index 0 is already taken by machines[0] in the same domain"},
      {"TooManyMachinesInDomain",
       [](auto& f) {
         for (int i = 4; i < 145; ++i) {
           v1::Machine* machine = f.add_machines();
           *machine = f.machines(0);
           machine->set_id(absl::StrFormat("00000000-0000-4000-8000-%012d", i));
           machine->set_tray_index(i);
         }
       },
       {"machines"},
       "has 145 machines in the fleet, at most 144 (NVL576) are allowed in one NVLink domain"},
      {"UnknownMachineState",
       [](auto& f) { f.mutable_machines(0)->set_state(static_cast<v1::MachineState>(9)); },
       {"machines[0].state"},
       "machines[0].state must be MACHINE_STATE_READY"},
      {"MachineLabelKeyEmpty",
       [](auto& f) { (*f.mutable_machines(0)->mutable_labels())[""] = "x"; },
       {"machines[0].labels[\"\"]"},
       "label keys must be between 1 and 255"},
      {"TenantWithoutOrg",
       [](auto& f) { f.mutable_tenants(0)->clear_org(); },
       {"tenants[0].org"},
       "tenants[0].org is required"},
      {"NegativeQuota",
       [](auto& f) { f.mutable_tenants(0)->mutable_quotas(0)->set_max_machines(-1); },
       {"tenants[0].quotas[0].max_machines"},
       "tenants[0].quotas[0].max_machines must be 0 or more (0 forbids the type), got -1"},
      {"QuotaOfUnknownType",
       [](auto& f) { f.mutable_tenants(0)->mutable_quotas(0)->set_instance_type_id(kOtherUuid); },
       {"tenants[0].quotas[0].instance_type_id"},
       "names no instance type of the fleet"},
      {"QuotaTypeRepeated",
       [](auto& f) { *f.mutable_tenants(0)->add_quotas() = f.tenants(0).quotas(0); },
       {"tenants[0].quotas[1].instance_type_id"},
       "tenants[0].quotas[1] repeats the quota for instance type"},
      {"QuotaTypeAndSiteRepeated",
       [](auto& f) {
         f.mutable_tenants(0)->mutable_quotas(0)->set_site_id(kOtherUuid);
         *f.mutable_tenants(0)->add_quotas() = f.tenants(0).quotas(0);
       },
       {"tenants[0].quotas[1].instance_type_id"},
       "repeats the quota for instance type"},
      {"TenantPriorityAboveRange",
       [](auto& f) { f.mutable_tenants(0)->set_priority(1001); },
       {"tenants[0].priority"},
       "tenants[0].priority must be between -1000 and 1000 (higher is scheduled first, 0 is the "
       "default), got 1001"},
      {"TenantIdRepeated",
       [](auto& f) {
         v1::Tenant copy = f.tenants(0);
         copy.set_org("other");
         *f.add_tenants() = copy;
       },
       {"tenants[1].id"},
       "is already the tenant id of tenants[0].id"},
  };
}

class BadFleetTest : public ::testing::TestWithParam<BadFleet> {};

TEST_P(BadFleetTest, IsRejectedAtItsField) {
  v1::Fleet fleet = SmallFleet();
  GetParam().mutate(fleet);
  ExpectInvalid(ValidateFleet(fleet, {}), GetParam().fields, GetParam().message);
}

INSTANTIATE_TEST_SUITE_P(Table, BadFleetTest, ::testing::ValuesIn(BadFleets()),
                         [](const auto& info) { return info.param.name; });

TEST(FleetValidationTest, ApplyFleetPrefixesPathsWithFleet) {
  v1::ApplyFleetRequest request;
  ExpectInvalid(ValidateApplyFleetRequest(request, {}), {"fleet"},
                "invalid ApplyFleetRequest: the fleet is empty");
  *request.mutable_fleet() = SmallFleet();
  request.mutable_fleet()->mutable_machines(2)->set_tray_index(-4);
  ExpectInvalid(ValidateApplyFleetRequest(request, {}), {"fleet.machines[2].tray_index"},
                "fleet.machines[2].tray_index must be 0 or more, got -4");
}

TEST(InventoryValidationTest, SetMachineState) {
  v1::SetMachineStateRequest request;
  request.set_id(kOtherUuid);
  request.set_state(v1::MACHINE_STATE_MAINTENANCE);
  request.set_reason("fan replacement");
  EXPECT_TRUE(ValidateSetMachineStateRequest(request).ok());
  request.set_state(v1::MACHINE_STATE_UNSPECIFIED);
  request.set_id("m-1");
  ExpectInvalid(ValidateSetMachineStateRequest(request), {"id", "state"},
                "state must be MACHINE_STATE_READY, MACHINE_STATE_MAINTENANCE or "
                "MACHINE_STATE_ERROR, got MACHINE_STATE_UNSPECIFIED");
}

TEST(InventoryValidationTest, UpsertTenant) {
  v1::UpsertTenantRequest request;
  ExpectInvalid(ValidateUpsertTenantRequest(request), {"tenant"}, "tenant is required");
  *request.mutable_tenant() = DemoFleet().tenants(0);
  EXPECT_TRUE(ValidateUpsertTenantRequest(request).ok());
  // Whether the quota's instance type exists is the caller's NOT_FOUND, not checked here.
  request.mutable_tenant()->mutable_quotas(0)->set_instance_type_id(kOtherUuid);
  EXPECT_TRUE(ValidateUpsertTenantRequest(request).ok());
  request.mutable_tenant()->set_id("");
  request.mutable_tenant()->set_org("");
  request.mutable_tenant()->mutable_quotas(0)->set_max_machines(-2);
  ExpectInvalid(ValidateUpsertTenantRequest(request),
                {"tenant.id", "tenant.org", "tenant.quotas[0].max_machines"},
                "tenant.id is required: the UUID of the tenant");
}

TEST(InventoryValidationTest, UpsertTenantPriorityRange) {
  v1::UpsertTenantRequest request;
  *request.mutable_tenant() = DemoFleet().tenants(0);
  for (int32_t priority : {-1000, -1, 0, 1, 1000}) {
    request.mutable_tenant()->set_priority(priority);
    EXPECT_TRUE(ValidateUpsertTenantRequest(request).ok()) << priority;
  }
  request.mutable_tenant()->set_priority(1001);
  ExpectInvalid(ValidateUpsertTenantRequest(request), {"tenant.priority"},
                "tenant.priority must be between -1000 and 1000 (higher is scheduled first, 0 is "
                "the default), got 1001");
  request.mutable_tenant()->set_priority(-1001);
  ExpectInvalid(ValidateUpsertTenantRequest(request), {"tenant.priority"},
                "tenant.priority must be between -1000 and 1000");
  request.mutable_tenant()->set_priority(INT32_MIN);
  ExpectInvalid(ValidateUpsertTenantRequest(request), {"tenant.priority"},
                absl::StrCat("got ", INT32_MIN));
  // One violation per field: a bad priority is reported next to the tenant's other problems.
  request.mutable_tenant()->set_org("");
  request.mutable_tenant()->set_priority(INT32_MAX);
  ExpectInvalid(ValidateUpsertTenantRequest(request), {"tenant.org", "tenant.priority"},
                "tenant.org is required");
}

TEST(InventoryValidationTest, MachineIdsAndLists) {
  v1::GetMachineRequest get;
  ExpectInvalid(ValidateGetMachineRequest(get), {"id"}, "id is required: the UUID of the machine");
  get.set_id(std::string(kDemoDomainIds[0]));
  EXPECT_TRUE(ValidateGetMachineRequest(get).ok());
  v1::RemoveMachineRequest remove;
  remove.set_id("x");
  ExpectInvalid(ValidateRemoveMachineRequest(remove), {"id"}, "id must be a UUID");

  v1::ListMachinesRequest list;
  EXPECT_TRUE(ValidateListMachinesRequest(list).ok());
  list.set_domain_id("rack-1");
  list.set_state(static_cast<v1::MachineState>(7));
  list.set_page_size(5000);
  ExpectInvalid(ValidateListMachinesRequest(list), {"domain_id", "state", "page_size"}, "got 5000");

  v1::ListDomainsRequest domains;
  domains.set_site_id("demo-site-1");
  ExpectInvalid(ValidateListDomainsRequest(domains), {"site_id"}, "site_id must be a UUID");
}

TEST(CapacityValidationTest, ListOffers) {
  v1::ListOffersRequest request;
  EXPECT_TRUE(ValidateListOffersRequest(request).ok());
  request.set_gpu_type("gb200");
  request.set_gpu_count(4);
  request.set_sort("price");
  request.set_site_id(std::string(kDemoSiteId));
  EXPECT_TRUE(ValidateListOffersRequest(request).ok());
  request.set_sort("cost");
  request.set_gpu_count(-1);
  ExpectInvalid(ValidateListOffersRequest(request), {"gpu_count", "sort"},
                "sort must be empty or \"price\", got \"cost\"");
  request.set_sort("");
  request.set_gpu_count(65);
  request.set_gpu_type(std::string(65, 'g'));
  ExpectInvalid(ValidateListOffersRequest(request), {"gpu_type", "gpu_count"},
                "gpu_count must be between 0 and 16 (0 means any), got 65");
}

}  // namespace
}  // namespace nvlsched::daemon
