// Bad input on every InventoryService method (issue 21); see bad_input_fixture.h. Fleet ids
// follow the same case rule as requests (bad_input_instance_test.cc): lower case only.
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "tests/daemon/services/bad_input_fixture.h"

namespace nvlsched::daemon::testing {
namespace {

using grpc::StatusCode;
constexpr StatusCode kInvalid = StatusCode::INVALID_ARGUMENT;
constexpr StatusCode kNotFound = StatusCode::NOT_FOUND;
constexpr StatusCode kPrecondition = StatusCode::FAILED_PRECONDITION;

std::string Upper(const std::string& id) { return absl::AsciiStrToUpper(id); }

// An instance type with letters in its id (the small fleet's type id is all digits).
constexpr char kLetteredTypeId[] = "abcdef00-0000-4000-8000-000000000002";
v1::InstanceType LetteredType() {
  v1::InstanceType type;
  type.set_id(kLetteredTypeId);
  type.set_name("lettered");
  type.set_gpu_model("GB300");
  type.set_gpus_per_machine(4);
  return type;
}

TEST_F(BadInputTest, ApplyFleet) {
  using R = v1::ApplyFleetRequest;
  const std::vector<Row<R>> rows = {
      {"fleet absent", [](R& r) { r.clear_fleet(); }, kInvalid, {"fleet"}, "the fleet is empty"},
      {"type id not a UUID",
       [](R& r) {
         *r.mutable_fleet()->add_instance_types() = LetteredType();
         r.mutable_fleet()->mutable_instance_types(1)->set_id("gb300");
       },
       kInvalid, {"fleet.instance_types[1].id"}, "must be a UUID"},
      {"type id upper case",
       [](R& r) {
         *r.mutable_fleet()->add_instance_types() = LetteredType();
         r.mutable_fleet()->mutable_instance_types(1)->set_id(Upper(kLetteredTypeId));
       },
       kInvalid, {"fleet.instance_types[1].id"}, "lower case"},
      {"type name 1 MiB", [](R& r) { r.mutable_fleet()->mutable_instance_types(0)->set_name(MiB()); },
       kInvalid, {"fleet.instance_types[0].name"}, "between 1 and 128"},
      {"type name with a NUL byte",
       [](R& r) { r.mutable_fleet()->mutable_instance_types(0)->set_name(WithNul("gb", "200")); },
       kInvalid, {"fleet.instance_types[0].name"}, "control characters"},
      {"type name with a right-to-left override",
       [](R& r) {
         r.mutable_fleet()->mutable_instance_types(0)->set_name(
             absl::StrCat("gb200", kRtlOverride));
       },
       kInvalid, {"fleet.instance_types[0].name"}, "bidirectional"},
      {"gpus_per_machine 0",
       [](R& r) { r.mutable_fleet()->mutable_instance_types(0)->set_gpus_per_machine(0); },
       kInvalid, {"fleet.instance_types[0].gpus_per_machine"}, "between 1 and 16"},
      {"gpus_per_machine INT32_MAX",
       [](R& r) {
         r.mutable_fleet()->mutable_instance_types(0)->set_gpus_per_machine(2147483647);
       },
       kInvalid, {"fleet.instance_types[0].gpus_per_machine"}, "got 2147483647"},
      {"gpu_memory_mib negative",
       [](R& r) { r.mutable_fleet()->mutable_instance_types(0)->set_gpu_memory_mib(-1); },
       kInvalid, {"fleet.instance_types[0].gpu_memory_mib"}, "0 or more"},
      {"price NaN",
       [](R& r) { r.mutable_fleet()->mutable_instance_types(0)->set_price_per_hour(std::nan("")); },
       kInvalid, {"fleet.instance_types[0].price_per_hour"}, "got nan"},
      {"price 1e300",
       [](R& r) { r.mutable_fleet()->mutable_instance_types(0)->set_price_per_hour(1e300); },
       kInvalid, {"fleet.instance_types[0].price_per_hour"}, "between 0 and 1000000"},
      {"spot price negative",
       [](R& r) { r.mutable_fleet()->mutable_instance_types(0)->set_spot_hourly_price(-0.5); },
       kInvalid, {"fleet.instance_types[0].spot_hourly_price"}, "got -0.5"},
      {"domain id upper case",
       [](R& r) { r.mutable_fleet()->mutable_domains(0)->set_id(Upper(f::DomainId(0))); },
       kInvalid, {"fleet.domains[0].id"}, "lower case"},
      {"domain name 1 MiB", [](R& r) { r.mutable_fleet()->mutable_domains(0)->set_name(MiB()); },
       kInvalid, {"fleet.domains[0].name"}, "between 1 and 128"},
      {"domain state unknown enum number",
       [](R& r) {
         r.mutable_fleet()->mutable_domains(0)->set_state(static_cast<v1::DomainState>(42));
       },
       kInvalid, {"fleet.domains[0].state"}, "got 42"},
      {"domain state_reason 1 MiB",
       [](R& r) { r.mutable_fleet()->mutable_domains(0)->set_state_reason(MiB()); }, kInvalid,
       {"fleet.domains[0].state_reason"}, "at most 1024"},
      {"machine domain_id upper case (the domain exists in lower case)",
       [](R& r) { r.mutable_fleet()->mutable_machines(0)->set_domain_id(Upper(f::DomainId(0))); },
       kInvalid, {"fleet.machines[0].domain_id"}, "lower case"},
      {"machine instance_type_id upper case (the type is in the fleet in lower case)",
       [](R& r) {
         *r.mutable_fleet()->add_instance_types() = LetteredType();
         r.mutable_fleet()->mutable_machines(0)->set_instance_type_id(Upper(kLetteredTypeId));
       },
       kInvalid, {"fleet.machines[0].instance_type_id"}, "lower case"},
      {"machine domain_id well-formed, unknown",
       [](R& r) { r.mutable_fleet()->mutable_machines(0)->set_domain_id(kUnknownUuid); },
       kInvalid, {"fleet.machines[0].domain_id"}, "names no domain"},
      {"machine id repeated",
       [](R& r) {
         r.mutable_fleet()->mutable_machines(1)->set_id(r.fleet().machines(0).id());
       },
       kInvalid, {"fleet.machines[1].id"}, "must be unique"},
      {"machine tray_index negative",
       [](R& r) { r.mutable_fleet()->mutable_machines(0)->set_tray_index(-1); }, kInvalid,
       {"fleet.machines[0].tray_index"}, "0 or more"},
      {"machine tray_index taken",
       [](R& r) { r.mutable_fleet()->mutable_machines(1)->set_tray_index(0); }, kInvalid,
       {"fleet.machines[1].tray_index"}, "already taken"},
      {"machine gpu_count not its type's",
       [](R& r) { r.mutable_fleet()->mutable_machines(0)->set_gpu_count(8); }, kInvalid,
       {"fleet.machines[0].gpu_count"}, "must equal gpus_per_machine"},
      {"machine state unknown enum number",
       [](R& r) {
         r.mutable_fleet()->mutable_machines(0)->set_state(static_cast<v1::MachineState>(99));
       },
       kInvalid, {"fleet.machines[0].state"}, "got 99"},
      {"machine state CLEANING",
       [](R& r) { r.mutable_fleet()->mutable_machines(0)->set_state(v1::MACHINE_STATE_CLEANING); },
       kInvalid, {"fleet.machines[0].state"}, "cannot be set to MACHINE_STATE_CLEANING"},
      {"machine with 10,000 labels",
       [](R& r) {
         auto* labels = r.mutable_fleet()->mutable_machines(0)->mutable_labels();
         for (int i = 0; i < 10000; ++i) (*labels)[absl::StrCat("k", i)] = "v";
       },
       kInvalid, {"fleet.machines[0].labels"}, "at most 10 labels, got 10001"},
      {"machine label value with a NUL byte",
       [](R& r) {
         (*r.mutable_fleet()->mutable_machines(0)->mutable_labels())["rack"] = WithNul("0", "");
       },
       kInvalid, {"fleet.machines[0].labels[\"rack\"]"}, "control characters"},
      {"145 machines in one domain",
       [](R& r) {
         for (int t = f::kMachinesPerDomain; t < 145; ++t) {
           v1::Machine* m = r.mutable_fleet()->add_machines();
           *m = r.fleet().machines(0);
           m->set_id(TestUuid(20000 + t));
           m->set_tray_index(t);
         }
       },
       kInvalid, {"fleet.machines"}, "at most 144"},
      {"tenant id upper case",
       [](R& r) { r.mutable_fleet()->mutable_tenants(0)->set_id(Upper(f::kTenantId)); }, kInvalid,
       {"fleet.tenants[0].id"}, "lower case"},
      {"tenant org empty", [](R& r) { r.mutable_fleet()->mutable_tenants(0)->clear_org(); },
       kInvalid, {"fleet.tenants[0].org"}, "is required"},
      {"tenant priority 1001",
       [](R& r) { r.mutable_fleet()->mutable_tenants(0)->set_priority(1001); }, kInvalid,
       {"fleet.tenants[0].priority"}, "between -1000 and 1000"},
      {"tenant quota negative",
       [](R& r) {
         r.mutable_fleet()->mutable_tenants(0)->mutable_quotas(0)->set_max_machines(-1);
       },
       kInvalid, {"fleet.tenants[0].quotas[0].max_machines"}, "0 or more"},
      {"tenant quota for an unknown type",
       [](R& r) {
         r.mutable_fleet()->mutable_tenants(0)->mutable_quotas(0)->set_instance_type_id(
             kUnknownUuid);
       },
       kInvalid, {"fleet.tenants[0].quotas[0].instance_type_id"}, "names no instance type"},
  };
  R base;
  *base.mutable_fleet() = SmallFleet();
  EXPECT_EQ(RunTable("ApplyFleet", base, rows, &BadInputTest::CallApplyFleet), rows.size());
  ExpectHealthy();
}

TEST_F(BadInputTest, MachineReadsAndWrites) {
  const std::string machine = f::MachineId(2, 3);  // free
  {
    using R = v1::ListMachinesRequest;
    const std::vector<Row<R>> rows = {
        {"domain_id not a UUID", [](R& r) { r.set_domain_id("rack-1"); }, kInvalid, {"domain_id"},
         "must be a UUID"},
        {"domain_id upper case", [](R& r) { r.set_domain_id(Upper(f::DomainId(0))); }, kInvalid,
         {"domain_id"}, "lower case"},
        {"instance_type_id 1 MiB", [](R& r) { r.set_instance_type_id(MiB()); }, kInvalid,
         {"instance_type_id"}, "must be a UUID"},
        {"state unknown enum number",
         [](R& r) { r.set_state(static_cast<v1::MachineState>(99)); }, kInvalid, {"state"},
         "got 99"},
        {"page_size -1", [](R& r) { r.set_page_size(-1); }, kInvalid, {"page_size"},
         "between 0 and 1000"},
        {"page_size 1001", [](R& r) { r.set_page_size(1001); }, kInvalid, {"page_size"},
         "got 1001"},
        {"page_token garbage", [](R& r) { r.set_page_token("%%%"); }, kInvalid, {"page_token"},
         "page_token"},
    };
    EXPECT_EQ(RunTable("ListMachines", R{}, rows, &BadInputTest::CallListMachines), rows.size());
  }
  {
    using R = v1::GetMachineRequest;
    const std::vector<Row<R>> rows = {
        {"id empty", [](R& r) { r.clear_id(); }, kInvalid, {"id"}, "id is required"},
        {"id not a UUID", [](R& r) { r.set_id("tray-3"); }, kInvalid, {"id"}, "must be a UUID"},
        {"id upper case", [&](R& r) { r.set_id(Upper(machine)); }, kInvalid, {"id"},
         "lower case"},
        {"id 1 MiB", [](R& r) { r.set_id(MiB()); }, kInvalid, {"id"}, "(1048576 bytes)"},
        {"id with a NUL byte", [&](R& r) { r.set_id(WithNul(machine, "")); }, kInvalid, {"id"},
         "must be a UUID"},
        {"id well-formed, unknown", [](R& r) { r.set_id(kUnknownUuid); }, kNotFound, {},
         kUnknownUuid},
    };
    R base;
    base.set_id(machine);
    EXPECT_EQ(RunTable("GetMachine", base, rows, &BadInputTest::CallGetMachine), rows.size());
  }
  {
    using R = v1::SetMachineStateRequest;
    const std::vector<Row<R>> rows = {
        {"id empty", [](R& r) { r.clear_id(); }, kInvalid, {"id"}, "id is required"},
        {"id upper case", [&](R& r) { r.set_id(Upper(machine)); }, kInvalid, {"id"},
         "lower case"},
        {"id well-formed, unknown", [](R& r) { r.set_id(kUnknownUuid); }, kNotFound, {},
         kUnknownUuid},
        {"state UNSPECIFIED", [](R& r) { r.set_state(v1::MACHINE_STATE_UNSPECIFIED); }, kInvalid,
         {"state"}, "MACHINE_STATE_UNSPECIFIED"},
        {"state unknown enum number",
         [](R& r) { r.set_state(static_cast<v1::MachineState>(-3)); }, kInvalid, {"state"},
         "got -3"},
        {"state CLEANING", [](R& r) { r.set_state(v1::MACHINE_STATE_CLEANING); }, kInvalid,
         {"state"}, "cannot be set to MACHINE_STATE_CLEANING"},
        {"reason 1 MiB", [](R& r) { r.set_reason(MiB()); }, kInvalid, {"reason"},
         "at most 1024"},
    };
    R base;
    base.set_id(machine);
    base.set_state(v1::MACHINE_STATE_MAINTENANCE);
    EXPECT_EQ(RunTable("SetMachineState", base, rows, &BadInputTest::CallSetMachineState),
              rows.size());
  }
  {
    using R = v1::CompleteCleaningRequest;
    const std::vector<Row<R>> rows = {
        {"machine_ids empty", [](R& r) { r.clear_machine_ids(); }, kInvalid, {"machine_ids"},
         "machine_ids is required"},
        {"1,001 machine_ids",
         [](R& r) {
           r.clear_machine_ids();
           for (int i = 0; i < 1001; ++i) r.add_machine_ids(TestUuid(30000 + i));
         },
         kInvalid, {"machine_ids"}, "at most 1000"},
        {"an id not a UUID", [](R& r) { r.add_machine_ids("tray"); }, kInvalid,
         {"machine_ids[1]"}, "must be a UUID"},
        {"an id repeated", [&](R& r) { r.add_machine_ids(machine); }, kInvalid,
         {"machine_ids[1]"}, "more than once"},
        {"an id repeated in upper case", [&](R& r) { r.add_machine_ids(Upper(machine)); },
         kInvalid, {"machine_ids[1]"}, "lower case"},
        {"an id of 1 MiB, twice (the answer stays small)",
         [](R& r) {
           r.add_machine_ids(MiB());
           r.add_machine_ids(MiB());
         },
         kInvalid, {"machine_ids[1]", "machine_ids[2]"}, "(1048576 bytes)"},
        {"failed without a reason", [](R& r) { r.set_failed(true); }, kInvalid, {"reason"},
         "reason is required with failed"},
        {"reason 1 MiB", [](R& r) { r.set_reason(MiB()); }, kInvalid, {"reason"},
         "at most 1024"},
        {"an id well-formed, unknown", [](R& r) { r.set_machine_ids(0, kUnknownUuid); },
         kNotFound, {}, kUnknownUuid},
        {"a machine that is not CLEANING", nullptr, kPrecondition, {}, "CLEANING"},
    };
    R base;
    base.add_machine_ids(machine);
    EXPECT_EQ(RunTable("CompleteCleaning", base, rows, &BadInputTest::CallCompleteCleaning),
              rows.size());
  }
  {
    using R = v1::RemoveMachineRequest;
    const std::string held = keeper_.machine_id();
    const std::vector<Row<R>> rows = {
        {"id empty", [](R& r) { r.clear_id(); }, kInvalid, {"id"}, "id is required"},
        {"id not a UUID", [](R& r) { r.set_id(kEmoji); }, kInvalid, {"id"}, "must be a UUID"},
        {"id upper case", [&](R& r) { r.set_id(Upper(held)); }, kInvalid, {"id"}, "lower case"},
        {"id well-formed, unknown", [](R& r) { r.set_id(kUnknownUuid); }, kNotFound, {},
         kUnknownUuid},
        {"a machine an instance holds", nullptr, kPrecondition, {}, ""},
    };
    R base;
    base.set_id(held);
    EXPECT_EQ(RunTable("RemoveMachine", base, rows, &BadInputTest::CallRemoveMachine),
              rows.size());
  }
  ExpectHealthy();
}

TEST_F(BadInputTest, DomainsTypesAndTenants) {
  {
    using R = v1::ListDomainsRequest;
    const std::vector<Row<R>> rows = {
        {"site_id not a UUID", [](R& r) { r.set_site_id("site"); }, kInvalid, {"site_id"},
         "must be a UUID"},
        {"site_id upper case", [](R& r) { r.set_site_id("ABCDEF00-0000-4000-8000-000000000001"); },
         kInvalid, {"site_id"}, "lower case"},
        {"site_id 1 MiB", [](R& r) { r.set_site_id(MiB()); }, kInvalid, {"site_id"},
         "(1048576 bytes)"},
    };
    EXPECT_EQ(RunTable("ListDomains", R{}, rows, &BadInputTest::CallListDomains), rows.size());
  }
  {
    using R = v1::SetDomainStateRequest;
    const std::vector<Row<R>> rows = {
        {"domain_id empty", [](R& r) { r.clear_domain_id(); }, kInvalid, {"domain_id"},
         "domain_id is required"},
        {"domain_id upper case", [](R& r) { r.set_domain_id(Upper(f::DomainId(1))); }, kInvalid,
         {"domain_id"}, "lower case"},
        {"domain_id well-formed, unknown", [](R& r) { r.set_domain_id(kUnknownUuid); },
         kNotFound, {}, kUnknownUuid},
        {"state UNSPECIFIED", [](R& r) { r.set_state(v1::DOMAIN_STATE_UNSPECIFIED); }, kInvalid,
         {"state"}, "DOMAIN_STATE_UNSPECIFIED"},
        {"state unknown enum number", [](R& r) { r.set_state(static_cast<v1::DomainState>(7)); },
         kInvalid, {"state"}, "got 7"},
        {"reason 1 MiB", [](R& r) { r.set_reason(MiB()); }, kInvalid, {"reason"},
         "at most 1024"},
    };
    R base;
    base.set_domain_id(f::DomainId(1));
    base.set_state(v1::DOMAIN_STATE_MAINTENANCE);
    EXPECT_EQ(RunTable("SetDomainState", base, rows, &BadInputTest::CallSetDomainState),
              rows.size());
  }
  {
    using R = v1::UpsertTenantRequest;
    const std::vector<Row<R>> rows = {
        {"tenant absent", [](R& r) { r.clear_tenant(); }, kInvalid, {"tenant"},
         "tenant is required"},
        {"id empty", [](R& r) { r.mutable_tenant()->clear_id(); }, kInvalid, {"tenant.id"},
         "is required"},
        {"id upper case", [](R& r) { r.mutable_tenant()->set_id(Upper(f::kTenantId)); }, kInvalid,
         {"tenant.id"}, "lower case"},
        {"org with a space", [](R& r) { r.mutable_tenant()->set_org("ac me"); }, kInvalid,
         {"tenant.org"}, "whitespace"},
        {"org 1 MiB", [](R& r) { r.mutable_tenant()->set_org(MiB()); }, kInvalid, {"tenant.org"},
         "at most 256"},
        {"org with a right-to-left override",
         [](R& r) { r.mutable_tenant()->set_org(absl::StrCat("acme", kRtlOverride)); }, kInvalid,
         {"tenant.org"}, "bidirectional"},
        {"name 1 MiB", [](R& r) { r.mutable_tenant()->set_name(MiB()); }, kInvalid,
         {"tenant.name"}, "at most 256"},
        {"quota type not a UUID",
         [](R& r) { r.mutable_tenant()->mutable_quotas(0)->set_instance_type_id("gb200"); },
         kInvalid, {"tenant.quotas[0].instance_type_id"}, "must be a UUID"},
        {"quota type repeated",
         [](R& r) { *r.mutable_tenant()->add_quotas() = r.tenant().quotas(0); }, kInvalid,
         {"tenant.quotas[1].instance_type_id"}, "give each (instance type, site_id) one quota"},
        {"quota site not a UUID",
         [](R& r) { r.mutable_tenant()->mutable_quotas(0)->set_site_id("site-1"); }, kInvalid,
         {"tenant.quotas[0].site_id"}, "must be a UUID"},
        {"quota negative",
         [](R& r) { r.mutable_tenant()->mutable_quotas(0)->set_max_machines(-1); }, kInvalid,
         {"tenant.quotas[0].max_machines"}, "0 or more"},
        {"priority -1001", [](R& r) { r.mutable_tenant()->set_priority(-1001); }, kInvalid,
         {"tenant.priority"}, "between -1000 and 1000"},
        {"priority INT32_MIN", [](R& r) { r.mutable_tenant()->set_priority(-2147483647 - 1); },
         kInvalid, {"tenant.priority"}, "got -2147483648"},
        {"quota for a well-formed, unknown type",
         [](R& r) { r.mutable_tenant()->mutable_quotas(0)->set_instance_type_id(kUnknownUuid); },
         kNotFound, {"tenant.quotas[0].instance_type_id"}, kUnknownUuid},
    };
    R base;
    *base.mutable_tenant() = SmallFleet().tenants(0);
    EXPECT_EQ(RunTable("UpsertTenant", base, rows, &BadInputTest::CallUpsertTenant), rows.size());
  }
  {
    using R = v1::ListTenantsRequest;
    // org is optional (every org's tenants); when given it must be a well-formed org.
    const std::vector<Row<R>> rows = {
        {"org 1 MiB", [](R& r) { r.set_org(MiB()); }, kInvalid, {"org"}, "at most 256"},
        {"org with a NUL byte", [](R& r) { r.set_org(WithNul("acme", "")); }, kInvalid, {"org"},
         "control characters"},
        {"org with a space", [](R& r) { r.set_org("ac me"); }, kInvalid, {"org"}, "whitespace"},
    };
    EXPECT_EQ(RunTable("ListTenants", R{}, rows, &BadInputTest::CallListTenants), rows.size());
  }
  ExpectHealthy();
}

}  // namespace
}  // namespace nvlsched::daemon::testing
