#include "daemon/services/snapshot_scheduler.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "store/snapshot.h"

namespace nvlsched::daemon {

absl::Status EnsureSnapshotDir(const std::string& dir) {
  if (dir.empty()) {
    return absl::InvalidArgumentError("the snapshot directory is empty; set --snapshot_dir");
  }
  std::error_code error;
  if (std::filesystem::is_directory(dir, error)) return absl::OkStatus();
  if (std::filesystem::exists(dir, error)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "snapshot directory ", dir, " exists but is not a directory; point --snapshot_dir at a "
        "directory"));
  }
  std::filesystem::create_directories(dir, error);
  if (error) {
    return absl::UnavailableError(absl::StrCat("cannot create snapshot directory ", dir, ": ",
                                               error.message(),
                                               "; create it or choose another --snapshot_dir"));
  }
  return absl::OkStatus();
}

std::string SnapshotPathIn(const std::string& dir, absl::Time time) {
  return (std::filesystem::path(dir) / store::SnapshotFileName(time)).string();
}

absl::StatusOr<SnapshotFile> WriteSnapshotFile(store::Store& store, const std::string& path) {
  if (absl::Status s = store.WriteSnapshot(path); !s.ok()) return s;
  std::error_code error;
  const std::uintmax_t size = std::filesystem::file_size(path, error);
  if (error) {
    return absl::UnavailableError(absl::StrCat("snapshot ", path,
                                               " was written but its size cannot be read: ",
                                               error.message()));
  }
  return SnapshotFile{path, static_cast<int64_t>(size)};
}

SnapshotScheduler::SnapshotScheduler(store::Store* store, SnapshotSchedulerOptions options)
    : store_(store), options_(std::move(options)) {}

SnapshotScheduler::~SnapshotScheduler() { Stop(); }

absl::Status SnapshotScheduler::Start() {
  if (options_.dir.empty()) {
    return absl::InvalidArgumentError(
        "scheduled snapshots need a directory: set --snapshot_dir, or --snapshot_interval=0");
  }
  if (options_.interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--snapshot_interval must be positive to schedule snapshots, got ",
        absl::FormatDuration(options_.interval)));
  }
  if (options_.keep < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--snapshot_keep must be at least 1 (keeping 0 would delete every snapshot), got ",
        options_.keep));
  }
  if (absl::Status s = EnsureSnapshotDir(options_.dir); !s.ok()) return s;
  MutexLock lock(&mu_);
  if (started_ || stopped_) {
    return absl::FailedPreconditionError("the snapshot scheduler can be started only once");
  }
  started_ = true;
  thread_ = std::thread([this] { Run(); });
  spdlog::info("writing a snapshot every {} into {}, keeping {}",
               absl::FormatDuration(options_.interval), options_.dir, options_.keep);
  return absl::OkStatus();
}

void SnapshotScheduler::Stop() {
  {
    MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

absl::StatusOr<SnapshotFile> SnapshotScheduler::RunOnce() {
  absl::StatusOr<SnapshotFile> file =
      WriteSnapshotFile(*store_, SnapshotPathIn(options_.dir, absl::Now()));
  {
    MutexLock lock(&mu_);
    ++(file.ok() ? written_ : failed_);
  }
  if (!file.ok()) return file;
  absl::StatusOr<std::vector<std::string>> pruned =
      store::PruneSnapshots(options_.dir, options_.keep);
  if (!pruned.ok()) {
    spdlog::warn("snapshot {} written, but pruning {} failed: {}", file->path, options_.dir,
                 pruned.status().ToString());
  } else {
    for (const std::string& path : *pruned) spdlog::info("deleted old snapshot {}", path);
  }
  return file;
}

int64_t SnapshotScheduler::written() const {
  MutexLock lock(&mu_);
  return written_;
}

int64_t SnapshotScheduler::failed() const {
  MutexLock lock(&mu_);
  return failed_;
}

void SnapshotScheduler::Run() {
  pthread_setname_np(pthread_self(), "nvl-snapshots");
  // Ticks are anchored to the start time so the period does not drift by the write time; a
  // tick missed because a write overran is skipped rather than run back to back.
  absl::Time next = absl::Now() + options_.interval;
  while (!stop_.WaitForNotificationWithDeadline(next)) {
    absl::StatusOr<SnapshotFile> file = RunOnce();
    if (file.ok()) {
      spdlog::info("scheduled snapshot {} ({} bytes)", file->path, file->size_bytes);
    } else {
      spdlog::error("scheduled snapshot into {} failed: {}", options_.dir,
                    file.status().ToString());
    }
    next += options_.interval;
    const absl::Time now = absl::Now();
    if (next <= now) next = now + options_.interval;
  }
}

}  // namespace nvlsched::daemon
