#include "store/sqlite_status.h"

#include <sqlite3.h>

#include <string>

#include "absl/strings/str_cat.h"

namespace nvlsched::store {

std::string SqliteCodeName(int code) {
  switch (code & 0xff) {
    case SQLITE_OK: return "SQLITE_OK";
    case SQLITE_ERROR: return "SQLITE_ERROR";
    case SQLITE_INTERNAL: return "SQLITE_INTERNAL";
    case SQLITE_PERM: return "SQLITE_PERM";
    case SQLITE_ABORT: return "SQLITE_ABORT";
    case SQLITE_BUSY: return "SQLITE_BUSY";
    case SQLITE_LOCKED: return "SQLITE_LOCKED";
    case SQLITE_NOMEM: return "SQLITE_NOMEM";
    case SQLITE_READONLY: return "SQLITE_READONLY";
    case SQLITE_INTERRUPT: return "SQLITE_INTERRUPT";
    case SQLITE_IOERR: return "SQLITE_IOERR";
    case SQLITE_CORRUPT: return "SQLITE_CORRUPT";
    case SQLITE_NOTFOUND: return "SQLITE_NOTFOUND";
    case SQLITE_FULL: return "SQLITE_FULL";
    case SQLITE_CANTOPEN: return "SQLITE_CANTOPEN";
    case SQLITE_PROTOCOL: return "SQLITE_PROTOCOL";
    case SQLITE_SCHEMA: return "SQLITE_SCHEMA";
    case SQLITE_TOOBIG: return "SQLITE_TOOBIG";
    case SQLITE_CONSTRAINT: return "SQLITE_CONSTRAINT";
    case SQLITE_MISMATCH: return "SQLITE_MISMATCH";
    case SQLITE_MISUSE: return "SQLITE_MISUSE";
    case SQLITE_NOLFS: return "SQLITE_NOLFS";
    case SQLITE_AUTH: return "SQLITE_AUTH";
    case SQLITE_RANGE: return "SQLITE_RANGE";
    case SQLITE_NOTADB: return "SQLITE_NOTADB";
    default: return absl::StrCat("SQLITE_UNKNOWN(", code, ")");
  }
}

bool IsCorruptionCode(int code) {
  const int primary = code & 0xff;
  return primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB;
}

absl::Status SqliteErrorStatus(absl::StatusCode code, absl::string_view what,
                               const SQLite::Exception& e) {
  // SQLiteCpp's own misuse errors carry code -1 and no SQLite code name.
  if (e.getErrorCode() < 0) {
    return absl::Status(code, absl::StrCat(what, ": ", e.what()));
  }
  // The extended code is only known when the exception was built from a connection.
  const int extended = e.getExtendedErrorCode() >= 0 ? e.getExtendedErrorCode() : e.getErrorCode();
  return absl::Status(code, absl::StrCat(what, ": ", e.what(), " (", SqliteCodeName(extended),
                                         ", extended code ", extended, ")"));
}

}  // namespace nvlsched::store
