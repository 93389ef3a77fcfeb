// Reads every row back into a LoadedState. Internal to store/.
//
// Parents are read in rowid (insertion) order; child rows (labels, quotas, partition ids) are
// read in primary-key order and attached to their parent through a hash index, so loading is
// one sequential pass per table with no joins.
//
// Thread-safety: not thread-safe; the caller serialises access to the connection.
#ifndef NVLSCHED_STORE_ROW_READER_H_
#define NVLSCHED_STORE_ROW_READER_H_

#include <SQLiteCpp/Database.h>

#include "absl/status/statusor.h"
#include "store/rows.h"

namespace nvlsched::store {

// REQUIRES: `db` is at CurrentSchemaVersion(); the caller holds a read transaction so that the
// tables are read at one point in time.
// Errors: DATA_LOSS if the file is corrupt or a child row names a parent that is not stored;
// UNAVAILABLE on other SQLite errors (I/O).
// Cost: O(total rows); about one allocation per string field.
absl::StatusOr<LoadedState> ReadAllRows(SQLite::Database& db,
                                        InstanceColumns columns = InstanceColumns::kAll);

// Events with sequence > after_sequence, at most `limit`, in sequence order. Throws
// SQLite::Exception on a read error.
std::vector<EventRow> ReadEventRows(SQLite::Database& db, uint64_t after_sequence, size_t limit);

}  // namespace nvlsched::store

#endif  // NVLSCHED_STORE_ROW_READER_H_
