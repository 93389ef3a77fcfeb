// Metrics: Prometheus metrics of nvlschedd, served on --metrics_listen at /metrics
// (prometheus-cpp), and a gRPC server interceptor that counts every call by method and status
// code and times it (the services log each write: services/unary_call.h).
//
//   nvlsched_requests_total{method,code}            calls answered
//   nvlsched_request_duration_seconds{method,code}  call latency (histogram)
//   nvlsched_commits_total{result}                  group commits, ok / failed
//   nvlsched_commit_duration_seconds                SQLite commit latency (histogram)
//   nvlsched_commit_group_ops                       writes sharing one commit (histogram)
//   nvlsched_write_stage_seconds{stage}             where a write's time inside the engine went:
//                                                   queued, engine, completion (engine.h
//                                                   WriteStages; histograms)
//   nvlsched_free_machines{instance_type}           whole free READY machines
//   nvlsched_free_gpus{instance_type}
//   nvlsched_fully_free_domains{instance_type}
//   nvlsched_largest_strict_batch{instance_type}    largest topology-optimized batch placeable now
//   nvlsched_stranded_machines{instance_type}       free, in domains with fewer than 2 free
//   nvlsched_machines{state}                        machines by state (READY, MAINTENANCE, ERROR)
//   nvlsched_pending_reply_bytes                    answers handed to gRPC, not yet sent
//   nvlsched_unread_replies_cancelled_total         calls cancelled: answer unread too long
//   nvlsched_wal_checkpoints_total{result}          SQLite WAL checkpoints: thread, writer
//                                                   (the WAL at its cap), writer_rest (the
//                                                   last frames after a pass), failed
//
// Thread-safety: the interceptor runs on gRPC threads, Observe* on the engine thread
// (ObserveWriteStages on the completion thread);
// prometheus-cpp's metrics are thread-safe.
#ifndef NVLSCHED_DAEMON_SERVER_METRICS_H_
#define NVLSCHED_DAEMON_SERVER_METRICS_H_

#include <grpcpp/support/server_interceptor.h>
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "daemon/engine/engine.h"
#include "daemon/engine/state.h"
#include "daemon/services/event_hub.h"
#include "store/store.h"

namespace nvlsched::daemon {

class Metrics {
 public:
  // Serves /metrics on `listen` (host:port); empty `listen` keeps the metrics in memory only
  // (tests). UNAVAILABLE if the port cannot be bound.
  static absl::StatusOr<std::unique_ptr<Metrics>> Start(const std::string& listen);

  // Engine thread, after each commit attempt.
  void ObserveCommit(const CommitReport& report);
  // Completion thread, for every write before its answer (Engine::Options::on_write_stages).
  void ObserveWriteStages(const WriteStages& stages);
  // Engine thread: refreshes the capacity gauges from the allocator (cost: O(instance types)).
  void ObserveCapacity(const State& state);
  // The queue: requests waiting by instance type, reservations held.
  void ObserveQueue(const State& state);
  // Engine thread: recounts machines by state (cost: O(machines); call it at start-up and
  // after commits that changed machines, not after every commit).
  void ObserveMachineStates(const State& state);

  // For ServerBuilder::experimental().SetInterceptorCreators.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> InterceptorFactory();

  // The port /metrics is served on (0 when off).
  int port() const;

  // The current metrics in Prometheus text format (for tests and logs).
  std::string Scrape() const;

  void ObserveCall(const std::string& method, grpc::StatusCode code, double seconds);

  // Any thread: the event watchers (services/event_hub.h), as the hub counts them.
  void ObserveEvents(const EventHubStats& stats);
  // The reply budget's sweeper (services/reply_budget.h), once a second: the bytes of answers
  // not yet sent, and the calls cancelled so far because their answer was left unread.
  void ObserveReplies(int64_t pending_bytes, int64_t cancelled_unread);
  // Engine thread, after each commit: the store's checkpoints so far (cumulative counts).
  void ObserveCheckpoints(const store::CheckpointCounts& counts);

  // Stops the /metrics HTTP server and frees its port (a daemon that stepped down); the
  // registry and the interceptor keep counting. Not concurrent with port().
  void StopServing() { exposer_.reset(); }

 private:
  Metrics();

  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& request_duration_;
  prometheus::Family<prometheus::Counter>& commits_;
  prometheus::Histogram& commit_duration_;
  prometheus::Histogram& commit_group_ops_;
  prometheus::Family<prometheus::Histogram>& write_stages_;
  prometheus::Histogram& stage_queued_;
  prometheus::Histogram& stage_engine_;
  prometheus::Histogram& stage_completion_;
  prometheus::Family<prometheus::Gauge>& free_machines_;
  prometheus::Family<prometheus::Gauge>& free_gpus_;
  prometheus::Family<prometheus::Gauge>& fully_free_domains_;
  prometheus::Family<prometheus::Gauge>& largest_strict_batch_;
  prometheus::Family<prometheus::Gauge>& stranded_machines_;
  prometheus::Family<prometheus::Gauge>& machines_by_state_;
  prometheus::Family<prometheus::Gauge>& queue_length_;
  prometheus::Histogram& queue_wait_;
  prometheus::Gauge& queue_reservations_;
  prometheus::Counter& queue_expired_;
  prometheus::Family<prometheus::Counter>& preemptions_;
  prometheus::Family<prometheus::Counter>& preempted_instances_;
  prometheus::Family<prometheus::Counter>& preempted_gpu_hours_;
  prometheus::Histogram& preemption_to_placement_;
  prometheus::Counter& preemptions_released_;
  prometheus::Gauge& event_watchers_;
  prometheus::Counter& events_sent_;
  prometheus::Counter& watchers_ended_for_lag_;
  // The hub's counters as last observed (the Prometheus counters grow by the difference).
  Mutex events_mu_;
  EventHubStats last_events_ ABSL_GUARDED_BY(events_mu_);
  prometheus::Gauge& pending_reply_bytes_;
  prometheus::Counter& unread_replies_cancelled_;
  Mutex replies_mu_;
  int64_t last_cancelled_unread_ ABSL_GUARDED_BY(replies_mu_) = 0;
  prometheus::Family<prometheus::Counter>& checkpoints_;
  prometheus::Counter& checkpoints_thread_;
  prometheus::Counter& checkpoints_writer_;
  prometheus::Counter& checkpoints_writer_rest_;
  prometheus::Counter& checkpoints_failed_;
  // As last observed (the counters grow by the difference).
  Mutex checkpoints_mu_;
  store::CheckpointCounts last_checkpoints_ ABSL_GUARDED_BY(checkpoints_mu_);
};

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_SERVER_METRICS_H_
