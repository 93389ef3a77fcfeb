#include "bench/replay/trace.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace nvlsched::replay {
namespace {

constexpr absl::string_view kExpected =
    "expected 4 integer fields job_id,submit_s,duration_s,num_gpus with submit_s >= 0, "
    "duration_s >= 0 and num_gpus >= 1, e.g. \"17,3600,7200,8\"";

absl::Status RowError(absl::string_view source, int line, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat(source, ":", line, ": ", what, "; ", kExpected));
}

absl::Status ParseRow(absl::string_view row, absl::string_view source, int line,
                      TraceJob* job) {
  std::vector<absl::string_view> fields = absl::StrSplit(row, ',');
  if (fields.size() != 4) {
    return RowError(source, line, absl::StrCat("found ", fields.size(), " fields in \"", row, "\""));
  }
  static constexpr absl::string_view kNames[] = {"job_id", "submit_s", "duration_s", "num_gpus"};
  int64_t values[4];
  for (int i = 0; i < 4; ++i) {
    absl::string_view field = absl::StripAsciiWhitespace(fields[i]);
    if (!absl::SimpleAtoi(field, &values[i])) {
      return RowError(source, line,
                      absl::StrCat(kNames[i], " \"", field, "\" is not an integer"));
    }
  }
  if (values[1] < 0) return RowError(source, line, absl::StrCat("submit_s is negative (", values[1], ")"));
  if (values[2] < 0) return RowError(source, line, absl::StrCat("duration_s is negative (", values[2], ")"));
  if (values[3] < 1 || values[3] > INT32_MAX) {
    return RowError(source, line, absl::StrCat("num_gpus ", values[3], " is out of range"));
  }
  job->job_id = values[0];
  job->submit_s = values[1];
  job->duration_s = values[2];
  job->num_gpus = static_cast<int32_t>(values[3]);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<TraceJob>> ParseTrace(absl::string_view text,
                                                 absl::string_view source) {
  std::vector<TraceJob> jobs;
  int line = 0;
  for (absl::string_view row : absl::StrSplit(text, '\n')) {
    ++line;
    row = absl::StripTrailingAsciiWhitespace(row);  // also drops a CR of CRLF files
    if (row.empty()) continue;
    if (line == 1 && absl::StartsWith(row, "job_id")) continue;
    TraceJob job;
    if (absl::Status status = ParseRow(row, source, line, &job); !status.ok()) return status;
    jobs.push_back(job);
  }
  if (jobs.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": no jobs found; ", kExpected, " after a header line"));
  }
  std::stable_sort(jobs.begin(), jobs.end(), [](const TraceJob& a, const TraceJob& b) {
    return a.submit_s < b.submit_s;
  });
  return jobs;
}

absl::StatusOr<std::vector<TraceJob>> ReadTraceFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot open trace file ", path,
                                            "; pass --trace=<path to a job CSV>"));
  }
  std::ostringstream content;
  content << in.rdbuf();
  return ParseTrace(content.str(), path);
}

}  // namespace nvlsched::replay
