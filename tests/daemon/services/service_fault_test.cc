// Issue 21 at the daemon level: a disk that fails at any point of a scripted gRPC workload.
//
// The in-process daemon (service_fixture.h) opens its database through the fault-injection VFS
// (tests/store/fault_injection_vfs.h) with synchronous=FULL, as nvlschedd does by default, and
// runs ApplyFleet, BatchCreateInstances, UpdateInstanceStatus, CreateInstance (a GPU slice),
// AdminService/CreateSnapshot, BatchDeleteInstances, SetMachineState(MAINTENANCE) and
// UpsertTenant, one call at a time, then stops. For every kind of file call (write, sync,
// truncate, lock; writes also as SQLITE_FULL) and every N from 1 until a run no longer reaches
// the N-th call, it fails that call and checks:
//   (1) the call that met the fault fails UNAVAILABLE naming SQLite's error; every later write
//       fails UNAVAILABLE (read-only), reads keep answering the acknowledged state, and a
//       snapshot still works; a failed snapshot leaves the daemon writable and no file behind;
//   (2) a new daemon on the same file, through the default VFS, lists exactly what the
//       acknowledged calls left (a model built from their answers): instances with their status,
//       machine and GPUs, machines with their state and holders, tenants; and the same records,
//       field for field, as the faulted daemon listed before it stopped. The same holds for a
//       daemon started on a copy of the files taken right after the faulted call, while the
//       faulted daemon still ran (what kill -9 at that instant leaves): a refused commit whose
//       frames reached the WAL before its fsync failed must not come back;
//   (3) the allocator's invariants hold after that restart, and a normal create succeeds.
// A written snapshot holds exactly what was acknowledged before it.
//
// The harness has no health service (daemon.cc wires Health to the engine's read-only hook),
// so (1) reads Engine::read_only() instead.
//
// The figures (fault points per kind, and what each led to) are printed on every run.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "spdlog/spdlog.h"
#include "store/store.h"
#include "tests/daemon/services/service_fault_workload.h"
#include "tests/daemon/services/service_fixture.h"
#include "tests/store/fault_injection_vfs.h"

namespace nvlsched::daemon::testing {
namespace {

namespace f = small_fleet;
using service_fault::DaemonModel;
using service_fault::DescribeModelDifference;
using service_fault::DescribeRecordDifference;
using service_fault::GpuSlice;
using service_fault::kSnapshotFile;
using service_fault::Observed;
using service_fault::ReadEverything;
using service_fault::Step;
using service_fault::Workload;
using service_fault::WorkloadState;
using store::store_testing::FaultError;
using store::store_testing::FaultInjectionVfs;
using store::store_testing::FaultKind;
using store::store_testing::FaultKindName;
using store::store_testing::kAllFaultKinds;
using store::store_testing::kFaultKindCount;

constexpr char kVfsName[] = "nvlsched-service-fault";

// ---- One run of the workload through the VFS, with whatever fault is armed on it. ----

constexpr int kHitNothing = -2;
constexpr int kHitStart = -1;
// 0..steps-1: that step; steps.size(): the stop (closing the store).

struct RunOutcome {
  absl::Status start;
  std::vector<grpc::Status> statuses;  // one per step (none if the daemon did not start)
  int hit = kHitNothing;
  bool read_only = false;  // Engine::read_only() after the workload
  Observed before_stop;    // what the faulted daemon listed after the workload
  WorkloadState work;
  // The database and WAL files copied right after the start or call the fault hit, while the
  // daemon still ran: what a crash (kill -9) at that instant leaves. Empty if the fault hit the
  // stop. A daemon started on it must list exactly `crash_acknowledged`.
  std::string crash_dir;
  DaemonModel crash_acknowledged;
};

void CopyIfPresent(const std::string& from, const std::string& to) {
  if (std::filesystem::exists(from)) std::filesystem::copy_file(from, to);
}

void MakeCrashCopy(const std::string& dir, RunOutcome& run) {
  run.crash_dir = dir + "/crash";
  std::filesystem::create_directories(run.crash_dir);
  CopyIfPresent(dir + "/nvlsched.db", run.crash_dir + "/nvlsched.db");
  CopyIfPresent(dir + "/nvlsched.db-wal", run.crash_dir + "/nvlsched.db-wal");
  run.crash_acknowledged = run.work.acknowledged;
}

HarnessOptions OptionsFor(const std::string& dir, const std::string& vfs) {
  HarnessOptions options;
  options.db_path = dir + "/nvlsched.db";
  options.snapshot_dir = dir + "/snapshots";
  options.store_vfs = vfs;
  options.store_sync = store::SyncMode::kFull;  // the daemon's default: every commit fsyncs
  return options;
}

RunOutcome RunWorkload(const std::vector<Step>& steps, FaultInjectionVfs& vfs,
                       const std::string& dir) {
  RunOutcome run;
  auto note_hit = [&](bool fired_before, int where) {
    if (!fired_before && vfs.fired()) run.hit = where;
  };
  bool fired = vfs.fired();
  absl::StatusOr<std::unique_ptr<ServiceHarness>> started =
      ServiceHarness::Start(OptionsFor(dir, vfs.name()));
  note_hit(fired, kHitStart);
  run.start = started.status();
  if (run.hit == kHitStart) MakeCrashCopy(dir, run);
  if (!started.ok()) return run;
  ServiceHarness& h = **started;
  for (size_t i = 0; i < steps.size(); ++i) {
    fired = vfs.fired();
    run.statuses.push_back(steps[i].call(h, run.work));
    note_hit(fired, static_cast<int>(i));
    if (run.hit == static_cast<int>(i)) MakeCrashCopy(dir, run);
  }
  run.read_only = h.engine().read_only();
  run.before_stop = ReadEverything(h);
  fired = vfs.fired();
  h.Stop();  // closes the store: its last checkpoint goes through the VFS too
  note_hit(fired, static_cast<int>(steps.size()));
  return run;
}

std::string Describe(const grpc::Status& s) {
  return absl::StrCat("code ", s.error_code(), " \"", s.error_message(), "\"");
}

// A written snapshot holds what was acknowledged before it: the same instances, machines and
// tenants (read with the store, as `nvlschedd --db` would load it).
std::string CheckSnapshotFile(const RunOutcome& run, const std::string& dir) {
  if (!run.work.acknowledged_at_snapshot.has_value()) return "";
  const DaemonModel& want = *run.work.acknowledged_at_snapshot;
  store::StoreOptions options;
  options.path = absl::StrCat(dir, "/snapshots/", kSnapshotFile);
  absl::StatusOr<std::unique_ptr<store::Store>> snapshot = store::Store::Open(options);
  if (!snapshot.ok()) return absl::StrCat("the snapshot does not open: ", snapshot.status().ToString());
  absl::StatusOr<store::LoadedState> loaded = (*snapshot)->LoadAll();
  if (!loaded.ok()) return absl::StrCat("the snapshot does not load: ", loaded.status().ToString());
  std::set<std::string> instances, machines, tenants;
  for (const auto& row : loaded->instances) instances.insert(row.id);
  for (const auto& row : loaded->machines) machines.insert(row.id);
  for (const auto& row : loaded->tenants) tenants.insert(row.id);
  std::set<std::string> want_instances, want_machines;
  for (const auto& [id, facts] : want.instances) want_instances.insert(id);
  for (const auto& [id, state] : want.machine_states) want_machines.insert(id);
  if (instances != want_instances || machines != want_machines || tenants != want.tenants) {
    return absl::StrCat("the snapshot holds ", instances.size(), " instances, ", machines.size(),
                        " machines, ", tenants.size(), " tenants; acknowledged before it: ",
                        want_instances.size(), ", ", want_machines.size(), ", ",
                        want.tenants.size());
  }
  return "";
}

// (2) and (3): a daemon started without faults on the files in `dir` lists exactly
// `acknowledged` (and, when given, the same records as `before_stop`), its allocator is
// consistent, and it creates an instance.
std::string CheckRestart(const std::string& what, const std::string& dir,
                         const DaemonModel& acknowledged, const Observed* before_stop) {
  std::string problems;
  absl::StatusOr<std::unique_ptr<ServiceHarness>> restarted =
      ServiceHarness::Start(OptionsFor(dir, /*vfs=*/""));
  if (!restarted.ok()) {
    return absl::StrCat("the daemon does not start on ", what, ": ",
                        restarted.status().ToString());
  }
  ServiceHarness& h = **restarted;
  const Observed after = ReadEverything(h);
  if (std::string diff = DescribeModelDifference(acknowledged, after); !diff.empty()) {
    absl::StrAppend(&problems, "started on ", what, ": ", diff, "\n");
  }
  if (before_stop != nullptr) {
    if (std::string diff = DescribeRecordDifference(*before_stop, after); !diff.empty()) {
      absl::StrAppend(&problems, "the restarted daemon's records differ from the faulted one's: ",
                      diff, "\n");
    }
  }
  auto invariants = [&h] {
    absl::Status result = absl::UnknownError("the read did not run");
    h.Read([&result](const State& state) { result = state.allocator().CheckInvariants(); });
    return result;
  };
  if (absl::Status s = invariants(); !s.ok()) {
    absl::StrAppend(&problems, "allocator invariants on ", what, ": ", s.ToString(), "\n");
  }
  if (acknowledged.machine_states.empty()) {
    // The fleet was never acknowledged: a normal start applies it first.
    v1::ApplyFleetRequest req;
    *req.mutable_fleet() = SmallFleet();
    v1::ApplyFleetResponse resp;
    grpc::Status s = h.inventory().ApplyFleet(Context().get(), req, &resp);
    if (!s.ok()) absl::StrAppend(&problems, "ApplyFleet on ", what, ": ", Describe(s), "\n");
  }
  v1::Instance created;
  grpc::Status s = h.instances().CreateInstance(Context().get(), GpuSlice("after-restart", 1),
                                                &created);
  if (!s.ok()) absl::StrAppend(&problems, "CreateInstance on ", what, ": ", Describe(s), "\n");
  if (absl::Status inv = invariants(); !inv.ok()) {
    absl::StrAppend(&problems, "allocator invariants on ", what, " after a create: ",
                    inv.ToString(), "\n");
  }
  return problems;
}

// Checks one run; returns "" if it met every expectation, else what went wrong. `error` is the
// armed fault's, or nullopt for a clean run.
std::string CheckRun(const std::vector<Step>& steps, const RunOutcome& run,
                     const FaultInjectionVfs& vfs, std::optional<FaultError> error,
                     const std::string& dir) {
  std::string problems;
  auto problem = [&](const std::string& what) { absl::StrAppend(&problems, what, "\n"); };
  const char* sqlite_code = error == FaultError::kDiskFull ? "SQLITE_FULL" : "SQLITE_IOERR";

  if (!run.start.ok() && run.hit != kHitStart) {
    problem(absl::StrCat("the daemon did not start without a fault: ", run.start.ToString()));
  }
  const std::string snapshot_dir = dir + "/snapshots";
  int first_refused_write = -1;
  for (size_t i = 0; i < run.statuses.size(); ++i) {
    const grpc::Status& s = run.statuses[i];
    const bool hit_here = run.hit == static_cast<int>(i);
    const std::string where = absl::StrCat(steps[i].name, " (step ", i, ")");
    if (!steps[i].write) {
      // A snapshot only reads the store: it works while the daemon is read-only, and its own
      // failure latches nothing and leaves no file behind.
      if (!s.ok() && !hit_here) problem(absl::StrCat(where, " failed without a fault: ", Describe(s)));
      if (!s.ok() && s.error_code() != grpc::StatusCode::UNAVAILABLE) {
        problem(absl::StrCat(where, " failed with ", Describe(s), "; want UNAVAILABLE"));
      }
      if (!s.ok() && std::filesystem::exists(snapshot_dir)) {
        for (const auto& entry : std::filesystem::directory_iterator(snapshot_dir)) {
          problem(absl::StrCat(where, " failed but left ", entry.path().string()));
        }
      }
      continue;
    }
    if (first_refused_write >= 0) {
      if (!IsRpcError(s, grpc::StatusCode::UNAVAILABLE, "read-only")) {
        problem(absl::StrCat(where, " after a failed commit was not refused: ", Describe(s)));
      }
      continue;
    }
    if (s.ok()) {
      if (hit_here) problem(absl::StrCat(where, " returned OK although its ", vfs.fired_call()));
      continue;
    }
    first_refused_write = static_cast<int>(i);
    if (!hit_here) problem(absl::StrCat(where, " failed without a fault: ", Describe(s)));
    if (!IsRpcError(s, grpc::StatusCode::UNAVAILABLE, "the database commit failed") ||
        !absl::StrContains(s.error_message(), sqlite_code)) {
      problem(absl::StrCat(where, " failed with ", Describe(s),
                           "; want UNAVAILABLE, \"the database commit failed\" and ", sqlite_code));
    }
  }
  if (run.start.ok()) {
    if (run.read_only != (first_refused_write >= 0)) {
      problem(absl::StrCat("Engine::read_only() is ", run.read_only, " after the workload"));
    }
    // Reads keep working, and show only what was acknowledged (the failed group was undone).
    if (std::string diff = DescribeModelDifference(run.work.acknowledged, run.before_stop);
        !diff.empty()) {
      problem(absl::StrCat("the faulted daemon, before it stopped: ", diff));
    }
  }
  if (std::string s = CheckSnapshotFile(run, dir); !s.empty()) problem(s);
  absl::StrAppend(&problems, CheckRestart("the file after a clean stop", dir,
                                          run.work.acknowledged,
                                          run.start.ok() ? &run.before_stop : nullptr));
  if (!run.crash_dir.empty()) {
    absl::StrAppend(&problems, CheckRestart("the files copied right after the fault (a crash)",
                                            run.crash_dir, run.crash_acknowledged, nullptr));
  }
  return problems;
}

// What the faults of one mode led to, in the order first seen.
struct Tally {
  int64_t points = 0;
  std::vector<std::pair<std::string, int64_t>> outcomes;
  void Count(const std::string& outcome) {
    ++points;
    for (auto& [name, n] : outcomes) {
      if (name == outcome) {
        ++n;
        return;
      }
    }
    outcomes.emplace_back(outcome, 1);
  }
};

std::string OutcomeOf(const std::vector<Step>& steps, const RunOutcome& run) {
  if (run.hit == kHitStart) return run.start.ok() ? "start unaffected" : "start refused";
  if (run.hit == static_cast<int>(steps.size())) return "at stop, no answer changed";
  if (run.hit < 0) return "never hit";
  const Step& step = steps[run.hit];
  const bool failed = !run.statuses[run.hit].ok();
  return absl::StrCat(step.name, failed ? (step.write ? " refused" : " failed") : " unaffected");
}

// A RAM file system when there is one: these runs fsync a few hundred times each.
std::string FastTempBase() {
  struct stat st;
  if (::stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && ::access("/dev/shm", W_OK) == 0) {
    return "/dev/shm";
  }
  const char* tmp = ::getenv("TMPDIR");
  return tmp != nullptr ? tmp : "/tmp";
}

class ServiceFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // About a thousand daemons start and stop here, each logging every call (and a critical
    // line per failed commit): the test prints its own figures and every failure instead.
    spdlog::set_level(spdlog::level::off);
    absl::StatusOr<std::unique_ptr<FaultInjectionVfs>> vfs = FaultInjectionVfs::Register(kVfsName);
    ASSERT_TRUE(vfs.ok()) << vfs.status();
    vfs_ = *std::move(vfs);
    std::string pattern = FastTempBase() + "/nvlsched_svc_fault_XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr) << "mkdtemp " << pattern;
    base_ = pattern;
  }
  void TearDown() override {
    spdlog::set_level(spdlog::level::info);
    std::error_code ignored;
    if (!base_.empty()) std::filesystem::remove_all(base_, ignored);
  }

  // Runs the workload with the armed fault in a fresh directory, checks it, removes it.
  std::pair<RunOutcome, std::string> RunAndCheck(const std::string& label,
                                                 std::optional<FaultError> error) {
    const std::string dir = absl::StrCat(base_, "/", label);
    std::filesystem::create_directories(dir);
    RunOutcome run = RunWorkload(steps_, *vfs_, dir);
    std::string problems = vfs_->fired() || !error.has_value()
                               ? CheckRun(steps_, run, *vfs_, error, dir)
                               : std::string();
    std::filesystem::remove_all(dir);
    return {std::move(run), std::move(problems)};
  }

  const std::vector<Step> steps_ = Workload();
  std::string base_;
  std::unique_ptr<FaultInjectionVfs> vfs_;
};

TEST_F(ServiceFaultTest, EveryFailedFileCallKeepsExactlyTheAcknowledgedCalls) {
  // Two clean runs: every call succeeds, and both make the same file calls, so the N-th call
  // names the same point in every run.
  std::array<int64_t, kFaultKindCount> clean{};
  for (int round = 0; round < 2; ++round) {
    vfs_->Reset();
    auto [run, problems] = RunAndCheck(absl::StrCat("clean-", round), std::nullopt);
    ASSERT_TRUE(run.start.ok()) << run.start;
    for (size_t i = 0; i < steps_.size(); ++i) {
      ASSERT_TRUE(run.statuses[i].ok()) << steps_[i].name << ": " << Describe(run.statuses[i]);
    }
    EXPECT_EQ(problems, "");
    // The workload did what it says: one batch instance (now PROVISIONING) and the slice left,
    // one machine in maintenance, two tenants.
    const DaemonModel& model = run.work.acknowledged;
    EXPECT_EQ(model.instances.size(), 2u);
    EXPECT_EQ(model.instances.at(run.work.batch_instance_ids[0]).status,
              v1::INSTANCE_STATUS_PROVISIONING);
    EXPECT_EQ(model.machine_states.at(f::MachineId(2, 3)), v1::MACHINE_STATE_MAINTENANCE);
    EXPECT_EQ(model.tenants.size(), 2u);
    EXPECT_TRUE(run.work.acknowledged_at_snapshot.has_value());
    for (FaultKind kind : kAllFaultKinds) {
      const int64_t count = vfs_->count(kind);
      if (round == 0) clean[static_cast<int>(kind)] = count;
      EXPECT_EQ(count, clean[static_cast<int>(kind)]) << FaultKindName(kind) << " in run " << round;
    }
  }
  // Otherwise the loops below would prove nothing about commits.
  ASSERT_GT(clean[static_cast<int>(FaultKind::kWrite)], 0);
  ASSERT_GT(clean[static_cast<int>(FaultKind::kSync)], 0);
  if (HasFailure()) return;

  struct Mode {
    FaultKind kind;
    FaultError error;
  };
  std::vector<Mode> modes;
  for (FaultKind kind : kAllFaultKinds) modes.push_back({kind, FaultError::kIoError});
  modes.push_back({FaultKind::kWrite, FaultError::kDiskFull});

  std::cout << "clean run: " << steps_.size() << " calls;";
  for (FaultKind kind : kAllFaultKinds) {
    std::cout << " " << clean[static_cast<int>(kind)] << " " << FaultKindName(kind);
  }
  std::cout << " file calls\n";
  for (const Mode& mode : modes) {
    const std::string mode_name = absl::StrCat(
        FaultKindName(mode.kind), mode.error == FaultError::kDiskFull ? "/SQLITE_FULL" : "/IOERR");
    const int64_t expected_points = clean[static_cast<int>(mode.kind)];
    Tally tally;
    int reported = 0;
    // Every N until the run no longer makes an N-th call of the kind (bounded, in case the
    // workload stopped being deterministic).
    for (int64_t n = 1; n <= expected_points + 1; ++n) {
      vfs_->Reset();
      vfs_->FailNthCall(mode.kind, n, mode.error);
      auto [run, problems] = RunAndCheck(absl::StrCat(FaultKindName(mode.kind), "-", n), mode.error);
      if (!vfs_->fired()) {
        EXPECT_EQ(n - 1, expected_points) << mode_name << ": the N-th call was never made";
        break;
      }
      tally.Count(OutcomeOf(steps_, run));
      if (!problems.empty() && ++reported <= 5) {
        ADD_FAILURE() << mode_name << " #" << n << " (" << vfs_->fired_call() << "):\n" << problems;
      }
    }
    EXPECT_EQ(tally.points, expected_points) << mode_name;
    EXPECT_EQ(reported, 0) << mode_name << ": runs with problems (first 5 shown)";
    std::cout << mode_name << ": " << tally.points << " fault points:";
    for (const auto& [outcome, n] : tally.outcomes) std::cout << " " << outcome << " " << n << ";";
    std::cout << "\n";
  }
}

}  // namespace
}  // namespace nvlsched::daemon::testing
