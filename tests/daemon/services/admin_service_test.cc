// AdminService.CreateSnapshot over gRPC.
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/snapshot.h"
#include "tests/daemon/services/service_fixture.h"

namespace nvlsched::daemon::testing {
namespace {

namespace f = small_fleet;
using ::testing::ElementsAre;

class AdminServiceTest : public ServiceTest {
 protected:
  grpc::Status Snapshot(const std::string& path, v1::CreateSnapshotResponse* resp) {
    v1::CreateSnapshotRequest req;
    req.set_path(path);
    return admin().CreateSnapshot(Context().get(), req, resp);
  }
};

TEST_F(AdminServiceTest, WritesASnapshotThatIsADatabaseHoldingTheFleet) {
  ASSERT_TRUE(ApplySmallFleet().ok());
  const std::string path = snapshot_dir() + "/copy.db";
  v1::CreateSnapshotResponse resp;
  grpc::Status status = Snapshot("copy.db", &resp);  // a bare name goes in --snapshot_dir
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(resp.path(), path);
  ASSERT_TRUE(std::filesystem::exists(path));
  EXPECT_EQ(resp.size_bytes(), static_cast<int64_t>(std::filesystem::file_size(path)));
  EXPECT_GT(resp.size_bytes(), 0);

  store::StoreOptions options;
  options.path = path;
  absl::StatusOr<std::unique_ptr<store::Store>> copy = store::Store::Open(options);
  ASSERT_TRUE(copy.ok()) << copy.status();
  absl::StatusOr<store::LoadedState> loaded = (*copy)->LoadAll();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->instance_types.size(), 1u);
  EXPECT_EQ(loaded->domains.size(), 3u);
  EXPECT_EQ(loaded->machines.size(), 12u);
  ASSERT_EQ(loaded->tenants.size(), 1u);
  EXPECT_EQ(loaded->tenants[0].id, f::kTenantId);
}

TEST_F(AdminServiceTest, ADaemonStartsFromTheSnapshotWithTheSameInventory) {
  ASSERT_TRUE(ApplySmallFleet().ok());
  absl::StatusOr<v1::Instance> instance = CreateGpuInstance("slice", 2);
  ASSERT_TRUE(instance.ok()) << instance.status();
  v1::ListMachinesResponse before;
  ASSERT_TRUE(inventory().ListMachines(Context().get(), {}, &before).ok());

  const std::string path = snapshot_dir() + "/restore.db";
  v1::CreateSnapshotResponse resp;
  ASSERT_TRUE(Snapshot(path, &resp).ok());  // an absolute path inside --snapshot_dir
  HarnessOptions options;
  options.db_path = path;
  absl::StatusOr<std::unique_ptr<ServiceHarness>> restored = ServiceHarness::Start(options);
  ASSERT_TRUE(restored.ok()) << restored.status();
  v1::ListMachinesResponse after;
  ASSERT_TRUE((*restored)->inventory().ListMachines(Context().get(), {}, &after).ok());
  EXPECT_EQ(after.SerializeAsString(), before.SerializeAsString());
}

TEST_F(AdminServiceTest, AnEmptyPathWritesATimestampedFileInTheSnapshotDir) {
  ASSERT_TRUE(ApplySmallFleet().ok());
  std::set<std::string> paths;
  for (int i = 0; i < 3; ++i) {
    v1::CreateSnapshotResponse resp;
    grpc::Status status = Snapshot("", &resp);
    ASSERT_TRUE(status.ok()) << status.error_message();
    const std::filesystem::path path(resp.path());
    EXPECT_EQ(path.parent_path().string(), snapshot_dir());
    EXPECT_TRUE(store::IsSnapshotFileName(path.filename().string())) << path;
    EXPECT_TRUE(std::filesystem::exists(path));
    paths.insert(resp.path());
  }
  EXPECT_EQ(paths.size(), 3u);
}

TEST_F(AdminServiceTest, NeverOverwritesAFile) {
  std::filesystem::create_directories(snapshot_dir());
  const std::string path = snapshot_dir() + "/taken.db";
  std::ofstream(path) << "precious";
  v1::CreateSnapshotResponse resp;
  grpc::Status status = Snapshot(path, &resp);
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::ALREADY_EXISTS, "already exists"));
  EXPECT_NE(status.error_message().find(path), std::string::npos);
  std::ifstream in(path);
  std::string contents;
  in >> contents;
  EXPECT_EQ(contents, "precious");
}

// A path that can never work is not UNAVAILABLE (which tells clients to retry).
TEST_F(AdminServiceTest, AMissingDirectoryIsAFailedPrecondition) {
  v1::CreateSnapshotResponse resp;
  grpc::Status status = Snapshot(snapshot_dir() + "/no/such/dir/x.db", &resp);
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::FAILED_PRECONDITION, "no/such/dir"));
  EXPECT_THAT(status.error_message(), ::testing::HasSubstr("does not exist inside --snapshot_dir"));
}

// CreateSnapshot writes only inside --snapshot_dir: "../" and absolute paths elsewhere, also
// through a symbolic link, are INVALID_ARGUMENT naming the field, and nothing is written.
TEST_F(AdminServiceTest, PathsOutsideTheSnapshotDirAreRefused) {
  std::filesystem::create_directories(snapshot_dir());
  std::filesystem::create_symlink(temp_dir(), snapshot_dir() + "/escape");
  for (const std::string& path :
       {std::string("../outside.db"), std::string("sub/../../outside.db"),
        temp_dir() + "/outside.db", std::string("escape/outside.db"),
        std::string("/etc/nvlsched-outside.db")}) {
    v1::CreateSnapshotResponse resp;
    grpc::Status status = Snapshot(path, &resp);
    EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::INVALID_ARGUMENT, "outside --snapshot_dir"))
        << path << ": " << status.error_message();
    ASSERT_TRUE(DetailsOf(status).bad_request.has_value()) << path;
    EXPECT_THAT(ViolationFields(*DetailsOf(status).bad_request), ElementsAre("path"));
  }
  EXPECT_FALSE(std::filesystem::exists(temp_dir() + "/outside.db"));
  // The snapshot writer's own temporary names are not for callers.
  v1::CreateSnapshotResponse resp;
  grpc::Status status = Snapshot("x.db.partial-1-2", &resp);
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::INVALID_ARGUMENT, "temporary file"));
  // A subdirectory that exists is fine.
  std::filesystem::create_directories(snapshot_dir() + "/daily");
  status = Snapshot("daily/one.db", &resp);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(resp.path(), snapshot_dir() + "/daily/one.db");
}

TEST_F(AdminServiceTest, InvalidPaths) {
  v1::CreateSnapshotResponse resp;
  grpc::Status status = Snapshot(temp_dir() + "/", &resp);
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::INVALID_ARGUMENT, "must name a file"));
  ASSERT_TRUE(DetailsOf(status).bad_request.has_value());
  EXPECT_THAT(ViolationFields(*DetailsOf(status).bad_request), ElementsAre("path"));

  status = Snapshot(std::string(5000, 'x'), &resp);
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::INVALID_ARGUMENT, "at most 4096 bytes"));
}

class AdminWithoutSnapshotDirTest : public AdminServiceTest {
 protected:
  HarnessOptions Options() override {
    HarnessOptions options = ServiceTest::Options();
    options.snapshot_dir.clear();
    return options;
  }
};

TEST_F(AdminWithoutSnapshotDirTest, SnapshotsNeedASnapshotDir) {
  v1::CreateSnapshotResponse resp;
  grpc::Status status = Snapshot("", &resp);
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::FAILED_PRECONDITION, "--snapshot_dir"));
  // An explicit path too: without a directory to confine it, nothing is written anywhere.
  status = Snapshot(temp_dir() + "/explicit.db", &resp);
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::FAILED_PRECONDITION, "--snapshot_dir"));
  EXPECT_FALSE(std::filesystem::exists(temp_dir() + "/explicit.db"));
}

}  // namespace
}  // namespace nvlsched::daemon::testing
