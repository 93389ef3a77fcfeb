#include "bench/load/load_runner.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <memory>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/load/client_thread.h"
#include "bench/load/reader_pool.h"
#include "bench/load/watcher_pool.h"

namespace nvlsched::load {
namespace {

// `total` split over `parts`, the remainder to the first parts.
int ShareOf(int total, int parts, int index) {
  return total / parts + (index < total % parts ? 1 : 0);
}

}  // namespace

absl::StatusOr<LoadResult> RunLoad(const LoadOptions& options, absl::Duration connect_timeout) {
  if (absl::Status valid = ValidateLoadOptions(options); !valid.ok()) return valid;
  const int threads = std::min(options.threads, options.concurrency);

  // One connection per thread: a local subchannel pool keeps gRPC from sharing one TCP
  // connection (and one server-side poller) among the channels.
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < threads; ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    channels.push_back(
        grpc::CreateCustomChannel(options.target, grpc::InsecureChannelCredentials(), args));
    const auto deadline =
        std::chrono::system_clock::now() + absl::ToChronoNanoseconds(connect_timeout);
    if (!channels.back()->WaitForConnected(deadline)) {
      return absl::UnavailableError(absl::StrCat("cannot connect to ", options.target,
                                                 " within ", absl::FormatDuration(connect_timeout),
                                                 ": is nvlschedd running there?"));
    }
  }

  RunBudget budget;
  budget.max_calls = options.max_calls;
  // Single names must not collide with a previous run's leftovers: the start time tells runs
  // apart.
  const int64_t run_nonce = absl::ToUnixMillis(absl::Now());
  std::vector<std::unique_ptr<ClientThread>> clients;
  for (int i = 0; i < threads; ++i) {
    const int hold = ShareOf(options.hold, threads, i);
    clients.push_back(std::make_unique<ClientThread>(
        options, &budget, channels[i], ShareOf(options.concurrency, threads, i), hold, hold,
        options.seed * 1000003 + static_cast<uint64_t>(i),
        absl::StrCat("nvlsched-load-", run_nonce, "-t", i, "-"), i, threads));
  }
  std::unique_ptr<WatcherPool> watchers;
  if (options.workload != Workload::kNoop && options.watchers > 0) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    watchers = std::make_unique<WatcherPool>(
        grpc::CreateCustomChannel(options.target, grpc::InsecureChannelCredentials(), args),
        options.watchers, options.watch_org, options.token);
    if (absl::Status s = watchers->Start(); !s.ok()) return s;
  }
  std::unique_ptr<ReaderPool> readers;
  if (options.readers > 0) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    readers = std::make_unique<ReaderPool>(
        grpc::CreateCustomChannel(options.target, grpc::InsecureChannelCredentials(), args),
        options.readers, options.org, options.read_page_size, options.call_timeout,
        options.token);
    if (absl::Status s = readers->Start(); !s.ok()) return s;
  }
  budget.start = LoadClock::now();
  budget.end = budget.start + absl::ToChronoNanoseconds(options.duration);

  std::vector<std::thread> running;
  running.reserve(clients.size());
  for (const std::unique_ptr<ClientThread>& client : clients) {
    running.emplace_back([c = client.get()] { c->Run(); });
  }
  for (std::thread& thread : running) thread.join();
  // The readers read while the workload ran, cleanup deletes included.
  if (readers != nullptr) readers->Stop();

  LoadResult result;
  result.workload = options.workload;
  for (const std::unique_ptr<ClientThread>& client : clients) result.Merge(client->result());
  if (watchers != nullptr) {
    watchers->Stop();
    result.watchers = options.watchers;
    result.watch_events = watchers->events();
    result.watchers_ended_early = watchers->ended_early();
  }
  if (readers != nullptr) result.reads = readers->stats();
  return result;
}

}  // namespace nvlsched::load
