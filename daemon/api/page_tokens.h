// Page tokens of the List calls: the web-safe base64 of the last id a page returned. Opaque to
// clients; a token this server did not issue is INVALID_ARGUMENT at the caller.
//
// Thread-safety: pure functions.
#ifndef NVLSCHED_DAEMON_API_PAGE_TOKENS_H_
#define NVLSCHED_DAEMON_API_PAGE_TOKENS_H_

#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace nvlsched::daemon {

std::string EncodePageToken(absl::string_view last_id);
// The id `token` names; nullopt when it does not decode to a non-empty id.
std::optional<std::string> DecodePageToken(absl::string_view token);

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_API_PAGE_TOKENS_H_
