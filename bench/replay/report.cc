#include "bench/replay/report.h"

#include <algorithm>
#include <functional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace nvlsched::replay {
namespace {

constexpr double kHour = 3600.0;

std::string Count(int64_t n) { return absl::StrCat(n); }
std::string Pair(int64_t a, int64_t b) { return absl::StrCat(a, " / ", b); }
std::string Fixed(double v, int digits) { return absl::StrFormat("%.*f", digits, v); }
// "mean / p99 / max" in hours.
std::string WaitHours(const WaitStats& w) {
  return absl::StrCat(Fixed(w.mean_s / kHour, 2), " / ", Fixed(w.p99_s / kHour, 2), " / ",
                      Fixed(w.max_s / kHour, 2));
}
// "mean / p50 / p99" in hours.
std::string WaitPercentilesHours(const WaitStats& w) {
  return absl::StrCat(Fixed(w.mean_s / kHour, 2), " / ", Fixed(w.p50_s / kHour, 2), " / ",
                      Fixed(w.p99_s / kHour, 2));
}
const std::string& Label(const ReplayResult& r) { return r.label.empty() ? r.policy : r.label; }

// The modes asked for: RunInfo's, or the first result's.
std::vector<RefusalMode> RequestedModes(const RunInfo& run, absl::Span<const ReplayResult> results) {
  if (!run.modes.empty() || results.empty()) return run.modes;
  return {results.front().options.on_refusal};
}

std::string ModeList(const std::vector<RefusalMode>& modes) {
  std::string out;
  for (RefusalMode m : modes) absl::StrAppend(&out, out.empty() ? "" : ",", AbslView(RefusalModeName(m)));
  return out;
}

// The preemption settings asked for: RunInfo's, or the first result's.
std::vector<bool> RequestedPreemption(const RunInfo& run, absl::Span<const ReplayResult> results) {
  if (!run.preemption.empty() || results.empty()) return run.preemption;
  return {results.front().options.preemption};
}

std::string OnOffList(const std::vector<bool>& settings) {
  std::string out;
  for (bool on : settings) absl::StrAppend(&out, out.empty() ? "" : ",", on ? "on" : "off");
  return out;
}

// The spot rows belong in the report once a run had spot jobs or preemption was asked for.
bool ShowsSpot(const std::vector<bool>& preemption, absl::Span<const ReplayResult> results) {
  return std::find(preemption.begin(), preemption.end(), true) != preemption.end() ||
         std::any_of(results.begin(), results.end(),
                     [](const ReplayResult& r) { return r.spot.spot_jobs > 0; });
}

// A table row: a label and one cell per policy.
struct Row {
  std::string label;
  std::function<std::string(const ReplayResult&)> cell;
};

std::vector<Row> SpotRows() {
  return {
      {"spot / on-demand jobs in the trace",
       [](auto& r) { return Pair(r.spot.spot_jobs, r.spot.on_demand_jobs); }},
      {"preemption (ran)", [](auto& r) -> std::string { return r.preemption ? "on" : "off"; }},
      {"wait, on-demand: mean / p50 / p99 (h)",
       [](auto& r) { return WaitPercentilesHours(r.spot.wait_on_demand); }},
      {"wait, spot: mean / p50 / p99 (h)",
       [](auto& r) { return WaitPercentilesHours(r.spot.wait_spot); }},
      {"spot jobs preempted: kills / distinct jobs",
       [](auto& r) { return Pair(r.spot.preemptions, r.spot.jobs_preempted); }},
      {"spot GPU-hours lost (run, then killed)",
       [](auto& r) { return Fixed(r.spot.gpu_seconds_lost / kHour, 1); }},
      {"on-demand jobs placed by preempting", [](auto& r) {
         const SpotStats& s = r.spot;
         const double share = s.on_demand_placed > 0 ? 100.0 * static_cast<double>(s.on_demand_preempting) /
                                                           static_cast<double>(s.on_demand_placed)
                                                     : 0.0;
         return absl::StrCat(s.on_demand_preempting, " of ", s.on_demand_placed, " (",
                             Fixed(share, 2), "%)");
       }},
      {"  spot GPUs evicted / on-demand GPUs placed so",
       [](auto& r) { return Pair(r.spot.evicted_gpus, r.spot.preempting_gpus); }},
      {"killed spot jobs resubmitted", [](auto& r) { return Count(r.spot.resubmitted); }},
  };
}

std::vector<Row> TableRows(bool wait, bool spot) {
  auto kind = [](JobKind k) {
    return [k](const ReplayResult& r) -> const KindCounts& { return r.kind(k); };
  };
  auto strict = kind(JobKind::kStrictBatch);
  auto cross = kind(JobKind::kCrossDomainBatch);
  auto whole = kind(JobKind::kWholeSingle);
  auto gpu = kind(JobKind::kGpuSingle);
  std::vector<Row> rows = {
      {"strict batches submitted", [=](auto& r) { return Count(strict(r).submitted); }},
      {wait ? "  placed at arrival / refused at arrival" : "  accepted / refused",
       [=](auto& r) {
         return Pair(strict(r).placed - strict(r).placed_after_wait, strict(r).refused);
       }},
      {"  refused w/ enough free machines in total",
       [=](auto& r) { return Count(strict(r).refused_with_room); }},
      {"  refused though one domain could hold it",
       [=](auto& r) { return Count(strict(r).refused_domain_had_room); }},
      {"cross-domain batches accepted / refused",
       [=](auto& r) { return Pair(cross(r).placed - cross(r).placed_after_wait, cross(r).refused); }},
      {"whole-machine singles accepted / refused",
       [=](auto& r) { return Pair(whole(r).placed - whole(r).placed_after_wait, whole(r).refused); }},
      {"  refused w/ enough free GPUs/machines",
       [=](auto& r) { return Count(whole(r).refused_with_room); }},
      {"GPU singles accepted / refused",
       [=](auto& r) { return Pair(gpu(r).placed - gpu(r).placed_after_wait, gpu(r).refused); }},
      {"  refused w/ enough free GPUs in total",
       [=](auto& r) { return Count(gpu(r).refused_with_room); }},
      {"infeasible (never offered)",
       [](auto& r) { return Count(r.kind(JobKind::kInfeasible).submitted); }},
  };
  if (wait) {
    auto total = [](const ReplayResult& r, int64_t KindCounts::*field) {
      int64_t n = 0;
      for (const KindCounts& c : r.by_kind) n += c.*field;
      return n;
    };
    rows.push_back({"batches queued behind a waiting batch", [=](auto& r) {
                      return Count(strict(r).queued_behind_batch + cross(r).queued_behind_batch);
                    }});
    rows.push_back({"placed after waiting (batches / singles)", [=](auto& r) {
                      return Pair(strict(r).placed_after_wait + cross(r).placed_after_wait,
                                  whole(r).placed_after_wait + gpu(r).placed_after_wait);
                    }});
    rows.push_back({"jobs placed / expired", [=](auto& r) {
                      return Pair(total(r, &KindCounts::placed), total(r, &KindCounts::expired));
                    }});
    rows.push_back({"wait, all jobs: mean / p99 (h)", [](auto& r) {
                      return absl::StrCat(Fixed(r.wait_all.mean_s / kHour, 2), " / ",
                                          Fixed(r.wait_all.p99_s / kHour, 2));
                    }});
    rows.push_back({"wait, batches: mean / p99 / max (h)",
                    [](auto& r) { return WaitHours(r.wait_batches); }});
    rows.push_back({"wait, singles: mean / p99 / max (h)",
                    [](auto& r) { return WaitHours(r.wait_singles); }});
    rows.push_back({"queue length: max / at end",
                    [](auto& r) { return Pair(r.max_queue_length, r.queue_at_end); }});
    rows.push_back({"free GPUs while jobs wait (mean)",
                    [](auto& r) { return Fixed(r.mean_free_gpus_while_waiting, 1); }});
    rows.push_back({"  time with jobs waiting (days)",
                    [](auto& r) { return Fixed(r.waiting_s / 86400.0, 2); }});
  }
  if (spot) {
    std::vector<Row> spot_rows = SpotRows();
    rows.insert(rows.end(), spot_rows.begin(), spot_rows.end());
  }
  std::vector<Row> fleet = {
      {"GPU utilization (time-weighted)",
       [](auto& r) { return absl::StrCat(Fixed(100 * r.gpu_utilization, 2), "%"); }},
      {"fully free domains: mean / at end", [](auto& r) {
         return absl::StrCat(Fixed(r.mean_fully_free_domains, 2), " / ", r.at_end.fully_free_domains);
       }},
      {"stranded machines: mean / at end", [](auto& r) {
         return absl::StrCat(Fixed(r.mean_stranded_machines, 2), " / ", r.at_end.stranded_machines);
       }},
      {"free machines: mean / at end", [](auto& r) {
         return absl::StrCat(Fixed(r.mean_free_machines, 1), " / ", r.at_end.free_machines);
       }},
      {"makespan (days)", [](auto& r) { return Fixed(r.makespan_s / 86400.0, 2); }},
      {"replay wall time (s)", [](auto& r) { return Fixed(r.wall_s, 3); }},
  };
  rows.insert(rows.end(), fleet.begin(), fleet.end());
  return rows;
}

void AppendKindJson(std::string* out, const KindCounts& c) {
  absl::StrAppend(out, "{\"submitted\":", c.submitted, ",\"placed\":", c.placed,
                  ",\"placed_at_arrival\":", c.placed - c.placed_after_wait,
                  ",\"placed_after_wait\":", c.placed_after_wait, ",\"expired\":", c.expired,
                  ",\"refused\":", c.refused,
                  ",\"refused_with_room\":", c.refused_with_room,
                  ",\"refused_domain_had_room\":", c.refused_domain_had_room,
                  ",\"queued_behind_batch\":", c.queued_behind_batch, "}");
}

void AppendWaitJson(std::string* out, const WaitStats& w) {
  absl::StrAppend(out, "{\"jobs\":", w.jobs, ",\"mean_s\":", Fixed(w.mean_s, 1),
                  ",\"p50_s\":", w.p50_s, ",\"p99_s\":", w.p99_s, ",\"max_s\":", w.max_s, "}");
}

void AppendSpotJson(std::string* out, const SpotStats& s) {
  absl::StrAppend(out, "{\"spot_jobs\":", s.spot_jobs, ",\"on_demand_jobs\":", s.on_demand_jobs,
                  ",\"wait_on_demand\":");
  AppendWaitJson(out, s.wait_on_demand);
  absl::StrAppend(out, ",\"wait_spot\":");
  AppendWaitJson(out, s.wait_spot);
  absl::StrAppend(out, ",\"preemptions\":", s.preemptions, ",\"jobs_preempted\":",
                  s.jobs_preempted, ",\"gpu_seconds_lost\":", s.gpu_seconds_lost,
                  ",\"on_demand_placed\":", s.on_demand_placed,
                  ",\"on_demand_preempting\":", s.on_demand_preempting,
                  ",\"preempting_gpus\":", s.preempting_gpus, ",\"evicted_gpus\":", s.evicted_gpus,
                  ",\"resubmitted\":", s.resubmitted, "}");
}

// JSON string literal; the names here are plain ASCII, but paths may hold anything.
std::string Quote(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      absl::StrAppend(&out, "\\", std::string(1, c));
    } else if (static_cast<unsigned char>(c) < 0x20) {
      absl::StrAppend(&out, absl::StrFormat("\\u%04x", c));
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
  return out;
}

}  // namespace

std::string_view RefusalModeName(RefusalMode mode) {
  switch (mode) {
    case RefusalMode::kDrop: return "drop";
    case RefusalMode::kWait: return "wait";
    case RefusalMode::kQueue: return "queue";
  }
  return "unknown";
}

void LabelResults(absl::Span<ReplayResult> results) {
  bool one_mode = true;
  bool one_preemption = true;
  for (const ReplayResult& r : results) {
    one_mode = one_mode && r.mode == results.front().mode;
    one_preemption = one_preemption && r.preemption == results.front().preemption;
  }
  for (ReplayResult& r : results) {
    r.label = one_mode ? r.policy : absl::StrCat(r.policy, "@", AbslView(RefusalModeName(r.mode)));
    if (!one_preemption && r.preemption) absl::StrAppend(&r.label, "+preempt");
  }
}

std::string FormatTable(const RunInfo& run, absl::Span<const ReplayResult> results) {
  if (results.empty()) return "no policy ran\n";
  const ReplayOptions& o = results.front().options;
  const std::vector<RefusalMode> modes = RequestedModes(run, results);
  const std::vector<bool> preemption = RequestedPreemption(run, results);
  const bool spot = ShowsSpot(preemption, results);
  const bool wait = std::any_of(results.begin(), results.end(),
                                [](const ReplayResult& r) { return r.mode != RefusalMode::kDrop; });
  std::string out = absl::StrFormat(
      "nvlsched-replay: %s, %d jobs over %.1f days; fleet %d domains x %d machines x %d GPUs "
      "= %d GPUs; on_refusal=%s, cross_domain_when_larger=%s, seed=%d\n",
      run.trace_path, run.jobs, results.front().window_s / 86400.0, o.fleet.domains,
      o.fleet.machines_per_domain, o.fleet.gpus_per_machine, o.fleet.gpus(), ModeList(modes),
      o.cross_domain_when_larger ? "true" : "false", run.seed);
  if (std::find(modes.begin(), modes.end(), RefusalMode::kQueue) != modes.end()) {
    absl::StrAppend(
        &out,
        absl::StrFormat(
            "queue mode: nvlsched's GangQueue (reservation_depth=%d, queue_timeout_s=%d%s); "
            "the baselines cannot hold reservations, so in queue mode they run FIFO wait "
            "mode (columns @wait)\n",
            o.reservation_depth, o.queue_timeout_s, o.queue_timeout_s == 0 ? " = never" : ""));
  }
  if (spot) {
    absl::StrAppend(
        &out,
        absl::StrFormat("spot: spot_share=%.3f (jobs drawn by a seeded hash of their arrival "
                        "index, seed=%d); preemption=%s; resubmit_preempted=%s\n",
                        o.spot_share, o.spot_seed, OnOffList(preemption),
                        o.resubmit_preempted ? "true" : "false"),
        "preemption: only best-fit in queue mode preempts, and only on arrival: an on-demand "
        "job the fleet cannot hold outside the domains reserved ahead of it kills whole spot "
        "jobs in one NVLink domain and takes it. Grace period 0: a victim is killed at once "
        "and the GPU-hours it ran are lost (GPU utilization still counts them)",
        o.resubmit_preempted ? "; it arrives again at the kill time with its full duration"
                             : "; it is not run again",
        ". Queued jobs never preempt. The baselines (and drop/wait modes) have no notion of "
        "spot: they run as with preemption off\n");
  }
  absl::StrAppend(&out, "\n");
  std::vector<Row> rows = TableRows(wait, spot);
  size_t label_width = 0;
  for (const Row& row : rows) label_width = std::max(label_width, row.label.size());
  std::vector<std::vector<std::string>> cells(rows.size());
  std::vector<size_t> widths;
  for (const ReplayResult& r : results) widths.push_back(Label(r).size());
  for (size_t i = 0; i < rows.size(); ++i) {
    for (size_t p = 0; p < results.size(); ++p) {
      cells[i].push_back(rows[i].cell(results[p]));
      widths[p] = std::max(widths[p], cells[i].back().size());
    }
  }
  absl::StrAppend(&out, absl::StrFormat("%-*s", static_cast<int>(label_width), "policy"));
  for (size_t p = 0; p < results.size(); ++p) {
    absl::StrAppend(&out, absl::StrFormat("  %*s", static_cast<int>(widths[p]), Label(results[p])));
  }
  absl::StrAppend(&out, "\n");
  for (size_t i = 0; i < rows.size(); ++i) {
    absl::StrAppend(&out, absl::StrFormat("%-*s", static_cast<int>(label_width), rows[i].label));
    for (size_t p = 0; p < results.size(); ++p) {
      absl::StrAppend(&out, absl::StrFormat("  %*s", static_cast<int>(widths[p]), cells[i][p]));
    }
    absl::StrAppend(&out, "\n");
  }
  absl::StrAppend(&out, absl::StrFormat("\nwhole replay: %.2f s wall on %d thread(s)\n",
                                        run.wall_s, run.threads));
  return out;
}

std::string FormatJson(const RunInfo& run, absl::Span<const ReplayResult> results) {
  std::string out = "{";
  absl::StrAppend(&out, "\"trace\":", Quote(run.trace_path), ",\"jobs\":", run.jobs,
                  ",\"seed\":", run.seed, ",\"threads\":", run.threads,
                  ",\"wall_s\":", Fixed(run.wall_s, 3));
  if (!results.empty()) {
    const ReplayOptions& o = results.front().options;
    absl::StrAppend(&out, ",\"fleet\":{\"domains\":", o.fleet.domains,
                    ",\"machines_per_domain\":", o.fleet.machines_per_domain,
                    ",\"gpus_per_machine\":", o.fleet.gpus_per_machine,
                    ",\"gpus\":", o.fleet.gpus(), "}",
                    ",\"on_refusal\":", Quote(ModeList(RequestedModes(run, results))),
                    ",\"cross_domain_when_larger\":", o.cross_domain_when_larger ? "true" : "false",
                    ",\"queue_timeout_s\":", o.queue_timeout_s,
                    ",\"reservation_depth\":", o.reservation_depth,
                    ",\"spot_share\":", Fixed(o.spot_share, 6), ",\"spot_seed\":", o.spot_seed,
                    ",\"preemption\":", Quote(OnOffList(RequestedPreemption(run, results))),
                    ",\"resubmit_preempted\":", o.resubmit_preempted ? "true" : "false");
  }
  absl::StrAppend(&out, ",\"policies\":[");
  for (size_t p = 0; p < results.size(); ++p) {
    const ReplayResult& r = results[p];
    if (p > 0) out.push_back(',');
    absl::StrAppend(&out, "{\"name\":", Quote(r.policy), ",\"label\":", Quote(Label(r)),
                    ",\"mode\":", Quote(AbslView(RefusalModeName(r.mode))),
                    ",\"preemption\":", r.preemption ? "true" : "false", ",\"jobs\":{");
    for (int k = 0; k < kJobKinds; ++k) {
      if (k > 0) out.push_back(',');
      absl::StrAppend(&out, Quote(AbslView(JobKindName(static_cast<JobKind>(k)))), ":");
      AppendKindJson(&out, r.by_kind[k]);
    }
    absl::StrAppend(&out, "},\"window_s\":", r.window_s, ",\"makespan_s\":", r.makespan_s,
                    ",\"gpu_utilization\":", Fixed(r.gpu_utilization, 6),
                    ",\"mean_free_machines\":", Fixed(r.mean_free_machines, 3),
                    ",\"mean_fully_free_domains\":", Fixed(r.mean_fully_free_domains, 3),
                    ",\"mean_stranded_machines\":", Fixed(r.mean_stranded_machines, 3),
                    ",\"at_end\":{\"used_gpus\":", r.at_end.used_gpus,
                    ",\"free_machines\":", r.at_end.free_machines,
                    ",\"fully_free_domains\":", r.at_end.fully_free_domains,
                    ",\"stranded_machines\":", r.at_end.stranded_machines,
                    ",\"queue_length\":", r.queue_at_end, "}",
                    ",\"max_queue_length\":", r.max_queue_length, ",\"wait_all\":");
    AppendWaitJson(&out, r.wait_all);
    absl::StrAppend(&out, ",\"wait_batches\":");
    AppendWaitJson(&out, r.wait_batches);
    absl::StrAppend(&out, ",\"wait_singles\":");
    AppendWaitJson(&out, r.wait_singles);
    absl::StrAppend(&out, ",\"spot\":");
    AppendSpotJson(&out, r.spot);
    absl::StrAppend(&out, ",\"mean_free_gpus_while_waiting\":",
                    Fixed(r.mean_free_gpus_while_waiting, 3), ",\"waiting_s\":", r.waiting_s);
    absl::StrAppend(&out, ",\"wall_s\":", Fixed(r.wall_s, 3), "}");
  }
  absl::StrAppend(&out, "]}\n");
  return out;
}

}  // namespace nvlsched::replay
