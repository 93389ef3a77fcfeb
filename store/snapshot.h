// Snapshot files: naming and pruning. Store::WriteSnapshot (declared in store/store.h, defined
// in store/snapshot.cc) writes one; these helpers manage a directory of them for the daemon's
// --snapshot_dir / --snapshot_keep.
//
// A snapshot is a plain SQLite database named "nvlsched-<UTC time>.db", e.g.
// "nvlsched-20250102T030405.123456Z.db". The fixed-width time makes name order equal time order,
// so "newest" never depends on file modification times.
//
// Thread-safety: free functions; concurrent pruning of one directory is not coordinated.
#ifndef NVLSCHED_STORE_SNAPSHOT_H_
#define NVLSCHED_STORE_SNAPSHOT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "store/rows.h"

namespace nvlsched::store {

// "nvlsched-YYYYMMDDTHHMMSS.ffffffZ.db" for `time` (UTC, microseconds).
std::string SnapshotFileName(absl::Time time);

// True if `file_name` (no directory) is a name SnapshotFileName produces.
bool IsSnapshotFileName(absl::string_view file_name);

// Deletes all but the newest `keep` snapshot files in `dir` (by name order), together with any
// "-wal"/"-shm" files SQLite left beside them and the ".lock" file of a Store opened on one. Other files, and temporary files of snapshots
// still being written, are left alone. Returns the paths of the deleted snapshots, oldest first.
// Errors: INVALID_ARGUMENT (keep < 0), NOT_FOUND (dir missing), UNAVAILABLE (listing or deleting
// failed; snapshots deleted before the failure stay deleted).
absl::StatusOr<std::vector<std::string>> PruneSnapshots(const std::string& dir, int keep);

// Writes `state` and `events` as a new SQLite database at `dest_path`, the way WriteSnapshot
// writes one (a temporary file beside it, fsync, an atomic no-replace rename, fsync of the
// directory): PgStore's snapshots, and copies between stores (tools/nvlsched-copy-store).
// Errors: as Store::WriteSnapshot.
absl::Status WriteSqliteCopy(LoadedState state, std::vector<EventRow> events,
                             const std::string& dest_path);

}  // namespace nvlsched::store

#endif  // NVLSCHED_STORE_SNAPSHOT_H_
