// Logging for nvlschedd: spdlog on stderr, text or JSON lines, with gRPC's own log routed into
// the same stream so an operator reads one log.
//
// Thread-safety: InitLogging is called once, from main, before any other thread starts.
#ifndef NVLSCHED_DAEMON_SERVER_LOGGING_H_
#define NVLSCHED_DAEMON_SERVER_LOGGING_H_

#include "absl/strings/string_view.h"

#include "absl/status/status.h"

namespace nvlsched::daemon {

enum class LogFormat { kText, kJson };

// Parses "text" or "json". INVALID_ARGUMENT otherwise.
absl::Status ParseLogFormat(absl::string_view text, LogFormat* out);

// Installs the stderr logger as spdlog's default and routes gpr_log (gRPC core) into it.
void InitLogging(LogFormat format);

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_SERVER_LOGGING_H_
