// InventoryService tenants over gRPC: UpsertTenant and ListTenants (quotas, priority).
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/daemon/services/service_fixture.h"

namespace nvlsched::daemon::testing {
namespace {

namespace f = small_fleet;
using ::testing::ElementsAre;

class InventoryTenantTest : public ServiceTest {
 protected:
  void SetUp() override {
    ServiceTest::SetUp();
    ASSERT_TRUE(ApplySmallFleet().ok());
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

TEST_F(InventoryTenantTest, UpsertTenantCreatesAndReplaces) {
  v1::Tenant tenant;
  tenant.set_id(TestUuid(100));
  tenant.set_org("globex");
  tenant.set_name("Globex");
  v1::Quota* quota = tenant.add_quotas();
  quota->set_instance_type_id(f::kTypeId);
  quota->set_max_machines(2);
  v1::Tenant stored;
  ASSERT_TRUE(Upsert(tenant, &stored).ok());
  EXPECT_EQ(stored.id(), tenant.id());
  ASSERT_EQ(stored.quotas_size(), 1);
  EXPECT_EQ(stored.quotas(0).max_machines(), 2);

  tenant.mutable_quotas(0)->set_max_machines(6);
  ASSERT_TRUE(Upsert(tenant, &stored).ok());
  EXPECT_EQ(stored.quotas(0).max_machines(), 6);

  EXPECT_EQ(ListTenants().tenants_size(), 2);
  v1::ListTenantsResponse globex = ListTenants("globex");
  ASSERT_EQ(globex.tenants_size(), 1);
  EXPECT_EQ(globex.tenants(0).quotas(0).max_machines(), 6);
  EXPECT_EQ(ListTenants("initech").tenants_size(), 0);
  EXPECT_EQ(ListTenants(f::kOrg).tenants(0).id(), f::kTenantId);
}

TEST_F(InventoryTenantTest, UpsertTenantWithUnknownInstanceTypeIsNotFound) {
  v1::Tenant tenant;
  tenant.set_id(TestUuid(101));
  tenant.set_org("globex");
  tenant.add_quotas()->set_instance_type_id(f::kTypeId);
  tenant.add_quotas()->set_instance_type_id(TestUuid(555));
  grpc::Status status = Upsert(tenant);
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::NOT_FOUND, "add it with ApplyFleet first"));
  RpcDetails details = DetailsOf(status);
  ASSERT_TRUE(details.resource_info.has_value());
  EXPECT_EQ(details.resource_info->resource_type(), "nvlsched.v1.InstanceType");
  EXPECT_EQ(details.resource_info->resource_name(), TestUuid(555));
  ASSERT_TRUE(details.bad_request.has_value());
  EXPECT_THAT(ViolationFields(*details.bad_request),
              ElementsAre("tenant.quotas[1].instance_type_id"));
  EXPECT_EQ(ListTenants("globex").tenants_size(), 0);  // nothing was stored
}

TEST_F(InventoryTenantTest, UpsertTenantValidation) {
  v1::UpsertTenantRequest empty;
  v1::Tenant ignored;
  grpc::Status status = inventory().UpsertTenant(Context().get(), empty, &ignored);
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::INVALID_ARGUMENT, "tenant is required"));
  EXPECT_THAT(ViolationFields(*DetailsOf(status).bad_request), ElementsAre("tenant"));

  v1::Tenant tenant;
  tenant.set_id("tenant-1");
  tenant.set_org("globex");
  v1::Quota* quota = tenant.add_quotas();
  quota->set_instance_type_id(f::kTypeId);
  quota->set_max_machines(-1);
  status = Upsert(tenant);
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::INVALID_ARGUMENT, "0 or more"));
  EXPECT_THAT(ViolationFields(*DetailsOf(status).bad_request),
              ElementsAre("tenant.id", "tenant.quotas[0].max_machines"));
}

TEST_F(InventoryTenantTest, PriorityRoundTripsThroughUpsertListAndRestart) {
  EXPECT_EQ(ListTenants(f::kOrg).tenants(0).priority(), 0);  // the fleet set none
  v1::Tenant tenant;
  tenant.set_id(TestUuid(104));
  tenant.set_org("globex");
  v1::Quota* quota = tenant.add_quotas();
  quota->set_instance_type_id(f::kTypeId);
  quota->set_max_machines(1);
  tenant.set_priority(250);
  v1::Tenant stored;
  ASSERT_TRUE(Upsert(tenant, &stored).ok());
  EXPECT_EQ(stored.priority(), 250);
  ASSERT_EQ(ListTenants("globex").tenants_size(), 1);
  EXPECT_EQ(ListTenants("globex").tenants(0).priority(), 250);

  // Changing only the priority is a change (stored, listed, kept across a restart).
  tenant.set_priority(-1000);
  ASSERT_TRUE(Upsert(tenant, &stored).ok());
  EXPECT_EQ(stored.priority(), -1000);
  Restart();
  EXPECT_EQ(ListTenants("globex").tenants(0).priority(), -1000);

  // UpsertTenant replaces the whole tenant: a request without priority sets it back to 0.
  tenant.clear_priority();
  ASSERT_TRUE(Upsert(tenant, &stored).ok());
  EXPECT_EQ(stored.priority(), 0);
  EXPECT_EQ(ListTenants("globex").tenants(0).priority(), 0);
}

TEST_F(InventoryTenantTest, PriorityOutOfRangeIsRefusedAndNothingChanges) {
  v1::Tenant tenant = ListTenants(f::kOrg).tenants(0);
  tenant.set_priority(1001);
  grpc::Status status = Upsert(tenant);
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::INVALID_ARGUMENT,
                         "tenant.priority must be between -1000 and 1000"));
  EXPECT_THAT(ViolationFields(*DetailsOf(status).bad_request), ElementsAre("tenant.priority"));
  EXPECT_EQ(ListTenants(f::kOrg).tenants(0).priority(), 0);
}

TEST_F(InventoryTenantTest, ApplyFleetSetsPriority) {
  v1::Fleet fleet = SmallFleet();
  fleet.mutable_tenants(0)->set_priority(42);
  ASSERT_TRUE(ApplyFleet(fleet).ok());
  EXPECT_EQ(ListTenants(f::kOrg).tenants(0).priority(), 42);
  fleet.mutable_tenants(0)->set_priority(-1001);
  grpc::Status status = ApplyFleet(fleet);
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::INVALID_ARGUMENT,
                         "fleet.tenants[0].priority must be between -1000 and 1000"));
  EXPECT_EQ(ListTenants(f::kOrg).tenants(0).priority(), 42);
}

TEST_F(InventoryTenantTest, TenantsSurviveARestart) {
  v1::Tenant tenant;
  tenant.set_id(TestUuid(103));
  tenant.set_org("initech");
  v1::Quota* quota = tenant.add_quotas();
  quota->set_instance_type_id(f::kTypeId);
  quota->set_max_machines(3);
  tenant.set_priority(9);
  ASSERT_TRUE(Upsert(tenant).ok());
  const std::string before = ListTenants().SerializeAsString();
  Restart();
  EXPECT_EQ(ListTenants().SerializeAsString(), before);
}

}  // namespace
}  // namespace nvlsched::daemon::testing
