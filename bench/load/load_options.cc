#include "bench/load/load_options.h"

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace nvlsched::load {

absl::string_view WorkloadName(Workload workload) {
  switch (workload) {
    case Workload::kBatch:
      return "batch";
    case Workload::kSingle:
      return "single";
    case Workload::kMixed:
      return "mixed";
    case Workload::kNoop:
      return "noop";
  }
  return "unknown";
}

absl::StatusOr<Workload> ParseWorkload(absl::string_view name) {
  for (Workload w : {Workload::kBatch, Workload::kSingle, Workload::kMixed, Workload::kNoop}) {
    if (name == WorkloadName(w)) return w;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("workload must be batch, single, mixed or noop, got \"", name, "\""));
}

absl::Status ValidateLoadOptions(const LoadOptions& o) {
  auto bad = [](absl::string_view what) { return absl::InvalidArgumentError(what); };
  if (o.target.empty()) return bad("target is required (host:port)");
  if (o.watchers < 0 || o.watchers > 10000) {
    return bad(absl::StrCat("watchers must be between 0 and 10000, got ", o.watchers));
  }
  if (!(std::isfinite(o.rate) && o.rate >= 0 && o.rate <= 1e7)) {
    return bad(absl::StrCat("rate must be between 0 (closed loop) and 1e7 calls/s, got ", o.rate));
  }
  if (o.readers < 0 || o.readers > 10000) {
    return bad(absl::StrCat("readers must be between 0 and 10000, got ", o.readers));
  }
  if (o.read_page_size < 1 || o.read_page_size > 1000) {
    return bad(absl::StrCat("read_page_size must be between 1 and 1000, got ", o.read_page_size));
  }
  if (o.readers > 0 && o.org.empty()) return bad("org is required for readers");
  if (o.concurrency < 1 || o.concurrency > 100000) {
    return bad(absl::StrCat("concurrency must be between 1 and 100000, got ", o.concurrency));
  }
  if (o.threads < 1 || o.threads > 64) {
    return bad(absl::StrCat("threads must be between 1 and 64, got ", o.threads));
  }
  if (o.duration <= absl::ZeroDuration()) return bad("duration must be positive");
  if (o.max_calls < 1) return bad(absl::StrCat("max_calls must be at least 1, got ", o.max_calls));
  if (o.call_timeout <= absl::ZeroDuration()) return bad("call_timeout must be positive");
  if (o.hold < 0) return bad(absl::StrCat("hold must be 0 or more, got ", o.hold));
  if (o.min_count < 2 || o.max_count < o.min_count) {
    return bad(absl::StrCat("batch sizes need 2 <= min_count <= max_count, got ", o.min_count,
                            "..", o.max_count));
  }
  if (o.min_gpus < 1 || o.max_gpus < o.min_gpus) {
    return bad(absl::StrCat("single sizes need 1 <= min_gpus <= max_gpus, got ", o.min_gpus, "..",
                            o.max_gpus));
  }
  if (!(o.single_fraction >= 0.0 && o.single_fraction <= 1.0)) {
    return bad(absl::StrCat("single_fraction must be between 0 and 1, got ", o.single_fraction));
  }
  if (o.workload != Workload::kNoop &&
      (o.org.empty() || o.tenant_id.empty() || o.instance_type_id.empty())) {
    return bad("org, tenant_id and instance_type_id are required for create workloads");
  }
  return absl::OkStatus();
}

}  // namespace nvlsched::load
