#include "daemon/server/daemon.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/resource_quota.h>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "daemon/services/admin_service.h"
#include "daemon/auth/auth.h"
#include "daemon/engine/load_state.h"
#include "daemon/services/capacity_service.h"
#include "daemon/services/event_hub.h"
#include "daemon/services/event_service.h"
#include "daemon/engine/engine.h"
#include "daemon/api/fleet.h"
#include "daemon/engine/inventory_ops.h"
#include "daemon/services/instance_service.h"
#include "daemon/server/memory_trimmer.h"
#include "daemon/server/standby.h"
#include "daemon/server/metrics.h"
#include "daemon/services/inventory_service.h"
#include "daemon/services/read_pool.h"
#include "daemon/services/reply_budget.h"
#include "daemon/services/scheduler_service.h"
#include "daemon/services/snapshot_scheduler.h"
#include "daemon/engine/state.h"
#include "daemon/api/validation.h"
#include "grpc/health/v1/health.pb.h"
#include "store/pg_store.h"
#include "store/store.h"
#include "store/sync.h"

namespace nvlsched::daemon {
namespace {

// Writes the port through a temporary file and rename, so a reader never sees a partial file.
absl::Status WritePortFile(const std::string& path, int port) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << port << "\n";
    out.flush();
    if (!out) {
      return absl::UnavailableError(absl::StrCat("cannot write --port_file ", tmp));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot rename ", tmp, " to --port_file ", path));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadSecretFile(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read --", flag, "=", path));
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (data.empty()) return absl::InvalidArgumentError(absl::StrCat("--", flag, "=", path, " is empty"));
  return data;
}

// --auth and its files -> the AccessControl every service checks calls with.
absl::StatusOr<std::unique_ptr<AccessControl>> MakeAccessControl(const DaemonOptions& options) {
  if (options.auth == "none") {
    if (!IsLoopbackListen(options.listen)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--auth=none treats every caller as ", kProviderAdminRole,
          ", so it is allowed only on a loopback --listen (127.0.0.1, [::1], localhost); "
          "--listen=", options.listen, " is not: use --auth=tokens or --auth=jwt"));
    }
    return AccessControl::AllowAll();
  }
  if (options.auth == "tokens") {
    if (options.tokens_file.empty()) {
      return absl::InvalidArgumentError("--auth=tokens needs --tokens_file");
    }
    absl::StatusOr<std::unique_ptr<TokensFileAuthenticator>> tokens =
        TokensFileAuthenticator::Load(options.tokens_file);
    if (!tokens.ok()) return tokens.status();
    spdlog::info("auth: {} tokens from {}", (*tokens)->size(), options.tokens_file);
    return std::make_unique<AccessControl>(*std::move(tokens));
  }
  if (options.auth == "jwt") {
    if (options.jwt_key_file.empty()) {
      return absl::InvalidArgumentError("--auth=jwt needs --jwt_key_file");
    }
    JwtOptions jwt;
    jwt.algorithm = options.jwt_algorithm;
    absl::StatusOr<std::string> key = ReadSecretFile("jwt_key_file", options.jwt_key_file);
    if (!key.ok()) return key.status();
    jwt.key = *std::move(key);
    // A secret file usually ends with a newline the secret does not include.
    if (jwt.algorithm == "HS256") {
      while (!jwt.key.empty() && (jwt.key.back() == '\n' || jwt.key.back() == '\r')) {
        jwt.key.pop_back();
      }
    }
    jwt.issuer = options.jwt_issuer;
    jwt.audience = options.jwt_audience;
    absl::StatusOr<std::unique_ptr<JwtAuthenticator>> auth = JwtAuthenticator::Create(std::move(jwt));
    if (!auth.ok()) return auth.status();
    spdlog::info("auth: JWT {} issuer={} audience={}", options.jwt_algorithm, options.jwt_issuer,
                 options.jwt_audience);
    return std::make_unique<AccessControl>(*std::move(auth));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--auth=", options.auth, " is not known: use none, tokens or jwt"));
}

// --tls_* -> server credentials (insecure when no certificate is configured).
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const DaemonOptions& options) {
  if (options.tls_cert.empty() && options.tls_key.empty()) {
    if (!options.tls_client_ca.empty()) {
      return absl::InvalidArgumentError("--tls_client_ca needs --tls_cert and --tls_key");
    }
    return grpc::InsecureServerCredentials();
  }
  if (options.tls_cert.empty() || options.tls_key.empty()) {
    return absl::InvalidArgumentError("TLS needs both --tls_cert and --tls_key");
  }
  absl::StatusOr<std::string> cert = ReadSecretFile("tls_cert", options.tls_cert);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadSecretFile("tls_key", options.tls_key);
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions ssl(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  if (!options.tls_client_ca.empty()) {
    absl::StatusOr<std::string> ca = ReadSecretFile("tls_client_ca", options.tls_client_ca);
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *std::move(ca);
    ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  ssl.pem_key_cert_pairs.push_back({*std::move(key), *std::move(cert)});
  return grpc::SslServerCredentials(ssl);
}

absl::StatusOr<store::SyncMode> ParseSync(const std::string& text) {
  if (text == "full") return store::SyncMode::kFull;
  if (text == "normal") return store::SyncMode::kNormal;
  return absl::InvalidArgumentError(
      absl::StrCat("--sync=", text, " is not known: use full (survives power loss) or normal "
                   "(survives a process crash)"));
}

// Runs `write` as one engine op and waits for it to be durable.
absl::Status RunWriteAndWait(Engine& engine, Engine::WriteFn write) {
  Notification done;
  absl::Status result;
  absl::Status queued = engine.SubmitWrite(std::move(write), [&](absl::Status s) {
    result = std::move(s);
    done.Notify();
  });
  if (!queued.ok()) return queued;
  done.WaitForNotification();
  return result;
}

// Applies --seed_fleet when the database holds no machines.
absl::Status SeedFleet(const DaemonOptions& options, const State& state, Engine& engine) {
  if (options.seed_fleet.empty()) return absl::OkStatus();
  if (state.allocator().machine_count() > 0) {
    spdlog::info("--seed_fleet={} ignored: the database already holds {} machines",
                 options.seed_fleet, state.allocator().machine_count());
    return absl::OkStatus();
  }
  v1::Fleet fleet;
  if (options.seed_fleet == "demo") {
    fleet = DemoFleet();
  } else {
    absl::StatusOr<v1::Fleet> read = ReadFleetFile(options.seed_fleet);
    if (!read.ok()) return read.status();
    fleet = *std::move(read);
  }
  v1::ApplyFleetRequest request;
  *request.mutable_fleet() = fleet;
  if (absl::Status s = ValidateApplyFleetRequest(request, ValidationContext{}); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--seed_fleet=", options.seed_fleet, ": ", s.message()));
  }
  v1::ApplyFleetResponse response;
  absl::Status s = RunWriteAndWait(engine, [&](State& st) {
    return ApplyFleet(st, request, &response);
  });
  if (!s.ok()) return s;
  spdlog::info("seeded the fleet from --seed_fleet={}: {} instance types, {} domains, {} machines, "
               "{} tenants", options.seed_fleet, response.instance_types(), response.domains(),
               response.machines(), response.tenants());
  return absl::OkStatus();
}

constexpr int64_t kMib = 1024 * 1024;

absl::Status CheckRange(const char* flag, int64_t value, int64_t min, int64_t max) {
  if (value >= min && value <= max) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, " must be within ", min, "..", max, " (got ", value, ")"));
}

absl::Status CheckDuration(const char* flag, absl::Duration value, absl::Duration min,
                           absl::Duration max) {
  if (value >= min && value <= max) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "--", flag, " must be within ", absl::FormatDuration(min), " and ",
      absl::FormatDuration(max), " (got ", absl::FormatDuration(value), ")"));
}

// The overload flags: each must be in range (gRPC takes ints of milliseconds and bytes).
absl::Status ValidateOverloadOptions(const DaemonOptions& o) {
  const absl::Duration int_ms = absl::Milliseconds(INT_MAX);
  for (absl::Status s : {
           CheckRange("max_pending_reply_mib", o.max_pending_reply_mib, 1, 1 << 20),
           CheckRange("read_threads", o.read_threads, 1, 64),
           CheckRange("read_nice", o.read_nice, 0, 19),
           CheckRange("max_queued_reads", o.max_queued_reads, 1, 1 << 20),
           CheckDuration("pending_reply_timeout", o.pending_reply_timeout, absl::ZeroDuration(),
                         absl::InfiniteDuration()),
           CheckRange("grpc_memory_mib", o.grpc_memory_mib, 16, 1 << 20),
           CheckRange("grpc_max_threads", o.grpc_max_threads, 4, 100000),
           CheckRange("max_concurrent_streams", o.max_concurrent_streams, 1, INT_MAX),
           CheckRange("max_request_mib", o.max_request_mib, 1, 2047),
           CheckRange("max_reply_mib", o.max_reply_mib, 1, 2047),
           CheckDuration("keepalive_time", o.keepalive_time, absl::Seconds(1), int_ms),
           CheckDuration("keepalive_timeout", o.keepalive_timeout, absl::Seconds(1), int_ms),
           CheckDuration("min_client_ping_interval", o.min_client_ping_interval,
                         absl::ZeroDuration(), int_ms),
           CheckRange("max_ping_strikes", o.max_ping_strikes, 0, INT_MAX),
           CheckRange("malloc_trim_mib", o.malloc_trim_mib, 0, 1 << 20),
       }) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

int Milliseconds(absl::Duration d) { return static_cast<int>(absl::ToInt64Milliseconds(d)); }

// gRPC's own limits on the server (flags of DaemonOptions; validated above).
void SetGrpcLimits(const DaemonOptions& o, grpc::ServerBuilder& builder) {
  grpc::ResourceQuota quota("nvlschedd");
  quota.Resize(static_cast<size_t>(o.grpc_memory_mib * kMib));
  quota.SetMaxThreads(o.grpc_max_threads);
  builder.SetResourceQuota(quota);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, o.max_concurrent_streams);
  builder.SetMaxReceiveMessageSize(static_cast<int>(o.max_request_mib * kMib));
  builder.SetMaxSendMessageSize(static_cast<int>(o.max_reply_mib * kMib));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, Milliseconds(o.keepalive_time));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, Milliseconds(o.keepalive_timeout));
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                             Milliseconds(o.min_client_ping_interval));
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, o.max_ping_strikes);
}

// host:port at which clients reach this daemon: the --listen host (this machine's name for a
// wildcard one) and the bound port.
std::string AdvertisedAddress(const std::string& listen, int port) {
  std::string host = listen.substr(0, listen.rfind(':'));
  if (host.empty() || host == "0.0.0.0" || host == "[::]" || host == "::") {
    char name[256] = {};
    host = ::gethostname(name, sizeof(name) - 1) == 0 ? name : "localhost";
  }
  return absl::StrCat(host, ":", port);
}

}  // namespace

struct Daemon::Impl {
  DaemonOptions options;
  std::unique_ptr<Metrics> metrics;
  std::unique_ptr<AccessControl> access;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<State> state;
  // Before the engine: its on_commit publishes here, so the hub outlives it.
  std::unique_ptr<EventHub> events;
  std::unique_ptr<Engine> engine;
  // Before the services and the server: its tasks finish calls, so it stops after the server
  // has shut down (which waits for them).
  std::unique_ptr<ReadPool> reads;
  std::unique_ptr<InstanceServiceImpl> instance_service;
  std::unique_ptr<InventoryServiceImpl> inventory_service;
  std::unique_ptr<CapacityServiceImpl> capacity_service;
  std::unique_ptr<SchedulerServiceImpl> scheduler_service;
  std::unique_ptr<AdminServiceImpl> admin_service;
  std::unique_ptr<EventServiceImpl> event_service;
  std::unique_ptr<SnapshotScheduler> snapshots;
  // Counted by a server interceptor, so it outlives the server.
  std::unique_ptr<ReplyBudget> replies;
  std::unique_ptr<MemoryTrimmer> trimmer;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  // Set once the server runs; read by the engine thread when a commit fails.
  std::atomic<grpc::HealthCheckServiceInterface*> health{nullptr};
  std::atomic<bool> read_only{false};

  Mutex shutdown_mu;
  bool shut_down ABSL_GUARDED_BY(shutdown_mu) = false;
  bool stepped_down ABSL_GUARDED_BY(shutdown_mu) = false;

  // The end of leading, for StepDown and Shutdown alike: the snapshot schedule and the admin
  // worker stop, the engine finishes what it holds, then the database is closed (its
  // connection, and a PostgreSQL leader lock with it). Nothing uses the store afterwards.
  // Idempotent.
  void StopWritingAndCloseStore() {
    snapshots.reset();
    admin_service->Stop();
    engine->Stop();
    store.reset();
  }
};

Daemon::Daemon(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Daemon::~Daemon() { Shutdown(); }

absl::Status ValidateDaemonOptions(const DaemonOptions& options) {
  if (absl::StatusOr<store::SyncMode> sync = ParseSync(options.sync); !sync.ok()) {
    return sync.status();
  }
  if (options.standby_poll <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--standby_poll must be positive (got ", absl::FormatDuration(options.standby_poll), ")"));
  }
  if (options.event_retention < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--event_retention must be at least 1 (got ", options.event_retention, ")"));
  }
  if (options.watch_buffer < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--watch_buffer must be at least 1 (got ", options.watch_buffer, ")"));
  }
  if (options.max_queue_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--max_queue_timeout must not be negative (got ",
        absl::FormatDuration(options.max_queue_timeout), ")"));
  }
  if (options.max_queue_length < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--max_queue_length must be at least 1 (got ", options.max_queue_length, ")"));
  }
  if (options.reservation_depth < 0 || options.reservation_depth > 64) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--reservation_depth must be within 0..64 (got ", options.reservation_depth, ")"));
  }
  if (options.preemption_grace < absl::ZeroDuration() ||
      options.preemption_grace >= options.max_queue_timeout) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--preemption_grace must be within 0 and --max_queue_timeout (",
        absl::FormatDuration(options.max_queue_timeout), "), got ",
        absl::FormatDuration(options.preemption_grace)));
  }
  if (options.max_queued_calls < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--max_queued_calls must be at least 1 (got ", options.max_queued_calls, ")"));
  }
  if (absl::Status s = ValidateOverloadOptions(options); !s.ok()) return s;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<store::Store>> OpenStore(const DaemonOptions& options) {
  absl::StatusOr<store::SyncMode> sync = ParseSync(options.sync);
  if (!sync.ok()) return sync.status();
  if (!store::IsPostgresUri(options.db_path)) {
    std::error_code ec;
    const std::filesystem::path db_dir = std::filesystem::path(options.db_path).parent_path();
    if (!db_dir.empty()) std::filesystem::create_directories(db_dir, ec);
    if (ec) {
      return absl::UnavailableError(absl::StrCat("cannot create the directory of --db=",
                                                 options.db_path, ": ", ec.message()));
    }
  }
  store::StoreOptions store_options;
  store_options.path = options.db_path;
  store_options.sync = *sync;
  // The start-up's LoadAll reads the whole file anyway: quick_check runs beside it.
  store_options.quick_check_with_load = true;
  // An upgrade may rebuild a table (schema v12: 15-24 s for 500,000 instances): say so.
  store_options.on_migration = [path = store::RedactPostgresUri(options.db_path)](
                                   const store::MigrationStep& step) {
    if (!step.took.has_value()) {
      spdlog::info("upgrading {} from schema version {} to {}: {}; a large database takes a while",
                   path, step.from_version, step.to_version, step.description);
    } else {
      spdlog::info("upgraded {} to schema version {} in {:.3f}s", path, step.to_version,
                   absl::ToDoubleSeconds(*step.took));
    }
  };
  return store::Store::Open(store_options);
}

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Start(const DaemonOptions& options) {
  if (absl::Status s = ValidateDaemonOptions(options); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<store::Store>> store = OpenStore(options);
  if (!store.ok()) return store.status();
  return Start(options, *std::move(store));
}

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Start(const DaemonOptions& options,
                                                      std::unique_ptr<store::Store> store) {
  if (absl::Status s = ValidateDaemonOptions(options); !s.ok()) return s;
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  absl::StatusOr<std::unique_ptr<AccessControl>> access = MakeAccessControl(options);
  if (!access.ok()) return access.status();
  impl->access = *std::move(access);
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      MakeServerCredentials(options);
  if (!credentials.ok()) return credentials.status();
  absl::StatusOr<std::unique_ptr<Metrics>> metrics = Metrics::Start(options.metrics_listen);
  if (!metrics.ok()) return metrics.status();
  impl->metrics = *std::move(metrics);
  impl->store = std::move(store);

  LoadReport load;
  allocator::GangQueue::Options queue_options;
  queue_options.reservation_depth = options.reservation_depth;
  queue_options.max_length = static_cast<size_t>(options.max_queue_length);
  absl::StatusOr<std::unique_ptr<State>> state =
      LoadState(*impl->store, &load, queue_options, options.max_queue_timeout);
  if (!state.ok()) return state.status();
  impl->state = *std::move(state);
  impl->state->ConfigurePreemption(options.preemption_grace);
  impl->state->ConfigureCleaning(options.require_cleaning);
  spdlog::info(
      "loaded {} ({} machines, {} instances) in {:.3f}s read + {:.3f}s rebuild (inventory "
      "{:.3f}s, parse {:.3f}s, claims {:.3f}s, records {:.3f}s, queue and checks {:.3f}s)",
      impl->store->path(), load.machines, load.instances, absl::ToDoubleSeconds(load.read_time),
      absl::ToDoubleSeconds(load.rebuild_time), absl::ToDoubleSeconds(load.inventory_time),
      absl::ToDoubleSeconds(load.parse_time), absl::ToDoubleSeconds(load.claims_time),
      absl::ToDoubleSeconds(load.records_time), absl::ToDoubleSeconds(load.rest_time));

  Impl* raw = impl.get();
  store::Store* store_for_events = impl->store.get();
  EventHubOptions hub_options;
  hub_options.watch_buffer = static_cast<size_t>(options.watch_buffer);
  impl->events = std::make_unique<EventHub>(
      [store_for_events](uint64_t after, size_t limit) {
        return store_for_events->ReadEvents(after, limit);
      },
      impl->state->oldest_event(), impl->state->newest_event(), hub_options,
      [raw](const EventHubStats& stats) { raw->metrics->ObserveEvents(stats); });
  impl->metrics->ObserveCapacity(*impl->state);
  impl->metrics->ObserveQueue(*impl->state);
  impl->metrics->ObserveMachineStates(*impl->state);
  Engine::Options engine_options;
  engine_options.max_queued = static_cast<size_t>(options.max_queued_calls);
  engine_options.event_retention = static_cast<uint64_t>(options.event_retention);
  engine_options.on_write_stages = [raw](const WriteStages& stages) {
    raw->metrics->ObserveWriteStages(stages);
  };
  impl->engine = std::make_unique<Engine>(
      impl->state.get(), impl->store.get(), engine_options,
      /*on_commit=*/[raw](const CommitReport& report) {
        // Watchers get the group's events only once they are durable (off this thread).
        if (report.status.ok()) raw->events->Publish(report.events, report.oldest_event);
        raw->metrics->ObserveCommit(report);
        raw->metrics->ObserveCheckpoints(raw->store->checkpoint_counts());
        raw->metrics->ObserveCapacity(*raw->state);
        raw->metrics->ObserveQueue(*raw->state);
        if (report.machines_changed) raw->metrics->ObserveMachineStates(*raw->state);
      },
      /*on_read_only=*/[raw](const absl::Status&) {
        raw->read_only.store(true);
        grpc::HealthCheckServiceInterface* health = raw->health.load();
        if (health != nullptr) health->SetServingStatus(false);
      });
  impl->engine->Start();
  if (absl::Status s = SeedFleet(options, *impl->state, *impl->engine); !s.ok()) return s;

  const AccessControl* access_control = impl->access.get();
  impl->replies = std::make_unique<ReplyBudget>(options.max_pending_reply_mib * kMib);
  ReplyBudget* replies = impl->replies.get();
  impl->reads = std::make_unique<ReadPool>(options.read_threads, options.read_nice,
                                           options.max_queued_reads);
  impl->instance_service = std::make_unique<InstanceServiceImpl>(
      impl->engine.get(), access_control, InstanceServiceImpl::Options{options.max_batch_count},
      replies, impl->reads.get());
  impl->inventory_service =
      std::make_unique<InventoryServiceImpl>(impl->engine.get(), access_control, replies);
  impl->capacity_service =
      std::make_unique<CapacityServiceImpl>(impl->engine.get(), access_control, replies);
  impl->scheduler_service =
      std::make_unique<SchedulerServiceImpl>(impl->engine.get(), access_control, replies);
  impl->admin_service =
      std::make_unique<AdminServiceImpl>(impl->store.get(), access_control, options.snapshot_dir);
  impl->event_service = std::make_unique<EventServiceImpl>(impl->events.get(), access_control);

  // Reflection can describe grpc.health.v1.Health only if its descriptor is in the generated
  // pool: the default health service does not link the generated code (TOOLCHAIN.md).
  grpc::health::v1::HealthCheckRequest::descriptor();
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  grpc::ServerBuilder builder;
  // Without this, a second daemon on the same port starts "fine" and steals half the calls.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  SetGrpcLimits(options, builder);
  builder.AddListeningPort(options.listen, *credentials, &impl->port);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(impl->metrics->InterceptorFactory());
  // Typed services: their answers are freed once serialized (reply_budget.h). Not
  // EventService, whose WatchEvents writes raw ByteBuffers, nor ListInstances, which answers
  // with one (instance_service.h).
  interceptors.push_back(impl->replies->InterceptorFactory(
      {v1::InstanceService::service_full_name(), v1::InventoryService::service_full_name(),
       v1::CapacityService::service_full_name(), v1::SchedulerService::service_full_name(),
       v1::AdminService::service_full_name()},
      {absl::StrCat("/", v1::InstanceService::service_full_name(), "/ListInstances")}));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  builder.RegisterService(impl->instance_service.get());
  builder.RegisterService(impl->inventory_service.get());
  builder.RegisterService(impl->capacity_service.get());
  builder.RegisterService(impl->scheduler_service.get());
  builder.RegisterService(impl->admin_service.get());
  builder.RegisterService(impl->event_service.get());
  impl->server = builder.BuildAndStart();
  if (impl->server == nullptr || impl->port == 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", options.listen,
        ": the address is in use (is another nvlschedd running?) or not valid; "
        "choose another with --listen=HOST:PORT (port 0 picks a free one)"));
  }
  impl->health.store(impl->server->GetHealthCheckService());
  // A commit may have failed while seeding: then the daemon starts read-only.
  impl->health.load()->SetServingStatus(!impl->read_only.load());
  // Standbys name this address to callers (PostgreSQL; a no-op for SQLite).
  if (absl::Status s = impl->store->AnnounceLeader(AdvertisedAddress(options.listen, impl->port));
      !s.ok()) {
    impl->server->Shutdown();
    return s;
  }

  if (!options.port_file.empty()) {
    if (absl::Status s = WritePortFile(options.port_file, impl->port); !s.ok()) {
      impl->server->Shutdown();
      return s;
    }
  }
  if (!options.snapshot_dir.empty() && options.snapshot_interval > absl::ZeroDuration()) {
    impl->snapshots = std::make_unique<SnapshotScheduler>(
        impl->store.get(), options.snapshot_dir, options.snapshot_interval, options.snapshot_keep);
    if (absl::Status s = impl->snapshots->Start(); !s.ok()) {
      impl->server->Shutdown();
      return s;
    }
  }
  impl->replies->StartSweeper(options.pending_reply_timeout,
                              [raw](int64_t pending_bytes, int64_t cancelled_unread) {
                                raw->metrics->ObserveReplies(pending_bytes, cancelled_unread);
                              });
  if (options.malloc_trim_mib > 0) {
    impl->trimmer = std::make_unique<MemoryTrimmer>(options.malloc_trim_mib * kMib);
    impl->trimmer->Start();
  }
  spdlog::info("serving on {} (port {}, {}, --auth={}); metrics on {}", options.listen, impl->port,
               options.tls_cert.empty() ? "plaintext"
               : options.tls_client_ca.empty() ? "TLS" : "mutual TLS",
               options.auth,
               impl->metrics->port() == 0
                   ? std::string("(off)")
                   : absl::StrCat("http://127.0.0.1:", impl->metrics->port(), "/metrics"));
  return std::unique_ptr<Daemon>(new Daemon(std::move(impl)));
}

int Daemon::port() const { return impl_->port; }

absl::Status Daemon::CheckLeadership() {
  {
    MutexLock lock(&impl_->shutdown_mu);
    if (impl_->shut_down) return absl::UnavailableError("the daemon has shut down");
    if (impl_->stepped_down) {
      return absl::UnavailableError("this daemon stepped down: it holds no database");
    }
  }
  return impl_->store->CheckLeadership();
}

void Daemon::StepDown(const std::string& reason) {
  {
    MutexLock lock(&impl_->shutdown_mu);
    if (impl_->shut_down || impl_->stepped_down) return;
    impl_->stepped_down = true;
  }
  spdlog::info("stepping down: the server stays up and refuses every call UNAVAILABLE");
  // First: no call admitted from here on, whatever the rest takes.
  SetStandbyReason(reason);
  impl_->server->GetHealthCheckService()->SetServingStatus(false);
  impl_->events->Stop();
  // The ops already queued fail against the lost store. Closing the store frees the leader
  // lock: a leader that steps down because a commit failed on a connection that is still
  // alive would otherwise hold it for ever, and no daemon, itself included, could lead again.
  impl_->StopWritingAndCloseStore();
  impl_->metrics->StopServing();
  spdlog::info("stepped down");
}

void Daemon::SetStandbyReason(const std::string& reason) {
  impl_->engine->SetRefusal(absl::UnavailableError(reason));
}

void Daemon::Shutdown() {
  {
    MutexLock lock(&impl_->shutdown_mu);
    if (impl_->shut_down) return;
    impl_->shut_down = true;
  }
  spdlog::info("shutting down: no new calls; in-flight calls have {}s",
               absl::ToDoubleSeconds(impl_->options.shutdown_grace));
  impl_->server->GetHealthCheckService()->SetServingStatus(false);
  // Watch streams never end by themselves: end them first (UNAVAILABLE, resume elsewhere).
  impl_->events->Stop();
  impl_->server->Shutdown(std::chrono::system_clock::now() +
                          absl::ToChronoSeconds(impl_->options.shutdown_grace));
  impl_->replies->StopSweeper();
  // No call is in flight any more: finish what the engine holds, then close the database.
  impl_->StopWritingAndCloseStore();
  if (impl_->trimmer != nullptr) impl_->trimmer->Stop();
  spdlog::info("shut down cleanly");
}

void Daemon::Wait() { impl_->server->Wait(); }

namespace {

// Answers every call that reaches it UNAVAILABLE with the standby's reason.
class RejectReactor : public grpc::ServerGenericBidiReactor {
 public:
  explicit RejectReactor(const std::string& reason) {
    Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, reason));
  }
  void OnDone() override { delete this; }
};

class RejectEveryCall : public grpc::CallbackGenericService {
 public:
  void SetReason(std::string reason) {
    MutexLock lock(&mu_);
    reason_ = std::move(reason);
  }

  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext* /*context*/) override {
    MutexLock lock(&mu_);
    return new RejectReactor(reason_);
  }

 private:
  Mutex mu_;
  std::string reason_ ABSL_GUARDED_BY(mu_) = "standby: this nvlschedd does not lead its database";
};

}  // namespace

struct StandbyServer::Impl {
  RejectEveryCall reject;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  Mutex mu;
  bool shut_down ABSL_GUARDED_BY(mu) = false;
};

StandbyServer::StandbyServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

StandbyServer::~StandbyServer() { Shutdown(); }

absl::StatusOr<std::unique_ptr<StandbyServer>> StandbyServer::Start(
    const DaemonOptions& options) {
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      MakeServerCredentials(options);
  if (!credentials.ok()) return credentials.status();
  auto impl = std::make_unique<Impl>();
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(options.listen, *credentials, &impl->port);
  builder.RegisterCallbackGenericService(&impl->reject);
  impl->server = builder.BuildAndStart();
  if (impl->server == nullptr || impl->port == 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", options.listen,
        " as a standby: the address is in use (is another nvlschedd running here?) or not "
        "valid; choose another with --listen=HOST:PORT"));
  }
  // NOT_SERVING for "" and for every service name a client may ask about.
  impl->server->GetHealthCheckService()->SetServingStatus(false);
  if (!options.port_file.empty()) {
    if (absl::Status s = WritePortFile(options.port_file, impl->port); !s.ok()) {
      impl->server->Shutdown();
      return s;
    }
  }
  return std::unique_ptr<StandbyServer>(new StandbyServer(std::move(impl)));
}

void StandbyServer::SetReason(const std::string& reason) { impl_->reject.SetReason(reason); }

int StandbyServer::port() const { return impl_->port; }

void StandbyServer::Shutdown() {
  {
    MutexLock lock(&impl_->mu);
    if (impl_->shut_down) return;
    impl_->shut_down = true;
  }
  // Every call here is answered at once: nothing to wait for.
  impl_->server->Shutdown(std::chrono::system_clock::now());
  impl_->server->Wait();
}

}  // namespace nvlsched::daemon
