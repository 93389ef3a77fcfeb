// The daemon's security edge, in process (Daemon::Start on 127.0.0.1:0): TLS and mutual TLS
// handshakes with and without client certificates, JWT auth end to end (health needs no
// token, our services do), and the start-up refusals (--auth=none off loopback, half-set
// TLS or auth flags, out-of-range overload limits). Test certificates: testdata/tls (make.sh regenerates them).
#include <grpcpp/grpcpp.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/substitute.h"
#include "absl/time/clock.h"
#include "daemon/server/daemon.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "nvlsched/v1/capacity_service.grpc.pb.h"
#include "tests/daemon/server/in_process_daemon.h"
#include "tests/testing/test_tokens.h"

namespace nvlsched::daemon {
namespace {

using ::testing::HasSubstr;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}
std::string Tls(const std::string& name) { return absl::StrCat(NVLSCHED_TEST_TLS_DIR, "/", name); }

class DaemonSecurityTest : public nvlsched::testing::InProcessDaemonTest {
 protected:
  void Start(const DaemonOptions& options) { StartDaemon(options); }

  // A health check and a ListOffers on a fresh channel; returns the first failure.
  static grpc::Status Probe(const std::shared_ptr<grpc::Channel>& channel,
                            const std::string& token = "") {
    auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(5);
    grpc::ClientContext health_ctx;
    health_ctx.set_deadline(deadline);
    grpc::health::v1::HealthCheckResponse health;
    grpc::Status status = grpc::health::v1::Health::NewStub(channel)->Check(
        &health_ctx, grpc::health::v1::HealthCheckRequest(), &health);
    if (!status.ok()) return status;
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline);
    if (!token.empty()) ctx.AddMetadata("authorization", absl::StrCat("Bearer ", token));
    v1::ListOffersResponse offers;
    return v1::CapacityService::NewStub(channel)->ListOffers(&ctx, v1::ListOffersRequest(),
                                                             &offers);
  }
  std::shared_ptr<grpc::Channel> TlsChannel(const std::string& client_cert = "",
                                            const std::string& root = "ca.pem") {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ReadFile(Tls(root));
    if (!client_cert.empty()) {
      ssl.pem_cert_chain = ReadFile(Tls(client_cert + ".pem"));
      ssl.pem_private_key = ReadFile(Tls(client_cert + ".key"));
    }
    return grpc::CreateChannel(Address(), grpc::SslCredentials(ssl));
  }
  std::shared_ptr<grpc::Channel> PlainChannel() {
    return grpc::CreateChannel(Address(), grpc::InsecureChannelCredentials());
  }
};

TEST_F(DaemonSecurityTest, TlsServesTlsClientsOnly) {
  DaemonOptions options = Base();
  options.tls_cert = Tls("server.pem");
  options.tls_key = Tls("server.key");
  Start(options);
  grpc::Status tls = Probe(TlsChannel());
  EXPECT_TRUE(tls.ok()) << tls.error_message();
  EXPECT_EQ(Probe(PlainChannel()).error_code(), grpc::StatusCode::UNAVAILABLE);
  // A client that trusts another CA refuses our certificate.
  EXPECT_EQ(Probe(TlsChannel("", "other_ca.pem")).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(DaemonSecurityTest, MutualTlsNeedsAClientCertificateFromTheClientCa) {
  DaemonOptions options = Base();
  options.tls_cert = Tls("server.pem");
  options.tls_key = Tls("server.key");
  options.tls_client_ca = Tls("ca.pem");
  Start(options);
  grpc::Status with_cert = Probe(TlsChannel("client"));
  EXPECT_TRUE(with_cert.ok()) << with_cert.error_message();
  EXPECT_EQ(Probe(TlsChannel()).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(Probe(TlsChannel("other_client")).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(Probe(PlainChannel()).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(DaemonSecurityTest, JwtAuthGuardsTheApiButNotHealth) {
  const testing::RsaKeyPair keys = testing::MakeRsaKeyPair();
  const std::string key_file = dir_ + "/jwt.pub";
  std::ofstream(key_file) << keys.public_pem;
  DaemonOptions options = Base();
  options.auth = "jwt";
  options.jwt_algorithm = "RS256";
  options.jwt_key_file = key_file;
  options.jwt_issuer = "https://auth.example.test";
  options.jwt_audience = "nvlsched";
  Start(options);

  grpc::ClientContext health_ctx;
  grpc::health::v1::HealthCheckResponse health;
  ASSERT_TRUE(grpc::health::v1::Health::NewStub(PlainChannel())
                  ->Check(&health_ctx, grpc::health::v1::HealthCheckRequest(), &health)
                  .ok());
  EXPECT_EQ(health.status(), grpc::health::v1::HealthCheckResponse::SERVING);

  EXPECT_EQ(Probe(PlainChannel()).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  const std::string token = testing::SignJwt(
      "RS256", keys.private_pem,
      absl::Substitute(R"({"sub":"alice","org":"demo","roles":["FORGE_TENANT_ADMIN"],)"
                       R"("iss":"https://auth.example.test","aud":"nvlsched","exp":$0})",
                       absl::ToUnixSeconds(absl::Now()) + 600));
  grpc::Status with_token = Probe(PlainChannel(), token);
  EXPECT_TRUE(with_token.ok()) << with_token.error_message();
  EXPECT_EQ(Probe(PlainChannel(), token + "x").error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(DaemonSecurityTest, RefusesToStartWithUnsafeOrIncompleteSettings) {
  struct Case {
    std::function<void(DaemonOptions&)> set;
    absl::StatusCode code;
    std::string message;
  };
  const Case cases[] = {
      {[](DaemonOptions& o) { o.listen = "0.0.0.0:0"; }, absl::StatusCode::kInvalidArgument,
       "allowed only on a loopback --listen"},
      {[](DaemonOptions& o) { o.auth = "tokens"; }, absl::StatusCode::kInvalidArgument,
       "--auth=tokens needs --tokens_file"},
      {[](DaemonOptions& o) { o.auth = "ldap"; }, absl::StatusCode::kInvalidArgument,
       "use none, tokens or jwt"},
      {[](DaemonOptions& o) { o.auth = "jwt"; }, absl::StatusCode::kInvalidArgument,
       "--auth=jwt needs --jwt_key_file"},
      {[this](DaemonOptions& o) {
         o.auth = "tokens";
         o.tokens_file = dir_ + "/missing";
       },
       absl::StatusCode::kNotFound, "cannot read --tokens_file"},
      {[](DaemonOptions& o) { o.tls_cert = Tls("server.pem"); }, absl::StatusCode::kInvalidArgument,
       "TLS needs both --tls_cert and --tls_key"},
      {[](DaemonOptions& o) { o.max_queued_calls = 0; }, absl::StatusCode::kInvalidArgument,
       "--max_queued_calls must be at least 1"},
      {[](DaemonOptions& o) { o.tls_client_ca = Tls("ca.pem"); },
       absl::StatusCode::kInvalidArgument, "--tls_client_ca needs --tls_cert and --tls_key"},
      // The overload limits (gRPC's own and the reply budget).
      {[](DaemonOptions& o) { o.max_pending_reply_mib = 0; }, absl::StatusCode::kInvalidArgument,
       "--max_pending_reply_mib must be within 1..1048576 (got 0)"},
      {[](DaemonOptions& o) { o.pending_reply_timeout = absl::Seconds(-1); },
       absl::StatusCode::kInvalidArgument, "--pending_reply_timeout must be within 0 and inf"},
      {[](DaemonOptions& o) { o.grpc_memory_mib = 8; }, absl::StatusCode::kInvalidArgument,
       "--grpc_memory_mib must be within 16..1048576 (got 8)"},
      {[](DaemonOptions& o) { o.grpc_max_threads = 1; }, absl::StatusCode::kInvalidArgument,
       "--grpc_max_threads must be within 4..100000 (got 1)"},
      {[](DaemonOptions& o) { o.max_concurrent_streams = 0; },
       absl::StatusCode::kInvalidArgument, "--max_concurrent_streams must be within 1.."},
      {[](DaemonOptions& o) { o.max_request_mib = 2048; }, absl::StatusCode::kInvalidArgument,
       "--max_request_mib must be within 1..2047 (got 2048)"},
      {[](DaemonOptions& o) { o.max_reply_mib = 0; }, absl::StatusCode::kInvalidArgument,
       "--max_reply_mib must be within 1..2047 (got 0)"},
      {[](DaemonOptions& o) { o.keepalive_time = absl::ZeroDuration(); },
       absl::StatusCode::kInvalidArgument, "--keepalive_time must be within 1s and"},
      {[](DaemonOptions& o) { o.keepalive_timeout = absl::Milliseconds(10); },
       absl::StatusCode::kInvalidArgument, "--keepalive_timeout must be within 1s and"},
      {[](DaemonOptions& o) { o.min_client_ping_interval = absl::Seconds(-1); },
       absl::StatusCode::kInvalidArgument, "--min_client_ping_interval must be within 0 and"},
      {[](DaemonOptions& o) { o.max_ping_strikes = -1; }, absl::StatusCode::kInvalidArgument,
       "--max_ping_strikes must be within 0.."},
      {[](DaemonOptions& o) { o.malloc_trim_mib = -1; }, absl::StatusCode::kInvalidArgument,
       "--malloc_trim_mib must be within 0..1048576 (got -1)"},
  };
  for (const Case& c : cases) {
    DaemonOptions options = Base();
    c.set(options);
    absl::StatusOr<std::unique_ptr<Daemon>> started = Daemon::Start(options);
    EXPECT_EQ(started.status().code(), c.code) << c.message << ": " << started.status();
    EXPECT_THAT(started.status().message(), HasSubstr(c.message));
  }
  // With a real authenticator, a non-loopback listener is fine (not started here: tests
  // listen on 127.0.0.1 only).
}

}  // namespace
}  // namespace nvlsched::daemon
