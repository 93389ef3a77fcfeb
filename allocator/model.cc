#include "allocator/model.h"

namespace nvlsched::allocator {

std::string_view MachineStateName(MachineState state) {
  switch (state) {
    case MachineState::kReady:
      return "READY";
    case MachineState::kMaintenance:
      return "MAINTENANCE";
    case MachineState::kError:
      return "ERROR";
    case MachineState::kCleaning:
      return "CLEANING";
  }
  return "UNKNOWN";
}

std::string_view DomainStateName(DomainState state) {
  switch (state) {
    case DomainState::kReady:
      return "READY";
    case DomainState::kDegraded:
      return "DEGRADED";
    case DomainState::kMaintenance:
      return "MAINTENANCE";
  }
  return "UNKNOWN";
}

std::string_view SpreadPolicyName(SpreadPolicy policy) {
  switch (policy) {
    case SpreadPolicy::kFill:
      return "FILL";
    case SpreadPolicy::kMinDomains:
      return "MIN_DOMAINS";
    case SpreadPolicy::kSpread:
      return "SPREAD";
  }
  return "UNKNOWN";
}

}  // namespace nvlsched::allocator
