#include "daemon/engine/instance_records.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "daemon/api/convert.h"
#include "daemon/engine/rows.h"
#include "daemon/engine/ids.h"

namespace nvlsched::daemon {
std::string StatusWord(v1::InstanceStatus status) {
  std::string name = v1::InstanceStatus_Name(status);
  absl::string_view word = name;
  absl::ConsumePrefix(&word, "INSTANCE_STATUS_");
  std::string out = absl::AsciiStrToLower(word);
  if (!out.empty()) out[0] = absl::ascii_toupper(out[0]);
  return out;
}

void AppendStatus(absl::Time time, v1::InstanceStatus status, const std::string& message,
                  v1::Instance* instance) {
  const google::protobuf::Timestamp now = ToTimestamp(time);
  instance->set_status(status);
  *instance->mutable_updated() = now;
  v1::StatusDetail* detail = instance->add_status_history();
  detail->set_status(StatusWord(status));
  detail->set_message(message);
  *detail->mutable_created() = now;
  *detail->mutable_updated() = now;
}

void AppendStatus(const OpContext& ctx, v1::InstanceStatus status, const std::string& message,
                  v1::Instance* instance) {
  AppendStatus(ctx.now, status, message, instance);
}

void SetPlacement(const State& state, const allocator::PlacedInstance& where,
                  v1::Instance* inst) {
  const allocator::Domain& domain = state.allocator().DomainAt(where.domain);
  inst->set_machine_id(state.allocator().MachineAt(where.machine).id);
  inst->set_nvlink_domain_id(domain.id);
  inst->set_gpu_count(where.gpu_count);
  inst->set_site_id(domain.site_id);
  for (v1::NVLinkInterface& nv : *inst->mutable_nv_link_interfaces()) {
    nv.set_nv_link_domain_id(domain.id);
  }
}

void SetInterfaceStatuses(v1::InstanceStatus status, v1::Instance* instance) {
  v1::InterfaceStatus s = v1::INTERFACE_STATUS_PENDING;
  switch (status) {
    case v1::INSTANCE_STATUS_PROVISIONING:
    case v1::INSTANCE_STATUS_CONFIGURING: s = v1::INTERFACE_STATUS_PROVISIONING; break;
    case v1::INSTANCE_STATUS_READY:
    case v1::INSTANCE_STATUS_UPDATING:
    case v1::INSTANCE_STATUS_REBOOTING: s = v1::INTERFACE_STATUS_READY; break;
    case v1::INSTANCE_STATUS_TERMINATING:
    case v1::INSTANCE_STATUS_TERMINATED: s = v1::INTERFACE_STATUS_DELETING; break;
    case v1::INSTANCE_STATUS_ERROR: s = v1::INTERFACE_STATUS_ERROR; break;
    default: break;
  }
  for (v1::Interface& i : *instance->mutable_interfaces()) i.set_status(s);
  for (v1::InfiniBandInterface& i : *instance->mutable_infiniband_interfaces()) i.set_status(s);
  for (v1::NVLinkInterface& i : *instance->mutable_nv_link_interfaces()) i.set_status(s);
}

namespace {

// Fills what does not depend on the instance's identity.
void FillPlacementFields(const State& state, const InstanceSpec& spec,
                         const allocator::PlacedInstance& where, v1::Instance* inst) {
  inst->set_tenant_id(spec.tenant_id);
  inst->set_instance_type_id(spec.instance_type_id);
  inst->set_topology_optimized(spec.topology_optimized);
  inst->set_billing_mode(spec.spot ? v1::BILLING_MODE_SPOT : v1::BILLING_MODE_ON_DEMAND);
  SetPlacement(state, where, inst);
}

}  // namespace

namespace {

// Everything of a new record but where it is and its status.
v1::Instance BuildRecord(const OpContext& ctx, const InstanceSpec& spec, const std::string& id,
                         const std::string& name, const std::string& batch_id) {
  const google::protobuf::Timestamp now = ToTimestamp(ctx.now);
  v1::Instance inst;
  inst.set_id(id);
  inst.set_name(name);
  inst.set_batch_id(batch_id);
  inst.set_tenant_id(spec.tenant_id);
  inst.set_instance_type_id(spec.instance_type_id);
  inst.set_topology_optimized(spec.topology_optimized);
  inst.set_billing_mode(spec.spot ? v1::BILLING_MODE_SPOT : v1::BILLING_MODE_ON_DEMAND);
  inst.set_description(spec.description);
  inst.set_vpc_id(spec.vpc_id);
  for (const std::string& v : spec.secondary_vpc_ids) inst.add_secondary_vpc_ids(v);
  inst.set_operating_system_id(spec.operating_system_id);
  inst.set_network_security_group_id(spec.network_security_group_id);
  inst.set_ipxe_script(spec.ipxe_script);
  inst.set_always_boot_with_custom_ipxe(spec.always_boot_with_custom_ipxe);
  inst.set_phone_home_enabled(spec.phone_home_enabled);
  inst.set_user_data(spec.user_data);
  *inst.mutable_labels() = spec.labels;
  for (const std::string& v : spec.ssh_key_group_ids) inst.add_ssh_key_group_ids(v);

  for (const v1::InterfaceCreateRequest& req : spec.interfaces) {
    v1::Interface* itf = inst.add_interfaces();
    itf->set_id(NewUuid(ctx.rng));
    itf->set_instance_id(id);
    itf->set_subnet_id(req.subnet_id());
    itf->set_vpc_prefix_id(req.vpc_prefix_id());
    itf->set_is_physical(req.is_physical());
    itf->set_device(req.device());
    itf->set_device_instance(req.device_instance());
    if (req.has_virtual_function_id()) itf->set_virtual_function_id(req.virtual_function_id());
    if (req.has_ip_address()) itf->set_requested_ip_address(req.ip_address());
    itf->set_status(v1::INTERFACE_STATUS_PENDING);
    *itf->mutable_created() = now;
    *itf->mutable_updated() = now;
  }
  for (const v1::InfiniBandInterfaceCreateRequest& req : spec.infiniband_interfaces) {
    v1::InfiniBandInterface* ib = inst.add_infiniband_interfaces();
    ib->set_id(NewUuid(ctx.rng));
    ib->set_instance_id(id);
    ib->set_partition_id(req.partition_id());
    ib->set_device(req.device());
    ib->set_vendor(req.vendor());
    ib->set_device_instance(req.device_instance());
    ib->set_is_physical(req.is_physical());
    if (req.has_virtual_function_id()) ib->set_virtual_function_id(req.virtual_function_id());
    ib->set_status(v1::INTERFACE_STATUS_PENDING);
    *ib->mutable_created() = now;
    *ib->mutable_updated() = now;
  }
  for (const v1::NVLinkInterfaceCreateRequest& req : spec.nv_link_interfaces) {
    v1::NVLinkInterface* nv = inst.add_nv_link_interfaces();
    nv->set_id(NewUuid(ctx.rng));
    nv->set_instance_id(id);
    nv->set_nv_link_logical_partition_id(req.nv_link_logical_partition_id());
    nv->set_device_instance(req.device_instance());
    nv->set_status(v1::INTERFACE_STATUS_PENDING);
    *nv->mutable_created() = now;
    *nv->mutable_updated() = now;
  }
  for (const v1::DpuExtensionServiceDeploymentRequest& req : spec.dpu_deployments) {
    v1::DpuExtensionServiceDeployment* dpu = inst.add_dpu_extension_service_deployments();
    dpu->set_id(NewUuid(ctx.rng));
    dpu->set_dpu_extension_service_id(req.dpu_extension_service_id());
    dpu->set_version(req.version());
    dpu->set_status("Pending");
    *dpu->mutable_created() = now;
    *dpu->mutable_updated() = now;
  }
  *inst.mutable_created() = now;
  return inst;
}

}  // namespace

v1::Instance BuildInstance(const State& state, const OpContext& ctx, const InstanceSpec& spec,
                           const std::string& id, const std::string& name,
                           const std::string& batch_id, const allocator::PlacedInstance& where) {
  v1::Instance inst = BuildRecord(ctx, spec, id, name, batch_id);
  SetPlacement(state, where, &inst);
  AppendStatus(ctx, v1::INSTANCE_STATUS_PENDING,
               absl::StrCat("placed on machine ", inst.machine_id(), " in NVLink domain ",
                            inst.nvlink_domain_id()),
               &inst);
  return inst;
}

v1::Instance BuildQueuedInstance(const OpContext& ctx, const InstanceSpec& spec,
                                 const std::string& id, const std::string& name,
                                 const std::string& batch_id, int32_t gpu_count,
                                 const v1::QueueInfo& queue) {
  v1::Instance inst = BuildRecord(ctx, spec, id, name, batch_id);
  inst.set_gpu_count(gpu_count);
  inst.set_site_id(queue.site_id());
  *inst.mutable_queue() = queue;
  AppendStatus(ctx, v1::INSTANCE_STATUS_QUEUED,
               queue.pinned_domain_id().empty()
                   ? absl::StrCat("queued at position ", queue.position(),
                                  ": no capacity now; it is placed as soon as capacity frees up, "
                                  "or terminated if that has not happened by its deadline")
                   : absl::StrCat("queued for NVLink domain ", queue.pinned_domain_id(), ", where ",
                                  queue.preempted_instance_ids_size(),
                                  " spot instances were preempted to make room; it is placed "
                                  "there as soon as they are released (and, with "
                                  "--require_cleaning, their machines wiped)"),
               &inst);
  return inst;
}

void DescribePlacement(const State& state, const OpContext& ctx, const InstanceSpec& spec,
                       const allocator::Placement& placement,
                       google::protobuf::RepeatedPtrField<v1::Instance>* out) {
  for (const allocator::PlacedInstance& where : placement.instances) {
    FillPlacementFields(state, spec, where, out->Add());
  }
}

}  // namespace nvlsched::daemon
