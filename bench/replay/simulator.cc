#include "bench/replay/simulator.h"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <queue>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "bench/replay/job_shape.h"
#include "bench/replay/queueing_policy.h"
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
  // pN = the smallest wait that at least N% of the jobs do not exceed.
  auto percentile = [waits](size_t n) {
    size_t rank = (waits->size() * n + 99) / 100 - 1;
    std::nth_element(waits->begin(), waits->begin() + static_cast<std::ptrdiff_t>(rank),
                     waits->end());
    return (*waits)[rank];
  };
  stats.p50_s = percentile(50);
  stats.p99_s = percentile(99);
  stats.max_s = *std::max_element(waits->begin(), waits->end());
  return stats;
}

class Simulation {
 public:
  Simulation(absl::Span<const TraceJob> trace, const ReplayOptions& options,
             PlacementPolicy* policy)
      : trace_(trace), options_(options), policy_(policy), queue_(options.fleet.gpus_per_machine) {
    shapes_.reserve(trace.size());
    submitted_at_.reserve(trace.size());
    for (size_t i = 0; i < trace.size(); ++i) {
      JobShape shape =
          ShapeJob(trace[i].num_gpus, options.fleet, options.cross_domain_when_larger);
      shape.spot = IsSpotJob(static_cast<uint32_t>(i), options.spot_share, options.spot_seed);
      ++(shape.spot ? result_.spot.spot_jobs : result_.spot.on_demand_jobs);
      shapes_.push_back(shape);
      submitted_at_.push_back(trace[i].submit_s);
    }
    started_at_.assign(trace.size(), kNotRunning);
    run_.assign(trace.size(), 0);
    ever_preempted_.assign(trace.size(), false);
    result_.policy = std::string(policy->name());
    result_.label = result_.policy;
    result_.options = options;
    mode_ = options.on_refusal;
    if (mode_ == RefusalMode::kQueue) {
      queueing_ = policy->queueing();
      if (queueing_ == nullptr) mode_ = RefusalMode::kWait;  // no reservations: FIFO wait
    }
    result_.mode = mode_;
    result_.preemption = queueing_ != nullptr && queueing_->preempts();
    result_.window_s = trace.empty() ? 0 : trace.back().submit_s;
  }

  absl::StatusOr<ReplayResult> Run() {
    stats_ = policy_->Stats();
    size_t next_arrival = 0;
    while (true) {
      DropKilledCompletions();
      int64_t now = next_arrival < trace_.size() ? trace_[next_arrival].submit_s : INT64_MAX;
      if (!completions_.empty()) now = std::min(now, completions_.top().time);
      std::optional<int64_t> deadline;
      if (queueing_ != nullptr) deadline = queueing_->NextDeadline();
      if (deadline.has_value()) now = std::min(now, std::max(*deadline, time_));
      if (now == INT64_MAX) break;
      AdvanceTo(now);

      bool freed = false;
      while (!completions_.empty() && completions_.top().time == now) {
        const Completion done = completions_.top();
        completions_.pop();
        if (done.run != run_[done.job]) continue;  // killed by a preemption
        started_at_[done.job] = kNotRunning;
        if (absl::Status s = policy_->Release(done.job); !s.ok()) return s;
        freed = true;
      }
      if (queueing_ != nullptr) {
        if ((freed || (deadline.has_value() && *deadline <= now)) && QueueLength() > 0) {
          if (absl::Status s = SchedulePass(now); !s.ok()) return s;
        }
      } else if (freed && queue_.size() > 0) {
        absl::Status s = queue_.OfferAll([&](uint32_t job, const JobShape& shape) {
          return Offer(job, shape, now, /*from_queue=*/true);
        });
        if (!s.ok()) return s;
      }
      const bool arrived = next_arrival < trace_.size() && trace_[next_arrival].submit_s == now;
      while (next_arrival < trace_.size() && trace_[next_arrival].submit_s == now) {
        if (absl::Status s = ArriveAndPass(static_cast<uint32_t>(next_arrival), now); !s.ok()) {
          return s;
        }
        ++next_arrival;
        if (absl::Status s = ResubmitKilled(now); !s.ok()) return s;
      }
      stats_ = policy_->Stats();
      queue_length_ = QueueLength();
      if (next_arrival == trace_.size() && !end_recorded_) {
        result_.at_end = stats_;
        result_.queue_at_end = static_cast<int64_t>(queue_length_);
        end_recorded_ = true;
      }
      result_.max_queue_length =
          std::max(result_.max_queue_length, static_cast<int64_t>(queue_length_));
      if (freed || arrived) result_.makespan_s = now;
    }
    if (QueueLength() > 0) {
      return absl::InternalError(absl::StrCat(QueueLength(),
                                              " jobs still wait after every job finished"));
    }
    AdvanceTo(result_.makespan_s + 1);  // the last sample, at or before the makespan
    Finish();
    return std::move(result_);
  }

 private:
  static constexpr int64_t kNotRunning = -1;

  // What the policy's queue reports, at `now`.
  struct Events final : QueueingPolicy::Events {
    Simulation* sim;
    int64_t now;
    Events(Simulation* s, int64_t t) : sim(s), now(t) {}
    void Started(uint32_t job) override { sim->Started(job, now, /*from_queue=*/true); }
    void Expired(uint32_t job) override { ++sim->Counts(sim->shapes_[job].kind).expired; }
    void Preempted(uint32_t job) override { sim->Killed(job, now); }
  };

  // A pending completion; `run` tells a killed run's from the job's current one.
  struct Completion {
    int64_t time;
    uint32_t job;
    uint32_t run;
    friend bool operator>(const Completion& a, const Completion& b) {
      return a.time != b.time ? a.time > b.time : a.job != b.job ? a.job > b.job : a.run > b.run;
    }
  };

  KindCounts& Counts(JobKind kind) { return result_.by_kind[static_cast<int>(kind)]; }

  void DropKilledCompletions() {
    while (!completions_.empty() && completions_.top().run != run_[completions_.top().job]) {
      completions_.pop();
    }
  }

  // An arrival, then, in queue mode, a pass when the queue grew (as the daemon would run
  // one, giving a batch that just joined its reservation) or a preemption freed machines.
  absl::Status ArriveAndPass(uint32_t job, int64_t now) {
    const size_t waiting = QueueLength();
    const size_t kills = killed_.size();
    if (absl::Status s = Arrive(job, now); !s.ok()) return s;
    if (queueing_ != nullptr && (QueueLength() > waiting || killed_.size() > kills)) {
      return SchedulePass(now);
    }
    return absl::OkStatus();
  }

  // The jobs killed by the last arrival arrive again now (or are lost).
  absl::Status ResubmitKilled(int64_t now) {
    std::vector<uint32_t> killed;
    while (!killed_.empty()) {  // once: a resubmitted job is spot, and spot never preempts
      killed.clear();
      killed.swap(killed_);
      if (!options_.resubmit_preempted) return absl::OkStatus();
      for (uint32_t job : killed) {
        ++result_.spot.resubmitted;
        submitted_at_[job] = now;
        if (absl::Status s = ArriveAndPass(job, now); !s.ok()) return s;
      }
    }
    return absl::OkStatus();
  }

  // A running spot job was killed at `now` (Events::Preempted); its machines are free.
  void Killed(uint32_t job, int64_t now) {
    if (started_at_[job] == kNotRunning || !shapes_[job].spot) {
      if (bug_.ok()) {
        bug_ = absl::InternalError(absl::StrCat(
            "the policy preempted job ", job, ", which is ",
            started_at_[job] == kNotRunning ? "not running" : "on-demand"));
      }
      return;
    }
    SpotStats& spot = result_.spot;
    ++spot.preemptions;
    if (!ever_preempted_[job]) {
      ever_preempted_[job] = true;
      ++spot.jobs_preempted;
    }
    spot.gpu_seconds_lost += int64_t{shapes_[job].gpus} * (now - started_at_[job]);
    spot.evicted_gpus += shapes_[job].gpus;
    started_at_[job] = kNotRunning;
    ++run_[job];  // its pending completion is void
    killed_.push_back(job);
  }

  absl::Status Arrive(uint32_t job, int64_t now) {
    const JobShape& shape = shapes_[job];
    KindCounts& counts = Counts(shape.kind);
    ++counts.submitted;
    if (shape.kind == JobKind::kInfeasible) return absl::OkStatus();
    const bool wait = mode_ == RefusalMode::kWait;
    if (wait && IsBatch(shape.kind) && queue_.batch_waiting()) {
      ++counts.queued_behind_batch;
      queue_.Push(job, shape);
      return absl::OkStatus();
    }
    absl::StatusOr<bool> placed;
    if (queueing_ != nullptr) {
      const int64_t deadline = options_.queue_timeout_s > 0
                                   ? submitted_at_[job] + options_.queue_timeout_s
                                   : kNoDeadline;
      const size_t kills = killed_.size();
      Events events(this, now);
      placed = queueing_->Submit(job, shape, now, deadline, events);
      if (!bug_.ok()) return bug_;
      if (placed.ok() && *placed) {
        Started(job, now, /*from_queue=*/false);
        if (killed_.size() > kills) {
          ++result_.spot.on_demand_preempting;
          result_.spot.preempting_gpus += shape.gpus;
        }
      }
    } else {
      placed = Offer(job, shape, now, /*from_queue=*/false);
    }
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
    Started(job, now, from_queue);
    return true;
  }

  // The job holds its placement from `now` on.
  void Started(uint32_t job, int64_t now, bool from_queue) {
    const JobShape& shape = shapes_[job];
    const int64_t waited = now - submitted_at_[job];
    KindCounts& counts = Counts(shape.kind);
    ++counts.placed;
    if (from_queue) ++counts.placed_after_wait;
    waits_.push_back(waited);
    (IsBatch(shape.kind) ? batch_waits_ : single_waits_).push_back(waited);
    (shape.spot ? spot_waits_ : on_demand_waits_).push_back(waited);
    if (!shape.spot) ++result_.spot.on_demand_placed;
    started_at_[job] = now;
    completions_.push(Completion{now + trace_[job].duration_s, job, run_[job]});
  }

  // Queue mode: one pass of the policy's queue.
  absl::Status SchedulePass(int64_t now) {
    Events events(this, now);
    if (absl::Status s = queueing_->Schedule(now, events); !s.ok()) return s;
    return bug_;
  }

  size_t QueueLength() const {
    return queueing_ != nullptr ? queueing_->queue_length() : queue_.size();
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
      if (queue_length_ > 0) {
        free_gpu_s_while_waiting_ += dt * static_cast<double>(stats_.free_gpus);
        result_.waiting_s += to - from;
      }
    }
    if (options_.sample_interval_s > 0) {
      while (next_sample_s_ < t) {
        result_.series.push_back(SeriesPoint{next_sample_s_, stats_.used_gpus,
                                             stats_.free_machines, stats_.fully_free_domains,
                                             stats_.stranded_machines,
                                             static_cast<int64_t>(queue_length_),
                                             result_.spot.preemptions,
                                             result_.spot.gpu_seconds_lost});
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
    result_.wait_singles = Summarize(&single_waits_);
    result_.spot.wait_on_demand = Summarize(&on_demand_waits_);
    result_.spot.wait_spot = Summarize(&spot_waits_);
    if (result_.waiting_s > 0) {
      result_.mean_free_gpus_while_waiting =
          free_gpu_s_while_waiting_ / static_cast<double>(result_.waiting_s);
    }
  }

  absl::Span<const TraceJob> trace_;
  const ReplayOptions& options_;
  PlacementPolicy* policy_;
  RefusalMode mode_;                        // the mode that runs
  QueueingPolicy* queueing_ = nullptr;      // queue mode: the policy's queue
  std::vector<JobShape> shapes_;  // per arrival index
  // Per arrival index: when the job was last submitted (the trace's time, or its last kill
  // when resubmitted), when its current run started (kNotRunning), its run number (bumped
  // by a kill), and whether it was ever killed.
  std::vector<int64_t> submitted_at_;
  std::vector<int64_t> started_at_;
  std::vector<uint32_t> run_;
  std::vector<bool> ever_preempted_;
  std::vector<uint32_t> killed_;  // by the current arrival, in kill order
  absl::Status bug_;              // a policy event that cannot be (Killed)
  WaitQueue queue_;                         // wait mode
  std::priority_queue<Completion, std::vector<Completion>, std::greater<Completion>> completions_;

  ReplayResult result_;
  FleetStats stats_;         // the fleet since time_
  size_t queue_length_ = 0;  // jobs waiting since time_
  int64_t time_ = 0;
  int64_t next_sample_s_ = 0;
  bool end_recorded_ = false;
  double used_gpu_s_ = 0;
  double free_machine_s_ = 0;
  double fully_free_domain_s_ = 0;
  double stranded_machine_s_ = 0;
  double free_gpu_s_while_waiting_ = 0;
  std::vector<int64_t> waits_;
  std::vector<int64_t> batch_waits_;
  std::vector<int64_t> single_waits_;
  std::vector<int64_t> on_demand_waits_;
  std::vector<int64_t> spot_waits_;
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
