// The store's rows of the engine's records: core structs (allocator/model.h) and instance
// records to and from store/rows.h, as written by a commit and read back at start-up.
//
// Money is integer micro-dollars in both; times are Unix micros in rows.
//
// Thread-safety: pure functions.
#ifndef NVLSCHED_DAEMON_ENGINE_ROWS_H_
#define NVLSCHED_DAEMON_ENGINE_ROWS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "allocator/model.h"
#include "nvlsched/v1/resources.pb.h"
#include "store/rows.h"

namespace nvlsched::daemon {

store::InstanceTypeRow ToRow(const allocator::InstanceType& c);
allocator::InstanceType ToCore(const store::InstanceTypeRow& r);
store::DomainRow ToRow(const allocator::Domain& c);
allocator::Domain ToCore(const store::DomainRow& r);
store::MachineRow ToRow(const allocator::Machine& c);
allocator::Machine ToCore(const store::MachineRow& r);
store::TenantRow ToRow(const allocator::Tenant& c);
allocator::Tenant ToCore(const store::TenantRow& r);

// Instances: the row keeps the columns the store indexes plus the whole record in `details`.
store::InstanceRow ToRow(const v1::Instance& instance, bool whole_machine);
// DATA_LOSS if `details` does not parse (names the instance id).
absl::StatusOr<v1::Instance> InstanceFromRow(const store::InstanceRow& row);
// The same into `*out`: DATA_LOSS as above.
absl::Status ParseInstanceRow(const store::InstanceRow& row, v1::Instance* out);
// The allocator's view of a stored instance. NVLink partitions are listed once each, in the
// order the instance first names them.
allocator::InstanceClaim ClaimOf(const v1::Instance& instance, bool whole_machine);
// When the instance started holding its machine: created, plus its wait if it was queued.
int64_t PlacedMicros(const v1::Instance& instance);
std::vector<std::string> PartitionsOf(const v1::Instance& instance);

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_ENGINE_ROWS_H_
