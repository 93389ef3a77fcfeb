#include "daemon/api/convert.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"

namespace nvlsched::daemon {

int64_t PriceToMicros(double usd_per_hour) {
  const double micros = usd_per_hour * 1e6;
  // llround's result is unspecified outside int64 (x86 gives INT64_MIN, which made a huge
  // max_price_per_hour compare as a negative one); saturate instead. Found by fuzzing.
  if (micros >= 9.2e18) return std::numeric_limits<int64_t>::max();
  if (micros <= -9.2e18) return std::numeric_limits<int64_t>::min();
  return std::llround(micros);
}

double PriceFromMicros(int64_t micros) { return static_cast<double>(micros) / 1e6; }

google::protobuf::Timestamp ToTimestamp(absl::Time t) {
  google::protobuf::Timestamp ts;
  const int64_t micros = absl::ToUnixMicros(t);
  ts.set_seconds(micros / 1000000);
  ts.set_nanos(static_cast<int32_t>((micros % 1000000) * 1000));
  return ts;
}

int64_t ToUnixMicros(const google::protobuf::Timestamp& ts) {
  return ts.seconds() * 1000000 + ts.nanos() / 1000;
}

google::protobuf::Duration ToDurationProto(absl::Duration d) {
  return google::protobuf::util::TimeUtil::MicrosecondsToDuration(absl::ToInt64Microseconds(d));
}

// Not TimeUtil::DurationToNanoseconds: it overflows int64 past ~292 years, which a request may
// ask for; absl saturates.
absl::Duration FromDurationProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

allocator::InstanceType ToCore(const v1::InstanceType& p) {
  allocator::InstanceType c;
  c.id = p.id();
  c.name = p.name();
  c.gpu_model = p.gpu_model();
  c.gpus_per_machine = p.gpus_per_machine();
  c.gpu_memory_mib = p.gpu_memory_mib();
  c.price_per_hour_micros = PriceToMicros(p.price_per_hour());
  c.interconnect = p.interconnect();
  c.spot_price_per_hour_micros = PriceToMicros(p.spot_hourly_price());
  return c;
}

v1::InstanceType ToProto(const allocator::InstanceType& c) {
  v1::InstanceType p;
  p.set_id(c.id);
  p.set_name(c.name);
  p.set_gpu_model(c.gpu_model);
  p.set_gpus_per_machine(c.gpus_per_machine);
  p.set_gpu_memory_mib(c.gpu_memory_mib);
  p.set_price_per_hour(PriceFromMicros(c.price_per_hour_micros));
  p.set_interconnect(c.interconnect);
  p.set_spot_hourly_price(PriceFromMicros(c.spot_price_per_hour_micros));
  return p;
}

allocator::DomainState ToCore(v1::DomainState s) {
  switch (s) {
    case v1::DOMAIN_STATE_DEGRADED: return allocator::DomainState::kDegraded;
    case v1::DOMAIN_STATE_MAINTENANCE: return allocator::DomainState::kMaintenance;
    default: return allocator::DomainState::kReady;
  }
}

v1::DomainState ToProto(allocator::DomainState s) {
  switch (s) {
    case allocator::DomainState::kDegraded: return v1::DOMAIN_STATE_DEGRADED;
    case allocator::DomainState::kMaintenance: return v1::DOMAIN_STATE_MAINTENANCE;
    case allocator::DomainState::kReady: break;
  }
  return v1::DOMAIN_STATE_READY;
}

allocator::Domain ToCore(const v1::Domain& p) {
  allocator::Domain c{p.id(), p.name(), p.site_id(), ToCore(p.state()), p.state_reason()};
  if (p.has_spare_machines()) c.spare_machines = p.spare_machines();
  return c;
}

v1::Domain ToProto(const allocator::Domain& c) {
  v1::Domain p;
  p.set_id(c.id);
  p.set_name(c.name);
  p.set_site_id(c.site_id);
  p.set_state(ToProto(c.state));
  p.set_state_reason(c.state_reason);
  if (c.spare_machines.has_value()) p.set_spare_machines(*c.spare_machines);
  return p;
}

allocator::MachineState ToCore(v1::MachineState s) {
  switch (s) {
    case v1::MACHINE_STATE_MAINTENANCE: return allocator::MachineState::kMaintenance;
    case v1::MACHINE_STATE_ERROR: return allocator::MachineState::kError;
    case v1::MACHINE_STATE_CLEANING: return allocator::MachineState::kCleaning;
    default: return allocator::MachineState::kReady;
  }
}

v1::MachineState ToProto(allocator::MachineState s) {
  switch (s) {
    case allocator::MachineState::kReady: return v1::MACHINE_STATE_READY;
    case allocator::MachineState::kMaintenance: return v1::MACHINE_STATE_MAINTENANCE;
    case allocator::MachineState::kError: return v1::MACHINE_STATE_ERROR;
    case allocator::MachineState::kCleaning: return v1::MACHINE_STATE_CLEANING;
  }
  return v1::MACHINE_STATE_UNSPECIFIED;
}

allocator::Machine ToCore(const v1::Machine& p) {
  allocator::Machine c;
  c.id = p.id();
  c.domain_id = p.domain_id();
  c.tray_index = p.tray_index();
  c.instance_type_id = p.instance_type_id();
  c.gpu_count = p.gpu_count();
  c.state = ToCore(p.state());
  c.state_reason = p.state_reason();
  c.labels.insert(p.labels().begin(), p.labels().end());
  return c;
}

v1::Machine ToProto(const allocator::Machine& c) {
  v1::Machine p;
  p.set_id(c.id);
  p.set_domain_id(c.domain_id);
  p.set_tray_index(c.tray_index);
  p.set_instance_type_id(c.instance_type_id);
  p.set_gpu_count(c.gpu_count);
  p.set_state(ToProto(c.state));
  p.set_state_reason(c.state_reason);
  p.mutable_labels()->insert(c.labels.begin(), c.labels.end());
  p.set_wipe_pending(c.wipe_pending);
  return p;
}

allocator::SpreadPolicy ToCore(v1::SpreadPolicy p) {
  switch (p) {
    case v1::SPREAD_POLICY_MIN_DOMAINS: return allocator::SpreadPolicy::kMinDomains;
    case v1::SPREAD_POLICY_SPREAD: return allocator::SpreadPolicy::kSpread;
    default: return allocator::SpreadPolicy::kFill;
  }
}

v1::SpreadPolicy ToProto(allocator::SpreadPolicy p) {
  switch (p) {
    case allocator::SpreadPolicy::kMinDomains: return v1::SPREAD_POLICY_MIN_DOMAINS;
    case allocator::SpreadPolicy::kSpread: return v1::SPREAD_POLICY_SPREAD;
    case allocator::SpreadPolicy::kFill: break;
  }
  return v1::SPREAD_POLICY_FILL;
}

allocator::Tenant ToCore(const v1::Tenant& p) {
  allocator::Tenant c;
  c.id = p.id();
  c.org = p.org();
  c.name = p.name();
  for (const v1::Quota& q : p.quotas()) {
    if (q.site_id().empty()) {
      c.quota[q.instance_type_id()] = q.max_machines();
    } else {
      c.site_quota[{q.instance_type_id(), q.site_id()}] = q.max_machines();
    }
  }
  c.priority = p.priority();
  return c;
}

v1::Tenant ToProto(const allocator::Tenant& c) {
  v1::Tenant p;
  p.set_id(c.id);
  p.set_org(c.org);
  p.set_name(c.name);
  for (const auto& [type_id, max] : c.quota) {
    v1::Quota* q = p.add_quotas();
    q->set_instance_type_id(type_id);
    q->set_max_machines(max);
  }
  for (const auto& [key, max] : c.site_quota) {
    v1::Quota* q = p.add_quotas();
    q->set_instance_type_id(key.first);
    q->set_site_id(key.second);
    q->set_max_machines(max);
  }
  p.set_priority(c.priority);
  return p;
}

}  // namespace nvlsched::daemon
