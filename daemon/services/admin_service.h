// AdminServiceImpl: operator actions on the daemon itself (nvlsched.v1.AdminService).
//
// CreateSnapshot writes a consistent point-in-time copy of the database through
// store::Store::WriteSnapshot. A VACUUM INTO can take seconds, and gRPC callback threads must
// never block, so the service owns one worker thread with a FIFO of snapshot calls; the
// callback thread only checks the request and queues it. Snapshots run one at a time (they
// read and write the whole database; running several at once would only compete for the disk).
//
// CreateSnapshot errors (gRPC status, via ToGrpcStatus):
//   INVALID_ARGUMENT    path contains a NUL byte, is longer than 4096 bytes, or names a
//                       directory (ends in '/') — google.rpc.BadRequest on field `path`.
//   FAILED_PRECONDITION empty path and no snapshot directory configured ("start nvlschedd with
//                       --snapshot_dir"), or the snapshot directory is not a directory.
//   ALREADY_EXISTS      the file exists; snapshots are never overwritten.
//   UNAVAILABLE         the file cannot be written (missing directory, permissions, disk full),
//                       the database cannot be read, or the service is shutting down.
//   RESOURCE_EXHAUSTED  more than Options::max_queued snapshot calls are waiting.
// On success: the path written and the file's size in bytes.
//
// Thread-safety: the handler is called from gRPC callback threads; the worker thread runs the
// snapshots and finishes the calls. Stop() (or the destructor) must run after the gRPC server
// has stopped taking calls.
#ifndef NVLSCHED_DAEMON_SERVICES_ADMIN_SERVICE_H_
#define NVLSCHED_DAEMON_SERVICES_ADMIN_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <deque>
#include <string>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "daemon/auth/auth.h"
#include "nvlsched/v1/admin_service.grpc.pb.h"
#include "store/store.h"
#include "store/sync.h"

namespace nvlsched::daemon {

struct AdminServiceOptions {
  // --snapshot_dir: where a snapshot with an empty path goes (created if missing). Empty: such
  // calls fail with FAILED_PRECONDITION.
  std::string snapshot_dir;
  // Snapshot calls waiting for the worker; beyond this they fail fast (RESOURCE_EXHAUSTED).
  size_t max_queued = 16;
};

class AdminServiceImpl final : public v1::AdminService::CallbackService {
 public:
  // `store` and `access` must outlive the service. Starts the worker thread.
  AdminServiceImpl(store::Store* store, const AccessControl* access, AdminServiceOptions options);
  // Same, with only the snapshot directory (--snapshot_dir; may be empty).
  AdminServiceImpl(store::Store* store, const AccessControl* access, std::string snapshot_dir)
      : AdminServiceImpl(store, access, AdminServiceOptions{std::move(snapshot_dir)}) {}
  ~AdminServiceImpl() override;  // Stop()s.

  AdminServiceImpl(const AdminServiceImpl&) = delete;
  AdminServiceImpl& operator=(const AdminServiceImpl&) = delete;

  grpc::ServerUnaryReactor* CreateSnapshot(grpc::CallbackServerContext* ctx,
                                           const v1::CreateSnapshotRequest* request,
                                           v1::CreateSnapshotResponse* response) override;

  // Finishes the snapshot being written, fails the queued ones with UNAVAILABLE, and joins the
  // worker. Later calls fail with UNAVAILABLE. Idempotent.
  void Stop();

 private:
  struct Job {
    std::string path;           // resolved inside the snapshot dir; empty: a generated name
    grpc::ServerUnaryReactor* reactor = nullptr;
    v1::CreateSnapshotResponse* response = nullptr;
  };

  void RunWorker();
  void RunJob(const Job& job);

  // Constant after construction.
  store::Store* const store_;
  const AccessControl* const access_;
  const AdminServiceOptions options_;

  Mutex mu_;
  CondVar work_;  // signalled when jobs_ gains a job or stopping_ is set
  std::deque<Job> jobs_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  std::thread worker_;
};

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_SERVICES_ADMIN_SERVICE_H_
