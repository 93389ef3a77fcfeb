#include "daemon/engine/rows.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "daemon/api/convert.h"

namespace nvlsched::daemon {

store::InstanceTypeRow ToRow(const allocator::InstanceType& c) {
  return store::InstanceTypeRow{c.id, c.name, c.gpu_model, c.gpus_per_machine,
                                c.gpu_memory_mib, c.price_per_hour_micros, c.interconnect,
                                c.spot_price_per_hour_micros};
}

allocator::InstanceType ToCore(const store::InstanceTypeRow& r) {
  allocator::InstanceType c;
  c.id = r.id;
  c.name = r.name;
  c.gpu_model = r.gpu_model;
  c.gpus_per_machine = static_cast<int32_t>(r.gpus_per_machine);
  c.gpu_memory_mib = r.gpu_memory_mib;
  c.price_per_hour_micros = r.price_per_hour_micros;
  c.interconnect = r.interconnect;
  c.spot_price_per_hour_micros = r.spot_price_per_hour_micros;
  return c;
}

store::DomainRow ToRow(const allocator::Domain& c) {
  return store::DomainRow{c.id,           c.name,        c.site_id, static_cast<int>(c.state),
                          c.state_reason, c.spare_machines};
}

allocator::Domain ToCore(const store::DomainRow& r) {
  const allocator::DomainState state = r.state == 1   ? allocator::DomainState::kDegraded
                                       : r.state == 2 ? allocator::DomainState::kMaintenance
                                                      : allocator::DomainState::kReady;
  return allocator::Domain{r.id, r.name, r.site_id, state, r.state_reason, r.spare_machines};
}

store::MachineRow ToRow(const allocator::Machine& c) {
  store::MachineRow r;
  r.id = c.id;
  r.domain_id = c.domain_id;
  r.tray_index = c.tray_index;
  r.instance_type_id = c.instance_type_id;
  r.gpu_count = c.gpu_count;
  switch (c.state) {
    case allocator::MachineState::kReady: r.state = store::kMachineReady; break;
    case allocator::MachineState::kMaintenance: r.state = store::kMachineMaintenance; break;
    case allocator::MachineState::kError: r.state = store::kMachineError; break;
    case allocator::MachineState::kCleaning:
      r.state = store::kMachineMaintenance;
      r.cleaning = true;
      break;
  }
  r.state_reason = c.state_reason;
  r.labels = c.labels;
  r.wipe_pending = c.wipe_pending;
  return r;
}

allocator::Machine ToCore(const store::MachineRow& r) {
  allocator::Machine c;
  c.id = r.id;
  c.domain_id = r.domain_id;
  c.tray_index = static_cast<int32_t>(r.tray_index);
  c.instance_type_id = r.instance_type_id;
  c.gpu_count = static_cast<int32_t>(r.gpu_count);
  c.state = r.cleaning                            ? allocator::MachineState::kCleaning
            : r.state == store::kMachineMaintenance ? allocator::MachineState::kMaintenance
            : r.state == store::kMachineError     ? allocator::MachineState::kError
                                                  : allocator::MachineState::kReady;
  c.state_reason = r.state_reason;
  c.labels = r.labels;
  c.wipe_pending = r.wipe_pending;
  return c;
}

store::TenantRow ToRow(const allocator::Tenant& c) {
  return store::TenantRow{c.id, c.org, c.name, c.quota, c.priority, c.site_quota};
}

allocator::Tenant ToCore(const store::TenantRow& r) {
  allocator::Tenant c;
  c.id = r.id;
  c.org = r.org;
  c.name = r.name;
  c.quota = r.quotas;
  c.site_quota = r.site_quotas;
  c.priority = static_cast<int32_t>(r.priority);
  return c;
}

store::InstanceRow ToRow(const v1::Instance& instance, bool whole_machine) {
  store::InstanceRow r;
  r.id = instance.id();
  r.name = instance.name();
  r.tenant_id = instance.tenant_id();
  r.instance_type_id = instance.instance_type_id();
  r.machine_id = instance.machine_id();
  r.gpu_count = instance.gpu_count();
  r.batch_id = instance.batch_id();
  r.whole_machine = whole_machine;
  r.strict = instance.topology_optimized();
  r.nvlink_partition_ids = PartitionsOf(instance);
  r.status = v1::InstanceStatus_Name(instance.status());
  r.created_unix_micros = ToUnixMicros(instance.created());
  r.updated_unix_micros = ToUnixMicros(instance.updated());
  r.details = instance.SerializeAsString();
  return r;
}

absl::StatusOr<v1::Instance> InstanceFromRow(const store::InstanceRow& row) {
  v1::Instance instance;
  if (absl::Status s = ParseInstanceRow(row, &instance); !s.ok()) return s;
  return instance;
}

absl::Status ParseInstanceRow(const store::InstanceRow& row, v1::Instance* out) {
  if (!out->ParseFromString(row.details)) {
    return absl::DataLossError(
        absl::StrCat("instance ", row.id, ": its stored record does not parse"));
  }
  return absl::OkStatus();
}

allocator::InstanceClaim ClaimOf(const v1::Instance& instance, bool whole_machine) {
  allocator::InstanceClaim claim;
  claim.tenant_id = instance.tenant_id();
  claim.instance_type_id = instance.instance_type_id();
  claim.machine_id = instance.machine_id();
  claim.gpu_count = instance.gpu_count();
  claim.whole_machine = whole_machine;
  claim.batch_id = instance.batch_id();
  claim.topology_optimized = instance.topology_optimized();
  claim.nvlink_partition_ids = PartitionsOf(instance);
  claim.spot = instance.billing_mode() == v1::BILLING_MODE_SPOT;
  claim.preempted = claim.spot && instance.has_preemption();
  claim.started_micros = PlacedMicros(instance);
  return claim;
}

int64_t PlacedMicros(const v1::Instance& instance) {
  int64_t placed = ToUnixMicros(instance.created());
  if (instance.has_queue() && instance.queue().has_waited()) {
    placed += absl::ToInt64Microseconds(FromDurationProto(instance.queue().waited()));
  }
  return placed;
}

std::vector<std::string> PartitionsOf(const v1::Instance& instance) {
  return DistinctPartitions(instance.nv_link_interfaces());
}

}  // namespace nvlsched::daemon
