// Building the API's Instance records: what a create request asked for (InstanceSpec,
// requests.h) plus where the allocator placed it.
//
// Thread-safety: pure functions; engine thread in practice.
#ifndef NVLSCHED_DAEMON_ENGINE_INSTANCE_RECORDS_H_
#define NVLSCHED_DAEMON_ENGINE_INSTANCE_RECORDS_H_

#include <string>
#include <vector>

#include "allocator/placement.h"
#include "daemon/engine/requests.h"
#include "daemon/engine/state.h"
#include "nvlsched/v1/instance_service.pb.h"

namespace nvlsched::daemon {

// A new instance, status PENDING, placed at `where`.
v1::Instance BuildInstance(const State& state, const OpContext& ctx, const InstanceSpec& spec,
                           const std::string& id, const std::string& name,
                           const std::string& batch_id, const allocator::PlacedInstance& where);

// A new instance, status QUEUED, placed nowhere yet (State::EnqueueInstances).
v1::Instance BuildQueuedInstance(const OpContext& ctx, const InstanceSpec& spec,
                                 const std::string& id, const std::string& name,
                                 const std::string& batch_id, int32_t gpu_count,
                                 const v1::QueueInfo& queue);

// validate_only: where each instance would go, with no id, name or status (nothing was taken).
void DescribePlacement(const State& state, const OpContext& ctx, const InstanceSpec& spec,
                       const allocator::Placement& placement,
                       google::protobuf::RepeatedPtrField<v1::Instance>* out);

// Sets the status and appends it to status_history; bumps `updated`.
void AppendStatus(absl::Time time, v1::InstanceStatus status, const std::string& message,
                  v1::Instance* instance);
void AppendStatus(const OpContext& ctx, v1::InstanceStatus status, const std::string& message,
                  v1::Instance* instance);

// Sets every interface's status (Ethernet, InfiniBand, NVLink) to what it shows while its
// instance has `status`: PENDING; PROVISIONING (Provisioning, Configuring); READY (Ready,
// Updating, Rebooting); DELETING (Terminating, Terminated); ERROR.
void SetInterfaceStatuses(v1::InstanceStatus status, v1::Instance* instance);

// Where the record is: machine, NVLink domain (its NVLink interfaces' too), site, GPUs held.
void SetPlacement(const State& state, const allocator::PlacedInstance& where,
                  v1::Instance* inst);

// "Pending", "Ready", ...: the seed API's spelling of a status.
std::string StatusWord(v1::InstanceStatus status);

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_ENGINE_INSTANCE_RECORDS_H_
