#include "daemon/api/page_tokens.h"

#include "absl/strings/escaping.h"

namespace nvlsched::daemon {

std::string EncodePageToken(absl::string_view last_id) {
  return absl::WebSafeBase64Escape(last_id);
}

std::optional<std::string> DecodePageToken(absl::string_view token) {
  std::string id;
  if (!absl::WebSafeBase64Unescape(token, &id) || id.empty()) return std::nullopt;
  return id;
}

}  // namespace nvlsched::daemon
