// Shared fixture of the InstanceService gRPC tests (instance_*_test.cc): the small fleet
// applied, request builders with a minimal valid body, typed call wrappers, and the read-backs
// the tests compare against (free machines per domain, every instance of an org, the
// allocator's invariant check on the engine thread).
#ifndef NVLSCHED_TESTS_DAEMON_INSTANCE_TEST_FIXTURE_H_
#define NVLSCHED_TESTS_DAEMON_INSTANCE_TEST_FIXTURE_H_

#include <algorithm>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/daemon/services/service_fixture.h"

namespace nvlsched::daemon::testing {

namespace f = small_fleet;

// Ids that are well-formed but name nothing in the small fleet.
inline constexpr char kUnknownUuid[] = "0badbad0-0000-4000-8000-000000000000";
// A second tenant of the same org (acme) and a tenant of another org.
inline constexpr char kSecondTenantId[] = "7e000000-0000-4000-8000-000000000002";
inline constexpr char kOtherOrg[] = "globex";
inline constexpr char kOtherOrgTenantId[] = "7e000000-0000-4000-8000-0000000000ff";

class InstanceServiceTest : public ServiceTest {
 protected:
  void SetUp() override {
    ServiceTest::SetUp();
    ASSERT_TRUE(ApplySmallFleet().ok());
  }

  // ---- request builders ----

  // A minimal valid batch of the small fleet's type for its tenant (strict unless told).
  static v1::BatchCreateInstancesRequest Batch(int count) {
    v1::BatchCreateInstancesRequest req;
    req.set_org(f::kOrg);
    req.set_name_prefix("worker");
    req.set_count(count);
    req.set_tenant_id(f::kTenantId);
    req.set_instance_type_id(f::kTypeId);
    req.set_vpc_id(TestUuid(900));
    v1::InterfaceCreateRequest* itf = req.add_interfaces();
    itf->set_subnet_id(TestUuid(901));
    itf->set_is_physical(true);
    req.set_operating_system_id(TestUuid(902));
    return req;
  }
  static v1::BatchCreateInstancesRequest CrossDomainBatch(int count) {
    v1::BatchCreateInstancesRequest req = Batch(count);
    req.set_topology_optimized(false);
    return req;
  }
  // A single instance; gpus 0: the whole machine (gpu_count absent).
  static v1::CreateInstanceRequest Single(const std::string& name, int gpus = 0) {
    v1::CreateInstanceRequest req;
    req.set_org(f::kOrg);
    req.set_tenant_id(f::kTenantId);
    req.set_instance_type_id(f::kTypeId);
    req.set_name(name);
    if (gpus > 0) req.set_gpu_count(gpus);
    return req;
  }

  // ---- calls ----

  grpc::Status BatchCreate(const v1::BatchCreateInstancesRequest& req,
                           v1::BatchCreateInstancesResponse* resp) {
    return instances().BatchCreateInstances(Context().get(), req, resp);
  }
  // Creates the batch; fails the test (and returns an empty response) when it does not succeed.
  v1::BatchCreateInstancesResponse MustBatchCreate(const v1::BatchCreateInstancesRequest& req) {
    v1::BatchCreateInstancesResponse resp;
    grpc::Status status = BatchCreate(req, &resp);
    EXPECT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
    return resp;
  }
  grpc::Status Create(const v1::CreateInstanceRequest& req, v1::Instance* resp) {
    return instances().CreateInstance(Context().get(), req, resp);
  }
  v1::Instance MustCreate(const v1::CreateInstanceRequest& req) {
    v1::Instance resp;
    grpc::Status status = Create(req, &resp);
    EXPECT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
    return resp;
  }
  grpc::Status Get(const std::string& id, v1::Instance* resp, const std::string& org = f::kOrg) {
    v1::GetInstanceRequest req;
    req.set_org(org);
    req.set_id(id);
    return instances().GetInstance(Context().get(), req, resp);
  }
  grpc::Status UpdateStatus(const std::string& id, v1::InstanceStatus status,
                            const std::string& message, v1::Instance* resp) {
    v1::UpdateInstanceStatusRequest req;
    req.set_org(f::kOrg);
    req.set_id(id);
    req.set_status(status);
    req.set_message(message);
    return instances().UpdateInstanceStatus(Context().get(), req, resp);
  }
  grpc::Status Delete(const std::string& id, bool machine_health_issue = false,
                      v1::DeleteInstanceResponse* resp = nullptr,
                      const std::string& org = f::kOrg) {
    v1::DeleteInstanceRequest req;
    req.set_org(org);
    req.set_id(id);
    req.set_machine_health_issue(machine_health_issue);
    v1::DeleteInstanceResponse ignored;
    return instances().DeleteInstance(Context().get(), req, resp != nullptr ? resp : &ignored);
  }
  grpc::Status BatchDelete(const std::vector<std::string>& ids,
                           v1::BatchDeleteInstancesResponse* resp = nullptr) {
    v1::BatchDeleteInstancesRequest req;
    req.set_org(f::kOrg);
    for (const std::string& id : ids) req.add_ids(id);
    v1::BatchDeleteInstancesResponse ignored;
    return instances().BatchDeleteInstances(Context().get(), req,
                                            resp != nullptr ? resp : &ignored);
  }
  grpc::Status List(const v1::ListInstancesRequest& req, v1::ListInstancesResponse* resp) {
    return instances().ListInstances(Context().get(), req, resp);
  }
  // Every instance `org` sees (matching `filter`'s filters), walking every page.
  std::vector<v1::Instance> ListAll(v1::ListInstancesRequest filter = {},
                                    const std::string& org = f::kOrg) {
    std::vector<v1::Instance> out;
    filter.set_org(org);
    filter.set_page_size(1000);
    filter.clear_page_token();
    for (int pages = 0; pages < 100; ++pages) {
      v1::ListInstancesResponse resp;
      grpc::Status status = List(filter, &resp);
      EXPECT_TRUE(status.ok()) << status.error_message();
      if (!status.ok()) break;
      out.insert(out.end(), resp.instances().begin(), resp.instances().end());
      if (resp.next_page_token().empty()) break;
      filter.set_page_token(resp.next_page_token());
    }
    return out;
  }
  grpc::Status UpsertTenant(const v1::Tenant& tenant) {
    v1::UpsertTenantRequest req;
    *req.mutable_tenant() = tenant;
    v1::Tenant ignored;
    return inventory().UpsertTenant(Context().get(), req, &ignored);
  }
  // A tenant of the small fleet's type with `max_machines` quota.
  static v1::Tenant TenantWithQuota(const std::string& id, const std::string& org,
                                    int64_t max_machines) {
    v1::Tenant tenant;
    tenant.set_id(id);
    tenant.set_org(org);
    tenant.set_name(absl::StrCat("tenant ", id));
    v1::Quota* quota = tenant.add_quotas();
    quota->set_instance_type_id(f::kTypeId);
    quota->set_max_machines(max_machines);
    return tenant;
  }

  // ---- read-backs ----

  // Index of a small-fleet domain id, -1 when it is none of them.
  static int DomainIndex(const std::string& domain_id) {
    for (int d = 0; d < f::kDomains; ++d) {
      if (f::DomainId(d) == domain_id) return d;
    }
    return -1;
  }
  // Free (whole, READY, unheld) machines per small-fleet domain, by domain index.
  std::vector<int> FreeByDomain() {
    std::vector<int> free(f::kDomains, -1);
    v1::ListDomainsResponse resp;
    grpc::Status status = inventory().ListDomains(Context().get(), {}, &resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
    for (const v1::Domain& domain : resp.domains()) {
      const int d = DomainIndex(domain.id());
      if (d >= 0) free[d] = domain.free_machines();
    }
    return free;
  }
  int TotalFree() {
    int total = 0;
    for (int n : FreeByDomain()) total += n;
    return total;
  }
  // The allocator's from-scratch invariant check, run on the engine thread.
  absl::Status Invariants() {
    absl::Status result = absl::UnknownError("the read did not run");
    harness().Read([&result](const State& state) { result = state.allocator().CheckInvariants(); });
    return result;
  }
};

// The machine ids of `instances`, in order.
template <typename Instances>
std::vector<std::string> MachinesOf(const Instances& instances) {
  std::vector<std::string> out;
  for (const v1::Instance& i : instances) out.push_back(i.machine_id());
  return out;
}
template <typename Instances>
std::vector<std::string> IdsOf(const Instances& instances) {
  std::vector<std::string> out;
  for (const v1::Instance& i : instances) out.push_back(i.id());
  return out;
}
inline std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace nvlsched::daemon::testing

#endif  // NVLSCHED_TESTS_DAEMON_INSTANCE_TEST_FIXTURE_H_
