// End-to-end: machines and domains as operators run them (issue 19), through the real
// build/bin/nvlschedd on its demo fleet (8 NVLink domains x 18 machines) with cleaning on (the
// default) and --max_batch_count=36:
//   - a deleted instance's machine is CLEANING, not free in offers or ListDomains, and is
//     handed out again only after CompleteCleaning;
//   - ReplaceInstance keeps the instance's id and NVLink domain and drains the old machine;
//   - a 32-machine batch in segments of 16 lands 16 + 16;
//   - a DEGRADED domain gets no strict batch, but singles still go there;
//   - all of it is still so after kill -9 and a restart from the database;
//   - spare trays (a fleet default and a domain's own setting): new batches leave them,
//     ReplaceInstance takes one, and the settings survive kill -9.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nvlsched/v1/capacity_service.grpc.pb.h"
#include "nvlsched/v1/instance_service.grpc.pb.h"
#include "nvlsched/v1/inventory_service.grpc.pb.h"
#include "tests/testing/daemon_process.h"
#include "tests/testing/demo_requests.h"

namespace nvlsched {
namespace {

namespace v1 = ::nvlsched::v1;

// The demo fleet's fixed ids (daemon/api/fleet.h).
const std::string kType(daemon::kDemoInstanceTypeId);
constexpr char kTenant[] = "30000000-0000-4000-8000-0000000000e2";

std::unique_ptr<grpc::ClientContext> Ctx() { return testing::CallContext(); }

v1::BatchCreateInstancesRequest Batch(const std::string& prefix, int count) {
  return testing::DemoBatch(prefix, count, kTenant);
}

class OperationsE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(::testing::TempDir(), "/operations_e2e.", getpid());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void Connect(const testing::DaemonProcess& daemon) {
    auto channel = grpc::CreateChannel(daemon.address(), grpc::InsecureChannelCredentials());
    instances_ = v1::InstanceService::NewStub(channel);
    inventory_ = v1::InventoryService::NewStub(channel);
    capacity_ = v1::CapacityService::NewStub(channel);
  }

  v1::Machine GetMachine(const std::string& id) {
    v1::GetMachineRequest req;
    req.set_id(id);
    v1::Machine machine;
    grpc::Status status = inventory_->GetMachine(Ctx().get(), req, &machine);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return machine;
  }

  v1::Instance GetInstance(const std::string& id) {
    v1::GetInstanceRequest req;
    req.set_org("demo");
    req.set_id(id);
    v1::Instance instance;
    grpc::Status status = instances_->GetInstance(Ctx().get(), req, &instance);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return instance;
  }

  std::map<std::string, v1::Domain> Domains() {
    v1::ListDomainsResponse resp;
    grpc::Status status = inventory_->ListDomains(Ctx().get(), v1::ListDomainsRequest(), &resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
    std::map<std::string, v1::Domain> out;
    for (const v1::Domain& d : resp.domains()) out[d.id()] = d;
    return out;
  }

  v1::Offer Offer() {
    v1::ListOffersResponse resp;
    grpc::Status status = capacity_->ListOffers(Ctx().get(), v1::ListOffersRequest(), &resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(resp.offers_size(), 1);
    return resp.offers_size() > 0 ? resp.offers(0) : v1::Offer();
  }

  grpc::Status SetDomainState(const std::string& id, v1::DomainState state) {
    v1::SetDomainStateRequest req;
    req.set_domain_id(id);
    req.set_state(state);
    req.set_reason("e2e: NVLink fabric check");
    v1::Domain domain;
    return inventory_->SetDomainState(Ctx().get(), req, &domain);
  }

  // ReplaceInstance with a health issue (the old machine is drained).
  void ReplaceUnhealthy(const std::string& id, v1::Instance* replaced) {
    v1::ReplaceInstanceRequest req;
    req.set_org("demo");
    req.set_id(id);
    req.set_machine_health_issue(true);
    grpc::Status status = instances_->ReplaceInstance(Ctx().get(), req, replaced);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }

  // ApplyFleet of `domain` (id, name, site) with its own spare_machines (nullopt: the
  // default), and the fleet default when given.
  void ApplySpares(const v1::Domain& domain, std::optional<int> own,
                   std::optional<int> fleet_default = std::nullopt) {
    v1::ApplyFleetRequest req;
    if (fleet_default.has_value()) req.mutable_fleet()->set_default_spare_machines(*fleet_default);
    v1::Domain* spec = req.mutable_fleet()->add_domains();
    spec->set_id(domain.id());
    spec->set_name(domain.name());
    spec->set_site_id(domain.site_id());
    if (own.has_value()) spec->set_spare_machines(*own);
    v1::ApplyFleetResponse resp;
    grpc::Status status = inventory_->ApplyFleet(Ctx().get(), req, &resp);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }

  // The test's tenant, with room for the whole demo fleet.
  void AddTenant() {
    v1::UpsertTenantRequest tenant;
    tenant.mutable_tenant()->set_id(kTenant);
    tenant.mutable_tenant()->set_org("demo");
    tenant.mutable_tenant()->set_name("operations");
    v1::Quota* quota = tenant.mutable_tenant()->add_quotas();
    quota->set_instance_type_id(kType);
    quota->set_max_machines(144);
    v1::Tenant ignored;
    grpc::Status status = inventory_->UpsertTenant(Ctx().get(), tenant, &ignored);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }

  std::string dir_;
  std::unique_ptr<v1::InstanceService::Stub> instances_;
  std::unique_ptr<v1::InventoryService::Stub> inventory_;
  std::unique_ptr<v1::CapacityService::Stub> capacity_;
};

TEST_F(OperationsE2eTest, CleaningReplaceSegmentsAndDomainHealthThroughTheRealDaemon) {
  const std::string db = absl::StrCat("--db=", dir_, "/nvlsched.db");
  testing::DaemonProcess daemon(NVLSCHEDD_PATH, dir_);
  ASSERT_TRUE(daemon.Start({db, "--seed_fleet=demo", "--metrics_listen=", "--max_batch_count=36"}).ok());
  Connect(daemon);
  ASSERT_NO_FATAL_FAILURE(AddTenant());
  const std::map<std::string, v1::Domain> domains = Domains();
  ASSERT_EQ(domains.size(), 8u);
  ASSERT_EQ(Offer().free_machines(), 144);

  // --- Even segments: 32 in segments of 16 is 16 + 16 in two domains.
  v1::BatchCreateInstancesRequest segmented = Batch("seg", 32);
  segmented.set_topology_optimized(false);
  segmented.set_segment_size(16);
  v1::BatchCreateInstancesResponse gang;
  {
    grpc::Status status = instances_->BatchCreateInstances(Ctx().get(), segmented, &gang);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  ASSERT_EQ(gang.instances_size(), 32);
  std::map<std::string, int> per_domain;
  for (const v1::Instance& i : gang.instances()) ++per_domain[i.nvlink_domain_id()];
  ASSERT_EQ(per_domain.size(), 2u);
  for (const auto& [domain, n] : per_domain) EXPECT_EQ(n, 16) << domain;

  // --- Cleaning: a strict batch of 4 (in a third domain: the segments' two have 2 free
  // each); deleting one leaves its machine CLEANING.
  v1::BatchCreateInstancesResponse pair;
  {
    grpc::Status status = instances_->BatchCreateInstances(Ctx().get(), Batch("four", 4), &pair);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  ASSERT_EQ(pair.instances_size(), 4);
  EXPECT_EQ(per_domain.count(pair.nvlink_domain_id()), 0u);
  const std::string gone_machine = pair.instances(0).machine_id();
  const std::string pair_domain = pair.nvlink_domain_id();
  const int free_before_delete = Offer().free_machines();
  {
    v1::DeleteInstanceRequest del;
    del.set_org("demo");
    del.set_id(pair.instances(0).id());
    v1::DeleteInstanceResponse deleted;
    grpc::Status status = instances_->DeleteInstance(Ctx().get(), del, &deleted);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  EXPECT_EQ(GetMachine(gone_machine).state(), v1::MACHINE_STATE_CLEANING);
  v1::Offer offer = Offer();
  EXPECT_EQ(offer.free_machines(), free_before_delete) << "a machine not yet wiped counts as free";
  EXPECT_EQ(offer.cleaning_machines(), 1);
  EXPECT_EQ(Domains().at(pair_domain).cleaning_machines(), 1);

  // --- ReplaceInstance with a health issue: same id, same domain, another machine; the old
  // machine is drained.
  const v1::Instance survivor = pair.instances(1);
  v1::Instance replaced;
  ASSERT_NO_FATAL_FAILURE(ReplaceUnhealthy(survivor.id(), &replaced));
  EXPECT_EQ(replaced.id(), survivor.id());
  EXPECT_EQ(replaced.nvlink_domain_id(), survivor.nvlink_domain_id());
  EXPECT_NE(replaced.machine_id(), survivor.machine_id());
  EXPECT_NE(replaced.machine_id(), gone_machine) << "a CLEANING machine was handed out";
  EXPECT_EQ(GetMachine(survivor.machine_id()).state(), v1::MACHINE_STATE_MAINTENANCE);

  // --- Domain health: every domain DEGRADED.
  for (const auto& [id, domain] : domains) {
    grpc::Status status = SetDomainState(id, v1::DOMAIN_STATE_DEGRADED);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  {
    v1::BatchCreateInstancesResponse refused;
    grpc::Status status = instances_->BatchCreateInstances(Ctx().get(), Batch("strict", 2), &refused);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  }
  EXPECT_EQ(Offer().largest_strict_batch(), 0);
  v1::Instance single;
  {
    v1::CreateInstanceRequest req;
    req.set_org("demo");
    req.set_tenant_id(kTenant);
    req.set_instance_type_id(kType);
    req.set_name("single-on-degraded");
    req.set_vpc_id("5e28ad7c-5fb7-46d6-a28a-fc0ba6fdc4a3");
    v1::InterfaceCreateRequest* itf = req.add_interfaces();
    itf->set_subnet_id("1f232bf0-7b90-456e-b9b0-38d9fea4171a");
    itf->set_is_physical(true);
    req.set_operating_system_id("eaeb86ee-c435-444e-9e01-8346f67f194b");
    grpc::Status status = instances_->CreateInstance(Ctx().get(), req, &single);
    ASSERT_TRUE(status.ok()) << "a single may use a DEGRADED domain: " << status.error_message();
  }
  EXPECT_NE(single.machine_id(), gone_machine) << "a CLEANING machine was handed out";

  // --- kill -9, restart from the database: the same states.
  absl::StatusOr<int> code = daemon.StopWith(SIGKILL);
  ASSERT_TRUE(code.ok()) << code.status();
  testing::DaemonProcess again(NVLSCHEDD_PATH, dir_);
  ASSERT_TRUE(again.Start({db, "--metrics_listen=", "--max_batch_count=36"}).ok());
  Connect(again);
  EXPECT_EQ(GetMachine(gone_machine).state(), v1::MACHINE_STATE_CLEANING) << again.Log();
  EXPECT_EQ(GetMachine(survivor.machine_id()).state(), v1::MACHINE_STATE_MAINTENANCE);
  const v1::Instance after = GetInstance(survivor.id());
  EXPECT_EQ(after.machine_id(), replaced.machine_id());
  EXPECT_EQ(after.nvlink_domain_id(), survivor.nvlink_domain_id());
  for (const auto& [id, domain] : Domains()) {
    EXPECT_EQ(domain.state(), v1::DOMAIN_STATE_DEGRADED) << id;
  }
  {
    v1::BatchCreateInstancesResponse refused;
    grpc::Status status = instances_->BatchCreateInstances(Ctx().get(), Batch("strict2", 2), &refused);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  }

  // The fabric is fixed in the pair's domain and the machine is wiped: a strict batch goes
  // there again, and the wiped machine is free.
  ASSERT_TRUE(SetDomainState(pair_domain, v1::DOMAIN_STATE_READY).ok());
  const int free_before_wipe = Offer().free_machines();
  {
    v1::CompleteCleaningRequest req;
    req.add_machine_ids(gone_machine);
    v1::CompleteCleaningResponse resp;
    grpc::Status status = inventory_->CompleteCleaning(Ctx().get(), req, &resp);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  EXPECT_EQ(GetMachine(gone_machine).state(), v1::MACHINE_STATE_READY);
  EXPECT_EQ(Offer().free_machines(), free_before_wipe + 1);
  v1::BatchCreateInstancesResponse strict;
  {
    grpc::Status status = instances_->BatchCreateInstances(Ctx().get(), Batch("strict3", 2), &strict);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  EXPECT_EQ(strict.nvlink_domain_id(), pair_domain);
  ASSERT_TRUE(again.StopWith(SIGTERM).ok());
}

TEST_F(OperationsE2eTest, SpareTraysAreLeftByNewBatchesTakenByReplaceAndSurviveKill9) {
  const std::string db = absl::StrCat("--db=", dir_, "/nvlsched.db");
  testing::DaemonProcess daemon(NVLSCHEDD_PATH, dir_);
  ASSERT_TRUE(daemon.Start({db, "--seed_fleet=demo", "--metrics_listen="}).ok());
  Connect(daemon);
  ASSERT_NO_FATAL_FAILURE(AddTenant());
  const std::map<std::string, v1::Domain> domains = Domains();
  ASSERT_EQ(domains.size(), 8u);
  // Two spares per domain by default; the first domain keeps none of its own.
  const v1::Domain& open = domains.begin()->second;
  ASSERT_NO_FATAL_FAILURE(ApplySpares(open, /*own=*/0, /*fleet_default=*/2));
  v1::Offer offer = Offer();
  EXPECT_EQ(offer.free_machines(), 144);
  EXPECT_EQ(offer.spare_machines(), 14);
  EXPECT_EQ(offer.available_machines(), 130);

  // 18 fits only the domain without spares; then a 17 fits nowhere now (16 is the most any
  // other domain places).
  v1::BatchCreateInstancesResponse full;
  ASSERT_TRUE(instances_->BatchCreateInstances(Ctx().get(), Batch("full", 18), &full).ok());
  EXPECT_EQ(full.nvlink_domain_id(), open.id());
  v1::BatchCreateInstancesResponse refused;
  grpc::Status seventeen = instances_->BatchCreateInstances(Ctx().get(), Batch("big", 17), &refused);
  EXPECT_EQ(seventeen.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(seventeen.error_message().find("most free in any domain is 16"), std::string::npos)
      << seventeen.error_message();
  // 16 fills another domain but its spares.
  v1::BatchCreateInstancesResponse sixteen;
  ASSERT_TRUE(instances_->BatchCreateInstances(Ctx().get(), Batch("sixteen", 16), &sixteen).ok());
  const std::string busy = sixteen.nvlink_domain_id();
  EXPECT_NE(busy, open.id());
  EXPECT_EQ(Domains().at(busy).free_machines(), 2);
  EXPECT_EQ(Domains().at(busy).available_machines(), 0);

  // A failed tray there is replaced by one of the spares, in the same domain.
  const v1::Instance victim = sixteen.instances(3);
  v1::Instance moved;
  ASSERT_NO_FATAL_FAILURE(ReplaceUnhealthy(victim.id(), &moved));
  EXPECT_EQ(moved.nvlink_domain_id(), busy);
  EXPECT_NE(moved.machine_id(), victim.machine_id());
  EXPECT_EQ(Domains().at(busy).free_machines(), 1);

  // kill -9: the settings and the placements are as they were.
  absl::StatusOr<int> code = daemon.StopWith(SIGKILL);
  ASSERT_TRUE(code.ok()) << code.status();
  testing::DaemonProcess again(NVLSCHEDD_PATH, dir_);
  ASSERT_TRUE(again.Start({db, "--metrics_listen="}).ok());
  Connect(again);
  const std::map<std::string, v1::Domain> after = Domains();
  EXPECT_TRUE(after.at(open.id()).has_spare_machines()) << again.Log();
  EXPECT_EQ(after.at(open.id()).spare_machines(), 0);
  EXPECT_FALSE(after.at(busy).has_spare_machines());
  EXPECT_EQ(after.at(busy).effective_spare_machines(), 2);
  EXPECT_EQ(after.at(busy).free_machines(), 1);
  EXPECT_EQ(GetInstance(victim.id()).machine_id(), moved.machine_id());
  offer = Offer();
  EXPECT_EQ(offer.available_machines(), 6 * 16);  // the six untouched domains, less 2 spares each
  EXPECT_EQ(offer.largest_strict_batch(), 16);

  // The open domain drops its own setting: now no domain could ever place 17.
  ASSERT_NO_FATAL_FAILURE(ApplySpares(open, /*own=*/std::nullopt));
  EXPECT_EQ(Domains().at(open.id()).effective_spare_machines(), 2);
  seventeen = instances_->BatchCreateInstances(Ctx().get(), Batch("big2", 17), &refused);
  EXPECT_EQ(seventeen.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(seventeen.error_message().find("2 are spare trays kept for ReplaceInstance"),
            std::string::npos)
      << seventeen.error_message();
  ASSERT_TRUE(again.StopWith(SIGTERM).ok());
}

}  // namespace
}  // namespace nvlsched
