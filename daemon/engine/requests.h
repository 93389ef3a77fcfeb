// The core requests the engine runs: what a handler (daemon/services/) builds from a
// validated API request on the gRPC thread and queues. The engine thread parses nothing; the
// protobuf pieces here (interfaces, labels) are copied as they are into the records it builds.
//
// Thread-safety: plain values.
#ifndef NVLSCHED_DAEMON_ENGINE_REQUESTS_H_
#define NVLSCHED_DAEMON_ENGINE_REQUESTS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/random/bit_gen_ref.h"
#include "absl/time/time.h"
#include "allocator/model.h"
#include "nvlsched/v1/instance_service.pb.h"

namespace nvlsched::daemon {

// What an op needs besides State: the clock reading and the random source for ids/names.
struct OpContext {
  absl::Time now;
  absl::BitGenRef rng;
};

// The request fields every instance of one create call shares (copied into each record).
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
  // nv_link_interfaces[i].device_instance, for the checks that need the instance type.
  std::vector<int32_t> nvlink_device_instances;
  // billing_mode SPOT: cheaper, preemptible, never preempts; ON_DEMAND may preempt spot.
  bool spot = false;
};

// BatchCreateInstances or CreateInstance.
struct CreateRequest {
  std::string org;
  InstanceSpec spec;
  // Idempotency: the client's request_id and the fingerprint of the request body ("" and ""
  // without a request_id).
  std::string request_id;
  std::string fingerprint;
  bool validate_only = false;
  // Zero: no capacity now is RESOURCE_EXHAUSTED at once. Positive: wait in the queue this
  // long (checked against State::max_queue_timeout by the op).
  absl::Duration queue_timeout = absl::ZeroDuration();

  // BatchCreateInstances: count instances named "<name_prefix>-<6 random>".
  int32_t count = 1;
  std::string name_prefix;
  allocator::SpreadPolicy spread_policy = allocator::SpreadPolicy::kFill;
  int32_t segment_size = 0;  // BatchRequest::segment_size
  std::string site_id;       // both: empty = any site (BatchRequest / SingleRequest::site_id)

  // CreateInstance: one instance named `name`; gpu_count 0 = the whole machine.
  std::string name;
  int32_t gpu_count = 0;
  std::optional<double> max_price_per_hour;
};

// GetInstance, and the instance a status update or delete names.
struct InstanceRef {
  std::string org;
  std::string id;
};

struct StatusUpdate {
  InstanceRef instance;
  v1::InstanceStatus status = v1::INSTANCE_STATUS_UNSPECIFIED;
  std::string message;
};

// DeleteInstance (one id) or BatchDeleteInstances.
struct DeleteRequest {
  std::string org;
  std::vector<std::string> ids;
  bool machine_health_issue = false;
};

// ReplaceInstance.
struct ReplaceRequest {
  InstanceRef instance;
  bool machine_health_issue = false;
};

// ListInstances: filters, and the page after the instance id `after` ("" = the first page).
struct InstanceQuery {
  std::string org;
  std::string tenant_id;
  std::string batch_id;
  std::vector<std::pair<std::string, std::string>> labels;
  int32_t page_size = 0;  // 0: the default
  std::string after;
};

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_ENGINE_REQUESTS_H_
