// Start-up: rebuild the in-memory State from the database, then check every invariant
// (DESIGN.md). A database that breaks one stops start-up with a message naming the problem;
// it is never silently repaired.
//
// Thread-safety: called once, before the engine starts.
#ifndef NVLSCHED_DAEMON_ENGINE_LOAD_STATE_H_
#define NVLSCHED_DAEMON_ENGINE_LOAD_STATE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "daemon/engine/state.h"
#include "store/store.h"

namespace nvlsched::daemon {

struct LoadReport {
  size_t machines = 0;
  size_t instances = 0;
  absl::Duration read_time;     // Store::LoadAll
  absl::Duration rebuild_time;  // into the allocator and records, with the invariant check
  // The rebuild's parts, for start-up profiles (bench/startup.sh prints them from the log).
  absl::Duration inventory_time;  // instance types, domains, machines, tenants
  absl::Duration parse_time;      // waiting for the records' parse (the rest of it, both cores)
  absl::Duration claims_time;     // checks, and claims into the allocator
  absl::Duration records_time;    // records into State, in id order
  absl::Duration rest_time;       // the queue, idempotency records, the invariant check
};

// Errors: whatever LoadAll returns (DATA_LOSS, ...); FAILED_PRECONDITION when a row does not
// fit the inventory (unknown machine, a machine held twice, ...) or an invariant fails.
// Queued requests (status QUEUED) are queued again in their stored order with the given queue
// options; the first pass of the started engine recomputes their reservations.
absl::StatusOr<std::unique_ptr<State>> LoadState(
    store::Store& store, LoadReport* report,
    allocator::GangQueue::Options queue_options = allocator::GangQueue::Options{},
    absl::Duration max_queue_timeout = absl::Hours(7 * 24));

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_ENGINE_LOAD_STATE_H_
