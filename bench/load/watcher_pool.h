// WatcherPool: N EventService/WatchEvents streams held open during a load run, to measure what
// watchers cost the daemon's write path (nvlsched-load --watchers=N). All streams share one
// channel and one completion queue drained by one thread, so the client adds one thread of
// work however many watchers there are. Every event is read and dropped.
//
// Thread-safety: Start and Stop from the driving thread; events() from any thread.
#ifndef NVLSCHED_BENCH_LOAD_WATCHER_POOL_H_
#define NVLSCHED_BENCH_LOAD_WATCHER_POOL_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "nvlsched/v1/event_service.grpc.pb.h"

namespace nvlsched::load {

class WatcherPool {
 public:
  // `org` "" watches every org (needs a provider role when the daemon checks tokens).
  WatcherPool(std::shared_ptr<grpc::Channel> channel, int watchers, std::string org,
              std::string token);
  ~WatcherPool();  // Stop()s.

  // Opens every stream (from_now: only the events committed from here on) and starts reading.
  absl::Status Start();
  // Cancels every stream and waits until all have finished.
  void Stop();

  int64_t events() const { return events_.load(std::memory_order_relaxed); }
  // Streams that ended before Stop (the daemon ended them, e.g. for lag).
  int64_t ended_early() const { return ended_early_.load(std::memory_order_relaxed); }

 private:
  struct Stream;
  void Drain();

  std::shared_ptr<grpc::Channel> channel_;
  const int count_;
  const std::string org_;
  const std::string token_;
  std::unique_ptr<v1::EventService::Stub> stub_;
  grpc::CompletionQueue cq_;
  std::vector<std::unique_ptr<Stream>> streams_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> events_{0};
  std::atomic<int64_t> ended_early_{0};
  bool started_ = false;
};

}  // namespace nvlsched::load

#endif  // NVLSCHED_BENCH_LOAD_WATCHER_POOL_H_
