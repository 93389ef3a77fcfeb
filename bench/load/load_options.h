// LoadOptions: what one nvlsched-load run does, filled from flags by main.cc and directly by
// tests. Defaults match the flags' defaults.
#ifndef NVLSCHED_BENCH_LOAD_LOAD_OPTIONS_H_
#define NVLSCHED_BENCH_LOAD_LOAD_OPTIONS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "daemon/api/fleet.h"

namespace nvlsched::load {

enum class Workload {
  kBatch,   // BatchCreateInstances (strict), held, then BatchDeleteInstances
  kSingle,  // CreateInstance with gpu_count, held, then DeleteInstance
  kMixed,   // both, chosen per call with single_fraction
  kNoop,    // grpc.health.v1.Health/Check: the transport's ceiling
};

absl::string_view WorkloadName(Workload workload);
// "batch", "single", "mixed" or "noop". INVALID_ARGUMENT naming the choices otherwise.
absl::StatusOr<Workload> ParseWorkload(absl::string_view name);

struct LoadOptions {
  std::string target = "127.0.0.1:50051";
  std::string token;  // bearer token for a daemon with --auth=tokens|jwt (empty: none)
  std::string org = std::string(daemon::kDemoTenantOrg);
  std::string tenant_id = std::string(daemon::kDemoTenantId);
  std::string instance_type_id = std::string(daemon::kDemoInstanceTypeId);
  Workload workload = Workload::kBatch;

  // Calls per second on a fixed schedule (the open loop, see send_schedule.h); 0: the closed
  // loop, where each slot sends its next call as soon as its previous one completes. In the open
  // loop `concurrency` caps the calls in flight, and latency runs from each intended send time.
  double rate = 0;

  // In-flight calls (the open loop: at most), split as evenly as possible over `threads` client
  // threads, each with its own channel (own TCP connection) and completion queue.
  int concurrency = 64;
  int threads = 2;
  // The run stops issuing calls at whichever comes first; calls in flight then finish.
  absl::Duration duration = absl::Seconds(10);
  int64_t max_calls = 200000;
  absl::Duration call_timeout = absl::Seconds(5);

  // A created batch (single) is deleted once `hold` newer batches (singles) exist. Each client
  // thread keeps its share of `hold` (hold / threads, the remainder to the first threads).
  int hold = 100;
  int min_count = 2;  // batch size, uniform in [min_count, max_count]
  int max_count = 18;
  int min_gpus = 1;  // single gpu_count, uniform in [min_gpus, max_gpus]
  int max_gpus = 4;
  double single_fraction = 0.5;  // mixed: share of creates that are singles
  uint64_t seed = 1;

  // After the run, delete everything still held (not counted in the measured calls).
  bool cleanup = true;

  // EventService/WatchEvents streams held open during the run (0: none), reading every event
  // of `watch_org` ("" = every org) on one extra channel and thread: what watchers cost.
  int watchers = 0;
  std::string watch_org;

  // Clients calling InstanceService/ListInstances of `org` during the run (0: none), each with
  // one call in flight, walking every page of `read_page_size` and starting over; measured
  // apart from the workload (LoadResult::reads). They share one extra channel and thread.
  int readers = 0;
  int read_page_size = 500;
};

// INVALID_ARGUMENT naming the first bad field and its allowed range.
absl::Status ValidateLoadOptions(const LoadOptions& options);

}  // namespace nvlsched::load

#endif  // NVLSCHED_BENCH_LOAD_LOAD_OPTIONS_H_
