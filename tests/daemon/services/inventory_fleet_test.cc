// InventoryService.ApplyFleet over gRPC: validation, all-or-nothing, idempotent upsert,
// durability.
#include <atomic>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/daemon/services/service_fixture.h"

namespace nvlsched::daemon::testing {
namespace {

namespace f = small_fleet;
using ::testing::ElementsAre;

class ApplyFleetTest : public ServiceTest {
 protected:
  HarnessOptions Options() override {
    HarnessOptions options = ServiceTest::Options();
    options.on_commit = [this](const CommitReport& report) {
      commits_.fetch_add(1);
      rows_.fetch_add(static_cast<int64_t>(report.rows));
    };
    return options;
  }

  v1::ListMachinesResponse Machines() {
    v1::ListMachinesResponse resp;
    grpc::Status status = inventory().ListMachines(Context().get(), {}, &resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return resp;
  }
  v1::ListInstanceTypesResponse Types() {
    v1::ListInstanceTypesResponse resp;
    EXPECT_TRUE(inventory().ListInstanceTypes(Context().get(), {}, &resp).ok());
    return resp;
  }
  v1::ListDomainsResponse Domains() {
    v1::ListDomainsResponse resp;
    EXPECT_TRUE(inventory().ListDomains(Context().get(), {}, &resp).ok());
    return resp;
  }
  v1::ListTenantsResponse Tenants() {
    v1::ListTenantsResponse resp;
    EXPECT_TRUE(inventory().ListTenants(Context().get(), {}, &resp).ok());
    return resp;
  }
  std::atomic<int> commits_{0};
  std::atomic<int64_t> rows_{0};

  // Everything the inventory shows, as bytes, to compare before and after.
  std::string Snapshot() {
    return absl::StrCat(Types().SerializeAsString(), "|", Domains().SerializeAsString(), "|",
                        Machines().SerializeAsString(), "|", Tenants().SerializeAsString());
  }
};

TEST_F(ApplyFleetTest, AppliesTheWholeFleetAndReportsCounts) {
  v1::ApplyFleetResponse resp;
  ASSERT_TRUE(ApplyFleet(SmallFleet(), &resp).ok());
  EXPECT_EQ(resp.instance_types(), 1);
  EXPECT_EQ(resp.domains(), 3);
  EXPECT_EQ(resp.machines(), 12);
  EXPECT_EQ(resp.tenants(), 1);
  EXPECT_EQ(Machines().total_size(), 12);
  EXPECT_EQ(Domains().domains_size(), 3);
  EXPECT_EQ(Types().instance_types_size(), 1);
  ASSERT_EQ(Tenants().tenants_size(), 1);
  EXPECT_EQ(Tenants().tenants(0).quotas(0).max_machines(), f::kQuotaMachines);
}

TEST_F(ApplyFleetTest, ApplyingTwiceIsAnIdempotentUpsert) {
  ASSERT_TRUE(ApplySmallFleet().ok());
  EXPECT_EQ(commits_.load(), 1);
  // One commit with every row, and its events (3 domains and 12 machines added, 1 tenant
  // created).
  EXPECT_EQ(rows_.load(), 1 + 3 + 12 + 1 + 3 + 12 + 1);
  const std::string before = Snapshot();
  v1::ApplyFleetResponse resp;
  ASSERT_TRUE(ApplyFleet(SmallFleet(), &resp).ok());
  EXPECT_EQ(resp.machines(), 12);
  EXPECT_EQ(Snapshot(), before);
  EXPECT_EQ(commits_.load(), 1);  // nothing changed, nothing written
}

TEST_F(ApplyFleetTest, UpsertChangesWhatDiffersAndKeepsTheRest) {
  ASSERT_TRUE(ApplySmallFleet().ok());
  v1::Fleet fleet = SmallFleet();
  fleet.mutable_instance_types(0)->set_price_per_hour(40.5);
  fleet.mutable_domains(1)->set_name("renamed");
  (*fleet.mutable_machines(0)->mutable_labels())["rack"] = "zero";
  ASSERT_TRUE(ApplyFleet(fleet).ok());
  EXPECT_DOUBLE_EQ(Types().instance_types(0).price_per_hour(), 40.5);
  EXPECT_EQ(Domains().domains(1).name(), "renamed");
  EXPECT_EQ(GetMachine(f::MachineId(0, 0))->labels().at("rack"), "zero");
  EXPECT_EQ(Machines().total_size(), 12);
}

TEST_F(ApplyFleetTest, ReapplyingKeepsDrainedMachinesDrainedUnlessTheFleetSaysOtherwise) {
  ASSERT_TRUE(ApplySmallFleet().ok());
  v1::SetMachineStateRequest drain;
  drain.set_id(f::MachineId(0, 2));
  drain.set_state(v1::MACHINE_STATE_MAINTENANCE);
  drain.set_reason("DIMM errors");
  v1::Machine ignored;
  ASSERT_TRUE(inventory().SetMachineState(Context().get(), drain, &ignored).ok());

  ASSERT_TRUE(ApplySmallFleet().ok());  // states unspecified: left as they are
  EXPECT_EQ(GetMachine(f::MachineId(0, 2))->state(), v1::MACHINE_STATE_MAINTENANCE);
  EXPECT_EQ(GetMachine(f::MachineId(0, 2))->state_reason(), "DIMM errors");

  v1::Fleet fleet = SmallFleet();
  fleet.mutable_machines(2)->set_state(v1::MACHINE_STATE_READY);
  ASSERT_EQ(fleet.machines(2).id(), f::MachineId(0, 2));
  ASSERT_TRUE(ApplyFleet(fleet).ok());
  EXPECT_EQ(GetMachine(f::MachineId(0, 2))->state(), v1::MACHINE_STATE_READY);
}

TEST_F(ApplyFleetTest, AFleetWithOneBadMachineChangesNothing) {
  v1::Fleet fleet = SmallFleet();
  fleet.mutable_machines(5)->set_tray_index(0);  // collides with machine 4 in domain 1
  grpc::Status status = ApplyFleet(fleet);
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::INVALID_ARGUMENT, "already taken"));
  ASSERT_TRUE(DetailsOf(status).bad_request.has_value());
  EXPECT_THAT(ViolationFields(*DetailsOf(status).bad_request),
              ElementsAre("fleet.machines[5].tray_index"));
  EXPECT_EQ(Types().instance_types_size(), 0);
  EXPECT_EQ(Domains().domains_size(), 0);
  EXPECT_EQ(Machines().total_size(), 0);
  EXPECT_EQ(Tenants().tenants_size(), 0);
}

TEST_F(ApplyFleetTest, AFailureMidwayRollsBackEverythingTheFleetChanged) {
  ASSERT_TRUE(ApplySmallFleet().ok());
  const std::string before = Snapshot();
  // Valid on its own, but its last machine takes a tray of a machine already in the
  // inventory: only the allocator sees that, after the type, domain and first machines went in.
  v1::Fleet fleet;
  v1::InstanceType* type = fleet.add_instance_types();
  *type = SmallFleet().instance_types(0);
  type->set_id(TestUuid(1));
  type->set_name("gb200-tray-b");
  v1::Domain* domain = fleet.add_domains();
  domain->set_id(TestUuid(2));
  domain->set_site_id(f::kSiteId);
  for (int t = 0; t < 2; ++t) {
    v1::Machine* m = fleet.add_machines();
    m->set_id(TestUuid(10 + t));
    m->set_domain_id(TestUuid(2));
    m->set_tray_index(t);
    m->set_instance_type_id(TestUuid(1));
    m->set_gpu_count(4);
  }
  v1::Machine* clash = fleet.add_machines();
  clash->set_id(TestUuid(20));
  clash->set_domain_id(f::DomainId(0));
  clash->set_tray_index(3);  // taken by MachineId(0, 3)
  clash->set_instance_type_id(f::kTypeId);
  clash->set_gpu_count(4);
  v1::Tenant* tenant = fleet.add_tenants();
  tenant->set_id(f::kTenantId);
  tenant->set_org("changed");

  const int commits_before = commits_.load();
  grpc::Status status = ApplyFleet(fleet);
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::INVALID_ARGUMENT, "fleet.machines[2]"));
  EXPECT_EQ(commits_.load(), commits_before);
  EXPECT_NE(status.error_message().find("nothing of the fleet was applied"), std::string::npos)
      << status.error_message();
  EXPECT_EQ(Snapshot(), before);
  Restart();  // and nothing of it reached the database
  EXPECT_EQ(Snapshot(), before);
}

TEST_F(ApplyFleetTest, ChangingTheStructureOfAHeldMachineFails) {
  ASSERT_TRUE(ApplySmallFleet().ok());
  absl::StatusOr<v1::Instance> instance = CreateWholeMachineInstance("held-1");
  ASSERT_TRUE(instance.ok()) << instance.status();
  v1::Fleet fleet = SmallFleet();
  for (v1::Machine& m : *fleet.mutable_machines()) {
    if (m.id() == instance->machine_id()) m.set_tray_index(9);
  }
  grpc::Status status = ApplyFleet(fleet);
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::FAILED_PRECONDITION,
                         "is held by instance " + instance->id()));
  EXPECT_NE(status.error_message().find(instance->machine_id()), std::string::npos);
}

TEST_F(ApplyFleetTest, ReferencesResolveToTheInventory) {
  ASSERT_TRUE(ApplySmallFleet().ok());
  v1::Fleet fleet;  // a machine of an existing type in an existing domain
  v1::Machine* m = fleet.add_machines();
  m->set_id(TestUuid(30));
  m->set_domain_id(f::DomainId(2));
  m->set_tray_index(7);
  m->set_instance_type_id(f::kTypeId);
  m->set_gpu_count(4);
  ASSERT_TRUE(ApplyFleet(fleet).ok());
  EXPECT_EQ(Machines().total_size(), 13);

  m->set_id(TestUuid(31));
  m->set_domain_id(TestUuid(32));  // nowhere
  m->set_gpu_count(8);             // the type has 4
  grpc::Status status = ApplyFleet(fleet);
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::INVALID_ARGUMENT, "add it to domains"));
  EXPECT_THAT(ViolationFields(*DetailsOf(status).bad_request),
              ElementsAre("fleet.machines[0].domain_id", "fleet.machines[0].gpu_count"));
}

TEST_F(ApplyFleetTest, ValidationErrors) {
  grpc::Status status = ApplyFleet(v1::Fleet());
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::INVALID_ARGUMENT, "the fleet is empty"));

  v1::Fleet fleet = SmallFleet();
  fleet.mutable_instance_types(0)->set_gpus_per_machine(0);
  fleet.mutable_tenants(0)->set_org("");
  status = ApplyFleet(fleet);
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::INVALID_ARGUMENT, "gpus_per_machine"));
  ASSERT_TRUE(DetailsOf(status).bad_request.has_value());
  std::vector<std::string> fields = ViolationFields(*DetailsOf(status).bad_request);
  EXPECT_THAT(fields, ::testing::Contains("fleet.instance_types[0].gpus_per_machine"));
  EXPECT_THAT(fields, ::testing::Contains("fleet.tenants[0].org"));
  EXPECT_EQ(Machines().total_size(), 0);
}

TEST_F(ApplyFleetTest, TheFleetSurvivesARestart) {
  ASSERT_TRUE(ApplySmallFleet().ok());
  const std::string before = Snapshot();
  Restart();
  EXPECT_EQ(Snapshot(), before);
}

}  // namespace
}  // namespace nvlsched::daemon::testing
