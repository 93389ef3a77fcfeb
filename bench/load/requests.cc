#include "bench/load/requests.h"

#include <string>

#include "daemon/api/fleet.h"
#include "daemon/api/status_mapping.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace nvlsched::load {

namespace v1 = ::nvlsched::v1;

v1::BatchCreateInstancesRequest BatchCreateTemplate(const LoadOptions& options) {
  v1::BatchCreateInstancesRequest request;
  request.set_org(options.org);
  request.set_tenant_id(options.tenant_id);
  request.set_instance_type_id(options.instance_type_id);
  request.set_name_prefix("nvlsched-load");
  request.set_vpc_id(daemon::NameBasedUuid("vpc/nvlsched-load"));
  v1::InterfaceCreateRequest* interface = request.add_interfaces();
  interface->set_subnet_id(daemon::NameBasedUuid("subnet/nvlsched-load"));
  interface->set_is_physical(true);
  request.set_operating_system_id(daemon::NameBasedUuid("operating_system/nvlsched-load"));
  return request;
}

v1::CreateInstanceRequest SingleCreateTemplate(const LoadOptions& options) {
  v1::CreateInstanceRequest request;
  request.set_org(options.org);
  request.set_tenant_id(options.tenant_id);
  request.set_instance_type_id(options.instance_type_id);
  return request;
}

Refusal ClassifyRefusal(const grpc::Status& status) {
  google::rpc::Status details;
  if (!details.ParseFromString(status.error_details())) return Refusal::kOther;
  for (const google::protobuf::Any& detail : details.details()) {
    if (detail.Is<google::rpc::QuotaFailure>()) return Refusal::kQuota;
    google::rpc::ErrorInfo info;
    if (detail.UnpackTo(&info) && info.reason() == daemon::kInsufficientCapacityReason) {
      return Refusal::kCapacity;
    }
  }
  return Refusal::kOther;
}

}  // namespace nvlsched::load
