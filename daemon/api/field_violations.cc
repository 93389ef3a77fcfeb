#include "daemon/api/field_violations.h"

#include "absl/strings/cord.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "google/rpc/error_details.pb.h"

namespace nvlsched::daemon {

std::string Child(absl::string_view parent, absl::string_view field) {
  if (parent.empty()) return std::string(field);
  return absl::StrCat(parent, ".", field);
}

std::string Index(absl::string_view repeated_field, int index) {
  return absl::StrCat(repeated_field, "[", index, "]");
}

std::string MapKey(absl::string_view map_field, absl::string_view key) {
  // A path goes back to the client in the status's trailers: a key of any length (a 1 MiB
  // label key) would make the answer larger than a client accepts (gRPC's default 8 KiB of
  // metadata), and the client would see RESOURCE_EXHAUSTED instead of the violation.
  if (key.size() > kMaxMapKeyInPath) {
    return absl::StrCat(map_field, "[\"", absl::CEscape(key.substr(0, kMaxMapKeyInPath)),
                        "...\"]");
  }
  return absl::StrCat(map_field, "[\"", absl::CEscape(key), "\"]");
}

void FieldViolations::Add(absl::string_view field, std::string description) {
  for (auto& [existing_field, existing_description] : violations_) {
    if (existing_field == field) {
      absl::StrAppend(&existing_description, "; ", description);
      return;
    }
  }
  violations_.emplace_back(std::string(field), std::move(description));
}

bool FieldViolations::Has(absl::string_view field) const {
  for (const auto& violation : violations_) {
    if (violation.first == field) return true;
  }
  return false;
}

absl::Status FieldViolations::ToStatus(absl::string_view what) const {
  if (violations_.empty()) return absl::OkStatus();
  google::rpc::BadRequest bad_request;
  std::string message = absl::StrCat("invalid ", what, ": ");
  for (size_t i = 0; i < violations_.size(); ++i) {
    google::rpc::BadRequest::FieldViolation* violation = bad_request.add_field_violations();
    violation->set_field(violations_[i].first);
    violation->set_description(violations_[i].second);
    absl::StrAppend(&message, i == 0 ? "" : "; ", violations_[i].second);
  }
  absl::Status status = absl::InvalidArgumentError(message);
  status.SetPayload(kBadRequestTypeUrl, absl::Cord(bad_request.SerializeAsString()));
  return status;
}

}  // namespace nvlsched::daemon
