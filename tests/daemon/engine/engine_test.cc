// The engine's queue rules: a call whose deadline passed while it was queued takes nothing —
// a write is not applied (DEADLINE_EXCEEDED) and a read does not run (its refusal gets
// DEADLINE_EXCEEDED); a read without a refusal callback still runs. A refusal (a daemon that
// stepped down) turns every later call away with its status, before and after Stop, while what
// was queued before it still runs. Its two threads carry their names (top -H, perf).
#include "daemon/engine/engine.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>

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

}  // namespace
}  // namespace nvlsched::daemon
