#include "bench/load/load_result.h"

#include <algorithm>

namespace nvlsched::load {
namespace {

constexpr absl::string_view kStatusCodeNames[kStatusCodeCount] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

}  // namespace

absl::string_view OpKindName(OpKind kind) {
  switch (kind) {
    case OpKind::kBatchCreate:
      return "BatchCreateInstances";
    case OpKind::kBatchDelete:
      return "BatchDeleteInstances";
    case OpKind::kSingleCreate:
      return "CreateInstance";
    case OpKind::kSingleDelete:
      return "DeleteInstance";
    case OpKind::kHealthCheck:
      return "Health/Check";
  }
  return "unknown";
}

absl::string_view StatusCodeName(int code) {
  if (code < 0 || code >= kStatusCodeCount) return "UNKNOWN_CODE";
  return kStatusCodeNames[code];
}

int64_t OpStats::Refused() const { return codes[kResourceExhaustedCode]; }

int64_t OpStats::Errors() const {
  int64_t errors = 0;
  for (int code = 1; code < kStatusCodeCount; ++code) {
    if (code != kResourceExhaustedCode) errors += codes[code];
  }
  return errors;
}

void OpStats::Merge(const OpStats& other) {
  latency_ns.Merge(other.latency_ns);
  for (int code = 0; code < kStatusCodeCount; ++code) codes[code] += other.codes[code];
  refused_capacity += other.refused_capacity;
  refused_quota += other.refused_quota;
}

void Tally::Merge(const Tally& other) {
  batches_created += other.batches_created;
  batch_instances_created += other.batch_instances_created;
  singles_created += other.singles_created;
  batches_deleted += other.batches_deleted;
  batch_instances_deleted += other.batch_instances_deleted;
  singles_deleted += other.singles_deleted;
}

void OpenLoopStats::Merge(const OpenLoopStats& other) {
  target_per_s = std::max(target_per_s, other.target_per_s);
  scheduled += other.scheduled;
  issued += other.issued;
  late += other.late;
  skipped += other.skipped;
  service_ns.Merge(other.service_ns);
}

double OpenLoopStats::AchievedPerSecond() const {
  if (scheduled == 0) return 0.0;
  return target_per_s * static_cast<double>(issued) / static_cast<double>(scheduled);
}

double ReadStats::CallsPerSecond() const {
  const double seconds = absl::ToDoubleSeconds(elapsed);
  return seconds > 0 ? static_cast<double>(calls.Calls()) / seconds : 0.0;
}

double ReadStats::InstancesPerSecond() const {
  const double seconds = absl::ToDoubleSeconds(elapsed);
  return seconds > 0 ? static_cast<double>(instances_read) / seconds : 0.0;
}

OpStats LoadResult::Total() const {
  OpStats total;
  for (const OpStats& stats : ops) total.Merge(stats);
  return total;
}

double LoadResult::CallsPerSecond() const {
  const double seconds = absl::ToDoubleSeconds(elapsed);
  if (seconds <= 0) return 0.0;
  int64_t calls = 0;
  for (const OpStats& stats : ops) calls += stats.Calls();
  return static_cast<double>(calls) / seconds;
}

void LoadResult::Merge(const LoadResult& other) {
  elapsed = std::max(elapsed, other.elapsed);
  for (int i = 0; i < kOpKindCount; ++i) ops[i].Merge(other.ops[i]);
  tally.Merge(other.tally);
  cleanup.Merge(other.cleanup);
  cleanup_calls += other.cleanup_calls;
  cleanup_errors += other.cleanup_errors;
  instances_left += other.instances_left;
  creates_outcome_unknown += other.creates_outcome_unknown;
  open_loop.Merge(other.open_loop);
}

}  // namespace nvlsched::load
