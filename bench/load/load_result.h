// LoadResult: what one nvlsched-load run measured. Client threads fill their own copy;
// RunLoad merges them with Merge().
//
// Outcomes: a call ends OK, "refused" (RESOURCE_EXHAUSTED: not enough capacity or quota now,
// an expected answer of a scheduler under load, classified from its google.rpc details), or an
// error (any other code, transport failures such as UNAVAILABLE and DEADLINE_EXCEEDED
// included). Every code is also counted by name.
#ifndef NVLSCHED_BENCH_LOAD_LOAD_RESULT_H_
#define NVLSCHED_BENCH_LOAD_LOAD_RESULT_H_

#include <array>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "bench/load/latency_histogram.h"
#include "bench/load/load_options.h"

namespace nvlsched::load {

enum class OpKind {
  kBatchCreate,   // BatchCreateInstances
  kBatchDelete,   // BatchDeleteInstances, one call per held batch
  kSingleCreate,  // CreateInstance
  kSingleDelete,  // DeleteInstance
  kHealthCheck,   // grpc.health.v1.Health/Check
};
inline constexpr int kOpKindCount = 5;
inline constexpr int kStatusCodeCount = 17;  // grpc::StatusCode OK..UNAUTHENTICATED
inline constexpr int kResourceExhaustedCode = 8;  // grpc::StatusCode::RESOURCE_EXHAUSTED

// "BatchCreateInstances", ...
absl::string_view OpKindName(OpKind kind);
// "OK", "RESOURCE_EXHAUSTED", ...
absl::string_view StatusCodeName(int code);

struct OpStats {
  LatencyHistogram latency_ns;  // every completed call, whatever its code
  std::array<int64_t, kStatusCodeCount> codes{};
  int64_t refused_capacity = 0;  // RESOURCE_EXHAUSTED with ErrorInfo INSUFFICIENT_CAPACITY
  int64_t refused_quota = 0;     // RESOURCE_EXHAUSTED with QuotaFailure

  int64_t Calls() const { return latency_ns.Count(); }
  int64_t Refused() const;  // every RESOURCE_EXHAUSTED
  int64_t Errors() const;   // every code but OK and RESOURCE_EXHAUSTED
  void Merge(const OpStats& other);
};

// Instances and batches the run created and deleted.
struct Tally {
  int64_t batches_created = 0;
  int64_t batch_instances_created = 0;
  int64_t singles_created = 0;
  int64_t batches_deleted = 0;
  int64_t batch_instances_deleted = 0;
  int64_t singles_deleted = 0;

  int64_t InstancesCreated() const { return batch_instances_created + singles_created; }
  int64_t InstancesDeleted() const { return batch_instances_deleted + singles_deleted; }
  void Merge(const Tally& other);
};

// The open loop (LoadOptions::rate > 0): the schedule of intended send times and how well the
// run kept to it (see send_schedule.h for late and skipped).
struct OpenLoopStats {
  double target_per_s = 0;  // LoadOptions::rate; 0 in the closed loop
  int64_t scheduled = 0;    // calls intended before the end of the run (and within max_calls)
  int64_t issued = 0;       // sent; each completed and is in LoadResult::ops
  int64_t late = 0;         // sent after waiting for a free slot (the --concurrency cap)
  int64_t skipped = 0;      // never sent: still waiting for a slot when the run ended
  // From each call's actual send to its completion, every measured call. LoadResult::ops
  // measure from the intended send time instead, so they are never below these.
  LatencyHistogram service_ns;

  // Calls sent per second of the schedule's window (scheduled / target_per_s seconds): the
  // target when every scheduled call was sent. Completions per second of the run are
  // LoadResult::CallsPerSecond(), which also counts the wait for the last calls in flight.
  double AchievedPerSecond() const;
  void Merge(const OpenLoopStats& other);
};

// LoadOptions::readers: the ListInstances calls of the readers, apart from the write workload.
struct ReadStats {
  int readers = 0;
  // From the readers' start to their last completion.
  absl::Duration elapsed = absl::ZeroDuration();
  OpStats calls;               // latency from send to completion, codes by name
  int64_t instances_read = 0;  // instances in the OK pages
  int64_t passes = 0;          // walks that reached the last page

  double CallsPerSecond() const;
  double InstancesPerSecond() const;
};

struct LoadResult {
  Workload workload = Workload::kBatch;
  // From the start of the run to the completion of its last measured call.
  absl::Duration elapsed = absl::ZeroDuration();
  std::array<OpStats, kOpKindCount> ops;
  Tally tally;  // measured calls only

  // The deletes after the run (LoadOptions::cleanup): not in ops, calls/s or latency.
  Tally cleanup;
  int64_t cleanup_calls = 0;
  int64_t cleanup_errors = 0;
  // Instances still held when the run returned (cleanup off, or a delete failed).
  int64_t instances_left = 0;
  // Creates that ended without a verdict (DEADLINE_EXCEEDED, CANCELLED, UNAVAILABLE, UNKNOWN,
  // INTERNAL): the daemon may have committed them, and the run cannot delete what it never
  // learned the ids of. Non-zero means the fleet may hold instances nobody will free.
  int64_t creates_outcome_unknown = 0;

  // LoadOptions::watchers: the streams, the events they read during the run, and how many the
  // daemon ended before the run did (e.g. for falling behind).
  int watchers = 0;
  int64_t watch_events = 0;
  int64_t watchers_ended_early = 0;

  OpenLoopStats open_loop;  // target_per_s == 0: a closed-loop run
  ReadStats reads;          // readers == 0: none

  const OpStats& op(OpKind kind) const { return ops[static_cast<int>(kind)]; }
  OpStats& op(OpKind kind) { return ops[static_cast<int>(kind)]; }
  // Every measured call, all kinds together.
  OpStats Total() const;
  double CallsPerSecond() const;
  // Merges another client thread's result (open_loop included; reads and watchers are set by
  // RunLoad); elapsed becomes the longer of the two.
  void Merge(const LoadResult& other);
};

}  // namespace nvlsched::load

#endif  // NVLSCHED_BENCH_LOAD_LOAD_RESULT_H_
