// SchedulerService's read as an engine op: the queue in order (allocator/gang_queue.h), one
// entry per queued request, with the domains a waiting batch holds.
//
// Thread-safety: engine thread only (reads State).
#ifndef NVLSCHED_DAEMON_ENGINE_QUEUE_READS_H_
#define NVLSCHED_DAEMON_ENGINE_QUEUE_READS_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "daemon/engine/state.h"
#include "nvlsched/v1/scheduler_service.pb.h"

namespace nvlsched::daemon {

struct QueueQuery {
  std::string org;        // "" = every org (provider roles)
  std::string tenant_id;  // filter
  int32_t page_size = 0;  // 0: the default (100)
  // Resume after this request (its priority and sequence: a place in the order that stays
  // valid while the queue changes).
  std::optional<allocator::QueueKey> after;
};

// Page tokens of ListQueue: the key of the last entry listed.
std::string EncodeQueueToken(const allocator::QueueKey& key);
std::optional<allocator::QueueKey> DecodeQueueToken(const std::string& token);

// Cost: O(queue length): positions count every entry ahead, other orgs' too.
absl::Status ListQueue(const State& state, const QueueQuery& query, absl::Time now,
                       v1::ListQueueResponse* resp);

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_ENGINE_QUEUE_READS_H_
