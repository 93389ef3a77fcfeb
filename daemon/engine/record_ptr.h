// RecordPtr: one instance record as State keeps it and the read view shares it (state.h,
// instance_view.h). Immutable once made; a change makes a new one (State::PutInstance).
//
// A record an op builds holds its v1::Instance. A record loaded at start-up first holds only
// its stored bytes — already parsed once by LoadState, which checked them and took what the
// rebuild needs — and is parsed again on its first use, or earlier by State's warmer. At
// start-up that keeps a record's ~55 allocations (its strings, sub-messages and timestamps,
// about 4 KB resident against 1.1 KB stored) off the path to serving: the daemon answers
// while its records are still being built.
//
// Thread-safety: thread-safe. The first use parses under absl::call_once; every use after it
// reads an immutable message.
#ifndef NVLSCHED_DAEMON_ENGINE_RECORD_PTR_H_
#define NVLSCHED_DAEMON_ENGINE_RECORD_PTR_H_

#include <cstddef>
#include <memory>
#include <string>
#include <utility>

#include "nvlsched/v1/resources.pb.h"

namespace nvlsched::daemon {

class RecordPtr {
 public:
  RecordPtr() = default;
  RecordPtr(std::nullptr_t) {}  // NOLINT: as a shared_ptr
  // A record built by an op.
  explicit RecordPtr(v1::Instance instance);
  // A stored record. REQUIRES: `bytes` parse as a v1::Instance (LoadState parsed them once);
  // a later parse that fails anyway (out of memory) aborts the daemon, naming the record.
  static RecordPtr FromCheckedBytes(std::string bytes);

  const v1::Instance& operator*() const { return stored_->Get(); }
  const v1::Instance* operator->() const { return &stored_->Get(); }
  explicit operator bool() const { return stored_ != nullptr; }
  friend bool operator==(const RecordPtr& a, std::nullptr_t) { return a.stored_ == nullptr; }
  friend bool operator!=(const RecordPtr& a, std::nullptr_t) { return a.stored_ != nullptr; }

  // Whether the record is a message now (built, or parsed since it was loaded).
  bool parsed() const { return stored_->parsed(); }

 private:
  // A built record (BuiltRecord) or a loaded one (LoadedRecord, record_ptr.cc): one allocation
  // each; a loaded one holds only its bytes until it is parsed.
  class Stored {
   public:
    virtual ~Stored() = default;
    virtual const v1::Instance& Get() const = 0;
    virtual bool parsed() const = 0;
  };
  class BuiltRecord;
  class LoadedRecord;

  std::shared_ptr<const Stored> stored_;
};

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_ENGINE_RECORD_PTR_H_
