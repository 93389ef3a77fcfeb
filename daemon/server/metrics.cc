#include "daemon/server/metrics.h"


#include <grpcpp/server_context.h>

#include <prometheus/text_serializer.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <exception>
#include <utility>

#include "absl/strings/str_cat.h"

namespace nvlsched::daemon {
namespace {

const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
      0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
      0.5, 1, 2.5, 5, 10};
  return *buckets;
}

// Finer than LatencyBuckets between 1 and 25 ms, where a write's stages spread under load.
const prometheus::Histogram::BucketBoundaries& StageBuckets() {
  static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
      0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015,
      0.025, 0.05, 0.1, 0.25, 1};
  return *buckets;
}

std::string CodeName(grpc::StatusCode code) {
  static constexpr const char* kNames[] = {
      "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
      "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
      "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
      "UNAUTHENTICATED"};
  const int i = static_cast<int>(code);
  return i >= 0 && i < 17 ? kNames[i] : absl::StrCat(i);
}

class CallInterceptor final : public grpc::experimental::Interceptor {
 public:
  CallInterceptor(Metrics* metrics, grpc::experimental::ServerRpcInfo* info)
      : metrics_(metrics), info_(info),
        method_(info->method() != nullptr ? info->method() : "?"),
        start_(std::chrono::steady_clock::now()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
      grpc::StatusCode code = status.error_code();
      // A stream the client cancelled is CANCELLED, whatever status the handler finished it
      // with (gRPC's health service ends a cancelled Watch with UNKNOWN "OnCancel()"), so
      // error dashboards do not count clients that simply went away.
      if (code == grpc::StatusCode::UNKNOWN && info_->server_context() != nullptr &&
          info_->server_context()->IsCancelled()) {
        code = grpc::StatusCode::CANCELLED;
      }
      metrics_->ObserveCall(method_, code, seconds);
    }
    methods->Proceed();
  }

 private:
  Metrics* const metrics_;
  grpc::experimental::ServerRpcInfo* const info_;
  const std::string method_;
  const std::chrono::steady_clock::time_point start_;
};

class CallInterceptorFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit CallInterceptorFactory(Metrics* metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new CallInterceptor(metrics_, info);
  }

 private:
  Metrics* const metrics_;
};

}  // namespace

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      requests_(prometheus::BuildCounter()
                    .Name("nvlsched_requests_total")
                    .Help("gRPC calls answered, by method and status code")
                    .Register(*registry_)),
      request_duration_(prometheus::BuildHistogram()
                            .Name("nvlsched_request_duration_seconds")
                            .Help("gRPC call latency, from arrival to status, by method")
                            .Register(*registry_)),
      commits_(prometheus::BuildCounter()
                   .Name("nvlsched_commits_total")
                   .Help("Group commits to SQLite, by result")
                   .Register(*registry_)),
      commit_duration_(prometheus::BuildHistogram()
                           .Name("nvlsched_commit_duration_seconds")
                           .Help("Time of one group commit (one SQLite transaction and sync)")
                           .Register(*registry_)
                           .Add({}, LatencyBuckets())),
      commit_group_ops_(prometheus::BuildHistogram()
                            .Name("nvlsched_commit_group_ops")
                            .Help("Writes that shared one group commit")
                            .Register(*registry_)
                            .Add({}, prometheus::Histogram::BucketBoundaries{
                                         1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024})),
      write_stages_(prometheus::BuildHistogram()
                        .Name("nvlsched_write_stage_seconds")
                        .Help("Where a write's time inside the engine went: queued (until the "
                              "engine thread took it), engine (its group's ops and commit), "
                              "completion (until its answer started)")
                        .Register(*registry_)),
      stage_queued_(write_stages_.Add({{"stage", "queued"}}, StageBuckets())),
      stage_engine_(write_stages_.Add({{"stage", "engine"}}, StageBuckets())),
      stage_completion_(write_stages_.Add({{"stage", "completion"}}, StageBuckets())),
      free_machines_(prometheus::BuildGauge()
                         .Name("nvlsched_free_machines")
                         .Help("Whole free READY machines, by instance type")
                         .Register(*registry_)),
      free_gpus_(prometheus::BuildGauge()
                     .Name("nvlsched_free_gpus")
                     .Help("Free GPUs on READY machines, by instance type")
                     .Register(*registry_)),
      fully_free_domains_(prometheus::BuildGauge()
                              .Name("nvlsched_fully_free_domains")
                              .Help("NVLink domains whose machines are all free, by instance type")
                              .Register(*registry_)),
      largest_strict_batch_(prometheus::BuildGauge()
                                .Name("nvlsched_largest_strict_batch")
                                .Help("Largest topology-optimized batch placeable now")
                                .Register(*registry_)),
      stranded_machines_(prometheus::BuildGauge()
                             .Name("nvlsched_stranded_machines")
                             .Help("Free machines in domains with fewer than 2 free")
                             .Register(*registry_)),
      machines_by_state_(prometheus::BuildGauge()
                             .Name("nvlsched_machines")
                             .Help("Machines by state: READY, MAINTENANCE, ERROR")
                             .Register(*registry_)),
      queue_length_(prometheus::BuildGauge()
                        .Name("nvlsched_queue_length")
                        .Help("Requests waiting in the queue (queue_timeout), by instance type")
                        .Register(*registry_)),
      queue_wait_(prometheus::BuildHistogram()
                      .Name("nvlsched_queue_wait_seconds")
                      .Help("How long requests placed from the queue waited")
                      .Register(*registry_)
                      .Add({}, prometheus::Histogram::BucketBoundaries{
                                   0.01, 0.1, 1, 10, 60, 300, 900, 3600, 4 * 3600, 12 * 3600,
                                   86400, 3 * 86400, 7 * 86400})),
      queue_reservations_(prometheus::BuildGauge()
                              .Name("nvlsched_queue_reservations")
                              .Help("Waiting batches holding an NVLink domain reservation")
                              .Register(*registry_)
                              .Add({})),
      queue_expired_(prometheus::BuildCounter()
                         .Name("nvlsched_queue_expired_total")
                         .Help("Queued requests whose queue_timeout passed before they were placed")
                         .Register(*registry_)
                         .Add({})),
      preemptions_(prometheus::BuildCounter()
                       .Name("nvlsched_preemptions_total")
                       .Help("On-demand requests that preempted spot instances, by instance type")
                       .Register(*registry_)),
      preempted_instances_(prometheus::BuildCounter()
                               .Name("nvlsched_preempted_instances_total")
                               .Help("Spot instances preempted, by instance type")
                               .Register(*registry_)),
      preempted_gpu_hours_(prometheus::BuildCounter()
                               .Name("nvlsched_preempted_spot_gpu_hours_total")
                               .Help("Spot GPU-hours the preempted instances had run (lost "
                                     "work), by instance type")
                               .Register(*registry_)),
      preemption_to_placement_(
          prometheus::BuildHistogram()
              .Name("nvlsched_preemption_to_placement_seconds")
              .Help("From a preemption to the placement of the request it made room for")
              .Register(*registry_)
              .Add({}, prometheus::Histogram::BucketBoundaries{0.1, 1, 5, 10, 30, 60, 120, 300,
                                                               900, 3600})),
      preemptions_released_(prometheus::BuildCounter()
                                .Name("nvlsched_preemptions_released_at_deadline_total")
                                .Help("Preempted instances nvlsched released itself because "
                                      "nobody deleted them by their preemption deadline")
                                .Register(*registry_)
                                .Add({})),
      event_watchers_(prometheus::BuildGauge()
                          .Name("nvlsched_event_watchers")
                          .Help("WatchEvents streams connected")
                          .Register(*registry_)
                          .Add({})),
      events_sent_(prometheus::BuildCounter()
                       .Name("nvlsched_events_sent_total")
                       .Help("Events written to WatchEvents streams")
                       .Register(*registry_)
                       .Add({})),
      watchers_ended_for_lag_(prometheus::BuildCounter()
                                  .Name("nvlsched_event_watchers_ended_for_lag_total")
                                  .Help("WatchEvents streams ended because they fell more "
                                        "than --watch_buffer events behind")
                                  .Register(*registry_)
                                  .Add({})),
      pending_reply_bytes_(prometheus::BuildGauge()
                               .Name("nvlsched_pending_reply_bytes")
                               .Help("Serialized answers handed to gRPC and not yet sent (at "
                                     "--max_pending_reply_mib calls are refused)")
                               .Register(*registry_)
                               .Add({})),
      unread_replies_cancelled_(prometheus::BuildCounter()
                                    .Name("nvlsched_unread_replies_cancelled_total")
                                    .Help("Calls cancelled because their client left the "
                                          "answer unread longer than --pending_reply_timeout")
                                    .Register(*registry_)
                                    .Add({})),
      checkpoints_(prometheus::BuildCounter()
                       .Name("nvlsched_wal_checkpoints_total")
                       .Help("SQLite WAL checkpoints by result: thread (the store's checkpoint "
                             "thread), writer (the engine's commit, the WAL at its 10,000-page "
                             "cap), writer_rest (the engine's commit copying the last frames "
                             "after a pass of the thread), failed (any; retried)")
                       .Register(*registry_)),
      // All four from the first scrape (0 for PostgreSQL, which reports none).
      checkpoints_thread_(checkpoints_.Add({{"result", "thread"}})),
      checkpoints_writer_(checkpoints_.Add({{"result", "writer"}})),
      checkpoints_writer_rest_(checkpoints_.Add({{"result", "writer_rest"}})),
      checkpoints_failed_(checkpoints_.Add({{"result", "failed"}})) {}

void Metrics::ObserveCheckpoints(const store::CheckpointCounts& counts) {
  MutexLock lock(&checkpoints_mu_);
  auto grow = [](prometheus::Counter& counter, int64_t now, int64_t& last) {
    if (now > last) counter.Increment(static_cast<double>(now - last));
    last = now;
  };
  grow(checkpoints_thread_, counts.background, last_checkpoints_.background);
  grow(checkpoints_writer_, counts.on_writer, last_checkpoints_.on_writer);
  grow(checkpoints_writer_rest_, counts.rest_on_writer, last_checkpoints_.rest_on_writer);
  grow(checkpoints_failed_, counts.failed, last_checkpoints_.failed);
}

void Metrics::ObserveReplies(int64_t pending_bytes, int64_t cancelled_unread) {
  pending_reply_bytes_.Set(static_cast<double>(pending_bytes));
  MutexLock lock(&replies_mu_);
  if (cancelled_unread > last_cancelled_unread_) {
    unread_replies_cancelled_.Increment(
        static_cast<double>(cancelled_unread - last_cancelled_unread_));
    last_cancelled_unread_ = cancelled_unread;
  }
}

void Metrics::ObserveEvents(const EventHubStats& stats) {
  MutexLock lock(&events_mu_);
  event_watchers_.Set(static_cast<double>(stats.watchers));
  if (stats.events_sent > last_events_.events_sent) {
    events_sent_.Increment(static_cast<double>(stats.events_sent - last_events_.events_sent));
  }
  if (stats.ended_for_lag > last_events_.ended_for_lag) {
    watchers_ended_for_lag_.Increment(
        static_cast<double>(stats.ended_for_lag - last_events_.ended_for_lag));
  }
  last_events_ = stats;
}

absl::StatusOr<std::unique_ptr<Metrics>> Metrics::Start(const std::string& listen) {
  std::unique_ptr<Metrics> metrics(new Metrics());
  if (!listen.empty()) {
    try {
      metrics->exposer_ = std::make_unique<prometheus::Exposer>(listen);
    } catch (const std::exception& e) {
      return absl::UnavailableError(absl::StrCat(
          "cannot serve metrics on --metrics_listen=", listen, ": ", e.what(),
          "; choose a free port, or --metrics_listen= (empty) to turn the endpoint off"));
    }
    metrics->exposer_->RegisterCollectable(metrics->registry_);
  }
  return metrics;
}

void Metrics::ObserveCall(const std::string& method, grpc::StatusCode code, double seconds) {
  requests_.Add({{"method", method}, {"code", CodeName(code)}}).Increment();
  request_duration_.Add({{"method", method}, {"code", CodeName(code)}}, LatencyBuckets())
      .Observe(seconds);
}

void Metrics::ObserveWriteStages(const WriteStages& stages) {
  stage_queued_.Observe(absl::ToDoubleSeconds(stages.queued));
  stage_engine_.Observe(absl::ToDoubleSeconds(stages.engine));
  stage_completion_.Observe(absl::ToDoubleSeconds(stages.completion));
}

void Metrics::ObserveCommit(const CommitReport& report) {
  commits_.Add({{"result", report.status.ok() ? "ok" : "failed"}}).Increment();
  commit_duration_.Observe(absl::ToDoubleSeconds(report.latency));
  commit_group_ops_.Observe(report.ops);
  for (absl::Duration wait : report.queue_pass.waits) queue_wait_.Observe(absl::ToDoubleSeconds(wait));
  if (report.queue_pass.expired > 0) queue_expired_.Increment(report.queue_pass.expired);
  for (absl::Duration wait : report.queue_pass.preemptor_waits) {
    preemption_to_placement_.Observe(absl::ToDoubleSeconds(wait));
  }
  if (report.queue_pass.preemptions_released > 0) {
    preemptions_released_.Increment(report.queue_pass.preemptions_released);
  }
  for (const State::PreemptionStat& p : report.preemptions) {
    const prometheus::Labels labels{{"instance_type", p.instance_type}};
    preemptions_.Add(labels).Increment();
    preempted_instances_.Add(labels).Increment(p.victims);
    preempted_gpu_hours_.Add(labels).Increment(p.gpu_hours);
  }
}

void Metrics::ObserveQueue(const State& state) {
  const allocator::Allocator& alloc = state.allocator();
  alloc.ForEachInstanceType([&](const allocator::InstanceType& type) {
    queue_length_.Add({{"instance_type", type.name}})
        .Set(static_cast<double>(state.queue().size_of_type(alloc.TypeIndexOf(type.id))));
  });
  queue_reservations_.Set(static_cast<double>(state.queue().reservations().size()));
}

void Metrics::ObserveCapacity(const State& state) {
  state.allocator().ForEachInstanceType([&](const allocator::InstanceType& type) {
    absl::StatusOr<allocator::CapacityView> view = state.allocator().Capacity(type.id);
    if (!view.ok()) return;
    const prometheus::Labels labels{{"instance_type", type.name}};
    free_machines_.Add(labels).Set(static_cast<double>(view->free_machines));
    free_gpus_.Add(labels).Set(static_cast<double>(view->free_gpus));
    fully_free_domains_.Add(labels).Set(view->fully_free_domains);
    largest_strict_batch_.Add(labels).Set(view->largest_strict_batch);
    stranded_machines_.Add(labels).Set(static_cast<double>(view->stranded_machines));
  });
}

void Metrics::ObserveMachineStates(const State& state) {
  int64_t ready = 0, maintenance = 0, error = 0, cleaning = 0;
  state.allocator().ForEachMachine([&](const allocator::Machine& machine) {
    switch (machine.state) {
      case allocator::MachineState::kReady: ++ready; break;
      case allocator::MachineState::kMaintenance: ++maintenance; break;
      case allocator::MachineState::kError: ++error; break;
      case allocator::MachineState::kCleaning: ++cleaning; break;
    }
  });
  machines_by_state_.Add({{"state", "READY"}}).Set(static_cast<double>(ready));
  machines_by_state_.Add({{"state", "MAINTENANCE"}}).Set(static_cast<double>(maintenance));
  machines_by_state_.Add({{"state", "ERROR"}}).Set(static_cast<double>(error));
  machines_by_state_.Add({{"state", "CLEANING"}}).Set(static_cast<double>(cleaning));
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
Metrics::InterceptorFactory() {
  return std::make_unique<CallInterceptorFactory>(this);
}

int Metrics::port() const {
  if (exposer_ == nullptr) return 0;
  std::vector<int> ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

std::string Metrics::Scrape() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace nvlsched::daemon
