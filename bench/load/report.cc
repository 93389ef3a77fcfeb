#include "bench/load/report.h"

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace nvlsched::load {
namespace {

constexpr OpKind kAllKinds[kOpKindCount] = {OpKind::kBatchCreate, OpKind::kBatchDelete,
                                            OpKind::kSingleCreate, OpKind::kSingleDelete,
                                            OpKind::kHealthCheck};

double Micros(int64_t nanos) { return static_cast<double>(nanos) / 1e3; }
double Millis(int64_t nanos) { return static_cast<double>(nanos) / 1e6; }

double PerSecond(int64_t calls, absl::Duration elapsed) {
  const double seconds = absl::ToDoubleSeconds(elapsed);
  return seconds > 0 ? static_cast<double>(calls) / seconds : 0.0;
}

std::string JsonString(absl::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      absl::StrAppend(&out, "\\", std::string(1, c));
    } else if (static_cast<unsigned char>(c) < 0x20) {
      absl::StrAppendFormat(&out, "\\u%04x", c);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
  return out;
}

// Non-zero codes only, e.g. {"OK": 10, "RESOURCE_EXHAUSTED": 2}.
std::string JsonCodes(const OpStats& stats) {
  std::vector<std::string> fields;
  for (int code = 0; code < kStatusCodeCount; ++code) {
    if (stats.codes[code] == 0) continue;
    fields.push_back(absl::StrCat(JsonString(StatusCodeName(code)), ": ", stats.codes[code]));
  }
  return absl::StrCat("{", absl::StrJoin(fields, ", "), "}");
}

std::string JsonLatency(const LatencyHistogram& h) {
  return absl::StrFormat(R"({"p50": %.1f, "p90": %.1f, "p99": %.1f, "max": %.1f, "mean": %.1f})",
                         Micros(h.Percentile(50)), Micros(h.Percentile(90)),
                         Micros(h.Percentile(99)), Micros(h.Max()), h.Mean() / 1e3);
}

// The fields an RPC's entry and the run's totals share.
std::string JsonStatsFields(const OpStats& stats, absl::Duration elapsed) {
  return absl::StrFormat(
      R"("calls": %d, "calls_per_s": %.1f, "latency_us": %s, "status_codes": %s, )"
      R"("refused": %d, "refused_capacity": %d, "refused_quota": %d, "errors": %d)",
      stats.Calls(), PerSecond(stats.Calls(), elapsed), JsonLatency(stats.latency_ns),
      JsonCodes(stats), stats.Refused(), stats.refused_capacity, stats.refused_quota,
      stats.Errors());
}

std::string JsonOpenLoop(const LoadResult& run) {
  const OpenLoopStats& o = run.open_loop;
  return absl::StrFormat(
      R"("open_loop": {"target_per_s": %.1f, "achieved_per_s": %.1f, "scheduled": %d, )"
      R"("issued": %d, "late": %d, "skipped": %d, "service_us": %s})",
      o.target_per_s, o.AchievedPerSecond(), o.scheduled, o.issued, o.late, o.skipped,
      JsonLatency(o.service_ns));
}

std::string JsonReads(const ReadStats& r) {
  return absl::StrFormat(
      R"("reads": {"readers": %d, "elapsed_s": %.3f, "calls": %d, "calls_per_s": %.1f, )"
      R"("latency_us": %s, "status_codes": %s, "errors": %d, "instances_read": %d, )"
      R"("instances_per_s": %.1f, "passes": %d})",
      r.readers, absl::ToDoubleSeconds(r.elapsed), r.calls.Calls(), r.CallsPerSecond(),
      JsonLatency(r.calls.latency_ns), JsonCodes(r.calls), r.calls.Errors() + r.calls.Refused(),
      r.instances_read, r.InstancesPerSecond(), r.passes);
}

std::string JsonRun(const LoadResult& run) {
  std::vector<std::string> ops;
  for (OpKind kind : kAllKinds) {
    const OpStats& stats = run.op(kind);
    if (stats.Calls() == 0) continue;
    ops.push_back(absl::StrCat(JsonString(OpKindName(kind)), ": {",
                               JsonStatsFields(stats, run.elapsed), "}"));
  }
  const Tally& t = run.tally;
  return absl::StrCat(
      "{", absl::StrFormat(R"("workload": %s, "elapsed_s": %.3f, )",
                           JsonString(WorkloadName(run.workload)),
                           absl::ToDoubleSeconds(run.elapsed)),
      JsonStatsFields(run.Total(), run.elapsed),
      absl::StrFormat(R"(, "batches_created": %d, "batches_deleted": %d, )"
                      R"("instances_created": %d, "instances_deleted": %d, )"
                      R"("singles_created": %d, "singles_deleted": %d, )",
                      t.batches_created, t.batches_deleted, t.InstancesCreated(),
                      t.InstancesDeleted(), t.singles_created, t.singles_deleted),
      R"("ops": {)", absl::StrJoin(ops, ", "), "}, ",
      absl::StrFormat(R"("cleanup": {"calls": %d, "errors": %d, "batches_deleted": %d, )"
                      R"("instances_deleted": %d}, "instances_left": %d, )"
                      R"("creates_outcome_unknown": %d, "watchers": %d, "watch_events": %d, )"
                      R"("watchers_ended_early": %d)",
                      run.cleanup_calls, run.cleanup_errors, run.cleanup.batches_deleted,
                      run.cleanup.InstancesDeleted(), run.instances_left,
                      run.creates_outcome_unknown, run.watchers, run.watch_events,
                      run.watchers_ended_early),
      run.open_loop.target_per_s > 0 ? absl::StrCat(", ", JsonOpenLoop(run)) : "",
      run.reads.readers > 0 ? absl::StrCat(", ", JsonReads(run.reads)) : "", "}");
}

std::string TextCodes(const OpStats& stats) {
  std::vector<std::string> parts;
  for (int code = 0; code < kStatusCodeCount; ++code) {
    if (stats.codes[code] == 0) continue;
    std::string part = absl::StrCat(StatusCodeName(code), "=", stats.codes[code]);
    if (code == kResourceExhaustedCode && (stats.refused_capacity + stats.refused_quota) > 0) {
      absl::StrAppend(&part, " (capacity ", stats.refused_capacity, ", quota ",
                      stats.refused_quota, ")");
    }
    parts.push_back(std::move(part));
  }
  return parts.empty() ? "-" : absl::StrJoin(parts, " ");
}

std::string TextRow(absl::string_view name, const OpStats& stats, absl::Duration elapsed) {
  const LatencyHistogram& h = stats.latency_ns;
  return absl::StrFormat("  %-22s %9d %10.1f %9.3f %9.3f %9.3f %9.3f  %s\n", name, stats.Calls(),
                         PerSecond(stats.Calls(), elapsed), Millis(h.Percentile(50)),
                         Millis(h.Percentile(90)), Millis(h.Percentile(99)), Millis(h.Max()),
                         TextCodes(stats));
}

std::string TextLatency(const LatencyHistogram& h) {
  return absl::StrFormat("p50 %.3f, p90 %.3f, p99 %.3f, max %.3f ms", Millis(h.Percentile(50)),
                         Millis(h.Percentile(90)), Millis(h.Percentile(99)), Millis(h.Max()));
}

std::string TextOpenLoop(const LoadResult& run) {
  const OpenLoopStats& o = run.open_loop;
  return absl::StrFormat(
      "  open loop: target %.1f calls/s, achieved %.1f calls/s sent; %d scheduled, %d sent, "
      "%d late (waited for a free slot of the concurrency cap), %d skipped (still waiting when "
      "the run ended)\n"
      "  latencies above run from each call's intended send time; service time from the actual "
      "send: %s\n",
      o.target_per_s, o.AchievedPerSecond(), o.scheduled, o.issued, o.late, o.skipped,
      TextLatency(o.service_ns));
}

std::string TextReads(const ReadStats& r) {
  return absl::StrFormat(
      "\nreaders (ListInstances, apart from the workload): %d readers, %d calls in %.3f s = %.1f "
      "calls/s; %d instances read = %.1f instances/s; %d full passes\n"
      "  latency %s; status codes %s\n",
      r.readers, r.calls.Calls(), absl::ToDoubleSeconds(r.elapsed), r.CallsPerSecond(),
      r.instances_read, r.InstancesPerSecond(), r.passes, TextLatency(r.calls.latency_ns),
      TextCodes(r.calls));
}

}  // namespace

std::string FormatText(const LoadReport& report) {
  const LoadOptions& o = report.options;
  std::string out = absl::StrFormat(
      "nvlsched-load -> %s: concurrency %d on %d thread(s), duration %s, max_calls %d, "
      "call_timeout %s, hold %d\n",
      o.target, o.concurrency, o.threads, absl::FormatDuration(o.duration), o.max_calls,
      absl::FormatDuration(o.call_timeout), o.hold);
  if (o.rate > 0) {
    absl::StrAppendFormat(&out,
                          "open loop: %.1f calls/s on a fixed schedule, concurrency caps the "
                          "calls in flight\n",
                          o.rate);
  }
  if (o.readers > 0) {
    absl::StrAppendFormat(&out, "readers: %d ListInstances clients, page size %d\n", o.readers,
                          o.read_page_size);
  }
  for (const LoadResult& run : report.runs) {
    const OpStats total = run.Total();
    absl::StrAppendFormat(&out,
                          "\n%s: %d calls in %.3f s = %.1f calls/s; %d refused (RESOURCE_EXHAUSTED), "
                          "%d errors\n",
                          WorkloadName(run.workload), total.Calls(),
                          absl::ToDoubleSeconds(run.elapsed), run.CallsPerSecond(),
                          total.Refused(), total.Errors());
    absl::StrAppendFormat(&out, "  %-22s %9s %10s %9s %9s %9s %9s  %s\n", "rpc", "calls",
                          "calls/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "status codes");
    for (OpKind kind : kAllKinds) {
      if (run.op(kind).Calls() > 0) absl::StrAppend(&out, TextRow(OpKindName(kind), run.op(kind), run.elapsed));
    }
    absl::StrAppend(&out, TextRow("all", total, run.elapsed));
    if (run.open_loop.target_per_s > 0) absl::StrAppend(&out, TextOpenLoop(run));
    if (run.workload != Workload::kNoop) {
      const Tally& t = run.tally;
      absl::StrAppendFormat(
          &out,
          "  created %d batches (%d instances) and %d singles; deleted %d batches (%d instances) "
          "and %d singles\n  cleanup after the run: %d calls, %d errors, %d instances deleted; "
          "%d instances left\n",
          t.batches_created, t.batch_instances_created, t.singles_created, t.batches_deleted,
          t.batch_instances_deleted, t.singles_deleted, run.cleanup_calls, run.cleanup_errors,
          run.cleanup.InstancesDeleted(), run.instances_left);
      if (run.watchers > 0) {
        absl::StrAppendFormat(&out,
                              "  %d watchers read %d events during the run; %d were ended "
                              "early by the daemon\n",
                              run.watchers, run.watch_events, run.watchers_ended_early);
      }
      if (run.creates_outcome_unknown > 0) {
        absl::StrAppendFormat(&out,
                              "  WARNING: %d creates ended without a verdict (deadline, "
                              "transport): the daemon may hold instances this run never saw\n",
                              run.creates_outcome_unknown);
      }
    }
    if (run.reads.readers > 0) absl::StrAppend(&out, TextReads(run.reads));
  }
  if (report.ratio_to_noop.has_value() && !report.runs.empty()) {
    absl::StrAppendFormat(&out, "\n%s calls/s / noop calls/s = %.4f\n",
                          WorkloadName(report.runs.front().workload), *report.ratio_to_noop);
  }
  return out;
}

std::string FormatJson(const LoadReport& report) {
  const LoadOptions& o = report.options;
  std::vector<std::string> runs;
  for (const LoadResult& run : report.runs) runs.push_back(JsonRun(run));
  std::string out = absl::StrCat(
      "{",
      absl::StrFormat(
          R"("target": %s, "workload": %s, "concurrency": %d, "threads": %d, )"
          R"("duration_s": %.3f, "max_calls": %d, "call_timeout_s": %.3f, "hold": %d, )"
          R"("min_count": %d, "max_count": %d, "min_gpus": %d, "max_gpus": %d, )"
          R"("single_fraction": %.3f, "seed": %d, "org": %s, "tenant_id": %s, )"
          R"("instance_type_id": %s, "rate": %.3f, "readers": %d, "read_page_size": %d, )",
          JsonString(o.target), JsonString(WorkloadName(o.workload)), o.concurrency, o.threads,
          absl::ToDoubleSeconds(o.duration), o.max_calls, absl::ToDoubleSeconds(o.call_timeout),
          o.hold, o.min_count, o.max_count, o.min_gpus, o.max_gpus, o.single_fraction, o.seed,
          JsonString(o.org), JsonString(o.tenant_id), JsonString(o.instance_type_id), o.rate,
          o.readers, o.read_page_size),
      R"("runs": [)", absl::StrJoin(runs, ", "), "]");
  if (report.ratio_to_noop.has_value()) {
    absl::StrAppendFormat(&out, R"(, "ratio_to_noop": %.6f)", *report.ratio_to_noop);
  }
  absl::StrAppend(&out, "}\n");
  return out;
}

}  // namespace nvlsched::load
