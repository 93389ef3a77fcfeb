#include "daemon/engine/record_ptr.h"

#include <cstdio>
#include <cstdlib>
#include <utility>

namespace nvlsched::daemon {

RecordPtr::RecordPtr(v1::Instance instance)
    : stored_(std::make_shared<const Stored>(std::move(instance))) {}

RecordPtr RecordPtr::FromCheckedBytes(std::string bytes) {
  RecordPtr record;
  record.stored_ = std::make_shared<const Stored>(std::move(bytes));
  return record;
}

RecordPtr::Stored::Stored(v1::Instance instance) : instance_(std::move(instance)) {
  absl::call_once(once_, [] {});  // nothing left to parse
  parsed_.store(true, std::memory_order_relaxed);
}

bool RecordPtr::Stored::parsed() const { return parsed_.load(std::memory_order_acquire); }

void RecordPtr::Stored::Parse() const {
  // Only records made from bytes get here (a built record's once_flag is spent).
  if (!instance_.ParseFromString(bytes_)) {
    // LoadState parsed these very bytes: only an allocation failure gets here.
    std::fprintf(stderr, "nvlschedd: a stored instance record (%zu bytes) parsed at start-up "
                         "no longer parses; aborting\n", bytes_.size());
    std::abort();
  }
  std::string().swap(bytes_);
  parsed_.store(true, std::memory_order_release);
}

}  // namespace nvlsched::daemon
