// End-to-end: the real build/bin/nvlschedd binary, started on port 0, checked through a real
// gRPC client, stopped with SIGTERM.
#include <grpcpp/grpcpp.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "nvlsched/v1/event_service.grpc.pb.h"
#include "nvlsched/v1/inventory_service.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/testing/daemon_process.h"

namespace nvlsched {
namespace {

using ::testing::HasSubstr;

class DaemonLifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::FreshTestDir();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string db() const { return absl::StrCat("--db=", dir_, "/nvlsched.db"); }

  // Runs a second daemon with `args` (in a work directory of its own) while `first` serves,
  // expects it to exit non-zero, and returns its log.
  std::string RunRefusedSecondDaemon(const std::vector<std::string>& args) {
    const std::string second_dir = dir_ + "/second";
    std::filesystem::create_directories(second_dir);
    testing::DaemonProcess second(NVLSCHEDD_PATH, second_dir);
    absl::StatusOr<int> code = second.RunToExit(args, absl::Seconds(60));
    EXPECT_TRUE(code.ok()) << code.status();
    EXPECT_NE(code.value_or(0), 0);
    return second.Log();
  }

  std::string dir_;
};

grpc::health::v1::HealthCheckResponse::ServingStatus CheckHealth(const std::string& address) {
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse resp;
  grpc::Status st = stub->Check(&ctx, req, &resp);
  EXPECT_TRUE(st.ok()) << st.error_message();
  return resp.status();
}

// The daemon answers health checks, then exits 0 on SIGTERM.
void ExpectServingThenStop(testing::DaemonProcess& daemon) {
  EXPECT_EQ(CheckHealth(daemon.address()), grpc::health::v1::HealthCheckResponse::SERVING);
  absl::StatusOr<int> code = daemon.StopWith(SIGTERM);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
}

TEST_F(DaemonLifecycleTest, ServesHealthAndExitsZeroOnSigterm) {
  testing::DaemonProcess daemon(NVLSCHEDD_PATH, dir_);
  ASSERT_TRUE(daemon.Start({db(), "--seed_fleet=demo"}).ok());
  EXPECT_EQ(CheckHealth(daemon.address()), grpc::health::v1::HealthCheckResponse::SERVING);

  absl::StatusOr<int> code = daemon.StopWith(SIGTERM);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << daemon.Log();
  EXPECT_THAT(daemon.Log(), HasSubstr("shut down cleanly"));
}

// GET http://127.0.0.1:port/metrics with a plain socket.
std::string HttpGetMetrics(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "";
  }
  const std::string req = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  (void)!write(fd, req.data(), req.size());
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) out.append(buf, n);
  close(fd);
  return out;
}

TEST_F(DaemonLifecycleTest, ServesPrometheusMetricsOfCallsAndCommits) {
  testing::DaemonProcess daemon(NVLSCHEDD_PATH, dir_);
  ASSERT_TRUE(daemon.Start({db(), "--seed_fleet=demo"}).ok());
  EXPECT_EQ(CheckHealth(daemon.address()), grpc::health::v1::HealthCheckResponse::SERVING);
  const std::string log = daemon.Log();
  const size_t at = log.find("metrics on http://127.0.0.1:");
  ASSERT_NE(at, std::string::npos) << log;
  const int port = std::atoi(log.c_str() + at + std::strlen("metrics on http://127.0.0.1:"));
  const std::string body = HttpGetMetrics(port);
  EXPECT_THAT(body, HasSubstr("200 OK"));
  // Seeding the demo fleet was one commit of one write.
  EXPECT_THAT(body, HasSubstr("nvlsched_commits_total{result=\"ok\"} 1"));
  EXPECT_THAT(body, HasSubstr("nvlsched_commit_duration_seconds_count 1"));
  EXPECT_THAT(body, HasSubstr("nvlsched_commit_group_ops_count 1"));
  for (const char* stage : {"queued", "engine", "completion"}) {
    EXPECT_THAT(body, HasSubstr(absl::StrCat("nvlsched_write_stage_seconds_count{stage=\"",
                                             stage, "\"} 1")));
  }
  EXPECT_THAT(body, HasSubstr("nvlsched_free_machines{instance_type=\"gb200-tray\"} 144"));
  EXPECT_THAT(body, HasSubstr("nvlsched_fully_free_domains{instance_type=\"gb200-tray\"} 8"));
  EXPECT_THAT(body, HasSubstr("nvlsched_machines{state=\"READY\"} 144"));
  EXPECT_THAT(body, HasSubstr("nvlsched_machines{state=\"MAINTENANCE\"} 0"));

  // Draining one machine moves it between the state gauges.
  auto inventory = nvlsched::v1::InventoryService::NewStub(
      grpc::CreateChannel(daemon.address(), grpc::InsecureChannelCredentials()));
  nvlsched::v1::ListMachinesRequest list;
  list.set_page_size(1);
  nvlsched::v1::ListMachinesResponse machines;
  grpc::ClientContext list_ctx;
  ASSERT_TRUE(inventory->ListMachines(&list_ctx, list, &machines).ok());
  ASSERT_EQ(machines.machines_size(), 1);
  nvlsched::v1::SetMachineStateRequest drain;
  drain.set_id(machines.machines(0).id());
  drain.set_state(nvlsched::v1::MACHINE_STATE_MAINTENANCE);
  drain.set_reason("metrics test");
  nvlsched::v1::Machine drained;
  grpc::ClientContext drain_ctx;
  ASSERT_TRUE(inventory->SetMachineState(&drain_ctx, drain, &drained).ok());
  const std::string after = HttpGetMetrics(port);
  EXPECT_THAT(after, HasSubstr("nvlsched_machines{state=\"READY\"} 143"));
  EXPECT_THAT(after, HasSubstr("nvlsched_machines{state=\"MAINTENANCE\"} 1"));
  EXPECT_THAT(after, HasSubstr("nvlsched_write_stage_seconds_count{stage=\"engine\"} 2"));
  EXPECT_THAT(body, HasSubstr(
      "nvlsched_requests_total{code=\"OK\",method=\"/grpc.health.v1.Health/Check\"} 1"));
  EXPECT_THAT(body, HasSubstr("nvlsched_request_duration_seconds_count{code=\"OK\",method=\"/grpc."
                              "health.v1.Health/Check\"} 1"));

  // A Health/Watch the client cancels is counted as CANCELLED, not as an UNKNOWN error.
  {
    auto health = grpc::health::v1::Health::NewStub(
        grpc::CreateChannel(daemon.address(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    auto reader = health->Watch(&ctx, grpc::health::v1::HealthCheckRequest());
    grpc::health::v1::HealthCheckResponse first;
    ASSERT_TRUE(reader->Read(&first));
    ctx.TryCancel();
    while (reader->Read(&first)) {
    }
    reader->Finish();
  }
  // One event watcher connected, and the events it was sent.
  auto events = nvlsched::v1::EventService::NewStub(
      grpc::CreateChannel(daemon.address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext watch_ctx;
  nvlsched::v1::WatchEventsRequest watch;
  watch.set_after_sequence(148);
  auto watcher = events->WatchEvents(&watch_ctx, watch);
  nvlsched::v1::Event event;
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(watcher->Read(&event));  // 149..153, and the drain
  std::string watched;
  for (int attempt = 0; attempt < 100; ++attempt) {
    watched = HttpGetMetrics(port);
    // The Watch's status and the event counters land just after the reads.
    if (watched.find("Health/Watch") != std::string::npos &&
        watched.find("nvlsched_events_sent_total 6") != std::string::npos) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_THAT(watched, HasSubstr(
      "nvlsched_requests_total{code=\"CANCELLED\",method=\"/grpc.health.v1.Health/Watch\"} 1"));
  EXPECT_THAT(watched, ::testing::Not(HasSubstr("code=\"UNKNOWN\"")));
  EXPECT_THAT(watched, HasSubstr("nvlsched_event_watchers 1"));
  EXPECT_THAT(watched, HasSubstr("nvlsched_events_sent_total 6"));
  watch_ctx.TryCancel();
  while (watcher->Read(&event)) {
  }
  watcher->Finish();
  ASSERT_TRUE(daemon.StopWith(SIGTERM).ok());
}

TEST_F(DaemonLifecycleTest, ExitsZeroOnSigint) {
  testing::DaemonProcess daemon(NVLSCHEDD_PATH, dir_);
  ASSERT_TRUE(daemon.Start({db()}).ok());
  absl::StatusOr<int> code = daemon.StopWith(SIGINT);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << daemon.Log();
}

TEST_F(DaemonLifecycleTest, SecondDaemonOnTheSamePortExitsNonZeroWithAClearMessage) {
  testing::DaemonProcess first(NVLSCHEDD_PATH, dir_);
  ASSERT_TRUE(first.Start({db()}).ok());
  std::string log = RunRefusedSecondDaemon(
      {absl::StrCat("--listen=", first.address()), "--metrics_listen=127.0.0.1:0",
       absl::StrCat("--db=", dir_, "/second/other.db")});
  EXPECT_THAT(log, HasSubstr("address is in use"));
  ExpectServingThenStop(first);  // it still owns the port
}

// Two daemons on one database would each keep their own inventory and hand out the same
// machines twice: the second one is refused before it reads anything.
TEST_F(DaemonLifecycleTest, SecondDaemonOnTheSameDatabaseExitsNonZeroNamingTheHolder) {
  testing::DaemonProcess first(NVLSCHEDD_PATH, dir_);
  ASSERT_TRUE(first.Start({db()}).ok());
  std::string log =
      RunRefusedSecondDaemon({"--listen=127.0.0.1:0", "--metrics_listen=127.0.0.1:0", db()});
  EXPECT_THAT(log, HasSubstr(absl::StrCat("another process (pid ", first.pid(), ") holds ", dir_,
                                          "/nvlsched.db.lock")));
  ExpectServingThenStop(first);  // untouched

  // Once the first has stopped, the database opens again.
  testing::DaemonProcess third(NVLSCHEDD_PATH, dir_ + "/second");
  ASSERT_TRUE(third.Start({db()}).ok());
  ExpectServingThenStop(third);
}

TEST_F(DaemonLifecycleTest, VersionAndHelpExitZero) {
  testing::DaemonProcess daemon(NVLSCHEDD_PATH, dir_);
  absl::StatusOr<int> code = daemon.RunToExit({"--version"}, absl::Seconds(30));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0);
  EXPECT_THAT(daemon.Log(), HasSubstr("nvlschedd "));
}

}  // namespace
}  // namespace nvlsched
