// CapacityService's read as an engine op: the offers (daemon/services/capacity_service.h
// describes each figure and filter).
//
// Thread-safety: engine thread only (reads State).
#ifndef NVLSCHED_DAEMON_ENGINE_CAPACITY_READS_H_
#define NVLSCHED_DAEMON_ENGINE_CAPACITY_READS_H_

#include "absl/status/status.h"
#include "daemon/engine/state.h"
#include "nvlsched/v1/capacity_service.pb.h"

namespace nvlsched::daemon {

// The offers for a validated request.
// Cost: O(types x domains) — the per-site sums visit every domain of every listed type.
absl::Status ListOffers(const State& state, const v1::ListOffersRequest& req,
                        v1::ListOffersResponse* resp);

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_ENGINE_CAPACITY_READS_H_
