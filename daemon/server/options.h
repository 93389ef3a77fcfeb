// DaemonOptions: everything nvlschedd is configured with. main() fills it from flags;
// in-process tests fill it directly.
#ifndef NVLSCHED_DAEMON_SERVER_OPTIONS_H_
#define NVLSCHED_DAEMON_SERVER_OPTIONS_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"

namespace nvlsched::daemon {

struct DaemonOptions {
  // host:port to serve gRPC on; port 0 picks a free port (see Daemon::port()).
  std::string listen = "127.0.0.1:50051";
  // If set, the bound port is written here (atomically, by rename) once serving.
  std::string port_file;
  // SQLite database file (its directory is created if missing), or a PostgreSQL URI
  // (postgresql://...: active/standby daemons on one database; store/pg_store.h).
  std::string db_path = "var/nvlsched.db";
  // PostgreSQL only: how often a standby retries the leader lock, and how often the leader
  // checks that it still holds it (main.cc).
  absl::Duration standby_poll = absl::Seconds(1);
  // "demo", a fleet file (JSON of nvlsched.v1.Fleet), or empty. Applied only when the database
  // holds no machines.
  std::string seed_fleet;
  // "full" (survives power loss) or "normal" (survives a process crash).
  std::string sync = "full";
  // The largest batch BatchCreateInstances accepts.
  int max_batch_count = 18;
  // Calls queued for the engine at once; beyond this they fail fast with RESOURCE_EXHAUSTED.
  int max_queued_calls = 4096;
  // ListInstances is answered from the read view on this many threads of its own, at nice
  // value read_nice (0..19; 0: the daemon's own priority), so that reads use the CPU the
  // writes leave (services/read_pool.h).
  int read_threads = 2;
  int read_nice = 10;
  // Reads waiting for one of those threads at once; beyond it they are refused at once with
  // RESOURCE_EXHAUSTED rather than waiting out their deadlines.
  int max_queued_reads = 64;
  // Answers handed to gRPC and not yet sent (clients that do not read), in MiB; at or beyond it
  // calls are refused with RESOURCE_EXHAUSTED (services/reply_budget.h).
  int64_t max_pending_reply_mib = 64;
  // A call whose answer has waited this long for its client to read it is cancelled (the
  // client sees CANCELLED) and the answer freed, so no client holds the budget for ever;
  // zero turns it off.
  absl::Duration pending_reply_timeout = absl::Seconds(30);
  // gRPC's own limits. The memory gRPC accounts for (ResourceQuota: call arenas, transport
  // buffers; under pressure it shrinks windows, refuses connections and cancels streams), and
  // the threads it may start for synchronous handlers (the reflection service).
  int64_t grpc_memory_mib = 256;
  int grpc_max_threads = 32;
  // Calls (HTTP/2 streams) one connection may have open at once; a client queues the rest.
  int max_concurrent_streams = 100;
  // The largest request and answer, in MiB (RESOURCE_EXHAUSTED beyond them).
  int max_request_mib = 4;
  int max_reply_mib = 16;
  // Server keepalive: a connection idle this long is pinged, and closed (its calls cancelled)
  // if the ping is not answered within the timeout: a vanished client's calls are freed.
  absl::Duration keepalive_time = absl::Minutes(1);
  absl::Duration keepalive_timeout = absl::Seconds(20);
  // Keepalive enforcement: a client ping sooner than this after the last one, with no data in
  // between, is a strike; after max_ping_strikes strikes the connection is closed (GOAWAY
  // ENHANCE_YOUR_CALM "too_many_pings").
  absl::Duration min_client_ping_interval = absl::Seconds(10);
  int max_ping_strikes = 2;
  // Freed heap memory is returned to the OS once this many MiB more are free than after the
  // last return (checked every second; server/memory_trimmer.h); 0 never returns it.
  int64_t malloc_trim_mib = 16;
  // Events kept in the database for WatchEvents resumes; older ones are pruned.
  int64_t event_retention = 1000000;
  // Events a live watcher may fall behind before it is ended (RESOURCE_EXHAUSTED).
  int64_t watch_buffer = 10000;
  // The scheduler queue (allocator/gang_queue.h): the longest queue_timeout a request may ask
  // for, the most requests waiting at once, and how many waiting batches hold reservations.
  absl::Duration max_queue_timeout = absl::Hours(7 * 24);
  int64_t max_queue_length = 100000;
  int reservation_depth = 4;
  // A deleted instance's machine goes to CLEANING until InventoryService/CompleteCleaning.
  bool require_cleaning = true;
  // How long a preempted spot instance has to be released before nvlsched releases it.
  absl::Duration preemption_grace = absl::Seconds(30);
  // How long in-flight calls may run after SIGTERM before they are cancelled.
  absl::Duration shutdown_grace = absl::Seconds(10);
  // Prometheus /metrics endpoint (host:port); empty turns it off.
  std::string metrics_listen = "127.0.0.1:9464";
  // Authentication (daemon/auth.h): "none" (only on a loopback --listen), "tokens" or "jwt".
  std::string auth = "none";
  std::string tokens_file;      // --auth=tokens
  std::string jwt_algorithm;    // --auth=jwt: RS256 or HS256
  std::string jwt_key_file;     // RS256: PEM public key; HS256: the secret
  std::string jwt_issuer;
  std::string jwt_audience;
  // TLS for the gRPC port: certificate chain and private key (PEM files); with a client CA,
  // clients must present a certificate it signed (mutual TLS).
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;
  // Snapshots: directory, period (zero = only on request) and how many to keep.
  std::string snapshot_dir;
  absl::Duration snapshot_interval = absl::ZeroDuration();
  int snapshot_keep = 5;
};

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_SERVER_OPTIONS_H_
