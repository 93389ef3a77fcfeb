// Turns SQLite failures into absl::Status. Internal to store/: the only place that knows
// SQLite's result codes. No SQLite exception leaves store/; every catch site goes through here.
//
// Thread-safety: pure functions.
#ifndef NVLSCHED_STORE_SQLITE_STATUS_H_
#define NVLSCHED_STORE_SQLITE_STATUS_H_

#include <SQLiteCpp/Exception.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace nvlsched::store {

// "SQLITE_FULL", "SQLITE_IOERR", ...: the primary code's name (extended codes are reduced to
// their primary code); "SQLITE_UNKNOWN(<n>)" for anything else.
std::string SqliteCodeName(int code);

// True for the codes that mean the file is damaged or not a database at all
// (SQLITE_CORRUPT, SQLITE_NOTADB).
bool IsCorruptionCode(int code);

// A Status with `code` and the message "<what>: <SQLite's message> (<code name>, extended
// code <n>)". `what` says what the store was doing, in words an operator can act on.
absl::Status SqliteErrorStatus(absl::StatusCode code, absl::string_view what,
                               const SQLite::Exception& e);

}  // namespace nvlsched::store

#endif  // NVLSCHED_STORE_SQLITE_STATUS_H_
