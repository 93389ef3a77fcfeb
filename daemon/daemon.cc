#include "daemon/daemon.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "grpc/health/v1/health.pb.h"

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

}  // namespace

struct Daemon::Impl {
  DaemonOptions options;
  std::unique_ptr<grpc::Server> server;
  int port = 0;

  absl::Mutex shutdown_mu;
  bool shut_down ABSL_GUARDED_BY(shutdown_mu) = false;
};

Daemon::Daemon(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Daemon::~Daemon() { Shutdown(); }

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Start(const DaemonOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;

  // Reflection can describe grpc.health.v1.Health only if its descriptor is in the generated
  // pool: the default health service does not link the generated code (TOOLCHAIN.md).
  grpc::health::v1::HealthCheckRequest::descriptor();
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  grpc::ServerBuilder builder;
  // Without this, a second daemon on the same port starts "fine" and steals half the calls.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(options.listen, grpc::InsecureServerCredentials(), &impl->port);
  impl->server = builder.BuildAndStart();
  if (impl->server == nullptr || impl->port == 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", options.listen,
        ": the address is in use (is another nvlschedd running?) or not valid; "
        "choose another with --listen=HOST:PORT (port 0 picks a free one)"));
  }
  impl->server->GetHealthCheckService()->SetServingStatus(true);

  if (!options.port_file.empty()) {
    if (absl::Status s = WritePortFile(options.port_file, impl->port); !s.ok()) {
      impl->server->Shutdown();
      return s;
    }
  }
  spdlog::info("serving on {} (port {})", options.listen, impl->port);
  return std::unique_ptr<Daemon>(new Daemon(std::move(impl)));
}

int Daemon::port() const { return impl_->port; }

void Daemon::Shutdown() {
  {
    absl::MutexLock lock(&impl_->shutdown_mu);
    if (impl_->shut_down) return;
    impl_->shut_down = true;
  }
  spdlog::info("shutting down: no new calls; in-flight calls have {}s",
               absl::ToDoubleSeconds(impl_->options.shutdown_grace));
  impl_->server->GetHealthCheckService()->SetServingStatus(false);
  impl_->server->Shutdown(std::chrono::system_clock::now() +
                          absl::ToChronoSeconds(impl_->options.shutdown_grace));
  spdlog::info("shut down cleanly");
}

void Daemon::Wait() { impl_->server->Wait(); }

}  // namespace nvlsched::daemon
