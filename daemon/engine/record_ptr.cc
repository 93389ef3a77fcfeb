#include "daemon/engine/record_ptr.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/base/call_once.h"

namespace nvlsched::daemon {

class RecordPtr::BuiltRecord final : public Stored {
 public:
  explicit BuiltRecord(v1::Instance instance) : instance_(std::move(instance)) {}
  const v1::Instance& Get() const override { return instance_; }
  bool parsed() const override { return true; }

 private:
  const v1::Instance instance_;
};

class RecordPtr::LoadedRecord final : public Stored {
 public:
  explicit LoadedRecord(std::string bytes) : bytes_(std::move(bytes)) {}
  const v1::Instance& Get() const override {
    absl::call_once(once_, &LoadedRecord::Parse, this);
    return *instance_;
  }
  bool parsed() const override { return parsed_.load(std::memory_order_acquire); }

 private:
  // Under once_: builds the message and frees the bytes.
  void Parse() const {
    auto instance = std::make_unique<v1::Instance>();
    if (!instance->ParseFromString(bytes_)) {
      // LoadState parsed these very bytes: only an allocation failure gets here.
      std::fprintf(stderr,
                   "nvlschedd: a stored instance record (%zu bytes) parsed at start-up no longer "
                   "parses; aborting\n",
                   bytes_.size());
      std::abort();
    }
    instance_ = std::move(instance);
    std::string().swap(bytes_);
    parsed_.store(true, std::memory_order_release);
  }

  mutable absl::once_flag once_;
  mutable std::atomic<bool> parsed_{false};
  mutable std::string bytes_;
  mutable std::unique_ptr<const v1::Instance> instance_;
};

RecordPtr::RecordPtr(v1::Instance instance)
    : stored_(std::make_shared<const BuiltRecord>(std::move(instance))) {}

RecordPtr RecordPtr::FromCheckedBytes(std::string bytes) {
  RecordPtr record;
  record.stored_ = std::make_shared<const LoadedRecord>(std::move(bytes));
  return record;
}

}  // namespace nvlsched::daemon
