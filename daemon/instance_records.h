// Building the API's Instance records: what a create request asked for (InstanceSpec, the
// fields a batch shares with a single create) plus where the allocator placed it.
//
// Thread-safety: pure functions; engine thread in practice.
#ifndef NVLSCHED_DAEMON_INSTANCE_RECORDS_H_
#define NVLSCHED_DAEMON_INSTANCE_RECORDS_H_

#include <string>
#include <vector>

#include "allocator/placement.h"
#include "daemon/instance_ops.h"
#include "daemon/state.h"
#include "nvlsched/v1/instance_service.pb.h"

namespace nvlsched::daemon {

// The request fields every instance of one create call shares.
struct InstanceSpec {
  std::string tenant_id;
  std::string instance_type_id;
  std::string description;
  std::string vpc_id;
  std::vector<std::string> secondary_vpc_ids;
  std::string operating_system_id;
  std::string network_security_group_id;
  std::string ipxe_script;
  bool always_boot_with_custom_ipxe = false;
  bool phone_home_enabled = false;
  std::string user_data;
  google::protobuf::Map<std::string, std::string> labels;
  google::protobuf::RepeatedPtrField<v1::InterfaceCreateRequest> interfaces;
  google::protobuf::RepeatedPtrField<v1::InfiniBandInterfaceCreateRequest> infiniband_interfaces;
  google::protobuf::RepeatedPtrField<v1::DpuExtensionServiceDeploymentRequest> dpu_deployments;
  google::protobuf::RepeatedPtrField<v1::NVLinkInterfaceCreateRequest> nv_link_interfaces;
  std::vector<std::string> ssh_key_group_ids;
  bool topology_optimized = true;
  // Distinct NVLink logical partitions named by nv_link_interfaces, in first-named order.
  std::vector<std::string> partition_ids;
};

InstanceSpec SpecFromBatch(const v1::BatchCreateInstancesRequest& req);
InstanceSpec SpecFromSingle(const v1::CreateInstanceRequest& req);

// A new instance, status PENDING, placed at `where`.
v1::Instance BuildInstance(const State& state, const OpContext& ctx, const InstanceSpec& spec,
                           const std::string& id, const std::string& name,
                           const std::string& batch_id, const allocator::PlacedInstance& where);

// validate_only: where each instance would go, with no id, name or status (nothing was taken).
void DescribePlacement(const State& state, const OpContext& ctx, const InstanceSpec& spec,
                       const allocator::Placement& placement,
                       google::protobuf::RepeatedPtrField<v1::Instance>* out);

// Sets the status and appends it to status_history; bumps `updated`.
void AppendStatus(const OpContext& ctx, v1::InstanceStatus status, const std::string& message,
                  v1::Instance* instance);

// "Pending", "Ready", ...: the seed API's spelling of a status.
std::string StatusWord(v1::InstanceStatus status);

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_INSTANCE_RECORDS_H_
