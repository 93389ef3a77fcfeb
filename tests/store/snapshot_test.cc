// Tests store/snapshot.h and Store::WriteSnapshot: consistency under concurrent commits, that
// commits proceed while a snapshot is copied, refusal to overwrite, and pruning.
#include "store/snapshot.h"

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/store.h"
#include "tests/store/store_test_util.h"

namespace nvlsched::store {
namespace {

using ::nvlsched::store::store_testing::MakeFleet;
using ::nvlsched::store::store_testing::MakeInstance;
using ::nvlsched::store::store_testing::TempDir;
using ::nvlsched::store::store_testing::WriteFile;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::unique_ptr<Store> OpenStore(const std::string& path, SyncMode sync = SyncMode::kFull) {
  StoreOptions options;
  options.path = path;
  options.sync = sync;
  return store_testing::OpenOrFail(options);
}

InstanceRow Numbered(int i) {
  return MakeInstance(absl::StrCat("i-", i), absl::StrCat("n-", i), /*machine_id=*/"");
}

// A snapshot taken while commit k (instance i-k, meta counter=k) runs must hold exactly the
// instances i-0..i-(n-1) and counter n-1: a prefix of the commits, nothing torn.
void ExpectConsistentPrefix(const std::string& snapshot_path, size_t preloaded, size_t* count) {
  std::unique_ptr<Store> snapshot = OpenStore(snapshot_path);
  ASSERT_NE(snapshot, nullptr);
  absl::StatusOr<LoadedState> state = snapshot->LoadAll();
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_GE(state->instances.size(), preloaded);
  const size_t n = state->instances.size() - preloaded;
  for (size_t i = 0; i < n; ++i) {
    ASSERT_EQ(state->instances[preloaded + i], Numbered(static_cast<int>(i)));
  }
  std::string counter = "none";
  for (const MetaRow& meta : state->meta) {
    if (meta.key == "counter") counter = meta.value;
  }
  EXPECT_EQ(counter, n == 0 ? "none" : absl::StrCat(n - 1));
  *count = n;
}

TEST(WriteSnapshotTest, SnapshotsDuringConcurrentCommitsAreConsistentAndDoNotStopWrites) {
  TempDir dir;
  std::unique_ptr<Store> store = OpenStore(dir.File("state.db"), SyncMode::kNormal);
  ASSERT_NE(store, nullptr);
  // About 24 MB of instances, so that copying takes long enough to overlap many commits.
  ChangeSet bulk = MakeFleet(1, 2, 1);
  constexpr int kPreloaded = 6000;
  for (int i = 0; i < kPreloaded; ++i) {
    InstanceRow row = MakeInstance(absl::StrCat("bulk-", i), absl::StrCat("bulk-", i), "");
    row.details.assign(4000, static_cast<char>(i));
    bulk.upsert_instances.push_back(row);
  }
  ASSERT_TRUE(store->Commit(bulk).ok());

  std::atomic<bool> stop{false};
  std::atomic<int> committed{0};
  absl::Status writer_status;
  std::thread writer([&] {
    for (int i = 0; !stop.load(); ++i) {
      ChangeSet changes;
      changes.upsert_instances = {Numbered(i)};
      changes.put_meta = {MetaRow{"counter", absl::StrCat(i)}};
      writer_status = store->Commit(changes);
      if (!writer_status.ok()) return;
      committed.store(i + 1);
    }
  });
  while (committed.load() < 20) absl::SleepFor(absl::Milliseconds(1));

  const int before_first = committed.load();
  const absl::Status first = store->WriteSnapshot(dir.File("first.db"));
  const int after_first = committed.load();
  const absl::Status second = store->WriteSnapshot(dir.File("second.db"));
  stop.store(true);
  writer.join();
  ASSERT_TRUE(writer_status.ok()) << writer_status;
  ASSERT_TRUE(first.ok()) << first;
  ASSERT_TRUE(second.ok()) << second;
  // The writer kept committing while the first snapshot was being copied.
  EXPECT_GT(after_first, before_first);

  size_t first_count = 0;
  size_t second_count = 0;
  ExpectConsistentPrefix(dir.File("first.db"), kPreloaded, &first_count);
  ExpectConsistentPrefix(dir.File("second.db"), kPreloaded, &second_count);
  EXPECT_GE(first_count, static_cast<size_t>(before_first));
  EXPECT_LE(first_count, static_cast<size_t>(after_first));
  EXPECT_GE(second_count, first_count);
}

TEST(WriteSnapshotTest, ExistingDestinationIsNeverOverwritten) {
  TempDir dir;
  std::unique_ptr<Store> store = OpenStore(dir.File("state.db"));
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Commit(MakeFleet(1, 2, 1)).ok());
  const std::string dest = dir.File("snap.db");
  ASSERT_TRUE(store->WriteSnapshot(dest).ok());
  const auto size = std::filesystem::file_size(dest);

  ChangeSet more;
  more.upsert_instances = {Numbered(1)};
  ASSERT_TRUE(store->Commit(more).ok());
  absl::Status again = store->WriteSnapshot(dest);
  EXPECT_EQ(again.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(again.message(), HasSubstr(dest));
  EXPECT_EQ(std::filesystem::file_size(dest), size);

  // Not even a file that is not a database is replaced.
  WriteFile(dir.File("other"), "keep me");
  EXPECT_EQ(store->WriteSnapshot(dir.File("other")).code(), absl::StatusCode::kAlreadyExists);

  // No temporary files are left behind.
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    names.push_back(entry.path().filename().string());
  }
  for (const std::string& name : names) EXPECT_THAT(name, ::testing::Not(HasSubstr("partial")));
}

TEST(WriteSnapshotTest, SnapshotOpensAsAStoreWithEverything) {
  TempDir dir;
  std::unique_ptr<Store> store = OpenStore(dir.File("state.db"));
  ASSERT_NE(store, nullptr);
  ChangeSet changes = MakeFleet(2, 18, 2);
  changes.upsert_instances = {MakeInstance("i-1", "a", "m-0-0"), MakeInstance("i-2", "b", "m-1-3")};
  changes.put_idempotency = {IdempotencyRow{"t-0", "r-1", "fp", "resp", 5}};
  ASSERT_TRUE(store->Commit(changes).ok());
  ASSERT_TRUE(store->WriteSnapshot(dir.File("snap.db")).ok());
  absl::StatusOr<LoadedState> original = store->LoadAll();
  ASSERT_TRUE(original.ok());

  std::unique_ptr<Store> restored = OpenStore(dir.File("snap.db"));
  ASSERT_NE(restored, nullptr);
  absl::StatusOr<LoadedState> state = restored->LoadAll();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->schema_version, original->schema_version);
  EXPECT_EQ(state->machines, original->machines);
  EXPECT_EQ(state->tenants, original->tenants);
  EXPECT_EQ(state->instances, original->instances);
  EXPECT_EQ(state->idempotency, original->idempotency);
  EXPECT_EQ(state->meta, original->meta);
  // The restored database takes writes again.
  ChangeSet more;
  more.upsert_instances = {MakeInstance("i-3", "c", "m-0-1")};
  EXPECT_TRUE(restored->Commit(more).ok());
}

TEST(WriteSnapshotTest, InMemoryStoreCanBeSnapshotted) {
  TempDir dir;
  std::unique_ptr<Store> store = OpenStore(":memory:");
  ASSERT_NE(store, nullptr);
  ChangeSet fleet = MakeFleet(1, 3, 1);
  ASSERT_TRUE(store->Commit(fleet).ok());
  ASSERT_TRUE(store->WriteSnapshot(dir.File("mem.db")).ok());
  std::unique_ptr<Store> restored = OpenStore(dir.File("mem.db"));
  ASSERT_NE(restored, nullptr);
  EXPECT_EQ(restored->LoadAll()->machines, fleet.upsert_machines);
}

TEST(WriteSnapshotTest, BadDestinationsAreRefused) {
  TempDir dir;
  std::unique_ptr<Store> store = OpenStore(dir.File("state.db"));
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->WriteSnapshot("").code(), absl::StatusCode::kInvalidArgument);
  absl::Status missing = store->WriteSnapshot(dir.File("no/such/dir/snap.db"));
  EXPECT_EQ(missing.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(missing.message(), HasSubstr("writing snapshot"));
  // A failed snapshot does not affect writes.
  EXPECT_TRUE(store->Commit(MakeFleet(1, 1, 1)).ok());
}

TEST(SnapshotFileNameTest, IsFixedWidthUtcAndRecognised) {
  const absl::Time t = absl::FromUnixMicros(1735787045123456);
  EXPECT_EQ(SnapshotFileName(t), "nvlsched-20250102T030405.123456Z.db");
  EXPECT_EQ(SnapshotFileName(absl::FromUnixSeconds(1735787045)),
            "nvlsched-20250102T030405.000000Z.db");
  EXPECT_TRUE(IsSnapshotFileName(SnapshotFileName(t)));
  EXPECT_FALSE(IsSnapshotFileName("nvlsched-yesterday.db"));
  EXPECT_FALSE(IsSnapshotFileName("nvlsched-20250102T030405.123456Z.db-wal"));
  EXPECT_FALSE(IsSnapshotFileName("nvlsched-20250102T030405.123456Z.db.partial-1-0"));
  EXPECT_FALSE(IsSnapshotFileName("state.db"));
}

TEST(PruneSnapshotsTest, KeepsTheNewestAndTheirNeighboursAlone) {
  TempDir dir;
  std::vector<std::string> snapshots;
  for (int i = 0; i < 5; ++i) {
    snapshots.push_back(SnapshotFileName(absl::FromUnixSeconds(1735787045 + i * 3600)));
  }
  // Written out of order: pruning goes by the time in the name, not by creation order.
  for (int i : {3, 0, 4, 1, 2}) WriteFile(dir.File(snapshots[i]), "db");
  WriteFile(dir.File(snapshots[0] + "-wal"), "wal");
  WriteFile(dir.File(snapshots[0] + "-shm"), "shm");
  WriteFile(dir.File(snapshots[0] + ".lock"), "123");  // a Store was opened on it once
  WriteFile(dir.File(snapshots[3] + ".lock"), "123");
  WriteFile(dir.File("state.db"), "live");
  WriteFile(dir.File("nvlsched-garbage.db"), "other");
  WriteFile(dir.File(snapshots[4] + ".partial-1-0"), "in progress");

  absl::StatusOr<std::vector<std::string>> removed = PruneSnapshots(dir.path(), 2);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_THAT(*removed,
              ElementsAre(dir.File(snapshots[0]), dir.File(snapshots[1]), dir.File(snapshots[2])));
  for (int i : {0, 1, 2}) EXPECT_FALSE(std::filesystem::exists(dir.File(snapshots[i])));
  EXPECT_FALSE(std::filesystem::exists(dir.File(snapshots[0] + "-wal")));
  EXPECT_FALSE(std::filesystem::exists(dir.File(snapshots[0] + "-shm")));
  EXPECT_FALSE(std::filesystem::exists(dir.File(snapshots[0] + ".lock")));
  for (const std::string& kept :
       {snapshots[3], snapshots[4], std::string("state.db"), std::string("nvlsched-garbage.db"),
        snapshots[4] + ".partial-1-0", snapshots[3] + ".lock"}) {
    EXPECT_TRUE(std::filesystem::exists(dir.File(kept))) << kept;
  }

  removed = PruneSnapshots(dir.path(), 2);
  ASSERT_TRUE(removed.ok());
  EXPECT_THAT(*removed, IsEmpty());
  removed = PruneSnapshots(dir.path(), 0);
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(removed->size(), 2u);
}

TEST(PruneSnapshotsTest, RejectsBadArguments) {
  TempDir dir;
  EXPECT_EQ(PruneSnapshots(dir.path(), -1).status().code(), absl::StatusCode::kInvalidArgument);
  absl::Status missing = PruneSnapshots(dir.File("missing"), 3).status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.message(), HasSubstr("missing"));
}

}  // namespace
}  // namespace nvlsched::store
