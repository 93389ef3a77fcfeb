// nvlschedd: the nvlsched daemon. Flags are documented by --help and in README.md.
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include <spdlog/spdlog.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "daemon/server/daemon.h"
#include "daemon/server/standby.h"
#include "store/store.h"
#include "daemon/server/logging.h"

#ifdef NVLSCHED_JEMALLOC
// jemalloc (CMakeLists.txt, NVLSCHED_JEMALLOC) reads its options from this symbol at its first
// allocation. Its own background thread gives freed pages back to the OS once they have been
// unused for about 200 ms, as --malloc_trim_mib's trimmer does for glibc's malloc (which then
// has nothing to trim), so an idle daemon's resident memory falls back after a burst.
// overload_test, once idle: +8.5-9 MiB with 200 ms, +22-26 MiB with 1000 ms; 0 ms (purge at
// every free) cost 26-46% of the engine bench's calls/s.
// thp:always marks jemalloc's memory for transparent huge pages (MADV_HUGEPAGE), which the
// kernel then backs with huge pages only while HugePagesWhileLoading below allows it.
// $MALLOC_CONF still overrides these.
extern "C" const char* malloc_conf;
const char* malloc_conf = "background_thread:true,dirty_decay_ms:200,muzzy_decay_ms:0,thp:always";
#endif

ABSL_FLAG(std::string, listen, "127.0.0.1:50051",
          "host:port to serve gRPC on; port 0 picks a free port");
ABSL_FLAG(std::string, port_file, "", "if set, write the bound port to this file once serving");
ABSL_FLAG(std::string, db, "var/nvlsched.db",
          "SQLite database file (created if missing), or a PostgreSQL URI "
          "(postgresql://user@host:port/dbname): then any number of daemons share the database, "
          "one leads and the others stand by");
ABSL_FLAG(absl::Duration, standby_poll, absl::Seconds(1),
          "PostgreSQL: how often a standby retries the leader lock, and the leader checks it "
          "still holds it");
ABSL_FLAG(std::string, seed_fleet, "",
          "'demo' or a fleet file (JSON nvlsched.v1.Fleet); applied only when the database "
          "holds no machines");
ABSL_FLAG(std::string, sync, "full",
          "'full': a reply means the write survives power loss; 'normal': it survives a "
          "process crash (faster commits)");
ABSL_FLAG(int, max_batch_count, 18, "largest count BatchCreateInstances accepts");
ABSL_FLAG(int, max_queued_calls, 4096,
          "calls waiting for the engine at once; more are refused at once with "
          "RESOURCE_EXHAUSTED instead of queueing");
ABSL_FLAG(int, read_threads, 2,
          "threads that answer ListInstances from the read view, apart from the gRPC threads "
          "(1..64)");
ABSL_FLAG(int, read_nice, 10,
          "nice value of those threads (0..19): above 0 they run mostly on the CPU the writes "
          "leave; 0 keeps the daemon's own priority");
ABSL_FLAG(int, max_queued_reads, 64,
          "ListInstances calls waiting for a read thread at once; more are refused at once "
          "with RESOURCE_EXHAUSTED");
ABSL_FLAG(int64_t, max_pending_reply_mib, 64,
          "MiB of answers handed to gRPC and not yet sent (clients that do not read them); at "
          "or beyond it calls are refused with RESOURCE_EXHAUSTED");
ABSL_FLAG(absl::Duration, pending_reply_timeout, absl::Seconds(30),
          "cancel a call whose answer its client has not read within this (the client sees "
          "CANCELLED), freeing the answer; 0: never");
ABSL_FLAG(int64_t, grpc_memory_mib, 256,
          "memory gRPC accounts for (its ResourceQuota: call arenas, transport buffers); under "
          "pressure it shrinks flow-control windows, drops new connections and cancels streams");
ABSL_FLAG(int, grpc_max_threads, 32,
          "threads gRPC may start for synchronous handlers (the reflection service); beyond "
          "them such calls are RESOURCE_EXHAUSTED");
ABSL_FLAG(int, max_concurrent_streams, 100,
          "calls one connection may have open at once (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS); "
          "the client queues the rest");
ABSL_FLAG(int, max_request_mib, 4, "largest request message in MiB (larger: RESOURCE_EXHAUSTED)");
ABSL_FLAG(int, max_reply_mib, 16,
          "largest answer message in MiB (larger: RESOURCE_EXHAUSTED; ask for smaller pages)");
ABSL_FLAG(absl::Duration, keepalive_time, absl::Minutes(1),
          "ping a connection idle this long; with --keepalive_timeout, a vanished client's "
          "calls are cancelled and their memory freed");
ABSL_FLAG(absl::Duration, keepalive_timeout, absl::Seconds(20),
          "close a connection whose keepalive ping is not answered within this");
ABSL_FLAG(absl::Duration, min_client_ping_interval, absl::Seconds(10),
          "a client ping sooner than this after the previous one, with no data in between, is "
          "a strike (clients' keepalive time must be at least this)");
ABSL_FLAG(int, max_ping_strikes, 2,
          "strikes before the connection is closed with GOAWAY too_many_pings (0: no limit)");
ABSL_FLAG(int64_t, malloc_trim_mib, 16,
          "return freed heap memory to the OS (malloc_trim) once this many MiB more are free "
          "than after the last return; checked every second; 0: never");
ABSL_FLAG(int64_t, event_retention, 1000000,
          "events kept for WatchEvents resumes; older ones are pruned (a resume from before "
          "them is OUT_OF_RANGE)");
ABSL_FLAG(int64_t, watch_buffer, 10000,
          "events a WatchEvents stream may fall behind before it is ended with "
          "RESOURCE_EXHAUSTED (also the in-memory window of recent events)");
ABSL_FLAG(absl::Duration, max_queue_timeout, absl::Hours(7 * 24),
          "the longest queue_timeout a create request may ask for (longer is INVALID_ARGUMENT)");
ABSL_FLAG(int64_t, max_queue_length, 100000,
          "requests waiting in the queue at once; beyond it a request with queue_timeout is "
          "refused with RESOURCE_EXHAUSTED");
ABSL_FLAG(int, reservation_depth, 4,
          "waiting batches that hold an NVLink domain reservation (the first ones in queue "
          "order); 0 turns reservations off (plain backfill)");
ABSL_FLAG(bool, require_cleaning, true,
          "a deleted instance's machine goes to CLEANING and is never placed until the control "
          "plane reports it wiped (InventoryService/CompleteCleaning); false hands it out at "
          "once (for control planes that wipe before they delete)");
ABSL_FLAG(absl::Duration, preemption_grace, absl::Seconds(30),
          "how long a preempted spot instance has to be released (deleted) before nvlsched "
          "releases its machines itself; an on-demand request preempts only if its "
          "queue_timeout is longer");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(10),
          "after SIGTERM/SIGINT, how long in-flight calls may finish before they are cancelled");
ABSL_FLAG(std::string, snapshot_dir, "", "directory for scheduled and on-request snapshots");
ABSL_FLAG(absl::Duration, snapshot_interval, absl::ZeroDuration(),
          "write a snapshot this often (0: only on request)");
ABSL_FLAG(int, snapshot_keep, 5, "how many scheduled snapshots to keep in --snapshot_dir");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:9464",
          "host:port for the Prometheus /metrics endpoint; empty turns it off");
ABSL_FLAG(std::string, auth, "none",
          "'none' (every caller is a provider admin; only with a loopback --listen), 'tokens' "
          "(--tokens_file) or 'jwt' (--jwt_*); calls send 'authorization: Bearer <token>'");
ABSL_FLAG(std::string, tokens_file, "",
          "--auth=tokens: lines '<sha256 hex of token> <subject> <org or -> <ROLE[,ROLE]>'");
ABSL_FLAG(std::string, jwt_algorithm, "RS256", "--auth=jwt: the one algorithm accepted, RS256 or HS256");
ABSL_FLAG(std::string, jwt_key_file, "",
          "--auth=jwt: PEM public key (RS256) or shared secret of at least 32 bytes (HS256)");
ABSL_FLAG(std::string, jwt_issuer, "", "--auth=jwt: the required 'iss' claim");
ABSL_FLAG(std::string, jwt_audience, "", "--auth=jwt: the required 'aud' claim");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate chain for TLS on the gRPC port");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA bundle: clients must present a certificate it signed (mutual TLS)");
ABSL_FLAG(std::string, log_format, "text", "log lines on stderr as 'text' or 'json'");

namespace {

std::string VersionString() { return absl::StrCat("nvlschedd ", NVLSCHED_VERSION, "\n"); }

// Transparent huge pages while a start-up builds its records, 4 KiB pages after it. A start-up
// at 100k machines builds gigabytes of records, and on these VMs a 4 KiB page fault is costly:
// 100,008 machines / 500k instances, exec to serving, alternated with the build before it
// (quick_check beside the load too): 13.9/13.6/14.9/14.5 s -> 6.5/9.4/9.0/7.7 s. Left on, huge
// pages raise an idle daemon's floor and what it keeps after a burst (overload_test: 40 -> 65
// MiB before the burst, +10.7 -> +18.3 MiB once idle after it; with them turned off once
// loaded: 49.5 MiB, +10.3 MiB), so the process turns them off then (PR_SET_THP_DISABLE: later
// faults get 4 KiB pages; the loaded records keep theirs). Batch calls/s showed no difference
// either way within the noise of 4 alternated rounds.
class HugePagesWhileLoading {
 public:
  HugePagesWhileLoading() { Allow(true); }
  ~HugePagesWhileLoading() { Allow(false); }
  HugePagesWhileLoading(const HugePagesWhileLoading&) = delete;
  HugePagesWhileLoading& operator=(const HugePagesWhileLoading&) = delete;

 private:
  static void Allow(bool allow) {
#ifdef NVLSCHED_JEMALLOC
    if (prctl(PR_SET_THP_DISABLE, allow ? 0 : 1, 0, 0, 0) != 0) {
      spdlog::warn("prctl(PR_SET_THP_DISABLE, {}) failed: {}", allow ? 0 : 1,
                   std::strerror(errno));
    }
#else
    (void)allow;
#endif
  }
};

// SQLite: one daemon on its file until a signal.
int RunAlone(const nvlsched::daemon::DaemonOptions& options, absl::Notification& stop) {
  absl::StatusOr<std::unique_ptr<nvlsched::daemon::Daemon>> daemon;
  {
    HugePagesWhileLoading huge_pages;
    daemon = nvlsched::daemon::Daemon::Start(options);
  }
  if (!daemon.ok()) {
    spdlog::critical("cannot start: {}", daemon.status().ToString());
    return 1;
  }
  stop.WaitForNotification();
  (*daemon)->Shutdown();
  (*daemon)->Wait();
  return 0;
}

// With --listen=HOST:0, the port first bound (as standby or leader) is kept for every later
// role, so clients, the port file and load balancers see one address per daemon.
void PinPort(int port, nvlsched::daemon::DaemonOptions& options) {
  const size_t colon = options.listen.rfind(':');
  if (colon != std::string::npos && options.listen.substr(colon + 1) == "0") {
    options.listen = absl::StrCat(options.listen.substr(0, colon), ":", port);
  }
}

// This daemon's standby server (daemon/server/standby.h), started when first needed and kept
// until the daemon leads; or, after this daemon stepped down, the stepped-down daemon itself
// (StepDown), which refuses every call the same way on the same server.
class Standby {
 public:
  explicit Standby(nvlsched::daemon::DaemonOptions& options) : options_(options) {}

  // Serves as a standby that refuses calls giving `reason` (logged when it changes), starting
  // the server if it is not up. False, logged, if it cannot listen.
  bool Serve(std::string reason) {
    if (stepped_down_ == nullptr && server_ == nullptr) {
      auto started = nvlsched::daemon::StandbyServer::Start(options_);
      if (!started.ok()) {
        spdlog::critical("cannot stand by: {}", started.status().ToString());
        return false;
      }
      server_ = *std::move(started);
      PinPort(server_->port(), options_);
    }
    if (reason != reason_) {
      int port = 0;
      if (stepped_down_ != nullptr) {
        stepped_down_->SetStandbyReason(reason);
        port = stepped_down_->port();
      } else {
        server_->SetReason(reason);
        port = server_->port();
      }
      spdlog::warn("{} (serving NOT_SERVING on port {}; retrying every {}s)", reason, port,
                   absl::ToDoubleSeconds(options_.standby_poll));
      reason_ = std::move(reason);
    }
    return true;
  }

  // Steps the leading daemon down (Daemon::StepDown: it refuses with `reason`) and stands by on
  // its server, so the port never goes through a server's shutdown between leading and
  // standing by.
  void StepDown(std::unique_ptr<nvlsched::daemon::Daemon> leader, std::string reason) {
    leader->StepDown(reason);
    server_.reset();
    stepped_down_ = std::move(leader);
    reason_ = std::move(reason);
  }

  // Frees the port for the daemon about to lead.
  void Stop() {
    if (stepped_down_ != nullptr) {
      stepped_down_->Shutdown();
      stepped_down_->Wait();
      stepped_down_.reset();
    }
    server_.reset();  // ~StandbyServer shuts it down
    reason_.clear();
  }
  ~Standby() { Stop(); }

 private:
  nvlsched::daemon::DaemonOptions& options_;
  std::unique_ptr<nvlsched::daemon::StandbyServer> server_;
  std::unique_ptr<nvlsched::daemon::Daemon> stepped_down_;
  std::string reason_;
};

// PostgreSQL: stand by until this daemon takes the leader lock, lead until a signal or until
// the lock's connection is lost, then stand by again (never writing without the lock: the
// store latches the moment its connection goes; store/pg_store.h).
int RunLeaderOrStandby(nvlsched::daemon::DaemonOptions options, absl::Notification& stop) {
  using nvlsched::daemon::Daemon;
  if (absl::Status s = nvlsched::daemon::ValidateDaemonOptions(options); !s.ok()) {
    spdlog::critical("cannot start: {}", s.ToString());
    return 1;
  }
  Standby standby(options);
  while (!stop.HasBeenNotified()) {
    absl::StatusOr<std::unique_ptr<nvlsched::store::Store>> store =
        nvlsched::daemon::OpenStore(options);
    if (!store.ok()) {
      // ABORTED: another daemon leads. UNAVAILABLE: the database cannot be reached (yet).
      if (store.status().code() != absl::StatusCode::kAborted &&
          store.status().code() != absl::StatusCode::kUnavailable) {
        spdlog::critical("cannot start: {}", store.status().ToString());
        return 1;
      }
      if (!standby.Serve(absl::StrCat("standby, ", store.status().message(),
                                      "; this daemon takes over when the leader goes"))) {
        return 1;
      }
      stop.WaitForNotificationWithTimeout(options.standby_poll);
      continue;
    }
    const absl::Time took_lock = absl::Now();
    spdlog::info("took the leader lock of {}; loading", (*store)->path());
    standby.Stop();
    absl::StatusOr<std::unique_ptr<Daemon>> daemon;
    {
      HugePagesWhileLoading huge_pages;
      daemon = Daemon::Start(options, *std::move(store));
    }
    if (!daemon.ok()) {
      if (daemon.status().code() != absl::StatusCode::kUnavailable) {
        spdlog::critical("cannot start: {}", daemon.status().ToString());
        return 1;
      }
      spdlog::error("cannot lead: {}; standing by again", daemon.status().ToString());
      stop.WaitForNotificationWithTimeout(options.standby_poll);
      continue;
    }
    PinPort((*daemon)->port(), options);
    spdlog::info("leading: serving {:.3f}s after taking the leader lock",
                 absl::ToDoubleSeconds(absl::Now() - took_lock));
    absl::Status lost;
    while (lost.ok() && !stop.WaitForNotificationWithTimeout(options.standby_poll)) {
      lost = (*daemon)->CheckLeadership();
    }
    if (stop.HasBeenNotified()) {
      (*daemon)->Shutdown();
      (*daemon)->Wait();
      break;
    }
    spdlog::error("stepping down to standby: {}", lost.ToString());
    // The daemon's own server becomes the standby's: it refuses every call from now on, and
    // the port never goes through a shutdown, in whose window gRPC cancels the calls arriving.
    standby.StepDown(*std::move(daemon),
                     absl::StrCat("standby, this daemon stepped down (", lost.message(),
                                  "); another daemon may lead now"));
    // Let the other standbys take the lock first: this daemon was the one that lost it.
    stop.WaitForNotificationWithTimeout(2 * options.standby_poll);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Block the shutdown signals in every thread, first of all (gRPC's included, which inherit this mask);
  // one thread takes them with sigwait, so no handler runs in an arbitrary thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  absl::SetProgramUsageMessage(
      "nvlschedd: NVLink-domain aware GPU machine allocator (gRPC).\n"
      "Usage: nvlschedd [--listen=127.0.0.1:50051] [--db=var/nvlsched.db] [--seed_fleet=demo]");
  absl::FlagsUsageConfig usage_config;
  usage_config.version_string = VersionString;
  absl::SetFlagsUsageConfig(usage_config);
  absl::ParseCommandLine(argc, argv);

  nvlsched::daemon::LogFormat log_format;
  if (absl::Status s = nvlsched::daemon::ParseLogFormat(absl::GetFlag(FLAGS_log_format), &log_format);
      !s.ok()) {
    std::fprintf(stderr, "nvlschedd: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  nvlsched::daemon::InitLogging(log_format);

  nvlsched::daemon::DaemonOptions options;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.port_file = absl::GetFlag(FLAGS_port_file);
  options.db_path = absl::GetFlag(FLAGS_db);
  options.seed_fleet = absl::GetFlag(FLAGS_seed_fleet);
  options.sync = absl::GetFlag(FLAGS_sync);
  options.max_batch_count = absl::GetFlag(FLAGS_max_batch_count);
  options.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);
  options.max_queued_calls = absl::GetFlag(FLAGS_max_queued_calls);
  options.read_threads = absl::GetFlag(FLAGS_read_threads);
  options.read_nice = absl::GetFlag(FLAGS_read_nice);
  options.max_queued_reads = absl::GetFlag(FLAGS_max_queued_reads);
  options.max_pending_reply_mib = absl::GetFlag(FLAGS_max_pending_reply_mib);
  options.pending_reply_timeout = absl::GetFlag(FLAGS_pending_reply_timeout);
  options.grpc_memory_mib = absl::GetFlag(FLAGS_grpc_memory_mib);
  options.grpc_max_threads = absl::GetFlag(FLAGS_grpc_max_threads);
  options.max_concurrent_streams = absl::GetFlag(FLAGS_max_concurrent_streams);
  options.max_request_mib = absl::GetFlag(FLAGS_max_request_mib);
  options.max_reply_mib = absl::GetFlag(FLAGS_max_reply_mib);
  options.keepalive_time = absl::GetFlag(FLAGS_keepalive_time);
  options.keepalive_timeout = absl::GetFlag(FLAGS_keepalive_timeout);
  options.min_client_ping_interval = absl::GetFlag(FLAGS_min_client_ping_interval);
  options.max_ping_strikes = absl::GetFlag(FLAGS_max_ping_strikes);
  options.malloc_trim_mib = absl::GetFlag(FLAGS_malloc_trim_mib);
  options.event_retention = absl::GetFlag(FLAGS_event_retention);
  options.watch_buffer = absl::GetFlag(FLAGS_watch_buffer);
  options.max_queue_timeout = absl::GetFlag(FLAGS_max_queue_timeout);
  options.max_queue_length = absl::GetFlag(FLAGS_max_queue_length);
  options.reservation_depth = absl::GetFlag(FLAGS_reservation_depth);
  options.preemption_grace = absl::GetFlag(FLAGS_preemption_grace);
  options.require_cleaning = absl::GetFlag(FLAGS_require_cleaning);
  options.snapshot_dir = absl::GetFlag(FLAGS_snapshot_dir);
  options.snapshot_interval = absl::GetFlag(FLAGS_snapshot_interval);
  options.snapshot_keep = absl::GetFlag(FLAGS_snapshot_keep);
  options.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  options.auth = absl::GetFlag(FLAGS_auth);
  options.tokens_file = absl::GetFlag(FLAGS_tokens_file);
  options.jwt_algorithm = absl::GetFlag(FLAGS_jwt_algorithm);
  options.jwt_key_file = absl::GetFlag(FLAGS_jwt_key_file);
  options.jwt_issuer = absl::GetFlag(FLAGS_jwt_issuer);
  options.jwt_audience = absl::GetFlag(FLAGS_jwt_audience);
  options.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key = absl::GetFlag(FLAGS_tls_key);
  options.tls_client_ca = absl::GetFlag(FLAGS_tls_client_ca);

  options.standby_poll = absl::GetFlag(FLAGS_standby_poll);

  // One thread takes SIGTERM/SIGINT; every loop below waits on `stop`.
  absl::Notification stop;
  std::thread signal_thread([&signals, &stop] {
    int signo = 0;
    sigwait(&signals, &signo);
    if (!stop.HasBeenNotified()) {
      spdlog::info("received {}", signo == SIGTERM ? "SIGTERM" : "SIGINT");
      stop.Notify();
    }
  });
  const int rc = nvlsched::store::IsPostgresUri(options.db_path) ? RunLeaderOrStandby(options, stop)
                                                                 : RunAlone(options, stop);
  // Release the signal thread if no signal came (a start-up failure).
  if (!stop.HasBeenNotified()) {
    stop.Notify();
    ::kill(::getpid(), SIGTERM);
  }
  signal_thread.join();
  return rc;
}