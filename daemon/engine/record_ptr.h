// RecordPtr: one instance record as State keeps it and the read view shares it (state.h,
// instance_view.h). Immutable once made; a change makes a new one (State::PutInstance).
//
// A record an op builds holds its v1::Instance. A record loaded at start-up holds its stored
// bytes — already parsed once by LoadState, which checked them and took what the rebuild needs
// — plus the few fields ListInstances filters every record on (tenant, batch, labels). Its
// message is built on first use (operator->, operator*) and kept. A parsed message is about
// 4 KB resident (a 500k-instance daemon held 2.0 GiB) and, counted from its fields, ~55
// allocations (strings, sub-messages, timestamps), against 1.1 KB stored: loading only the
// bytes took a 500k-instance start-up from 4.2-5.8 s to 2.9-3.5 s (README, Figures), and
// records nobody reads stay small. ListInstances answers with records in their wire form
// (AppendAsField): a loaded record's stored bytes as they are, a built one serialized straight
// into the answer, neither copied into a message first.
//
// Thread-safety: thread-safe. The first use parses under std::call_once; everything else reads
// immutable data (a loaded record's bytes are never freed).
#ifndef NVLSCHED_DAEMON_ENGINE_RECORD_PTR_H_
#define NVLSCHED_DAEMON_ENGINE_RECORD_PTR_H_

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "nvlsched/v1/resources.pb.h"

namespace nvlsched::daemon {

class RecordPtr {
 public:
  RecordPtr() = default;
  RecordPtr(std::nullptr_t) {}  // NOLINT: as a shared_ptr
  // A record built by an op.
  explicit RecordPtr(v1::Instance instance);
  // A stored record. REQUIRES: `parsed` is what `bytes` parse as (LoadState parsed them once,
  // into a message of its own it reuses); a later parse that fails anyway (out of memory)
  // aborts the daemon.
  static RecordPtr FromCheckedBytes(std::string bytes, const v1::Instance& parsed);

  // The message (a loaded record is parsed now if it was not yet).
  const v1::Instance& operator*() const { return stored_->Get(); }
  const v1::Instance* operator->() const { return &stored_->Get(); }
  explicit operator bool() const { return stored_ != nullptr; }
  friend bool operator==(const RecordPtr& a, std::nullptr_t) { return a.stored_ == nullptr; }
  friend bool operator!=(const RecordPtr& a, std::nullptr_t) { return a.stored_ != nullptr; }

  // What ListInstances filters on, without parsing.
  absl::string_view tenant_id() const { return stored_->tenant_id(); }
  absl::string_view batch_id() const { return stored_->batch_id(); }
  bool HasLabel(absl::string_view key, absl::string_view value) const {
    return stored_->HasLabel(key, value);
  }
  // *out = the record; a loaded record not parsed yet is parsed into *out and stays unparsed.
  void CopyTo(v1::Instance* out) const { stored_->CopyTo(out); }
  // Appends the record to the serialized message *out as its length-delimited field `number`
  // (an Instance field of that message): its key, its length, its serialized bytes. A loaded
  // record appends its stored bytes, parsed or not; a built one is serialized into *out.
  void AppendAsField(int number, std::string* out) const { stored_->AppendAsField(number, out); }

  // Whether the record is a message now (built, or parsed since it was loaded).
  bool parsed() const { return stored_->parsed(); }

 private:
  // A built record (BuiltRecord: one allocation, its message inside) or a loaded one
  // (LoadedRecord: one allocation, plus its bytes and its packed list fields), record_ptr.cc.
  class Stored {
   public:
    virtual ~Stored() = default;
    virtual const v1::Instance& Get() const = 0;
    virtual absl::string_view tenant_id() const = 0;
    virtual absl::string_view batch_id() const = 0;
    virtual bool HasLabel(absl::string_view key, absl::string_view value) const = 0;
    virtual void CopyTo(v1::Instance* out) const = 0;
    virtual void AppendAsField(int number, std::string* out) const = 0;
    virtual bool parsed() const = 0;
  };
  class BuiltRecord;
  class LoadedRecord;

  std::shared_ptr<const Stored> stored_;
};

// Appends a copy of each record to `out`, in order: the instances of an answer.
void AppendCopies(const std::vector<RecordPtr>& records,
                  google::protobuf::RepeatedPtrField<v1::Instance>* out);

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_ENGINE_RECORD_PTR_H_
