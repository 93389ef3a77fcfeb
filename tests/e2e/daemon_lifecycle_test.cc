// End-to-end: the real build/bin/nvlschedd binary, started on port 0, checked through a real
// gRPC client, stopped with SIGTERM.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/testing/daemon_process.h"

namespace nvlsched {
namespace {

using ::testing::HasSubstr;

class DaemonLifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = absl::StrCat(::testing::TempDir(), "/", info->test_suite_name(), ".", info->name(), ".",
                        getpid());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string db() const { return absl::StrCat("--db=", dir_, "/nvlsched.db"); }

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

TEST_F(DaemonLifecycleTest, ServesHealthAndExitsZeroOnSigterm) {
  testing::DaemonProcess daemon(NVLSCHEDD_PATH, dir_);
  ASSERT_TRUE(daemon.Start({db(), "--seed_fleet=demo"}).ok());
  EXPECT_EQ(CheckHealth(daemon.address()), grpc::health::v1::HealthCheckResponse::SERVING);

  absl::StatusOr<int> code = daemon.StopWith(SIGTERM);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << daemon.Log();
  EXPECT_THAT(daemon.Log(), HasSubstr("shut down cleanly"));
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

  const std::string second_dir = dir_ + "/second";
  std::filesystem::create_directories(second_dir);
  testing::DaemonProcess second(NVLSCHEDD_PATH, second_dir);
  absl::StatusOr<int> code =
      second.RunToExit({absl::StrCat("--listen=", first.address()),
                        absl::StrCat("--db=", second_dir, "/other.db")},
                       absl::Seconds(60));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_NE(*code, 0);
  EXPECT_THAT(second.Log(), HasSubstr("address is in use"));

  // The first daemon still owns the port and answers.
  EXPECT_EQ(CheckHealth(first.address()), grpc::health::v1::HealthCheckResponse::SERVING);
  absl::StatusOr<int> first_code = first.StopWith(SIGTERM);
  ASSERT_TRUE(first_code.ok());
  EXPECT_EQ(*first_code, 0);
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
