#include "bench/replay/simulator.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <queue>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "bench/replay/job_shape.h"
#include "bench/replay/wait_queue.h"

namespace nvlsched::replay {
namespace {

bool IsBatch(JobKind kind) {
  return kind == JobKind::kStrictBatch || kind == JobKind::kCrossDomainBatch;
}

WaitStats Summarize(std::vector<int64_t>* waits) {
  WaitStats stats;
  stats.jobs = static_cast<int64_t>(waits->size());
  if (waits->empty()) return stats;
  double sum = 0;
  for (int64_t w : *waits) sum += static_cast<double>(w);
  stats.mean_s = sum / static_cast<double>(waits->size());
  // p99 = the smallest wait that at least 99% of the jobs do not exceed.
  size_t rank = (waits->size() * 99 + 99) / 100 - 1;
  std::nth_element(waits->begin(), waits->begin() + rank, waits->end());
  stats.p99_s = (*waits)[rank];
  stats.max_s = *std::max_element(waits->begin(), waits->end());
  return stats;
}

class Simulation {
 public:
  Simulation(absl::Span<const TraceJob> trace, const ReplayOptions& options,
             PlacementPolicy* policy)
      : trace_(trace), options_(options), policy_(policy), queue_(options.fleet.gpus_per_machine) {
    shapes_.reserve(trace.size());
    for (const TraceJob& job : trace) {
      shapes_.push_back(ShapeJob(job.num_gpus, options.fleet, options.cross_domain_when_larger));
    }
    result_.policy = std::string(policy->name());
    result_.options = options;
    result_.window_s = trace.empty() ? 0 : trace.back().submit_s;
  }

  absl::StatusOr<ReplayResult> Run() {
    stats_ = policy_->Stats();
    size_t next_arrival = 0;
    while (next_arrival < trace_.size() || !completions_.empty()) {
      int64_t now = next_arrival < trace_.size() ? trace_[next_arrival].submit_s : INT64_MAX;
      if (!completions_.empty()) now = std::min(now, completions_.top().first);
      AdvanceTo(now);

      bool freed = false;
      while (!completions_.empty() && completions_.top().first == now) {
        uint32_t job = completions_.top().second;
        completions_.pop();
        if (absl::Status s = policy_->Release(job); !s.ok()) return s;
        freed = true;
      }
      if (freed && queue_.size() > 0) {
        absl::Status s = queue_.OfferAll(
            [&](uint32_t job, const JobShape& shape) { return Offer(job, shape, now, /*from_queue=*/true); });
        if (!s.ok()) return s;
      }
      while (next_arrival < trace_.size() && trace_[next_arrival].submit_s == now) {
        if (absl::Status s = Arrive(static_cast<uint32_t>(next_arrival), now); !s.ok()) return s;
        ++next_arrival;
      }
      stats_ = policy_->Stats();
      if (next_arrival == trace_.size() && !end_recorded_) {
        result_.at_end = stats_;
        result_.queue_at_end = static_cast<int64_t>(queue_.size());
        end_recorded_ = true;
      }
      result_.max_queue_length =
          std::max(result_.max_queue_length, static_cast<int64_t>(queue_.size()));
      result_.makespan_s = now;
    }
    if (queue_.size() > 0) {
      return absl::InternalError(absl::StrCat(queue_.size(),
                                              " jobs still wait after every job finished"));
    }
    AdvanceTo(result_.makespan_s + 1);  // the last sample, at or before the makespan
    Finish();
    return std::move(result_);
  }

 private:
  KindCounts& Counts(JobKind kind) { return result_.by_kind[static_cast<int>(kind)]; }

  absl::Status Arrive(uint32_t job, int64_t now) {
    const JobShape& shape = shapes_[job];
    KindCounts& counts = Counts(shape.kind);
    ++counts.submitted;
    if (shape.kind == JobKind::kInfeasible) return absl::OkStatus();
    const bool wait = options_.on_refusal == RefusalMode::kWait;
    if (wait && IsBatch(shape.kind) && queue_.batch_waiting()) {
      ++counts.queued_behind_batch;
      queue_.Push(job, shape);
      return absl::OkStatus();
    }
    absl::StatusOr<bool> placed = Offer(job, shape, now, /*from_queue=*/false);
    if (!placed.ok()) return placed.status();
    if (*placed) return absl::OkStatus();
    ++counts.refused;
    FleetStats fleet = policy_->Stats();
    bool room = shape.kind == JobKind::kGpuSingle ? fleet.free_gpus >= shape.gpus
                                                  : fleet.free_machines >= shape.machines;
    if (room) ++counts.refused_with_room;
    if (shape.kind == JobKind::kStrictBatch && fleet.largest_domain_free >= shape.machines) {
      ++counts.refused_domain_had_room;
    }
    if (wait) queue_.Push(job, shape);
    return absl::OkStatus();
  }

  // Offers the job to the policy; on success starts it at `now`.
  absl::StatusOr<bool> Offer(uint32_t job, const JobShape& shape, int64_t now,
                             bool from_queue) {
    absl::StatusOr<bool> placed = policy_->TryPlace(job, shape);
    if (!placed.ok() || !*placed) return placed;
    const TraceJob& trace_job = trace_[job];
    const int64_t waited = now - trace_job.submit_s;
    KindCounts& counts = Counts(shape.kind);
    ++counts.placed;
    if (from_queue) ++counts.placed_after_wait;
    waits_.push_back(waited);
    if (IsBatch(shape.kind)) batch_waits_.push_back(waited);
    completions_.emplace(now + trace_job.duration_s, job);
    return true;
  }

  // Integrates the current fleet state over [time_, t) and emits the samples in it.
  void AdvanceTo(int64_t t) {
    const int64_t from = std::min(time_, result_.window_s);
    const int64_t to = std::min(t, result_.window_s);
    if (to > from) {
      const double dt = static_cast<double>(to - from);
      used_gpu_s_ += dt * static_cast<double>(stats_.used_gpus);
      free_machine_s_ += dt * static_cast<double>(stats_.free_machines);
      fully_free_domain_s_ += dt * static_cast<double>(stats_.fully_free_domains);
      stranded_machine_s_ += dt * static_cast<double>(stats_.stranded_machines);
    }
    if (options_.sample_interval_s > 0) {
      while (next_sample_s_ < t) {
        result_.series.push_back(SeriesPoint{next_sample_s_, stats_.used_gpus,
                                             stats_.free_machines, stats_.fully_free_domains,
                                             stats_.stranded_machines,
                                             static_cast<int64_t>(queue_.size())});
        next_sample_s_ += options_.sample_interval_s;
      }
    }
    time_ = std::max(time_, t);
  }

  void Finish() {
    const double window = static_cast<double>(std::max<int64_t>(result_.window_s, 1));
    result_.gpu_utilization =
        used_gpu_s_ / (window * static_cast<double>(options_.fleet.gpus()));
    result_.mean_free_machines = free_machine_s_ / window;
    result_.mean_fully_free_domains = fully_free_domain_s_ / window;
    result_.mean_stranded_machines = stranded_machine_s_ / window;
    result_.wait_all = Summarize(&waits_);
    result_.wait_batches = Summarize(&batch_waits_);
  }

  absl::Span<const TraceJob> trace_;
  const ReplayOptions& options_;
  PlacementPolicy* policy_;
  std::vector<JobShape> shapes_;  // per arrival index
  WaitQueue queue_;
  using Completion = std::pair<int64_t, uint32_t>;  // (time, job)
  std::priority_queue<Completion, std::vector<Completion>, std::greater<Completion>> completions_;

  ReplayResult result_;
  FleetStats stats_;  // the fleet since time_
  int64_t time_ = 0;
  int64_t next_sample_s_ = 0;
  bool end_recorded_ = false;
  double used_gpu_s_ = 0;
  double free_machine_s_ = 0;
  double fully_free_domain_s_ = 0;
  double stranded_machine_s_ = 0;
  std::vector<int64_t> waits_;
  std::vector<int64_t> batch_waits_;
};

}  // namespace

absl::StatusOr<ReplayResult> Replay(absl::Span<const TraceJob> trace,
                                    const ReplayOptions& options, PlacementPolicy* policy) {
  if (trace.size() > UINT32_MAX) {
    return absl::InvalidArgumentError("a trace may hold at most 2^32 - 1 jobs");
  }
  const auto start = std::chrono::steady_clock::now();
  Simulation simulation(trace, options, policy);
  absl::StatusOr<ReplayResult> result = simulation.Run();
  if (result.ok()) {
    result->wall_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  return result;
}

}  // namespace nvlsched::replay
