// Structured details on the allocator's RESOURCE_EXHAUSTED errors.
//
// Two different situations share the code RESOURCE_EXHAUSTED and are told apart by the
// payload attached to the absl::Status:
//   - not enough free capacity now  -> payload kCapacityPayloadUrl, GetCapacityShortfall()
//     (the daemon maps it to google.rpc.ErrorInfo reason INSUFFICIENT_CAPACITY with
//     metadata requested, largest_domain_free, total_free);
//   - tenant quota exceeded         -> payload kQuotaPayloadUrl, GetQuotaViolation()
//     (mapped to google.rpc.QuotaFailure).
// The daemon reads these helpers, never the message text. Messages are for operators.
//
// Error codes used by the allocator (see each method in allocator.h):
//   INVALID_ARGUMENT   malformed request or inventory record; also "infeasible": a request
//                      no inventory state could ever satisfy (message says "infeasible").
//   NOT_FOUND          unknown tenant, instance type, domain, machine, site or instance.
//   RESOURCE_EXHAUSTED not enough free capacity now, or quota exceeded (payloads above).
//   FAILED_PRECONDITION the inventory is not in a state that allows the change (removing a
//                      held machine, restoring a claim that would double-hold a machine).
//   INTERNAL           CheckInvariants found an index that disagrees with a recount (a bug).
//
// Thread-safety: free functions on values; safe from any thread.
#ifndef NVLSCHED_ALLOCATOR_ERRORS_H_
#define NVLSCHED_ALLOCATOR_ERRORS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace nvlsched::allocator {

inline constexpr std::string_view kCapacityPayloadUrl =
    "type.nvlsched.dev/nvlsched.allocator.CapacityShortfall";
inline constexpr std::string_view kQuotaPayloadUrl =
    "type.nvlsched.dev/nvlsched.allocator.QuotaViolation";

enum class CapacityUnit : uint8_t {
  kMachines,  // batches and whole-machine singles
  kGpus,      // GPU-granular singles
};
std::string_view CapacityUnitName(CapacityUnit unit);

// "Not enough free capacity now". For kMachines, largest_domain_free is the most free
// machines of the type in one NVLink domain (that the request could use); for kGpus it is
// the most free GPUs on one machine. total_free counts the same unit over the fleet.
struct CapacityShortfall {
  std::string instance_type_id{};
  CapacityUnit unit = CapacityUnit::kMachines;
  int64_t requested = 0;
  int64_t largest_domain_free = 0;
  int64_t total_free = 0;

  friend bool operator==(const CapacityShortfall& a, const CapacityShortfall& b) {
    return a.instance_type_id == b.instance_type_id && a.unit == b.unit &&
           a.requested == b.requested && a.largest_domain_free == b.largest_domain_free &&
           a.total_free == b.total_free;
  }
};

// "Quota exceeded". All counts are GPUs; limit_gpus = max_machines * gpus_per_machine.
struct QuotaViolation {
  std::string tenant_id{};
  std::string instance_type_id{};
  int64_t max_machines = 0;
  int64_t limit_gpus = 0;
  int64_t in_use_gpus = 0;
  int64_t requested_gpus = 0;

  friend bool operator==(const QuotaViolation& a, const QuotaViolation& b) {
    return a.tenant_id == b.tenant_id && a.instance_type_id == b.instance_type_id &&
           a.max_machines == b.max_machines && a.limit_gpus == b.limit_gpus &&
           a.in_use_gpus == b.in_use_gpus && a.requested_gpus == b.requested_gpus;
  }
};

// RESOURCE_EXHAUSTED with `message` and the shortfall attached.
absl::Status CapacityExhaustedError(std::string_view message, const CapacityShortfall& details);
// RESOURCE_EXHAUSTED with `message` and the violation attached.
absl::Status QuotaExceededError(std::string_view message, const QuotaViolation& details);

// The attached details, or nullopt when the status carries none (or a malformed one).
std::optional<CapacityShortfall> GetCapacityShortfall(const absl::Status& status);
std::optional<QuotaViolation> GetQuotaViolation(const absl::Status& status);

}  // namespace nvlsched::allocator

#endif  // NVLSCHED_ALLOCATOR_ERRORS_H_
