// The engine's queue rules: a call whose deadline passed while it was queued takes nothing —
// a write is not applied (DEADLINE_EXCEEDED) and a read does not run (its refusal gets
// DEADLINE_EXCEEDED); a read without a refusal callback still runs. A refusal (a daemon that
// stepped down) turns every later call away with its status, before and after Stop, while what
// was queued before it still runs. Its two threads carry their names (top -H, perf). Each write
// reports where its time went (queued, engine, completion) just before its answer.
#include "daemon/engine/engine.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "daemon/engine/load_state.h"
#include "gtest/gtest.h"
#include "store/store.h"
#include "store/sync.h"

namespace nvlsched::daemon {
namespace {

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store::StoreOptions options;
    options.path = ":memory:";
    absl::StatusOr<std::unique_ptr<store::Store>> store = store::Store::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    LoadReport report;
    absl::StatusOr<std::unique_ptr<State>> state = LoadState(*store_, &report);
    ASSERT_TRUE(state.ok()) << state.status();
    state_ = *std::move(state);
    engine_ = std::make_unique<Engine>(state_.get(), store_.get(), Engine::Options{});
    engine_->Start();
  }
  void TearDown() override { engine_.reset(); }

  std::unique_ptr<store::Store> store_;
  std::unique_ptr<State> state_;
  std::unique_ptr<Engine> engine_;
};

// The names of this process's threads, from /proc/self/task/*/comm.
std::set<std::string> ThreadNames() {
  std::set<std::string> names;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    if (std::getline(comm, name)) names.insert(name);
  }
  return names;
}

TEST_F(EngineTest, ItsThreadsAreNamed) {
  // A write's answer runs on the completion thread, after the engine thread applied it: once it
  // is in, both threads have run, and named themselves first.
  Notification done;
  ASSERT_TRUE(
      engine_
          ->SubmitWrite([](State& state) { return state.UpsertDomain({"d", "rack", "site"}); },
                        [&](absl::Status) { done.Notify(); }, absl::InfiniteFuture())
          .ok());
  done.WaitForNotification();
  const std::set<std::string> names = ThreadNames();
  EXPECT_TRUE(names.count("nvl-engine") == 1) << ::testing::PrintToString(names);
  EXPECT_TRUE(names.count("nvl-completions") == 1) << ::testing::PrintToString(names);
}

TEST_F(EngineTest, AnExpiredWriteTakesNothing) {
  Notification done;
  absl::Status result;
  bool ran = false;
  ASSERT_TRUE(engine_
                  ->SubmitWrite(
                      [&](State& state) {
                        ran = true;
                        return state.UpsertDomain({"d", "rack", "site"});
                      },
                      [&](absl::Status s) {
                        result = std::move(s);
                        done.Notify();
                      },
                      absl::Now() - absl::Seconds(1))
                  .ok());
  done.WaitForNotification();
  EXPECT_EQ(result.code(), absl::StatusCode::kDeadlineExceeded) << result;
  EXPECT_FALSE(ran);
  EXPECT_EQ(state_->allocator().FindDomain("d"), nullptr);
}

TEST_F(EngineTest, AnExpiredReadDoesNotRun) {
  Notification done;
  absl::Status refused;
  bool ran = false;
  ASSERT_TRUE(engine_
                  ->SubmitRead([&](const State&) { ran = true; },
                               absl::Now() - absl::Seconds(1),
                               [&](absl::Status s) {
                                 refused = std::move(s);
                                 done.Notify();
                               })
                  .ok());
  done.WaitForNotification();
  EXPECT_EQ(refused.code(), absl::StatusCode::kDeadlineExceeded) << refused;
  EXPECT_FALSE(ran);

  // In time: it runs, and the refusal is not called.
  Notification read;
  bool refused_again = false;
  ASSERT_TRUE(engine_
                  ->SubmitRead([&](const State&) { read.Notify(); },
                               absl::Now() + absl::Seconds(30),
                               [&](absl::Status) { refused_again = true; })
                  .ok());
  read.WaitForNotification();
  EXPECT_FALSE(refused_again);
}

TEST_F(EngineTest, ARefusalTurnsLaterCallsAwayAndLetsQueuedOnesRun) {
  EXPECT_TRUE(engine_->Refusal().ok());
  // Queued before the refusal: held on the engine thread until the refusal is in place.
  Notification refusal_set;
  Notification held_read_ran;
  ASSERT_TRUE(engine_
                  ->SubmitRead([&](const State&) {
                    refusal_set.WaitForNotification();
                    held_read_ran.Notify();
                  })
                  .ok());
  Notification queued_write_done;
  absl::Status queued_write;
  auto upsert_domain = [](State& state) { return state.UpsertDomain({"d", "rack", "site"}); };
  ASSERT_TRUE(engine_
                  ->SubmitWrite(upsert_domain,
                                [&](absl::Status s) {
                                  queued_write = std::move(s);
                                  queued_write_done.Notify();
                                })
                  .ok());

  const absl::Status refusal =
      absl::UnavailableError("standby, this daemon stepped down; the leader is 10.0.0.7:50051");
  engine_->SetRefusal(refusal);
  refusal_set.Notify();
  EXPECT_EQ(engine_->Refusal(), refusal);
  bool ran = false;
  EXPECT_EQ(engine_->SubmitWrite([&](State&) { ran = true; return absl::OkStatus(); },
                                 [&](absl::Status) { ran = true; }),
            refusal);
  EXPECT_EQ(engine_->SubmitRead([&](const State&) { ran = true; }), refusal);

  held_read_ran.WaitForNotification();
  queued_write_done.WaitForNotification();
  EXPECT_TRUE(queued_write.ok()) << queued_write;
  EXPECT_NE(state_->allocator().FindDomain("d"), nullptr);

  // A new reason replaces the old one, and holds after Stop too.
  const absl::Status named = absl::UnavailableError("standby; the leader is 10.0.0.8:50051");
  engine_->SetRefusal(named);
  engine_->Stop();
  EXPECT_EQ(engine_->SubmitRead([&](const State&) { ran = true; }), named);
  EXPECT_FALSE(ran);
}

TEST_F(EngineTest, EachWriteSaysWhereItsTimeWentBeforeItsAnswer) {
  // Lower bounds only: each stage is held up on purpose for at least kHeld, so a stage timed
  // against the wrong end (or not at all) comes out shorter.
  constexpr absl::Duration kHeld = absl::Milliseconds(30);
  Mutex mu;
  std::vector<std::string> seen;  // "stages X" / "done X", in the order they ran
  std::vector<WriteStages> stages_of;
  std::vector<std::thread::id> stage_threads;
  engine_.reset();
  Engine::Options options;
  options.on_write_stages = [&](const WriteStages& stages) {
    MutexLock lock(&mu);
    seen.push_back(absl::StrCat("stages ", stages_of.size()));
    stages_of.push_back(stages);
    stage_threads.push_back(std::this_thread::get_id());
  };
  engine_ = std::make_unique<Engine>(state_.get(), store_.get(), options);
  engine_->Start();
  auto done_named = [&](std::string name, Notification* notify) {
    return [&mu, &seen, name, notify](absl::Status status) {
      EXPECT_TRUE(status.ok()) << status;
      {
        MutexLock lock(&mu);
        seen.push_back(absl::StrCat("done ", name));
      }
      if (notify != nullptr) notify->Notify();
    };
  };

  // A's answer holds the completion thread until `release_completion`.
  Notification a_answering, release_completion;
  std::thread::id engine_thread;
  ASSERT_TRUE(engine_
                  ->SubmitWrite(
                      [&](State&) {
                        engine_thread = std::this_thread::get_id();
                        return absl::OkStatus();
                      },
                      [&](absl::Status status) {
                        done_named("A", &a_answering)(std::move(status));
                        release_completion.WaitForNotification();
                      })
                  .ok());
  a_answering.WaitForNotification();
  // B holds the engine thread in its op until `release_engine`.
  Notification b_applying, release_engine, b_done;
  ASSERT_TRUE(engine_
                  ->SubmitWrite(
                      [&](State&) {
                        b_applying.Notify();
                        release_engine.WaitForNotification();
                        return absl::OkStatus();
                      },
                      done_named("B", &b_done))
                  .ok());
  b_applying.WaitForNotification();
  // C waits in the queue behind B's group while B is held.
  Notification c_applied, c_done;
  ASSERT_TRUE(engine_
                  ->SubmitWrite(
                      [&](State&) {
                        c_applied.Notify();
                        return absl::OkStatus();
                      },
                      done_named("C", &c_done))
                  .ok());
  absl::SleepFor(kHeld);
  release_engine.Notify();
  // C's group runs only after B's group was handed to the completion thread, where B now waits
  // behind A's answer.
  c_applied.WaitForNotification();
  absl::SleepFor(kHeld);
  release_completion.Notify();
  b_done.WaitForNotification();
  c_done.WaitForNotification();

  MutexLock lock(&mu);
  EXPECT_EQ(seen, (std::vector<std::string>{"stages 0", "done A", "stages 1", "done B",
                                            "stages 2", "done C"}));
  ASSERT_EQ(stages_of.size(), 3u);
  const WriteStages& b = stages_of[1];
  const WriteStages& c = stages_of[2];
  EXPECT_GE(b.engine, kHeld) << "B's op held the engine thread";
  EXPECT_GE(b.completion, kHeld) << "B's answer waited behind A's";
  EXPECT_GE(c.queued, kHeld) << "C was queued while B was held";
  for (const WriteStages& s : stages_of) {
    EXPECT_GE(s.queued, absl::ZeroDuration());
    EXPECT_GE(s.engine, absl::ZeroDuration());
    EXPECT_GE(s.completion, absl::ZeroDuration());
  }
  for (std::thread::id id : stage_threads) EXPECT_NE(id, engine_thread) << "on the completion thread";
}

}  // namespace
}  // namespace nvlsched::daemon
