// SnapshotScheduler and the snapshot helpers, on a real store in a temporary directory.
#include "daemon/services/snapshot_scheduler.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "store/snapshot.h"
#include "store/store.h"

namespace nvlsched::daemon {
namespace {

class SnapshotSchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* base = ::getenv("TMPDIR");
    std::string pattern = absl::StrCat(base != nullptr ? base : "/tmp", "/nvlsched_snap_XXXXXX");
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    store::StoreOptions options;
    options.path = dir_ + "/nvlsched.db";
    absl::StatusOr<std::unique_ptr<store::Store>> store = store::Store::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    store::ChangeSet changes;
    changes.upsert_instance_types.push_back(
        store::InstanceTypeRow{"type-1", "gb200-tray", "GB200", 4, 177383, 42000000, "nvlink5"});
    ASSERT_TRUE(store_->Commit(changes).ok());
  }
  void TearDown() override {
    store_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  std::string snapshots() const { return dir_ + "/snapshots"; }

  std::vector<std::string> SnapshotFiles() const {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(snapshots())) {
      const std::string name = entry.path().filename().string();
      if (store::IsSnapshotFileName(name)) names.push_back(name);
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  std::string dir_;
  std::unique_ptr<store::Store> store_;
};

TEST_F(SnapshotSchedulerTest, StartRejectsBadOptions) {
  SnapshotScheduler no_dir(store_.get(), {"", absl::Seconds(1), 3});
  absl::Status status = no_dir.Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(status.message()).find("--snapshot_dir"), std::string::npos) << status;

  SnapshotScheduler no_interval(store_.get(), {snapshots(), absl::ZeroDuration(), 3});
  status = no_interval.Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(status.message()).find("--snapshot_interval"), std::string::npos);

  SnapshotScheduler keep_none(store_.get(), {snapshots(), absl::Seconds(1), 0});
  status = keep_none.Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(status.message()).find("--snapshot_keep"), std::string::npos);
}

TEST_F(SnapshotSchedulerTest, WritesOnScheduleAndKeepsTheNewest) {
  SnapshotScheduler scheduler(store_.get(), {snapshots(), absl::Milliseconds(30), 2});
  ASSERT_TRUE(scheduler.Start().ok());
  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  while (scheduler.written() < 4 && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(10));
  scheduler.Stop();
  ASSERT_GE(scheduler.written(), 4);
  EXPECT_EQ(scheduler.failed(), 0);
  std::vector<std::string> files = SnapshotFiles();
  ASSERT_EQ(files.size(), 2u);
  for (const std::string& name : files) {
    store::StoreOptions options;
    options.path = snapshots() + "/" + name;
    absl::StatusOr<std::unique_ptr<store::Store>> copy = store::Store::Open(options);
    ASSERT_TRUE(copy.ok()) << copy.status();
    absl::StatusOr<store::LoadedState> loaded = (*copy)->LoadAll();
    ASSERT_TRUE(loaded.ok());
    ASSERT_EQ(loaded->instance_types.size(), 1u);
    EXPECT_EQ(loaded->instance_types[0].id, "type-1");
  }
}

TEST_F(SnapshotSchedulerTest, StopIsPromptAndWritesNothingEarly) {
  SnapshotScheduler scheduler(store_.get(), {snapshots(), absl::Hours(1), 2});
  ASSERT_TRUE(scheduler.Start().ok());
  const absl::Time start = absl::Now();
  scheduler.Stop();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  EXPECT_EQ(scheduler.written(), 0);
  EXPECT_TRUE(SnapshotFiles().empty());
  scheduler.Stop();  // idempotent
  EXPECT_EQ(scheduler.Start().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(SnapshotSchedulerTest, RunOncePrunesOnlySnapshotFiles) {
  ASSERT_TRUE(EnsureSnapshotDir(snapshots()).ok());
  std::ofstream(snapshots() + "/notes.txt") << "keep me";
  SnapshotScheduler scheduler(store_.get(), {snapshots(), absl::Hours(1), 1});
  absl::StatusOr<SnapshotFile> first = scheduler.RunOnce();
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<SnapshotFile> second = scheduler.RunOnce();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_NE(first->path, second->path);
  EXPECT_FALSE(std::filesystem::exists(first->path));
  EXPECT_TRUE(std::filesystem::exists(second->path));
  EXPECT_GT(second->size_bytes, 0);
  EXPECT_TRUE(std::filesystem::exists(snapshots() + "/notes.txt"));
}

TEST_F(SnapshotSchedulerTest, EnsureSnapshotDir) {
  EXPECT_TRUE(EnsureSnapshotDir(dir_ + "/a/b/c").ok());
  EXPECT_TRUE(std::filesystem::is_directory(dir_ + "/a/b/c"));
  EXPECT_TRUE(EnsureSnapshotDir(dir_ + "/a/b/c").ok());
  std::ofstream(dir_ + "/file") << "x";
  EXPECT_EQ(EnsureSnapshotDir(dir_ + "/file").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(EnsureSnapshotDir("").code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace nvlsched::daemon
