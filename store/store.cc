#include "store/store.h"

#include <memory>

#include "absl/strings/match.h"
#include "store/pg_store.h"
#include "store/sqlite_store.h"

namespace nvlsched::store {

bool IsPostgresUri(absl::string_view db) {
  return absl::StartsWith(db, "postgresql://") || absl::StartsWith(db, "postgres://");
}

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const StoreOptions& options) {
  if (IsPostgresUri(options.path)) return PgStore::Open(options);
  return SqliteStore::Open(options);
}

}  // namespace nvlsched::store
