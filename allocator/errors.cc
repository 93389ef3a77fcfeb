#include "allocator/errors.h"

#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/cord.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "allocator/string_view_compat.h"

namespace nvlsched::allocator {
namespace {

// Payloads are "key=value" lines with C-escaped values: readable in a debugger, no
// protobuf dependency (the allocator must stay pure), and robust to any id characters.
using Fields = absl::flat_hash_map<std::string, std::string>;

void AppendField(std::string& out, absl::string_view key, absl::string_view value) {
  absl::StrAppend(&out, key, "=", absl::CEscape(value), "\n");
}
void AppendField(std::string& out, absl::string_view key, int64_t value) {
  absl::StrAppend(&out, key, "=", value, "\n");
}

std::optional<Fields> ParseFields(const absl::Status& status, std::string_view url) {
  if (status.code() != absl::StatusCode::kResourceExhausted) return std::nullopt;
  absl::optional<absl::Cord> payload = status.GetPayload(AbslView(url));
  if (!payload.has_value()) return std::nullopt;
  Fields fields;
  std::string text(*payload);
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(line, absl::MaxSplits('=', 1));
    std::string value;
    if (!absl::CUnescape(kv.second, &value)) return std::nullopt;
    fields[std::string(kv.first)] = std::move(value);
  }
  return fields;
}

bool ReadInt(const Fields& fields, absl::string_view key, int64_t* out) {
  auto it = fields.find(key);
  return it != fields.end() && absl::SimpleAtoi(it->second, out);
}
bool ReadString(const Fields& fields, absl::string_view key, std::string* out) {
  auto it = fields.find(key);
  if (it == fields.end()) return false;
  *out = it->second;
  return true;
}

}  // namespace

std::string_view CapacityUnitName(CapacityUnit unit) {
  return unit == CapacityUnit::kGpus ? "gpus" : "machines";
}

absl::Status CapacityExhaustedError(std::string_view message, const CapacityShortfall& details) {
  absl::Status status = absl::ResourceExhaustedError(AbslView(message));
  std::string payload;
  AppendField(payload, "instance_type_id", details.instance_type_id);
  AppendField(payload, "unit", AbslView(CapacityUnitName(details.unit)));
  AppendField(payload, "requested", details.requested);
  AppendField(payload, "largest_domain_free", details.largest_domain_free);
  AppendField(payload, "total_free", details.total_free);
  status.SetPayload(AbslView(kCapacityPayloadUrl), absl::Cord(payload));
  return status;
}

absl::Status QuotaExceededError(std::string_view message, const QuotaViolation& details) {
  absl::Status status = absl::ResourceExhaustedError(AbslView(message));
  std::string payload;
  AppendField(payload, "tenant_id", details.tenant_id);
  AppendField(payload, "instance_type_id", details.instance_type_id);
  AppendField(payload, "max_machines", details.max_machines);
  AppendField(payload, "limit_gpus", details.limit_gpus);
  AppendField(payload, "in_use_gpus", details.in_use_gpus);
  AppendField(payload, "requested_gpus", details.requested_gpus);
  status.SetPayload(AbslView(kQuotaPayloadUrl), absl::Cord(payload));
  return status;
}

std::optional<CapacityShortfall> GetCapacityShortfall(const absl::Status& status) {
  std::optional<Fields> fields = ParseFields(status, kCapacityPayloadUrl);
  if (!fields.has_value()) return std::nullopt;
  CapacityShortfall out;
  std::string unit;
  if (!ReadString(*fields, "instance_type_id", &out.instance_type_id) ||
      !ReadString(*fields, "unit", &unit) || !ReadInt(*fields, "requested", &out.requested) ||
      !ReadInt(*fields, "largest_domain_free", &out.largest_domain_free) ||
      !ReadInt(*fields, "total_free", &out.total_free)) {
    return std::nullopt;
  }
  if (unit == CapacityUnitName(CapacityUnit::kGpus)) {
    out.unit = CapacityUnit::kGpus;
  } else if (unit == CapacityUnitName(CapacityUnit::kMachines)) {
    out.unit = CapacityUnit::kMachines;
  } else {
    return std::nullopt;
  }
  return out;
}

std::optional<QuotaViolation> GetQuotaViolation(const absl::Status& status) {
  std::optional<Fields> fields = ParseFields(status, kQuotaPayloadUrl);
  if (!fields.has_value()) return std::nullopt;
  QuotaViolation out;
  if (!ReadString(*fields, "tenant_id", &out.tenant_id) ||
      !ReadString(*fields, "instance_type_id", &out.instance_type_id) ||
      !ReadInt(*fields, "max_machines", &out.max_machines) ||
      !ReadInt(*fields, "limit_gpus", &out.limit_gpus) ||
      !ReadInt(*fields, "in_use_gpus", &out.in_use_gpus) ||
      !ReadInt(*fields, "requested_gpus", &out.requested_gpus)) {
    return std::nullopt;
  }
  return out;
}

}  // namespace nvlsched::allocator
