// Wire rules, conversion: the API's protobuf messages (nvlsched.v1) to and from the
// allocator's plain structs. (Core structs to and from the store's rows: engine/rows.h.)
//
// Money: the API speaks USD per hour as a double; the allocator and the store hold integer
// micro-dollars. Times: the API speaks google.protobuf.Timestamp; rows hold Unix micros.
//
// Thread-safety: pure functions.
#ifndef NVLSCHED_DAEMON_API_CONVERT_H_
#define NVLSCHED_DAEMON_API_CONVERT_H_

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "allocator/model.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "nvlsched/v1/resources.pb.h"

namespace nvlsched::daemon {

// Rounds to the nearest micro-dollar; saturates at the int64 limits.
int64_t PriceToMicros(double usd_per_hour);
double PriceFromMicros(int64_t micros);

google::protobuf::Timestamp ToTimestamp(absl::Time t);
int64_t ToUnixMicros(const google::protobuf::Timestamp& ts);
// Durations, at microsecond precision (what the queue keeps).
google::protobuf::Duration ToDurationProto(absl::Duration d);
absl::Duration FromDurationProto(const google::protobuf::Duration& d);

// Instance types.
allocator::InstanceType ToCore(const v1::InstanceType& p);
v1::InstanceType ToProto(const allocator::InstanceType& c);

// Domains.
allocator::DomainState ToCore(v1::DomainState s);  // UNSPECIFIED: READY
v1::DomainState ToProto(allocator::DomainState s);
allocator::Domain ToCore(const v1::Domain& p);
v1::Domain ToProto(const allocator::Domain& c);

// Machines. MACHINE_STATE_UNSPECIFIED maps to READY (a new machine is ready unless told).
allocator::MachineState ToCore(v1::MachineState s);
v1::MachineState ToProto(allocator::MachineState s);
allocator::Machine ToCore(const v1::Machine& p);
v1::Machine ToProto(const allocator::Machine& c);

// Spread policies. UNSPECIFIED is FILL, the default.
allocator::SpreadPolicy ToCore(v1::SpreadPolicy p);
v1::SpreadPolicy ToProto(allocator::SpreadPolicy p);

// Tenants.
allocator::Tenant ToCore(const v1::Tenant& p);
v1::Tenant ToProto(const allocator::Tenant& c);

// The distinct NVLink logical partitions named by `nvlinks` (NVLinkInterface or
// NVLinkInterfaceCreateRequest), in first-named order.
template <typename NvLinks>
std::vector<std::string> DistinctPartitions(const NvLinks& nvlinks) {
  std::vector<std::string> out;
  for (const auto& nv : nvlinks) {
    const std::string& id = nv.nv_link_logical_partition_id();
    if (std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
  }
  return out;
}

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_API_CONVERT_H_
