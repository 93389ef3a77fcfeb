// ReaderPool: N clients calling InstanceService/ListInstances as fast as they can during a load
// run, to measure what reads cost the write path and what the write path costs reads
// (nvlsched-load --readers=N). Each reader keeps one call in flight: it walks the org's
// instances page by page (page_size, following next_page_token), and starts over from the first
// page after the last one, or after a failed call. As in WatcherPool, all readers share one
// channel and one completion queue drained by one thread.
//
// The reads are measured apart from the write workload (LoadResult::reads), with latency from
// each call's send to its completion.
//
// Thread-safety: Start and Stop from the driving thread; stats() only after Stop.
#ifndef NVLSCHED_BENCH_LOAD_READER_POOL_H_
#define NVLSCHED_BENCH_LOAD_READER_POOL_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "bench/load/load_result.h"
#include "nvlsched/v1/instance_service.grpc.pb.h"

namespace nvlsched::load {

class ReaderPool {
 public:
  // `token`: bearer token ("" for none). Every call has the deadline `call_timeout`.
  ReaderPool(std::shared_ptr<grpc::Channel> channel, int readers, std::string org, int page_size,
             absl::Duration call_timeout, std::string token);
  ~ReaderPool();  // Stop()s.

  ReaderPool(const ReaderPool&) = delete;
  ReaderPool& operator=(const ReaderPool&) = delete;

  // Sends every reader's first call and starts the draining thread.
  absl::Status Start();
  // Sends no more calls, waits for those in flight (bounded by call_timeout) and joins the
  // thread. Idempotent.
  void Stop();

  // What the readers measured; elapsed runs from Start to the last completion.
  // REQUIRES: Stop() has returned.
  const ReadStats& stats() const { return stats_; }

 private:
  struct Reader;
  void Send(Reader* reader);
  void Complete(Reader* reader);
  void Drain();

  // Constant after construction.
  std::shared_ptr<grpc::Channel> channel_;
  const int count_;
  const std::string org_;
  const int page_size_;
  const absl::Duration call_timeout_;
  const std::string token_;
  std::unique_ptr<v1::InstanceService::Stub> stub_;

  grpc::CompletionQueue cq_;
  std::vector<std::unique_ptr<Reader>> readers_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  bool started_ = false;
  bool stopped_ = false;

  // Touched only by the draining thread until it is joined.
  int in_flight_ = 0;
  std::chrono::steady_clock::time_point start_;
  ReadStats stats_;
};

}  // namespace nvlsched::load

#endif  // NVLSCHED_BENCH_LOAD_READER_POOL_H_
