// StandbyServer: what an nvlschedd serves while another daemon leads its PostgreSQL database
// (issue 22). It listens on the daemon's own --listen address so that clients and load
// balancers find every daemon of a site at a fixed address, and tells them this one is not
// the leader:
//   - grpc.health.v1.Health answers NOT_SERVING (for every service name), so a client channel
//     with health checking (README: round_robin with healthCheckConfig) sends nothing here;
//   - every other call, whatever its service and method, fails UNAVAILABLE with
//     "standby: ... the leader is <address>" (the address the leader announced through the
//     database; store/pg_store.h), which grpcurl prints.
// main() runs it between attempts to take the leader lock, and shuts it down (freeing the
// port) just before the daemon starts serving as leader.
//
// Thread-safety: thread-safe; SetLeader may be called while calls are answered.
#ifndef NVLSCHED_DAEMON_SERVER_STANDBY_H_
#define NVLSCHED_DAEMON_SERVER_STANDBY_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "daemon/server/options.h"

namespace nvlsched::daemon {

class StandbyServer {
 public:
  // Listens on options.listen (with the daemon's credentials), writes options.port_file.
  // Errors: as Daemon::Start for the listening part (UNAVAILABLE: address in use;
  // INVALID_ARGUMENT: bad TLS options).
  static absl::StatusOr<std::unique_ptr<StandbyServer>> Start(const DaemonOptions& options);
  ~StandbyServer();

  // Why this daemon stands by, quoted in every refused call (e.g. the store's ABORTED message
  // "another nvlschedd leads ...; the leader is 10.0.0.7:50051").
  void SetReason(const std::string& reason);

  int port() const;
  // Stops serving and frees the port. Idempotent.
  void Shutdown();

 private:
  struct Impl;
  explicit StandbyServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_SERVER_STANDBY_H_
