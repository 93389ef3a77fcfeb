// RunLoad: the library entry point of nvlsched-load. Drives one workload against a running
// nvlschedd and returns what it measured; main.cc and load_smoke_test call it.
//
// Thread-safety: RunLoad may be called from any thread; it starts and joins its own
// LoadOptions::threads client threads (see client_thread.h).
#ifndef NVLSCHED_BENCH_LOAD_LOAD_RUNNER_H_
#define NVLSCHED_BENCH_LOAD_LOAD_RUNNER_H_

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "bench/load/load_options.h"
#include "bench/load/load_result.h"

namespace nvlsched::load {

// Connects one channel per client thread to options.target (waiting up to `connect_timeout`),
// runs the workload until options.duration or options.max_calls is spent, waits for the calls
// in flight, then (options.cleanup) deletes what is still held.
// Errors: INVALID_ARGUMENT (see ValidateLoadOptions), UNAVAILABLE (cannot connect).
// Refusals and failed calls are results, not errors.
absl::StatusOr<LoadResult> RunLoad(const LoadOptions& options,
                                   absl::Duration connect_timeout = absl::Seconds(10));

}  // namespace nvlsched::load

#endif  // NVLSCHED_BENCH_LOAD_LOAD_RUNNER_H_
