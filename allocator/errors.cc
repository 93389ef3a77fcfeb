#include "allocator/errors.h"

#include <utility>
#include <vector>

#include <cstring>
#include <string>

#include "absl/strings/cord.h"
#include "allocator/string_view_compat.h"

namespace nvlsched::allocator {
namespace {

// Payloads are typed binary records, not text: each integer as its 8 bytes, each string as a
// 4-byte length and its bytes, in a fixed order per payload. A payload never leaves the
// process (the daemon maps it to google.rpc details), so host byte order is fine; a payload
// of the wrong size or shape reads as none.
class PayloadWriter {
 public:
  PayloadWriter& Int(int64_t v) {
    out_.append(reinterpret_cast<const char*>(&v), sizeof(v));
    return *this;
  }
  PayloadWriter& Str(std::string_view v) {
    const uint32_t n = static_cast<uint32_t>(v.size());
    out_.append(reinterpret_cast<const char*>(&n), sizeof(n));
    out_.append(v.data(), v.size());
    return *this;
  }
  absl::Cord Done() { return absl::Cord(std::move(out_)); }

 private:
  std::string out_;
};

class PayloadReader {
 public:
  explicit PayloadReader(std::string in) : in_(std::move(in)) {}
  bool Int(int64_t* v) {
    if (in_.size() - pos_ < sizeof(*v)) return false;
    std::memcpy(v, in_.data() + pos_, sizeof(*v));
    pos_ += sizeof(*v);
    return true;
  }
  bool Str(std::string* v) {
    uint32_t n = 0;
    if (in_.size() - pos_ < sizeof(n)) return false;
    std::memcpy(&n, in_.data() + pos_, sizeof(n));
    pos_ += sizeof(n);
    if (in_.size() - pos_ < n) return false;
    v->assign(in_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  bool AtEnd() const { return pos_ == in_.size(); }

 private:
  std::string in_;
  size_t pos_ = 0;
};

std::optional<PayloadReader> ReadPayload(const absl::Status& status, std::string_view url) {
  if (status.code() != absl::StatusCode::kResourceExhausted) return std::nullopt;
  absl::optional<absl::Cord> payload = status.GetPayload(AbslView(url));
  if (!payload.has_value()) return std::nullopt;
  return PayloadReader(std::string(*payload));
}

}  // namespace

std::string_view CapacityUnitName(CapacityUnit unit) {
  return unit == CapacityUnit::kGpus ? "gpus" : "machines";
}

absl::Status CapacityExhaustedError(std::string_view message, const CapacityShortfall& details) {
  absl::Status status = absl::ResourceExhaustedError(AbslView(message));
  status.SetPayload(AbslView(kCapacityPayloadUrl),
                    PayloadWriter()
                        .Str(details.instance_type_id)
                        .Int(static_cast<int64_t>(details.unit))
                        .Int(details.requested)
                        .Int(details.largest_domain_free)
                        .Int(details.total_free)
                        .Done());
  return status;
}

absl::Status QuotaExceededError(std::string_view message, const QuotaViolation& details) {
  absl::Status status = absl::ResourceExhaustedError(AbslView(message));
  status.SetPayload(AbslView(kQuotaPayloadUrl), PayloadWriter()
                                                    .Str(details.tenant_id)
                                                    .Str(details.instance_type_id)
                                                    .Int(details.max_machines)
                                                    .Int(details.limit_gpus)
                                                    .Int(details.in_use_gpus)
                                                    .Int(details.requested_gpus)
                                                    .Done());
  return status;
}

std::optional<CapacityShortfall> GetCapacityShortfall(const absl::Status& status) {
  std::optional<PayloadReader> in = ReadPayload(status, kCapacityPayloadUrl);
  if (!in.has_value()) return std::nullopt;
  CapacityShortfall out;
  int64_t unit = -1;
  if (!in->Str(&out.instance_type_id) || !in->Int(&unit) || !in->Int(&out.requested) ||
      !in->Int(&out.largest_domain_free) || !in->Int(&out.total_free) || !in->AtEnd()) {
    return std::nullopt;
  }
  if (unit == static_cast<int64_t>(CapacityUnit::kGpus)) {
    out.unit = CapacityUnit::kGpus;
  } else if (unit == static_cast<int64_t>(CapacityUnit::kMachines)) {
    out.unit = CapacityUnit::kMachines;
  } else {
    return std::nullopt;
  }
  return out;
}

std::optional<QuotaViolation> GetQuotaViolation(const absl::Status& status) {
  std::optional<PayloadReader> in = ReadPayload(status, kQuotaPayloadUrl);
  if (!in.has_value()) return std::nullopt;
  QuotaViolation out;
  if (!in->Str(&out.tenant_id) || !in->Str(&out.instance_type_id) ||
      !in->Int(&out.max_machines) || !in->Int(&out.limit_gpus) || !in->Int(&out.in_use_gpus) ||
      !in->Int(&out.requested_gpus) || !in->AtEnd()) {
    return std::nullopt;
  }
  return out;
}

}  // namespace nvlsched::allocator
