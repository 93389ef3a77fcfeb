#include "store/snapshot.h"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Exception.h>
#include <SQLiteCpp/Statement.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "store/sqlite_status.h"
#include "store/sqlite_store.h"

namespace nvlsched::store {
namespace {

constexpr absl::string_view kSnapshotPrefix = "nvlsched-";
constexpr absl::string_view kSnapshotSuffix = ".db";
constexpr char kSnapshotTimeFormat[] = "%Y%m%dT%H%M%E6SZ";
// What kSnapshotTimeFormat produces: 'D' is a digit, anything else stands for itself.
constexpr absl::string_view kSnapshotTimeShape = "DDDDDDDDTDDDDDD.DDDDDDZ";

std::string ErrnoMessage(int error) { return std::strerror(error); }

bool PathExists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// fsync a file or directory so that its contents (or its entries) survive power loss.
absl::Status SyncPath(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("opening ", path, " to fsync it: ", ErrnoMessage(errno)));
  }
  const int rc = ::fsync(fd);
  const int error = errno;
  ::close(fd);
  if (rc != 0) {
    return absl::UnavailableError(absl::StrCat("fsync of ", path, ": ", ErrnoMessage(error)));
  }
  return absl::OkStatus();
}

// Renames `from` to `to` unless `to` exists. Linux's renameat2(RENAME_NOREPLACE) does it
// atomically; where the file system lacks it, link()+unlink() gives the same guarantee.
absl::Status RenameNoReplace(const std::string& from, const std::string& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) {
    return absl::OkStatus();
  }
  int error = errno;
  if (error == EINVAL || error == ENOSYS) {
    if (::link(from.c_str(), to.c_str()) == 0) {
      ::unlink(from.c_str());
      return absl::OkStatus();
    }
    error = errno;
  }
  if (error == EEXIST) {
    return absl::AlreadyExistsError(absl::StrCat(
        "snapshot ", to, " already exists; snapshots are never overwritten, choose a new name"));
  }
  return absl::UnavailableError(
      absl::StrCat("renaming snapshot ", from, " to ", to, ": ", ErrnoMessage(error)));
}

std::string DirectoryOf(const std::string& path) {
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

// A name no other snapshot in progress (in this or another process) uses.
std::string TemporaryPathFor(const std::string& dest_path) {
  static std::atomic<uint64_t> counter{0};
  return absl::StrCat(dest_path, ".partial-", ::getpid(), "-", counter.fetch_add(1));
}

// VACUUM INTO `temp_path` on `db`. VACUUM INTO reads the source inside one read transaction,
// so the copy is a single point in time even while another connection commits.
void VacuumInto(SQLite::Database& db, const std::string& temp_path) {
  SQLite::Statement vacuum(db, "VACUUM INTO ?1");
  vacuum.bind(1, temp_path);
  vacuum.exec();
}

}  // namespace

namespace {

// Writes a new file at `dest_path` through `write(temp_path)`: a temporary file beside it,
// fsync, an atomic no-replace rename, fsync of the directory. On any failure the temporary
// file (and the SQLite files beside it) is removed, and messages name `dest_path`.
absl::Status WriteNewFile(const std::string& dest_path,
                          const std::function<absl::Status(const std::string&)>& write) {
  if (dest_path.empty()) {
    return absl::InvalidArgumentError("snapshot path is empty; name the file to write");
  }
  if (PathExists(dest_path)) {
    return absl::AlreadyExistsError(
        absl::StrCat("snapshot ", dest_path,
                     " already exists; snapshots are never overwritten, choose a new name"));
  }
  const std::string temp_path = TemporaryPathFor(dest_path);
  absl::Status status = write(temp_path);
  // A Store opened on the temporary file leaves its lock file behind.
  ::unlink(absl::StrCat(temp_path, ".lock").c_str());
  if (status.ok()) status = SyncPath(temp_path, /*directory=*/false);
  if (status.ok()) status = RenameNoReplace(temp_path, dest_path);
  if (!status.ok()) {
    for (const char* suffix : {"", "-wal", "-shm"}) {
      ::unlink(absl::StrCat(temp_path, suffix).c_str());
    }
    // Named by the file asked for: the temporary file is ours, not the caller's business.
    return absl::Status(status.code(),
                        absl::StrReplaceAll(status.message(), {{temp_path, dest_path}}));
  }
  return SyncPath(DirectoryOf(dest_path), /*directory=*/true);
}

}  // namespace

absl::Status SqliteStore::WriteSnapshot(const std::string& dest_path) {
  {
    // Nothing is copied from a file whose quick_check is still due (quick_check_with_load).
    MutexLock lock(&mu_);
    if (absl::Status check = CheckIfDue(); !check.ok()) return check;
  }
  return WriteNewFile(dest_path, [&](const std::string& temp_path) -> absl::Status {
    try {
      if (in_memory()) {
        // An in-memory database is only reachable through its own connection.
        MutexLock lock(&mu_);
        VacuumInto(*db_, temp_path);
      } else {
        SQLite::Database reader(options_.path, SQLite::OPEN_READONLY | SQLite::OPEN_NOMUTEX,
                                options_.busy_timeout_ms, options_.vfs);
        VacuumInto(reader, temp_path);
      }
    } catch (const SQLite::Exception& e) {
      return SqliteErrorStatus(
          absl::StatusCode::kUnavailable,
          absl::StrCat("writing snapshot of ", options_.path, " to ", dest_path), e);
    }
    return absl::OkStatus();
  });
}

absl::Status WriteSqliteCopy(LoadedState state, std::vector<EventRow> events,
                             const std::string& dest_path) {
  return WriteNewFile(dest_path, [&](const std::string& temp_path) {
    StoreOptions options;
    options.path = temp_path;
    options.quick_check_on_open = false;
    absl::StatusOr<std::unique_ptr<Store>> copy = SqliteStore::Open(options);
    absl::Status status = copy.status();
    if (status.ok()) status = (*copy)->Commit(ChangeSetOf(std::move(state), std::move(events)));
    // Closing the store (here) checkpoints the WAL into the file: the last connection closes.
    copy = absl::CancelledError("closed");
    if (!status.ok()) {
      return absl::Status(status.code(),
                          absl::StrCat("writing snapshot ", dest_path, ": ", status.message()));
    }
    return absl::OkStatus();
  });
}

std::string SnapshotFileName(absl::Time time) {
  return absl::StrCat(kSnapshotPrefix,
                      absl::FormatTime(kSnapshotTimeFormat, time, absl::UTCTimeZone()),
                      kSnapshotSuffix);
}

bool IsSnapshotFileName(absl::string_view file_name) {
  if (!absl::ConsumePrefix(&file_name, kSnapshotPrefix) ||
      !absl::ConsumeSuffix(&file_name, kSnapshotSuffix)) {
    return false;
  }
  // Only this fixed-width spelling sorts by name in time order.
  if (file_name.size() != kSnapshotTimeShape.size()) return false;
  for (size_t i = 0; i < file_name.size(); ++i) {
    const bool ok = kSnapshotTimeShape[i] == 'D' ? absl::ascii_isdigit(file_name[i])
                                                 : file_name[i] == kSnapshotTimeShape[i];
    if (!ok) return false;
  }
  return true;
}

absl::StatusOr<std::vector<std::string>> PruneSnapshots(const std::string& dir, int keep) {
  if (keep < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("snapshot keep count is ", keep, "; it must be 0 or more"));
  }
  std::error_code error;
  if (!std::filesystem::is_directory(dir, error)) {
    return absl::NotFoundError(absl::StrCat("snapshot directory ", dir, " does not exist"));
  }
  std::vector<std::string> names;
  for (std::filesystem::directory_iterator it(dir, error), end; !error && it != end;
       it.increment(error)) {
    const std::string name = it->path().filename().string();
    if (IsSnapshotFileName(name) && it->is_regular_file()) names.push_back(name);
  }
  if (error) {
    return absl::UnavailableError(
        absl::StrCat("listing snapshot directory ", dir, ": ", error.message()));
  }
  std::sort(names.begin(), names.end());
  std::vector<std::string> removed;
  const size_t remove_count = names.size() > static_cast<size_t>(keep) ? names.size() - keep : 0;
  for (size_t i = 0; i < remove_count; ++i) {
    const std::string path = (std::filesystem::path(dir) / names[i]).string();
    for (const char* sidecar : {"-wal", "-shm", ".lock"}) {
      std::filesystem::remove(path + sidecar, error);
      if (error) {
        return absl::UnavailableError(
            absl::StrCat("deleting old snapshot ", path, sidecar, ": ", error.message()));
      }
    }
    std::filesystem::remove(path, error);
    if (error) {
      return absl::UnavailableError(
          absl::StrCat("deleting old snapshot ", path, ": ", error.message()));
    }
    removed.push_back(path);
  }
  return removed;
}

}  // namespace nvlsched::store
