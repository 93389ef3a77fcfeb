#include "bench/load/reader_pool.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"

namespace nvlsched::load {

using ReadClock = std::chrono::steady_clock;

// One reader: its call in flight and the messages it reuses. The response reader lives in the
// call's arena, which the context owns: it is dropped before the context.
struct ReaderPool::Reader {
  v1::ListInstancesRequest request;
  v1::ListInstancesResponse response;
  grpc::Status status;
  ReadClock::time_point sent;
  std::optional<grpc::ClientContext> context;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::ListInstancesResponse>> call;

  void ReleaseCall() {
    call.reset();
    context.reset();
  }
  ~Reader() { ReleaseCall(); }
};

ReaderPool::ReaderPool(std::shared_ptr<grpc::Channel> channel, int readers, std::string org,
                       int page_size, absl::Duration call_timeout, std::string token)
    : channel_(std::move(channel)),
      count_(readers),
      org_(std::move(org)),
      page_size_(page_size),
      call_timeout_(call_timeout),
      token_(std::move(token)),
      stub_(v1::InstanceService::NewStub(channel_)) {
  stats_.readers = readers;
}

ReaderPool::~ReaderPool() { Stop(); }

absl::Status ReaderPool::Start() {
  started_ = true;
  start_ = ReadClock::now();
  for (int i = 0; i < count_; ++i) {
    auto reader = std::make_unique<Reader>();
    reader->request.set_org(org_);
    reader->request.set_page_size(page_size_);
    readers_.push_back(std::move(reader));
  }
  // The thread starts only after the first calls are sent, so in_flight_ needs no lock.
  for (const std::unique_ptr<Reader>& reader : readers_) Send(reader.get());
  thread_ = std::thread([this] { Drain(); });
  return absl::OkStatus();
}

void ReaderPool::Send(Reader* reader) {
  reader->ReleaseCall();
  reader->response.Clear();
  reader->context.emplace();
  // gRPC deadlines are wall-clock time points; latency is measured on the steady clock.
  reader->context->set_deadline(std::chrono::system_clock::now() +
                                absl::ToChronoNanoseconds(call_timeout_));
  if (!token_.empty()) {
    reader->context->AddMetadata("authorization", absl::StrCat("Bearer ", token_));
  }
  reader->sent = ReadClock::now();
  reader->call = stub_->PrepareAsyncListInstances(&*reader->context, reader->request, &cq_);
  reader->call->StartCall();
  reader->call->Finish(&reader->response, &reader->status, reader);
  ++in_flight_;
}

void ReaderPool::Complete(Reader* reader) {
  const ReadClock::time_point now = ReadClock::now();
  --in_flight_;
  OpStats& calls = stats_.calls;
  calls.latency_ns.Record(std::chrono::nanoseconds(now - reader->sent).count());
  const int code = static_cast<int>(reader->status.error_code());
  ++calls.codes[code >= 0 && code < kStatusCodeCount ? code : 2 /* UNKNOWN */];
  stats_.elapsed = absl::FromChrono(now - start_);
  // The next page, or the first one again after the last page or a failure.
  std::string next_token;
  if (reader->status.ok()) {
    stats_.instances_read += reader->response.instances_size();
    next_token = reader->response.next_page_token();
    if (next_token.empty()) ++stats_.passes;
  }
  reader->request.set_page_token(std::move(next_token));
}

void ReaderPool::Drain() {
  void* tag = nullptr;
  bool ok = false;
  while (cq_.Next(&tag, &ok)) {
    auto* reader = static_cast<Reader*>(tag);
    Complete(reader);
    if (!stopping_.load(std::memory_order_relaxed)) {
      Send(reader);
    } else if (in_flight_ == 0) {
      // Nothing in flight and nothing more to send: let cq_.Next() return false.
      cq_.Shutdown();
    }
  }
}

void ReaderPool::Stop() {
  if (!started_ || stopped_) return;
  stopped_ = true;
  stopping_.store(true, std::memory_order_relaxed);
  if (count_ == 0) cq_.Shutdown();
  if (thread_.joinable()) thread_.join();
}

}  // namespace nvlsched::load
