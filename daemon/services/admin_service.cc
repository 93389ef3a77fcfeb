#include "daemon/services/admin_service.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "daemon/api/field_violations.h"
#include "daemon/services/unary_call.h"
#include "daemon/services/snapshot_scheduler.h"
#include "daemon/api/status_mapping.h"

namespace nvlsched::daemon {
namespace {

constexpr size_t kMaxSnapshotPathLength = 4096;

absl::Status ValidateSnapshotPath(const std::string& path) {
  FieldViolations violations;
  if (path.find('\0') != std::string::npos) {
    violations.Add("path", "path must not contain a NUL byte; give a plain file path");
  } else if (path.size() > kMaxSnapshotPathLength) {
    violations.Add("path", absl::StrCat("path must be at most ", kMaxSnapshotPathLength,
                                        " bytes, got ", path.size()));
  } else if (absl::EndsWith(path, "/")) {
    violations.Add("path", absl::StrCat("path must name a file, not a directory, got \"", path,
                                        "\"; e.g. \"", path, "nvlsched.db\", or leave it empty "
                                        "for a timestamped file in --snapshot_dir"));
  }
  return violations.ToStatus("CreateSnapshotRequest");
}

// Where a CreateSnapshot path may write: only inside --snapshot_dir. A bare file name is
// written there; a path (relative to the directory, or absolute) must resolve, symbolic links
// followed, to a file in the directory or below it.
// Errors: FAILED_PRECONDITION (no --snapshot_dir; the directory the file would go in does not
// exist), INVALID_ARGUMENT with a BadRequest at `path` (it leaves the directory, or names a
// reserved temporary file).
absl::StatusOr<std::string> ResolveSnapshotPath(const std::string& requested,
                                                const std::string& snapshot_dir) {
  namespace fs = std::filesystem;
  if (snapshot_dir.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "CreateSnapshot writes only inside --snapshot_dir, and this nvlschedd has none: start it "
        "with --snapshot_dir=DIR, then pass a file name (or nothing, for a timestamped file)"));
  }
  std::error_code error;
  const fs::path dir = fs::weakly_canonical(fs::path(snapshot_dir), error);
  const fs::path asked(requested);
  const fs::path target = (asked.is_absolute() ? asked : fs::path(snapshot_dir) / asked)
                              .lexically_normal();
  const fs::path parent = fs::weakly_canonical(target.parent_path(), error);
  const std::string relative = parent.lexically_relative(dir).string();
  const bool inside = !error && !relative.empty() && relative != ".." &&
                      relative.rfind("../", 0) != 0;
  const std::string name = target.filename().string();
  FieldViolations violations;
  if (!inside) {
    violations.Add("path", absl::StrCat("path \"", requested, "\" is outside --snapshot_dir (",
                                        dir.string(), "): give a file name such as "
                                        "\"before-upgrade.db\", or a path inside that directory"));
  } else if (name.empty() || name == "." || name == "..") {
    violations.Add("path", absl::StrCat("path \"", requested, "\" must name a file"));
  } else if (name.find(".partial-") != std::string::npos) {
    violations.Add("path", absl::StrCat("path \"", requested, "\" names a temporary file of "
                                        "the snapshot writer (\".partial-\"); choose another "
                                        "name"));
  }
  if (!violations.empty()) return violations.ToStatus("CreateSnapshotRequest");
  if (!fs::is_directory(parent, error)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "directory ", parent.string(), " does not exist inside --snapshot_dir ", dir.string(),
        ": create it first, or give a file name directly in the snapshot directory"));
  }
  return (parent / name).string();
}

}  // namespace

AdminServiceImpl::AdminServiceImpl(store::Store* store, const AccessControl* access,
                                   AdminServiceOptions options)
    : store_(store), access_(access), options_(std::move(options)) {
  worker_ = std::thread([this] { RunWorker(); });
}

AdminServiceImpl::~AdminServiceImpl() { Stop(); }

grpc::ServerUnaryReactor* AdminServiceImpl::CreateSnapshot(
    grpc::CallbackServerContext* ctx, const v1::CreateSnapshotRequest* request,
    v1::CreateSnapshotResponse* response) {
  absl::StatusOr<CallInfo> call = BeginCall(*access_, ctx, "CreateSnapshot", Permission::kAdmin, "");
  if (!call.ok()) return FinishNow(ctx, call.status());
  if (absl::Status s = ValidateSnapshotPath(request->path()); !s.ok()) return FinishNow(ctx, s);
  // An explicit path is resolved once, here; the job writes to the resolved file.
  std::string path;
  if (!request->path().empty()) {
    if (!options_.snapshot_dir.empty()) {
      if (absl::Status s = EnsureSnapshotDir(options_.snapshot_dir); !s.ok()) {
        return FinishNow(ctx, s);
      }
    }
    absl::StatusOr<std::string> resolved =
        ResolveSnapshotPath(request->path(), options_.snapshot_dir);
    if (!resolved.ok()) return FinishNow(ctx, resolved.status());
    path = *std::move(resolved);
  }
  if (request->path().empty() && options_.snapshot_dir.empty()) {
    return FinishNow(ctx, absl::FailedPreconditionError(
                              "no path given and no snapshot directory configured: start "
                              "nvlschedd with --snapshot_dir, or pass a path"));
  }
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  {
    MutexLock lock(&mu_);
    if (stopping_) {
      reactor->Finish(ToGrpcStatus(
          absl::UnavailableError("nvlschedd is shutting down; retry against the new instance")));
      return reactor;
    }
    if (jobs_.size() >= options_.max_queued) {
      reactor->Finish(ToGrpcStatus(absl::ResourceExhaustedError(absl::StrCat(
          jobs_.size(), " snapshots are already waiting to be written; retry once they are "
          "done"))));
      return reactor;
    }
    jobs_.push_back(Job{std::move(path), reactor, response});
    work_.Signal();
  }
  return reactor;
}

void AdminServiceImpl::Stop() {
  std::deque<Job> abandoned;
  {
    MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    abandoned.swap(jobs_);
    work_.SignalAll();
  }
  for (const Job& job : abandoned) {
    job.reactor->Finish(ToGrpcStatus(absl::UnavailableError(
        "nvlschedd shut down before the snapshot was written; nothing was written")));
  }
  if (worker_.joinable()) worker_.join();
}

void AdminServiceImpl::RunWorker() {
  pthread_setname_np(pthread_self(), "nvl-admin");
  while (true) {
    Job job;
    {
      MutexLock lock(&mu_);
      while (jobs_.empty() && !stopping_) work_.Wait(&mu_);
      if (jobs_.empty()) return;  // stopping
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    RunJob(job);
  }
}

void AdminServiceImpl::RunJob(const Job& job) {
  absl::StatusOr<SnapshotFile> file;
  try {
    std::string path = job.path;
    absl::Status dir_status;
    if (path.empty()) {
      dir_status = EnsureSnapshotDir(options_.snapshot_dir);
      path = SnapshotPathIn(options_.snapshot_dir, absl::Now());
    }
    file = dir_status.ok() ? WriteSnapshotFile(*store_, path) : absl::StatusOr<SnapshotFile>(dir_status);
  } catch (const std::exception& e) {
    // Nothing below is expected to throw (the store never does); a bad_alloc must still not
    // leave the call unfinished.
    file = absl::InternalError(absl::StrCat("writing the snapshot failed: ", e.what()));
  }
  if (file.ok()) {
    spdlog::info("snapshot {} written on request ({} bytes)", file->path, file->size_bytes);
    job.response->set_path(file->path);
    job.response->set_size_bytes(file->size_bytes);
    job.reactor->Finish(grpc::Status::OK);
  } else {
    spdlog::warn("snapshot on request failed: {}", file.status().ToString());
    job.reactor->Finish(ToGrpcStatus(file.status()));
  }
}

}  // namespace nvlsched::daemon
