// daemon/server — flags, start-up, signals, metrics and logs of nvlschedd.
//
// Daemon: one running nvlschedd — the gRPC server, its services and health, over one engine
// and one store. main() builds it from flags; in-process tests build it from DaemonOptions.
//
// Thread-safety: Start, Shutdown and Wait may be called from different threads; Shutdown is
// idempotent.
#ifndef NVLSCHED_DAEMON_SERVER_DAEMON_H_
#define NVLSCHED_DAEMON_SERVER_DAEMON_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "daemon/server/options.h"

namespace nvlsched::store {
class Store;
}  // namespace nvlsched::store

namespace nvlsched::daemon {

// Checks every option Daemon::Start checks before it touches the database.
// Errors: INVALID_ARGUMENT naming the flag.
absl::Status ValidateDaemonOptions(const DaemonOptions& options);

// Opens options.db_path as Daemon::Start does (creating a SQLite file's directory).
// Errors: those of store::Store::Open (ABORTED: another daemon leads the PostgreSQL database).
absl::StatusOr<std::unique_ptr<store::Store>> OpenStore(const DaemonOptions& options);

class Daemon {
 public:
  // Opens the store, loads and checks the inventory, seeds the fleet if the database holds no
  // machines, then starts serving on options.listen and writes options.port_file.
  // Errors: INVALID_ARGUMENT (bad option), UNAVAILABLE (cannot listen: address in use or not
  // permitted), FAILED_PRECONDITION / DATA_LOSS (database refused at start-up).
  static absl::StatusOr<std::unique_ptr<Daemon>> Start(const DaemonOptions& options);
  // As Start, on a store already open (and, for PostgreSQL, holding the leader lock: main.cc
  // opens it while standing by). Once serving, announces the daemon's address through the
  // store (store::Store::AnnounceLeader), so standbys can name this leader.
  static absl::StatusOr<std::unique_ptr<Daemon>> Start(const DaemonOptions& options,
                                                       std::unique_ptr<store::Store> store);

  // OK while this daemon may still write: its store holds the database and has not latched a
  // failed commit (store::Store::CheckLeadership; a round trip for PostgreSQL). Any thread.
  absl::Status CheckLeadership();

  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // The TCP port actually bound (useful with port 0).
  int port() const;

  // Stops leading but keeps serving: from now on every call of nvlschedd's services fails
  // UNAVAILABLE with `reason` (as a standby's do; standby.h) and health answers NOT_SERVING;
  // watch streams end, the calls already queued are finished, the engine stops, the store is
  // closed (its connection, and a PostgreSQL leader lock with it) and the metrics port is
  // freed. The gRPC server stays up, so no call that arrives meanwhile is cancelled by a
  // server going down (a client sees CANCELLED then, which many do not retry). main.cc keeps a
  // stepped-down daemon as its standby server until it leads again. Idempotent.
  void StepDown(const std::string& reason);
  // A stepped-down daemon's reason for refusing (e.g. once it knows the new leader).
  void SetStandbyReason(const std::string& reason);

  // Stops accepting calls, lets in-flight calls finish until options.shutdown_grace has
  // passed (then cancels them), stops the engine and closes the database cleanly.
  void Shutdown();

  // Blocks until the server has shut down.
  void Wait();

 private:
  struct Impl;
  explicit Daemon(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_SERVER_DAEMON_H_
