// Invariant 3 at the store level, under faults: after an I/O error at any point, and after a
// crash that leaves any prefix of the WAL on disk, reopening yields exactly the acknowledged
// commits — nothing acknowledged is lost, nothing refused is visible.
//
// StoreFaultTest runs a daemon-like workload (tests/store/fault_workload.h) through the
// fault-injection VFS (tests/store/fault_injection_vfs.h) once cleanly to count the write, sync,
// truncate and lock calls it makes (Open to close), then once per call with that call failing,
// each time on a fresh file, and checks the store's answers and the reopened file.
// StoreTornWalTest cuts a copy of a live WAL at every frame boundary and inside every frame.
//
// Measured at the commit that added this (the numbers are printed on every run): the workload
// makes 250 writes, 17 syncs, 1 truncate (the closing checkpoint's) and 14 locks, all of them
// exercised; 250 more runs fail each write with SQLITE_FULL. In WAL mode a commit takes no
// file lock (xShmLock, not counted, serialises writers), so lock faults hit Open, the snapshot
// and the close. The WAL of 7 commits has 91 frames: 368 cuts and 91 damaged frames are tried.
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/schema.h"
#include "store/store.h"
#include "tests/store/fault_injection_vfs.h"
#include "tests/store/fault_workload.h"
#include "tests/store/store_test_util.h"

namespace nvlsched::store {
namespace {

using ::nvlsched::store::store_testing::DaemonLikeWorkload;
using ::nvlsched::store::store_testing::DescribeDifference;
using ::nvlsched::store::store_testing::FaultError;
using ::nvlsched::store::store_testing::FaultInjectionVfs;
using ::nvlsched::store::store_testing::FaultKind;
using ::nvlsched::store::store_testing::FaultKindName;
using ::nvlsched::store::store_testing::kAllFaultKinds;
using ::nvlsched::store::store_testing::kFaultKindCount;
using ::nvlsched::store::store_testing::Model;
using ::nvlsched::store::store_testing::TempDir;
using ::nvlsched::store::store_testing::WorkloadStep;
using ::testing::HasSubstr;

constexpr char kVfsName[] = "nvlsched-fault-injection";

// Where the fault tests put their files: a RAM file system when there is one. These tests make
// a crash by copying files or by failing a call in the VFS, never by cutting power, so what an
// fsync costs on a real disk only slows them down (about 1,000 runs of ~15 fsyncs each).
const char* FastTempBase() {
  static const bool has_shm = [] {
    struct stat st;
    return ::stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && ::access("/dev/shm", W_OK) == 0;
  }();
  return has_shm ? "/dev/shm" : nullptr;
}

std::string ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Opens `path` with SQLite's default VFS (no faults) and reads everything.
absl::StatusOr<LoadedState> ReopenAndLoad(const std::string& path) {
  StoreOptions options;
  options.path = path;
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(options);
  if (!store.ok()) return store.status();
  return (*store)->LoadAll();
}

// Which part of a run an injected fault hit.
constexpr int kHitNothing = -2;
constexpr int kHitOpen = -1;
// 0..steps-1: that workload step; steps: closing the store.

// One run of the workload through the VFS, with whatever fault is armed on it.
struct RunOutcome {
  absl::Status open;
  std::vector<absl::Status> steps;  // one per step run (none if Open failed)
  int hit = kHitNothing;
  Model acknowledged{CurrentSchemaVersion()};    // the ChangeSets whose Commit returned OK
  std::vector<Model> acknowledged_before_step;   // the same, as it was before each step
  // A copy of the database and WAL files made right after the Open or step the fault hit,
  // before the Store closed: what a crash at that instant leaves. Empty if the fault hit the
  // close. It must hold `acknowledged` as it was then; `refused` is that step's ChangeSet if it
  // was a refused commit (to say so when the copy holds it).
  std::string crash_copy;
  Model crash_expected{CurrentSchemaVersion()};
  Model crash_expected_and_refused{CurrentSchemaVersion()};
};

void CopyIfPresent(const std::string& from, const std::string& to) {
  if (std::filesystem::exists(from)) std::filesystem::copy_file(from, to);
}

void MakeCrashCopy(const std::string& db_path, const std::string& dir, RunOutcome& run) {
  run.crash_copy = dir + "/crash";
  std::filesystem::create_directories(run.crash_copy);
  CopyIfPresent(db_path, run.crash_copy + "/state.db");
  CopyIfPresent(db_path + "-wal", run.crash_copy + "/state.db-wal");
  run.crash_expected = run.acknowledged;
  run.crash_expected_and_refused = run.acknowledged;
}

RunOutcome RunWorkload(const std::vector<WorkloadStep>& steps, FaultInjectionVfs& vfs,
                       const std::string& dir) {
  RunOutcome run;
  auto note_hit = [&](bool fired_before, int where) {
    if (!fired_before && vfs.fired()) run.hit = where;
  };
  StoreOptions options;
  options.path = dir + "/state.db";
  options.vfs = vfs.name();
  // SQLite's own checkpoint, on the writer: no thread, so the file calls come in a fixed order.
  options.checkpoint_background_pages = 0;
  bool fired = vfs.fired();
  absl::StatusOr<std::unique_ptr<Store>> opened = Store::Open(options);
  note_hit(fired, kHitOpen);
  run.open = opened.status();
  if (run.hit == kHitOpen) MakeCrashCopy(options.path, dir, run);
  if (!opened.ok()) return run;
  std::unique_ptr<Store> store = *std::move(opened);
  for (size_t i = 0; i < steps.size(); ++i) {
    run.acknowledged_before_step.push_back(run.acknowledged);
    fired = vfs.fired();
    absl::Status status = steps[i].snapshot
                              ? store->WriteSnapshot(dir + "/snapshot.db")
                              : store->Commit(steps[i].changes);
    note_hit(fired, static_cast<int>(i));
    if (status.ok() && !steps[i].snapshot) run.acknowledged.Apply(steps[i].changes);
    if (run.hit == static_cast<int>(i)) {
      MakeCrashCopy(options.path, dir, run);
      if (!status.ok()) run.crash_expected_and_refused.Apply(steps[i].changes);
    }
    run.steps.push_back(status);
  }
  fired = vfs.fired();
  store.reset();  // closes the connection: the last checkpoint runs through the VFS too
  note_hit(fired, static_cast<int>(steps.size()));
  return run;
}

// Checks one faulted run; returns "" if it met every expectation, else what went wrong.
std::string CheckRun(const std::vector<WorkloadStep>& steps, const RunOutcome& run,
                     FaultInjectionVfs& vfs, FaultError error, const std::string& dir) {
  std::string problems;
  auto problem = [&](const std::string& what) { absl::StrAppend(&problems, what, "\n"); };
  const char* expected_code = error == FaultError::kDiskFull ? "SQLITE_FULL" : "SQLITE_IOERR";

  if (!vfs.fired()) problem("the armed call was never made: the workload is not deterministic");
  if (!run.open.ok()) {
    if (run.hit != kHitOpen) {
      problem(absl::StrCat("Open failed without a fault: ", run.open.ToString()));
    }
  }
  int first_failure = -1;
  for (size_t i = 0; i < run.steps.size(); ++i) {
    const absl::Status& status = run.steps[i];
    const bool hit_here = run.hit == static_cast<int>(i);
    const std::string where = absl::StrCat("step ", i, " (", steps[i].name, ")");
    if (steps[i].snapshot) {
      // A snapshot has its own connection: its failure latches nothing.
      if (!status.ok() && !hit_here) {
        problem(absl::StrCat(where, " failed without a fault: ", status.ToString()));
      }
      if (!status.ok() && std::filesystem::exists(dir + "/snapshot.db")) {
        problem(absl::StrCat(where, " failed but left snapshot.db behind"));
      }
      for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        if (absl::StrContains(entry.path().filename().string(), ".partial-")) {
          problem(absl::StrCat(where, " left its temporary file ", entry.path().string()));
        }
      }
      continue;
    }
    if (first_failure >= 0) {
      // Latched: refused without touching the file.
      if (status.code() != absl::StatusCode::kUnavailable ||
          !absl::StrContains(status.message(), "refuses writes")) {
        problem(absl::StrCat(where, " after a failed commit was not refused: ", status.ToString()));
      }
      continue;
    }
    if (hit_here && status.ok()) {
      problem(absl::StrCat(where, " returned OK although its ", vfs.fired_call()));
    }
    if (status.ok()) continue;
    first_failure = static_cast<int>(i);
    if (!hit_here) problem(absl::StrCat(where, " failed without a fault: ", status.ToString()));
    if (status.code() != absl::StatusCode::kUnavailable ||
        !absl::StrContains(status.message(), expected_code)) {
      problem(absl::StrCat(where, " failed with ", status.ToString(), "; want UNAVAILABLE naming ",
                           expected_code));
    }
  }

  // A snapshot that was written holds exactly what was acknowledged before it.
  for (size_t i = 0; i < run.steps.size(); ++i) {
    if (!steps[i].snapshot || !run.steps[i].ok()) continue;
    absl::StatusOr<LoadedState> snapshot = ReopenAndLoad(dir + "/snapshot.db");
    if (!snapshot.ok()) {
      problem(absl::StrCat("the snapshot does not open: ", snapshot.status().ToString()));
    } else if (std::string diff = DescribeDifference(
                   *snapshot, run.acknowledged_before_step[i].state());
               !diff.empty()) {
      problem(absl::StrCat("the snapshot differs from the commits acknowledged before it: ", diff));
    }
  }

  // A crash right after the failed call's Open or step: the files hold exactly what was
  // acknowledged by then; a refused commit is absent even when its frames reached the WAL
  // before a failed fsync.
  if (!run.crash_copy.empty()) {
    absl::StatusOr<LoadedState> crashed = ReopenAndLoad(run.crash_copy + "/state.db");
    if (!crashed.ok()) {
      problem(absl::StrCat("the files copied right after the fault do not open: ",
                           crashed.status().ToString()));
    } else if (std::string diff = DescribeDifference(*crashed, run.crash_expected.state());
               !diff.empty()) {
      const bool refused_whole =
          DescribeDifference(*crashed, run.crash_expected_and_refused.state()).empty();
      problem(absl::StrCat("the files copied right after the fault differ from the acknowledged "
                           "commits",
                           refused_whole ? " (the refused commit is there in full)" : "", ": ",
                           diff));
    }
  }

  // The file, reopened without faults, holds exactly the acknowledged commits.
  absl::StatusOr<LoadedState> reopened = ReopenAndLoad(dir + "/state.db");
  if (!reopened.ok()) {
    problem(absl::StrCat("reopening without faults failed: ", reopened.status().ToString()));
  } else if (std::string diff = DescribeDifference(*reopened, run.acknowledged.state());
             !diff.empty()) {
    problem(absl::StrCat("reopened database differs from the acknowledged commits: ", diff));
  }
  return problems;
}

struct KindTally {
  int64_t points = 0;
  int64_t open_failed = 0;
  int64_t commit_failed = 0;
  int64_t snapshot_failed = 0;
  int64_t harmless = 0;  // the fault changed no answer (e.g. it hit the closing checkpoint)
};

class StoreFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<FaultInjectionVfs>> vfs = FaultInjectionVfs::Register(kVfsName);
    ASSERT_TRUE(vfs.ok()) << vfs.status();
    vfs_ = *std::move(vfs);
  }

  // Runs the workload in a fresh directory under dir_ and removes it afterwards.
  template <typename Check>
  void RunInFreshDirectory(const std::string& label, Check check) {
    const std::string dir = dir_.File(label);
    std::filesystem::create_directories(dir);
    RunOutcome run = RunWorkload(steps_, *vfs_, dir);
    check(run, dir);
    std::filesystem::remove_all(dir);
  }

  const std::vector<WorkloadStep> steps_ = DaemonLikeWorkload();
  TempDir dir_{FastTempBase()};
  std::unique_ptr<FaultInjectionVfs> vfs_;
};

TEST_F(StoreFaultTest, EveryFailedCallKeepsExactlyTheAcknowledgedCommits) {
  // The clean run: every step succeeds; it fixes how many calls of each kind there are.
  std::array<int64_t, kFaultKindCount> clean{};
  vfs_->Reset();
  RunInFreshDirectory("clean", [&](const RunOutcome& run, const std::string& dir) {
    ASSERT_TRUE(run.open.ok()) << run.open;
    for (size_t i = 0; i < run.steps.size(); ++i) {
      ASSERT_TRUE(run.steps[i].ok()) << steps_[i].name << ": " << run.steps[i];
    }
    for (FaultKind kind : kAllFaultKinds) clean[static_cast<int>(kind)] = vfs_->count(kind);
    absl::StatusOr<LoadedState> reopened = ReopenAndLoad(dir + "/state.db");
    ASSERT_TRUE(reopened.ok()) << reopened.status();
    EXPECT_EQ(DescribeDifference(*reopened, run.acknowledged.state()), "");
    EXPECT_EQ(reopened->instances.size(), 13u);  // 18 - 6 deleted + 1 single
  });
  // A second clean run makes the same calls: the N-th call names the same point in every run.
  vfs_->Reset();
  RunInFreshDirectory("clean-again", [&](const RunOutcome&, const std::string&) {
    for (FaultKind kind : kAllFaultKinds) {
      EXPECT_EQ(vfs_->count(kind), clean[static_cast<int>(kind)]) << FaultKindName(kind);
    }
  });
  for (FaultKind kind : kAllFaultKinds) {
    // Otherwise the loop below would prove nothing for this kind.
    ASSERT_GT(clean[static_cast<int>(kind)], 0) << FaultKindName(kind);
  }
  if (HasFatalFailure()) return;

  struct Mode {
    FaultKind kind;
    FaultError error;
  };
  std::vector<Mode> modes;
  for (FaultKind kind : kAllFaultKinds) modes.push_back({kind, FaultError::kIoError});
  modes.push_back({FaultKind::kWrite, FaultError::kDiskFull});

  for (const Mode& mode : modes) {
    const std::string mode_name = absl::StrCat(
        FaultKindName(mode.kind), mode.error == FaultError::kDiskFull ? "/SQLITE_FULL" : "/IOERR");
    KindTally tally;
    int failures_reported = 0;
    for (int64_t n = 1; n <= clean[static_cast<int>(mode.kind)]; ++n) {
      vfs_->Reset();
      vfs_->FailNthCall(mode.kind, n, mode.error);
      RunInFreshDirectory(absl::StrCat(FaultKindName(mode.kind), "-", n),
                          [&](const RunOutcome& run, const std::string& dir) {
        ++tally.points;
        bool any_failed = !run.open.ok();
        if (!run.open.ok()) ++tally.open_failed;
        for (size_t i = 0; i < run.steps.size(); ++i) {
          if (run.steps[i].ok()) continue;
          any_failed = true;
          if (steps_[i].snapshot) {
            ++tally.snapshot_failed;
          } else if (run.hit == static_cast<int>(i)) {
            ++tally.commit_failed;
          }
        }
        if (!any_failed) ++tally.harmless;
        const std::string problems = CheckRun(steps_, run, *vfs_, mode.error, dir);
        if (!problems.empty() && ++failures_reported <= 5) {
          ADD_FAILURE() << mode_name << ", call " << n << " failed (" << vfs_->fired_call()
                        << "):\n"
                        << problems;
        }
      });
    }
    EXPECT_EQ(failures_reported, 0) << mode_name << ": runs with problems (first 5 shown)";
    std::cout << "[fault injection] " << mode_name << ": " << tally.points
              << " injection points; Open failed " << tally.open_failed << ", a commit failed "
              << tally.commit_failed << ", the snapshot failed " << tally.snapshot_failed
              << ", no answer changed " << tally.harmless << "\n";
    RecordProperty(absl::StrCat("injection_points_", FaultKindName(mode.kind),
                                mode.error == FaultError::kDiskFull ? "_full" : "_ioerr"),
                   static_cast<int>(tally.points));
  }
}

// Regression: a COMMIT whose fsync fails has already written its WAL frames, commit mark
// included. SQLite ignores them while the connection lives and the closing checkpoint drops
// them, but a crash before the close let recovery replay them: the restarted daemon held a
// batch its clients had been told failed. The Store now truncates the WAL when a commit fails.
TEST_F(StoreFaultTest, ACommitRefusedAfterAFailedFsyncIsGoneAfterACrash) {
  const std::vector<WorkloadStep> steps = DaemonLikeWorkload();
  const ChangeSet& fleet = steps[0].changes;
  const ChangeSet& batch = steps[1].changes;
  StoreOptions options;
  options.path = dir_.File("state.db");
  options.vfs = vfs_->name();
  options.checkpoint_background_pages = 0;  // as RunWorkload: file calls in a fixed order
  vfs_->Reset();
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(options);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->Commit(fleet).ok());
  // The batch's COMMIT makes one fsync, of the WAL, after writing every frame.
  vfs_->FailNthCall(FaultKind::kSync, vfs_->count(FaultKind::kSync) + 1, FaultError::kIoError);
  absl::Status refused = (*store)->Commit(batch);
  ASSERT_TRUE(vfs_->fired());
  EXPECT_THAT(vfs_->fired_call(), HasSubstr("state.db-wal"));
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(refused.message(), HasSubstr("disk I/O error"));

  // Crash now: only what is in the files survives.
  const std::string crash = dir_.File("crash");
  std::filesystem::create_directories(crash);
  std::filesystem::copy_file(options.path, crash + "/state.db");
  CopyIfPresent(options.path + "-wal", crash + "/state.db-wal");
  Model fleet_only(CurrentSchemaVersion());
  fleet_only.Apply(fleet);
  absl::StatusOr<LoadedState> restarted = ReopenAndLoad(crash + "/state.db");
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  EXPECT_EQ(DescribeDifference(*restarted, fleet_only.state()), "");

  // And the latch holds: nothing more is written.
  EXPECT_THAT((*store)->Commit(steps[3].changes).message(), HasSubstr("refuses writes"));
}

// A live database after the workload's commits (synchronous=FULL, all acknowledged), copied
// while the Store is still open, i.e. before its closing checkpoint: what a crash leaves.
class StoreTornWalTest : public ::testing::Test {
 protected:
  static constexpr size_t kWalHeaderBytes = 32;
  static constexpr size_t kFrameHeaderBytes = 24;

  void SetUp() override {
    StoreOptions options;
    options.path = dir_.File("live.db");
    ASSERT_EQ(options.sync, SyncMode::kFull);
    absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    const std::string db_after_open = ReadFileBytes(options.path);
    prefixes_.emplace_back(CurrentSchemaVersion());
    commit_wal_end_.push_back(std::filesystem::file_size(options.path + "-wal"));
    for (const WorkloadStep& step : DaemonLikeWorkload()) {
      if (step.snapshot) continue;
      ASSERT_TRUE((*store)->Commit(step.changes).ok()) << step.name;
      prefixes_.push_back(prefixes_.back());
      prefixes_.back().Apply(step.changes);
      commit_wal_end_.push_back(std::filesystem::file_size(options.path + "-wal"));
      ASSERT_GT(commit_wal_end_.back(), commit_wal_end_[commit_wal_end_.size() - 2]) << step.name;
    }
    db_ = ReadFileBytes(options.path);
    wal_ = ReadFileBytes(options.path + "-wal");
    // No checkpoint ran (the workload is far below wal_autocheckpoint's 1000 pages): the database
    // file is as Open left it and the WAL, appended to only, holds every commit.
    ASSERT_EQ(db_, db_after_open);
    ASSERT_FALSE(db_.empty()) << "a WAL beside an empty database file is ignored";
    ASSERT_EQ(wal_.size(), commit_wal_end_.back());
    ASSERT_GE(wal_.size(), kWalHeaderBytes);
    page_bytes_ = (static_cast<uint8_t>(wal_[8]) << 24) | (static_cast<uint8_t>(wal_[9]) << 16) |
                  (static_cast<uint8_t>(wal_[10]) << 8) | static_cast<uint8_t>(wal_[11]);
    frame_bytes_ = kFrameHeaderBytes + page_bytes_;
    ASSERT_EQ((wal_.size() - kWalHeaderBytes) % frame_bytes_, 0u) << "page size " << page_bytes_;
    frames_ = (wal_.size() - kWalHeaderBytes) / frame_bytes_;
  }

  size_t FrameStart(size_t frame) const { return kWalHeaderBytes + frame * frame_bytes_; }

  // The commits whose last frame lies wholly within the first `wal_bytes` of the WAL.
  const Model& DurablePrefix(size_t wal_bytes) {
    size_t commits = 0;
    for (size_t k = 1; k < commit_wal_end_.size(); ++k) {
      if (commit_wal_end_[k] <= wal_bytes) commits = k;
    }
    prefixes_expected_.insert(commits);
    return prefixes_[commits];
  }

  // Starts a Store on the database file and `wal` in a fresh directory; "" if it opens and
  // loads exactly `want`.
  std::string OpenCopy(const std::string& label, const std::string& wal, const Model& want) {
    const std::string dir = dir_.File(label);
    std::filesystem::create_directories(dir);
    store_testing::WriteFile(dir + "/state.db", db_);
    store_testing::WriteFile(dir + "/state.db-wal", wal);
    absl::StatusOr<LoadedState> loaded = ReopenAndLoad(dir + "/state.db");
    std::filesystem::remove_all(dir);
    if (!loaded.ok()) return absl::StrCat("does not open: ", loaded.status().ToString());
    return DescribeDifference(*loaded, want.state());
  }

  TempDir dir_{FastTempBase()};
  std::string db_;
  std::string wal_;
  size_t page_bytes_ = 0;
  size_t frame_bytes_ = 0;
  size_t frames_ = 0;
  std::vector<Model> prefixes_;          // [k]: the first k commits applied
  std::vector<size_t> commit_wal_end_;  // [k]: WAL size once commit k was acknowledged; [0]: Open
  std::set<size_t> prefixes_expected_;  // which k DurablePrefix has answered
};

TEST_F(StoreTornWalTest, EveryCutOfTheWalYieldsThePrefixOfCommitsItHolds) {
  // Inside the WAL header; every frame boundary; inside every frame header and page.
  std::vector<size_t> cuts = {0, 1, kWalHeaderBytes - 1, kWalHeaderBytes};
  for (size_t f = 0; f < frames_; ++f) {
    cuts.push_back(FrameStart(f) + 1);
    cuts.push_back(FrameStart(f) + kFrameHeaderBytes + page_bytes_ / 2);
    cuts.push_back(FrameStart(f) + frame_bytes_ - 1);
    cuts.push_back(FrameStart(f + 1));
  }
  int problems = 0;
  for (size_t cut : cuts) {
    const std::string diff = OpenCopy(absl::StrCat("cut-", cut), wal_.substr(0, cut),
                                      DurablePrefix(cut));
    if (!diff.empty() && ++problems <= 5) {
      ADD_FAILURE() << "WAL cut at byte " << cut << " of " << wal_.size() << ": " << diff;
    }
  }
  EXPECT_EQ(problems, 0);
  // Every prefix, from the empty database to all commits, was among the expectations.
  EXPECT_EQ(prefixes_expected_.size(), prefixes_.size());
  std::cout << "[torn wal] " << frames_ << " frames of " << page_bytes_ << "-byte pages, "
            << commit_wal_end_.size() - 1 << " commits; " << cuts.size()
            << " truncation points tried\n";
  RecordProperty("wal_truncation_points", static_cast<int>(cuts.size()));
}

// A frame whose bytes did not all reach the disk fails its checksum: recovery keeps the commits
// wholly before it and drops it and everything after, even frames that are intact.
TEST_F(StoreTornWalTest, ADamagedFrameCutsTheWalBeforeIt) {
  int problems = 0;
  for (size_t f = 0; f < frames_; ++f) {
    std::string wal = wal_;
    wal[FrameStart(f) + kFrameHeaderBytes + page_bytes_ / 2] ^= 0x5a;
    const std::string diff =
        OpenCopy(absl::StrCat("damaged-", f), wal, DurablePrefix(FrameStart(f)));
    if (!diff.empty() && ++problems <= 5) {
      ADD_FAILURE() << "frame " << f << " of " << frames_ << " damaged: " << diff;
    }
  }
  EXPECT_EQ(problems, 0);
  // Every prefix but the whole: a damaged frame always drops at least the last commit.
  EXPECT_EQ(prefixes_expected_.size(), prefixes_.size() - 1);
  std::cout << "[torn wal] " << frames_ << " frames damaged one at a time\n";
}

}  // namespace
}  // namespace nvlsched::store
