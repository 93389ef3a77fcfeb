// The SQLite store's WAL checkpointer (store/checkpointer.h): the thread checkpoints, one pass a
// wake; the writer copies the last few frames after a pass, and checkpoints once the WAL reaches
// its cap; the WAL stays bounded either way, and every committed
// row is in the database, in a copy taken after the thread's pass and after a reopen. Also the
// store's memory map of the database file: used by commits, not by the start-up load. Labelled
// grpc (not store) so that the TSan build, which runs the tiers with threads, runs it too.
#include <SQLiteCpp/Database.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "store/rows.h"
#include "store/store.h"
#include "tests/store/store_test_util.h"

namespace nvlsched::store {
namespace {

using store_testing::LoadOrFail;
using store_testing::MakeFleet;
using store_testing::MakeInstance;
using store_testing::OpenOrFail;
using store_testing::TempDir;

constexpr int kRowsPerCommit = 16;
// A WAL frame is a 24-byte header and one page (SQLite's default page size, which the store
// keeps), after the WAL's 32-byte header.
constexpr int64_t kFrameBytes = 24 + 4096;

// Commits kRowsPerCommit instances of about 3 KB each (a page each), round `round`.
void CommitRound(Store& store, int round) {
  ChangeSet changes;
  for (int i = 0; i < kRowsPerCommit; ++i) {
    const std::string id = absl::StrCat("i-", round, "-", i);
    InstanceRow row = MakeInstance(id, id, absl::StrCat("m-0-", i % 18));
    row.details = std::string(3000, static_cast<char>('a' + (round + i) % 26));
    changes.upsert_instances.push_back(std::move(row));
  }
  ASSERT_TRUE(store.Commit(changes).ok());
}

int64_t FileSize(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  return ec ? 0 : static_cast<int64_t>(size);
}

CheckpointCounts CountsOf(Store& store) { return store.checkpoint_counts(); }

// Waits (at most 20 s) until the thread has finished more than `passes` passes.
bool WaitForBackgroundPass(Store& store, int64_t passes) {
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (CountsOf(store).background <= passes) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return true;
}

class CheckpointerTest : public ::testing::Test {
 protected:
  StoreOptions Options(int background_pages, int on_writer_pages) {
    StoreOptions options;
    options.path = dir_.File("state.db");
    options.checkpoint_background_pages = background_pages;
    options.checkpoint_on_writer_pages = on_writer_pages;
    return options;
  }
  std::string Wal() const { return dir_.File("state.db-wal"); }

  // Opens the store with these thresholds, commits the fleet and `rounds` rounds back to back,
  // and returns the checkpoint counts and the WAL's size (read before the store closes, which
  // removes the WAL).
  struct Run {
    CheckpointCounts counts;
    int64_t wal_bytes = 0;
  };
  Run CommitRounds(int background_pages, int on_writer_pages, int rounds) {
    std::unique_ptr<Store> store = OpenOrFail(Options(background_pages, on_writer_pages));
    if (store == nullptr) return Run();
    EXPECT_TRUE(store->Commit(MakeFleet()).ok());
    for (int round = 0; round < rounds; ++round) CommitRound(*store, round);
    return Run{CountsOf(*store), FileSize(Wal())};
  }
  // Reopened without the thread, the database has every row of `rounds` rounds.
  void ExpectEveryRow(int rounds) {
    std::unique_ptr<Store> store = OpenOrFail(Options(0, 0));
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(LoadOrFail(*store).instances.size(), static_cast<size_t>(rounds * kRowsPerCommit));
  }
  // The WAL of at most `pages` pages plus two commits (about 20 pages each).
  static int64_t WalBound(int pages) {
    return 32 + (pages + 2 * (kRowsPerCommit + 8)) * kFrameBytes;
  }

  TempDir dir_;
};

TEST_F(CheckpointerTest, TheThreadCheckpointsAndTheWalRestartsFromItsBeginning) {
  // Above the fleet's commit (77 pages), so that each wake comes from a round the test waits on
  // and gets a pass of its own.
  constexpr int kBackgroundPages = 128;
  constexpr int kRounds = 100;  // about 2,000 pages, 16 times the threshold
  std::unique_ptr<Store> store = OpenOrFail(Options(kBackgroundPages, 1000000));
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Commit(MakeFleet()).ok());
  int64_t passes = 0;
  int64_t wakes = 0;
  for (int round = 0; round < kRounds; ++round) {
    CommitRound(*store, round);
    // Past the threshold this commit woke the thread; wait for its pass, so that the writer is
    // idle while it runs and the next commit finds the whole WAL copied.
    if (CountsOf(*store).woken > wakes) {
      ASSERT_TRUE(WaitForBackgroundPass(*store, passes)) << "round " << round;
      passes = CountsOf(*store).background;
      wakes = CountsOf(*store).woken;
    }
  }
  const CheckpointCounts counts = CountsOf(*store);
  EXPECT_GE(counts.background, 2);
  EXPECT_EQ(counts.woken, counts.background);  // one pass per wake: the test waited for each
  EXPECT_EQ(counts.on_writer, 0);
  EXPECT_EQ(counts.failed, 0);
  // Restarted after each pass: at most the threshold plus a commit (about 20 pages), not the
  // ~2,000 pages written.
  EXPECT_LE(FileSize(Wal()), WalBound(kBackgroundPages));

  // A copy of the files as they are now (as after a power cut: the WAL not yet removed) has
  // every row: what the thread copied into the database file and what the WAL still holds.
  const std::string copy = dir_.File("copy.db");
  std::filesystem::copy_file(dir_.File("state.db"), copy);
  std::filesystem::copy_file(Wal(), copy + "-wal");
  StoreOptions copy_options = Options(0, 0);
  copy_options.path = copy;
  std::unique_ptr<Store> copied = OpenOrFail(copy_options);
  ASSERT_NE(copied, nullptr);
  EXPECT_EQ(LoadOrFail(*copied).instances.size(), size_t{kRounds * kRowsPerCommit});
  copied.reset();

  store.reset();
  ExpectEveryRow(kRounds);
}

// A read transaction on a connection of its own: while it is open, no checkpoint copies a frame
// committed after it began, and the writer cannot restart the WAL.
class Snapshot {
 public:
  explicit Snapshot(const std::string& path) : db_(path, SQLite::OPEN_READONLY) {
    db_.exec("BEGIN");
    db_.execAndGet("SELECT count(*) FROM instances");
  }
  ~Snapshot() { db_.exec("COMMIT"); }

 private:
  SQLite::Database db_;
};

// One instance of a few hundred bytes: a commit of 2 or 3 frames.
void CommitOne(Store& store, const std::string& id) {
  ChangeSet changes;
  changes.upsert_instances.push_back(MakeInstance(id, id, "m-0-0"));
  ASSERT_TRUE(store.Commit(changes).ok());
}

// Under a writer that does not pause, a pass of the thread rarely ends between two commits, and
// SQLite restarts the WAL only once every frame is copied: the writer copies the last few frames
// itself (at most background_pages / 8), and only one pass of the thread is ever under way or
// pending. Readers' snapshots stand in for the commits that would arrive during a pass.
TEST_F(CheckpointerTest, TheWriterCopiesTheLastFramesAfterAPassOfTheThread) {
  constexpr int kBackgroundPages = 128;  // the writer copies a rest of up to 16 frames
  std::unique_ptr<Store> store = OpenOrFail(Options(kBackgroundPages, 1000000));
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Commit(MakeFleet()).ok());  // 77 pages, below the threshold
  auto first = std::make_unique<Snapshot>(dir_.File("state.db"));
  int round = 0;
  while (CountsOf(*store).woken == 0) {
    ASSERT_LT(round, 50) << "the WAL never reached " << kBackgroundPages << " pages";
    CommitRound(*store, round++);
  }
  ASSERT_TRUE(WaitForBackgroundPass(*store, 0));  // copied the fleet's frames, not beyond `first`
  // A snapshot of every frame so far; a small commit then wakes the thread again (far more than
  // 16 frames are not copied), and this pass copies up to `second`, all but the small commit.
  auto second = std::make_unique<Snapshot>(dir_.File("state.db"));
  first.reset();
  CommitOne(*store, "one");
  ASSERT_EQ(CountsOf(*store).woken, 2);
  ASSERT_TRUE(WaitForBackgroundPass(*store, 1));
  // The WAL cannot restart under `second`: the next small commit leaves a rest of a few frames,
  // which the writer copies itself (or would: `second` still holds them), waking no one.
  CommitOne(*store, "two");
  EXPECT_EQ(CountsOf(*store).rest_on_writer, 1);
  second.reset();
  CommitOne(*store, "three");  // now the writer copies every frame
  EXPECT_EQ(CountsOf(*store).rest_on_writer, 2);
  CommitOne(*store, "four");  // in a restarted WAL: a few frames, below the threshold
  const CheckpointCounts counts = CountsOf(*store);
  EXPECT_EQ(counts.rest_on_writer, 2);
  EXPECT_EQ(counts.woken, 2);
  EXPECT_EQ(counts.background, 2);
  EXPECT_EQ(counts.on_writer, 0);
  EXPECT_EQ(counts.failed, 0);
  EXPECT_LE(FileSize(Wal()), WalBound(kBackgroundPages));
  store.reset();
  std::unique_ptr<Store> reopened = OpenOrFail(Options(0, 0));
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(LoadOrFail(*reopened).instances.size(),
            static_cast<size_t>(round * kRowsPerCommit + 4));
}

// Commits back to back beside the thread: each wake gets a pass of its own (a commit during a
// pass does not queue another), so the thread runs at most one pass per wake.
TEST_F(CheckpointerTest, EachWakeGetsOnePassOfItsOwn) {
  std::unique_ptr<Store> store = OpenOrFail(Options(64, 1000000));
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Commit(MakeFleet()).ok());
  for (int round = 0; round < 200; ++round) CommitRound(*store, round);
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (CountsOf(*store).background < CountsOf(*store).woken && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(2));
  }
  const CheckpointCounts counts = CountsOf(*store);
  EXPECT_GE(counts.woken, 1);
  EXPECT_EQ(counts.background, counts.woken);
  EXPECT_EQ(counts.failed, 0);
}

TEST_F(CheckpointerTest, TheWriterCheckpointsWhenTheWalReachesItsCap) {
  constexpr int kOnWriterPages = 64;
  constexpr int kRounds = 60;
  // The thread's threshold above the cap: it is never woken, so only the writer checkpoints.
  const Run run = CommitRounds(1000000, kOnWriterPages, kRounds);
  EXPECT_EQ(run.counts.background + run.counts.woken, 0);
  EXPECT_GE(run.counts.on_writer, 2);
  EXPECT_EQ(run.counts.failed, 0);
  EXPECT_LE(run.wal_bytes, WalBound(kOnWriterPages));
  ExpectEveryRow(kRounds);
}

// Commits back to back while the thread checkpoints beside them (the daemon's case): nothing
// fails, the WAL stays within the writer's cap, every row is there. Under TSan this is the
// thread's race check.
TEST_F(CheckpointerTest, CommitsBackToBackBesideTheThread) {
  constexpr int kOnWriterPages = 256;
  constexpr int kRounds = 200;  // about 3,500 pages
  const Run run = CommitRounds(32, kOnWriterPages, kRounds);
  EXPECT_GE(run.counts.background + run.counts.on_writer, 1);
  EXPECT_EQ(run.counts.failed, 0);
  EXPECT_LE(run.wal_bytes, WalBound(kOnWriterPages));
  ExpectEveryRow(kRounds);
}

TEST_F(CheckpointerTest, WithoutTheThreadNothingIsCounted) {
  const CheckpointCounts counts = CommitRounds(0, 0, 80).counts;
  EXPECT_EQ(counts.background + counts.on_writer + counts.failed + counts.woken, 0);
}

// True if this process maps the file `path` itself (not its -wal or -shm).
bool Mapped(const std::string& path) {
  std::ifstream maps("/proc/self/maps");
  const std::string canonical = std::filesystem::canonical(path).string();
  for (std::string line; std::getline(maps, line);) {
    if (line.size() >= canonical.size() &&
        line.compare(line.size() - canonical.size(), canonical.size(), canonical) == 0) {
      return true;
    }
  }
  return false;
}

TEST_F(CheckpointerTest, CommitsReadThroughTheMemoryMapAndTheStartUpLoadDoesNot) {
  {
    std::unique_ptr<Store> store = OpenOrFail(Options(0, 0));
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Commit(MakeFleet()).ok());
    for (int round = 0; round < 20; ++round) CommitRound(*store, round);
  }
  std::unique_ptr<Store> store = OpenOrFail(Options(0, 0));
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(LoadOrFail(*store).instances.size(), size_t{20 * kRowsPerCommit});
  EXPECT_FALSE(Mapped(dir_.File("state.db"))) << "the load left the file mapped";
  CommitRound(*store, 20);
  EXPECT_TRUE(Mapped(dir_.File("state.db"))) << "a commit read the file without the map";
}

TEST_F(CheckpointerTest, OpenRefusesThresholdsThatMakeNoSense) {
  for (const auto& [background, on_writer] : {std::pair{-1, 100}, std::pair{100, 0}}) {
    absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(Options(background, on_writer));
    ASSERT_FALSE(store.ok());
    EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument) << store.status();
    EXPECT_NE(store.status().message().find("checkpoint_background_pages"), std::string::npos)
        << store.status();
  }
}

}  // namespace
}  // namespace nvlsched::store
