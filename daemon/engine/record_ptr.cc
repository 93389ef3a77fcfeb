#include "daemon/engine/record_ptr.h"

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <utility>

#include "daemon/engine/wire_format.h"

namespace nvlsched::daemon {
namespace {

[[noreturn]] void CheckedBytesDoNotParse(size_t size) {
  // LoadState parsed these very bytes: only an allocation failure gets here.
  std::fprintf(stderr,
               "nvlschedd: a stored instance record (%zu bytes) parsed at start-up no longer "
               "parses; aborting\n",
               size);
  std::abort();
}

// ListInstances' fields of a loaded record, packed into one allocation: the tenant, the batch,
// then each label's key and value, each as a 4-byte length and its bytes.
class ListFields {
 public:
  explicit ListFields(const v1::Instance& record) {
    size_t size = 2 * kLength + record.tenant_id().size() + record.batch_id().size();
    for (const auto& [k, v] : record.labels()) size += 2 * kLength + k.size() + v.size();
    packed_.reserve(size);
    Append(record.tenant_id());
    Append(record.batch_id());
    for (const auto& [k, v] : record.labels()) {
      Append(k);
      Append(v);
    }
  }
  absl::string_view tenant_id() const {
    size_t pos = 0;
    return Next(pos);
  }
  absl::string_view batch_id() const {
    size_t pos = 0;
    Next(pos);
    return Next(pos);
  }
  bool HasLabel(absl::string_view key, absl::string_view value) const {
    size_t pos = 0;
    Next(pos);
    Next(pos);
    while (pos < packed_.size()) {
      const absl::string_view k = Next(pos);
      const absl::string_view v = Next(pos);
      if (k == key) return v == value;
    }
    return false;
  }

 private:
  static constexpr size_t kLength = sizeof(uint32_t);
  void Append(absl::string_view s) {
    const uint32_t n = static_cast<uint32_t>(s.size());  // a record is far below 4 GiB
    packed_.append(reinterpret_cast<const char*>(&n), kLength);
    packed_.append(s.data(), s.size());
  }
  absl::string_view Next(size_t& pos) const {
    uint32_t n;
    std::memcpy(&n, packed_.data() + pos, kLength);
    const absl::string_view field(packed_.data() + pos + kLength, n);
    pos += kLength + n;
    return field;
  }

  std::string packed_;
};

}  // namespace

class RecordPtr::BuiltRecord final : public Stored {
 public:
  explicit BuiltRecord(v1::Instance instance) : instance_(std::move(instance)) {}
  const v1::Instance& Get() const override { return instance_; }
  absl::string_view tenant_id() const override { return instance_.tenant_id(); }
  absl::string_view batch_id() const override { return instance_.batch_id(); }
  bool HasLabel(absl::string_view key, absl::string_view value) const override {
    auto it = instance_.labels().find(std::string(key));
    return it != instance_.labels().end() && it->second == value;
  }
  void CopyTo(v1::Instance* out) const override { *out = instance_; }
  void AppendAsField(int number, std::string* out) const override {
    // Readers on several threads may size and serialize the same record at once: protobuf
    // keeps the cached sizes in relaxed atomics, and each writes the same values.
    const size_t size = instance_.ByteSizeLong();
    AppendLengthDelimitedKey(number, size, out);
    const size_t at = out->size();
    out->resize(at + size);
    instance_.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(out->data() + at));
  }
  bool parsed() const override { return true; }

 private:
  const v1::Instance instance_;
};

class RecordPtr::LoadedRecord final : public Stored {
 public:
  LoadedRecord(std::string bytes, const v1::Instance& parsed)
      : bytes_(std::move(bytes)), list_fields_(parsed) {}
  const v1::Instance& Get() const override {
    // std::call_once (pthread_once), not absl::call_once: Debian's Abseil is uninstrumented,
    // so ThreadSanitizer cannot see absl's wait for another thread's parse (store/sync.h).
    if (!parsed_.load(std::memory_order_acquire)) std::call_once(once_, &LoadedRecord::Parse, this);
    return *instance_;
  }
  absl::string_view tenant_id() const override { return list_fields_.tenant_id(); }
  absl::string_view batch_id() const override { return list_fields_.batch_id(); }
  bool HasLabel(absl::string_view key, absl::string_view value) const override {
    return list_fields_.HasLabel(key, value);
  }
  void CopyTo(v1::Instance* out) const override {
    if (parsed()) {
      *out = *instance_;
    } else if (!out->ParseFromString(bytes_)) {
      CheckedBytesDoNotParse(bytes_.size());
    }
  }
  void AppendAsField(int number, std::string* out) const override {
    AppendLengthDelimitedField(number, bytes_, out);
  }
  bool parsed() const override { return parsed_.load(std::memory_order_acquire); }

 private:
  void Parse() const {  // once, under once_
    auto instance = std::make_unique<v1::Instance>();
    if (!instance->ParseFromString(bytes_)) CheckedBytesDoNotParse(bytes_.size());
    instance_ = std::move(instance);
    parsed_.store(true, std::memory_order_release);
  }

  mutable std::once_flag once_;
  mutable std::atomic<bool> parsed_{false};
  mutable std::unique_ptr<const v1::Instance> instance_;  // set once, under once_
  const std::string bytes_;
  const ListFields list_fields_;
};

RecordPtr::RecordPtr(v1::Instance instance)
    : stored_(std::make_shared<const BuiltRecord>(std::move(instance))) {}

RecordPtr RecordPtr::FromCheckedBytes(std::string bytes, const v1::Instance& parsed) {
  RecordPtr record;
  record.stored_ = std::make_shared<const LoadedRecord>(std::move(bytes), parsed);
  return record;
}

void AppendCopies(const std::vector<RecordPtr>& records,
                  google::protobuf::RepeatedPtrField<v1::Instance>* out) {
  out->Reserve(out->size() + static_cast<int>(records.size()));
  for (const RecordPtr& record : records) record.CopyTo(out->Add());
}

}  // namespace nvlsched::daemon
