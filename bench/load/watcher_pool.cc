#include "bench/load/watcher_pool.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace nvlsched::load {

struct WatcherPool::Stream {
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientAsyncReader<v1::Event>> reader;
  v1::Event event;
  grpc::Status status;
  std::atomic<bool> finishing{false};
};

WatcherPool::WatcherPool(std::shared_ptr<grpc::Channel> channel, int watchers, std::string org,
                         std::string token)
    : channel_(std::move(channel)),
      count_(watchers),
      org_(std::move(org)),
      token_(std::move(token)),
      stub_(v1::EventService::NewStub(channel_)) {}

WatcherPool::~WatcherPool() { Stop(); }

absl::Status WatcherPool::Start() {
  started_ = true;
  v1::WatchEventsRequest req;
  req.set_org(org_);
  req.set_from_now(true);  // the run's events only, not the retained backlog
  for (int i = 0; i < count_; ++i) {
    auto stream = std::make_unique<Stream>();
    if (!token_.empty()) stream->ctx.AddMetadata("authorization", absl::StrCat("Bearer ", token_));
    stream->reader = stub_->PrepareAsyncWatchEvents(&stream->ctx, req, &cq_);
    stream->reader->StartCall(stream.get());
    streams_.push_back(std::move(stream));
  }
  thread_ = std::thread([this] { Drain(); });
  return absl::OkStatus();
}

void WatcherPool::Drain() {
  void* tag = nullptr;
  bool ok = false;
  while (cq_.Next(&tag, &ok)) {
    auto* stream = static_cast<Stream*>(tag);
    if (stream->finishing) continue;  // Finish completed
    if (!ok) {
      stream->finishing = true;
      if (!stopping_.load()) ended_early_.fetch_add(1, std::memory_order_relaxed);
      stream->reader->Finish(&stream->status, stream);
      continue;
    }
    // Start or a Read completed: count what was read (StartCall's completion carries none).
    if (stream->event.sequence() != 0) {
      events_.fetch_add(1, std::memory_order_relaxed);
      stream->event.Clear();
    }
    stream->reader->Read(&stream->event, stream);
  }
}

void WatcherPool::Stop() {
  if (!started_ || stopping_.exchange(true)) return;
  for (const std::unique_ptr<Stream>& stream : streams_) stream->ctx.TryCancel();
  // Every stream's Finish completes after its cancellation; then nothing more is queued.
  // Shutdown only once all have finished, so no new operation is started on a dead queue.
  while (true) {
    bool all_finished = true;
    for (const std::unique_ptr<Stream>& stream : streams_) all_finished &= stream->finishing;
    if (all_finished) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  cq_.Shutdown();
  if (thread_.joinable()) thread_.join();
}

}  // namespace nvlsched::load
