// Disk full, against the real binary: the database lives on a size-capped tmpfs; once the
// filesystem is filled up, writes must fail cleanly with UNAVAILABLE, the daemon must turn
// read-only (health NOT_SERVING, reads still answered), and after space is freed a restart
// must come back with every acknowledged create. Skipped where tmpfs cannot be mounted
// (needs root); CI runs as root.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "daemon/api/fleet.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "nvlsched/v1/instance_service.grpc.pb.h"
#include "tests/testing/daemon_process.h"
#include "tests/testing/demo_requests.h"

namespace nvlsched {
namespace {

v1::BatchCreateInstancesRequest Batch(int n) {
  v1::BatchCreateInstancesRequest req = testing::DemoBatch(absl::StrCat("full", n), 2);
  req.set_description(std::string(1000, 'd'));  // make every row take real space
  return req;
}

class DiskFullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(::testing::TempDir(), "/disk_full.", getpid());
    std::filesystem::create_directories(dir_ + "/fs");
    if (mount("tmpfs", (dir_ + "/fs").c_str(), "tmpfs", 0, "size=4m") != 0) {
      GTEST_SKIP() << "cannot mount a tmpfs here (" << std::strerror(errno)
                   << "); this test needs root";
    }
    mounted_ = true;
  }
  void TearDown() override {
    if (mounted_) umount2((dir_ + "/fs").c_str(), MNT_DETACH);
    std::filesystem::remove_all(dir_);
  }
  // Fills the filesystem, leaving about `leave` bytes free.
  void Fill(size_t leave) {
    const std::filesystem::space_info space = std::filesystem::space(dir_ + "/fs");
    std::ofstream filler(dir_ + "/fs/filler", std::ios::binary);
    std::vector<char> chunk(4096, 'x');
    size_t to_write = space.available > leave ? space.available - leave : 0;
    for (; to_write >= chunk.size(); to_write -= chunk.size()) filler.write(chunk.data(), chunk.size());
  }

  std::string dir_;
  bool mounted_ = false;
};

TEST_F(DiskFullTest, WritesFailWithUnavailableReadsContinueRestartRecovers) {
  const std::string db = absl::StrCat("--db=", dir_, "/fs/nvlsched.db");
  testing::DaemonProcess daemon(NVLSCHEDD_PATH, dir_);
  ASSERT_TRUE(daemon.Start({db, "--seed_fleet=demo"}).ok()) << daemon.Log();
  auto channel = grpc::CreateChannel(daemon.address(), grpc::InsecureChannelCredentials());
  auto stub = v1::InstanceService::NewStub(channel);

  std::vector<std::string> acked;
  auto create = [&](int n) {
    grpc::ClientContext ctx;
    v1::BatchCreateInstancesResponse resp;
    grpc::Status s = stub->BatchCreateInstances(&ctx, Batch(n), &resp);
    if (s.ok()) {
      for (const v1::Instance& i : resp.instances()) acked.push_back(i.id());
    }
    return s;
  };
  ASSERT_TRUE(create(0).ok());

  Fill(/*leave=*/16 * 1024);
  grpc::Status failed;
  for (int n = 1; n < 36 && failed.ok(); ++n) {
    grpc::Status s = create(n);
    if (!s.ok()) failed = s;
  }
  ASSERT_FALSE(failed.ok()) << "the filesystem never filled up";
  EXPECT_EQ(failed.error_code(), grpc::StatusCode::UNAVAILABLE) << failed.error_message();
  EXPECT_NE(failed.error_message().find("nothing of this call was kept"), std::string::npos)
      << failed.error_message();

  // Read-only now: writes refused, reads served, health NOT_SERVING.
  grpc::Status again = create(99);
  EXPECT_EQ(again.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(again.error_message().find("read-only"), std::string::npos) << again.error_message();
  {
    grpc::ClientContext ctx;
    v1::GetInstanceRequest req;
    req.set_org(std::string(daemon::kDemoTenantOrg));
    req.set_id(acked.front());
    v1::Instance resp;
    EXPECT_TRUE(stub->GetInstance(&ctx, req, &resp).ok());
  }
  {
    auto health = grpc::health::v1::Health::NewStub(channel);
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest req;
    grpc::health::v1::HealthCheckResponse resp;
    ASSERT_TRUE(health->Check(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  }
  absl::StatusOr<int> code = daemon.StopWith(SIGTERM);
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0) << daemon.Log();

  // Free the space and restart: every acknowledged instance is there.
  std::filesystem::remove(dir_ + "/fs/filler");
  testing::DaemonProcess restarted(NVLSCHEDD_PATH, dir_);
  ASSERT_TRUE(restarted.Start({db}).ok()) << restarted.Log();
  auto stub2 = v1::InstanceService::NewStub(
      grpc::CreateChannel(restarted.address(), grpc::InsecureChannelCredentials()));
  for (const std::string& id : acked) {
    grpc::ClientContext ctx;
    v1::GetInstanceRequest req;
    req.set_org(std::string(daemon::kDemoTenantOrg));
    req.set_id(id);
    v1::Instance resp;
    grpc::Status s = stub2->GetInstance(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << "acknowledged instance " << id << " lost: " << s.error_message();
  }
  // And it takes writes again.
  grpc::ClientContext ctx;
  v1::BatchCreateInstancesResponse resp;
  EXPECT_TRUE(stub2->BatchCreateInstances(&ctx, Batch(100), &resp).ok());
  ASSERT_TRUE(restarted.StopWith(SIGTERM).ok());
}

}  // namespace
}  // namespace nvlsched
