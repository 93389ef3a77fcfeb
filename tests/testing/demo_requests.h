// Requests on the demo fleet (daemon/api/fleet.h) for tests that drive nvlschedd over gRPC: a call context with a deadline, and a batch create with the demo
// fleet's VPC, subnet and operating system. Header-only: the e2e tests link the protos.
#ifndef NVLSCHED_TESTS_TESTING_DEMO_REQUESTS_H_
#define NVLSCHED_TESTS_TESTING_DEMO_REQUESTS_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>

#include "daemon/api/fleet.h"
#include "nvlsched/v1/instance_service.pb.h"

namespace nvlsched::testing {

// A client context whose deadline is `seconds` from now.
inline std::unique_ptr<grpc::ClientContext> CallContext(int seconds = 20) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  return ctx;
}

// A topology-optimized batch of `count` demo machines for `tenant` (default: the demo tenant)
// in the demo tenant's org.
inline v1::BatchCreateInstancesRequest DemoBatch(
    const std::string& name_prefix, int count,
    const std::string& tenant = std::string(daemon::kDemoTenantId)) {
  v1::BatchCreateInstancesRequest req;
  req.set_org(std::string(daemon::kDemoTenantOrg));
  req.set_name_prefix(name_prefix);
  req.set_count(count);
  req.set_tenant_id(tenant);
  req.set_instance_type_id(std::string(daemon::kDemoInstanceTypeId));
  req.set_vpc_id("5e28ad7c-5fb7-46d6-a28a-fc0ba6fdc4a3");
  v1::InterfaceCreateRequest* itf = req.add_interfaces();
  itf->set_subnet_id("1f232bf0-7b90-456e-b9b0-38d9fea4171a");
  itf->set_is_physical(true);
  req.set_operating_system_id("eaeb86ee-c435-444e-9e01-8346f67f194b");
  return req;
}

}  // namespace nvlsched::testing

#endif  // NVLSCHED_TESTS_TESTING_DEMO_REQUESTS_H_
