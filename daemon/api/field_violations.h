// FieldViolations: collects what is wrong with a request, field by field, and turns it into
// one INVALID_ARGUMENT absl::Status that carries a google.rpc.BadRequest payload (one
// FieldViolation per bad field, in the order the fields were first found bad).
//
// Field paths use the proto/JSON style of google.rpc.BadRequest: `count`,
// `interfaces[1].ip_address`, `labels["k"]` (see FieldPath below).
//
// Thread-safety: a FieldViolations is a local value of one validation call; not shared.
#ifndef NVLSCHED_DAEMON_API_FIELD_VIOLATIONS_H_
#define NVLSCHED_DAEMON_API_FIELD_VIOLATIONS_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace nvlsched::daemon {

// The absl::Status payload type URL under which validation attaches google.rpc.BadRequest
// (the serialized message in an absl::Cord). ToGrpcStatus copies it into the gRPC details.
inline constexpr absl::string_view kBadRequestTypeUrl = "type.googleapis.com/google.rpc.BadRequest";

// Builders for field paths: Child("interfaces[1]", "ip_address") == "interfaces[1].ip_address",
// Index("interfaces", 1) == "interfaces[1]", MapKey("labels", "k") == "labels[\"k\"]" (the key
// C-escaped, so a key with quotes or control characters still yields one unambiguous path; a
// key longer than kMaxMapKeyInPath bytes is cut there and marked "...", so that the path stays
// small enough to travel back in the status).
inline constexpr size_t kMaxMapKeyInPath = 64;
std::string Child(absl::string_view parent, absl::string_view field);
std::string Index(absl::string_view repeated_field, int index);
std::string MapKey(absl::string_view map_field, absl::string_view key);

class FieldViolations {
 public:
  // Records that `field` is bad. `description` is a whole sentence that names the field, says
  // what was wrong and what would be right ("count must be between 2 and 18, got 20"). A
  // second problem with the same field is appended to its description ("...; ..."), so the
  // BadRequest keeps one violation per field.
  void Add(absl::string_view field, std::string description);

  bool empty() const { return violations_.empty(); }
  size_t size() const { return violations_.size(); }
  // True when `field` already has a violation (used to skip checks that would only repeat it).
  bool Has(absl::string_view field) const;

  // OK when nothing was added. Otherwise INVALID_ARGUMENT whose message is
  // "invalid <what>: <description>; <description>..." (every violation, so a log line or a
  // grpcurl user sees all of them) with the BadRequest payload attached.
  absl::Status ToStatus(absl::string_view what) const;

 private:
  std::vector<std::pair<std::string, std::string>> violations_;  // (field, description)
};

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_API_FIELD_VIOLATIONS_H_
