// Trace reader for nvlsched-replay: a CSV of jobs `job_id,submit_s,duration_s,num_gpus`
// (e.g. /work/shared/data/philly.csv), one job a line, header line first.
//
// Errors name the file and the 1-based line of the bad row, and what a good row looks
// like. Thread-safety: free functions.
#ifndef NVLSCHED_BENCH_REPLAY_TRACE_H_
#define NVLSCHED_BENCH_REPLAY_TRACE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace nvlsched::replay {

struct TraceJob {
  int64_t job_id = 0;
  int64_t submit_s = 0;    // seconds from the start of the trace, >= 0
  int64_t duration_s = 0;  // run time, >= 0
  int32_t num_gpus = 0;    // >= 1
};

// Parses CSV text; `source` names it in error messages (a file name). The first line is
// skipped when it is the header (starts with "job_id"); blank lines are skipped. Jobs come
// back sorted by submit time, ties in file order (a stable sort), so the index of a job in
// the result is its arrival order.
// INVALID_ARGUMENT "<source>:<line>: ..." for a malformed row; INVALID_ARGUMENT when there
// is no job at all.
absl::StatusOr<std::vector<TraceJob>> ParseTrace(absl::string_view text,
                                                 absl::string_view source);

// Reads and parses a file. NOT_FOUND when it cannot be opened; otherwise as ParseTrace.
absl::StatusOr<std::vector<TraceJob>> ReadTraceFile(const std::string& path);

}  // namespace nvlsched::replay

#endif  // NVLSCHED_BENCH_REPLAY_TRACE_H_
