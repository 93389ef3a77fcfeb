// The engine's events and the commit they belong to: a group's events are written in its
// transaction, numbered after the last committed one, and handed on only once durable; a group
// whose commit fails (here: its fsync, through the fault-injection VFS) emits nothing, keeps
// nothing, and the numbering does not move.
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "store/sync.h"
#include "daemon/engine/engine.h"
#include "daemon/engine/load_state.h"
#include "daemon/engine/state.h"
#include "gtest/gtest.h"
#include "nvlsched/v1/event_service.pb.h"
#include "store/store.h"
#include "tests/store/fault_injection_vfs.h"

namespace nvlsched::daemon {
namespace {

class EngineEventsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nvlsched_engine_events_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    absl::StatusOr<std::unique_ptr<store::store_testing::FaultInjectionVfs>> vfs =
        store::store_testing::FaultInjectionVfs::Register("engine_events_test_vfs");
    ASSERT_TRUE(vfs.ok()) << vfs.status();
    vfs_ = *std::move(vfs);
  }
  void TearDown() override {
    engine_.reset();
    state_.reset();
    store_.reset();
    vfs_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void Open(bool through_vfs) {
    store::StoreOptions options;
    options.path = dir_ + "/nvlsched.db";
    if (through_vfs) options.vfs = vfs_->name();
    absl::StatusOr<std::unique_ptr<store::Store>> store = store::Store::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    LoadReport report;
    absl::StatusOr<std::unique_ptr<State>> state = LoadState(*store_, &report);
    ASSERT_TRUE(state.ok()) << state.status();
    state_ = *std::move(state);
    engine_ = std::make_unique<Engine>(state_.get(), store_.get(), Engine::Options{},
                                       [this](const CommitReport& report) {
                                         reports_.push_back(report);
                                       });
    engine_->Start();
  }
  void Close() {
    engine_.reset();
    state_.reset();
    store_.reset();
  }

  absl::Status Write(Engine::WriteFn write) {
    Notification done;
    absl::Status result;
    absl::Status queued = engine_->SubmitWrite(std::move(write), [&](absl::Status s) {
      result = std::move(s);
      done.Notify();
    });
    if (!queued.ok()) return queued;
    done.WaitForNotification();
    return result;
  }

  // One type, one domain, two machines, one tenant: 1 domain event, 2 machine events and 1
  // tenant event, in that order.
  absl::Status AddFleet() {
    return Write([](State& state) {
      if (absl::Status s = state.UpsertInstanceType({"t", "gb200-tray", "GB200", 4}); !s.ok()) {
        return s;
      }
      if (absl::Status s = state.UpsertDomain({"d", "rack", "site"}); !s.ok()) return s;
      for (int tray = 0; tray < 2; ++tray) {
        if (absl::Status s = state.UpsertMachine({"m" + std::to_string(tray), "d", tray, "t", 4});
            !s.ok()) {
          return s;
        }
      }
      return state.UpsertTenant({"acme", "org", "acme", {{"t", 10}}});
    });
  }

  std::string dir_;
  std::unique_ptr<store::store_testing::FaultInjectionVfs> vfs_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<State> state_;
  std::unique_ptr<Engine> engine_;
  std::vector<CommitReport> reports_;  // engine thread, read after the writes returned
};

TEST_F(EngineEventsTest, AGroupsEventsAreCommittedWithItAndNumberedGaplessly) {
  Open(/*through_vfs=*/false);
  ASSERT_TRUE(AddFleet().ok());
  ASSERT_EQ(reports_.size(), 1u);
  ASSERT_EQ(reports_[0].events.size(), 4u);
  EXPECT_EQ(reports_[0].events[0]->sequence, 1u);
  EXPECT_EQ(reports_[0].events[0]->type, v1::EVENT_TYPE_DOMAIN_CHANGED);
  EXPECT_EQ(reports_[0].events[0]->org, "");
  EXPECT_EQ(reports_[0].events[1]->type, v1::EVENT_TYPE_MACHINE_ADDED);
  EXPECT_EQ(reports_[0].events[3]->type, v1::EVENT_TYPE_TENANT_CHANGED);
  v1::Event domain;
  ASSERT_TRUE(domain.ParseFromString(reports_[0].events[0]->bytes));
  EXPECT_EQ(domain.domain().id(), "d");
  EXPECT_EQ(domain.domain().site_id(), "site");
  // The bytes are the whole event, as watchers get them.
  v1::Event tenant;
  ASSERT_TRUE(tenant.ParseFromString(reports_[0].events[3]->bytes));
  EXPECT_EQ(tenant.sequence(), 4u);
  EXPECT_EQ(tenant.tenant().id(), "acme");
  EXPECT_EQ(tenant.org(), "org");
  ASSERT_TRUE(Write([](State& state) {
                return state.SetMachineState("m1", allocator::MachineState::kMaintenance,
                                             "fabric");
              }).ok());
  ASSERT_EQ(reports_.size(), 2u);
  ASSERT_EQ(reports_[1].events.size(), 1u);
  EXPECT_EQ(reports_[1].events[0]->sequence, 5u);
  EXPECT_EQ(reports_[1].events[0]->type, v1::EVENT_TYPE_MACHINE_STATE_CHANGED);
  v1::Event drained;
  ASSERT_TRUE(drained.ParseFromString(reports_[1].events[0]->bytes));
  EXPECT_EQ(drained.reason(), "READY -> MAINTENANCE: fabric");
  EXPECT_EQ(state_->newest_event(), 5u);
  EXPECT_EQ(state_->oldest_event(), 1u);

  // The store holds exactly these, and a restart continues the numbering.
  Close();
  Open(/*through_vfs=*/false);
  EXPECT_EQ(state_->oldest_event(), 1u);
  EXPECT_EQ(state_->newest_event(), 5u);
  absl::StatusOr<std::vector<store::EventRow>> rows = store_->ReadEvents(0, 100);
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 5u);
  v1::Event last;
  ASSERT_TRUE(last.ParseFromString(rows->back().payload));
  EXPECT_EQ(last.machine().id(), "m1");
  EXPECT_EQ(last.machine().state(), v1::MACHINE_STATE_MAINTENANCE);
}

TEST_F(EngineEventsTest, ARolledBackGroupEmitsNothing) {
  Open(/*through_vfs=*/true);
  ASSERT_TRUE(AddFleet().ok());
  ASSERT_EQ(state_->newest_event(), 4u);
  // The next commit's fsync fails.
  vfs_->Reset();
  vfs_->FailNthCall(store::store_testing::FaultKind::kSync, 1, store::store_testing::FaultError::kIoError);
  const absl::Status failed = Write([](State& state) {
    return state.SetMachineState("m0", allocator::MachineState::kError, "gone");
  });
  EXPECT_EQ(failed.code(), absl::StatusCode::kUnavailable) << failed;
  EXPECT_TRUE(vfs_->fired());
  ASSERT_EQ(reports_.size(), 2u);
  EXPECT_FALSE(reports_[1].status.ok());
  EXPECT_TRUE(reports_[1].events.empty());
  EXPECT_EQ(state_->newest_event(), 4u);

  Close();
  Open(/*through_vfs=*/false);
  EXPECT_EQ(state_->newest_event(), 4u);
  absl::StatusOr<std::vector<store::EventRow>> rows = store_->ReadEvents(0, 100);
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ(rows->size(), 4u);
  EXPECT_EQ(state_->allocator().FindMachine("m0")->state, allocator::MachineState::kReady);
  // And numbering goes on from the last committed event.
  ASSERT_TRUE(Write([](State& state) {
                return state.SetMachineState("m0", allocator::MachineState::kError, "gone");
              }).ok());
  ASSERT_EQ(reports_.back().events.size(), 1u);
  EXPECT_EQ(reports_.back().events[0]->sequence, 5u);
}

TEST_F(EngineEventsTest, RetentionPrunesTheOldestEvents) {
  Engine::Options options;
  options.event_retention = 2;
  store::StoreOptions store_options;
  store_options.path = dir_ + "/nvlsched.db";
  absl::StatusOr<std::unique_ptr<store::Store>> store = store::Store::Open(store_options);
  ASSERT_TRUE(store.ok()) << store.status();
  store_ = *std::move(store);
  LoadReport report;
  absl::StatusOr<std::unique_ptr<State>> state = LoadState(*store_, &report);
  ASSERT_TRUE(state.ok());
  state_ = *std::move(state);
  engine_ = std::make_unique<Engine>(state_.get(), store_.get(), options,
                                     [this](const CommitReport& r) { reports_.push_back(r); });
  engine_->Start();
  ASSERT_TRUE(AddFleet().ok());  // events 1..4: 1 and 2 are pruned at once
  EXPECT_EQ(state_->oldest_event(), 3u);
  EXPECT_EQ(reports_.back().oldest_event, 3u);
  absl::StatusOr<std::vector<store::EventRow>> rows = store_->ReadEvents(0, 100);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ(rows->front().sequence, 3u);
}

}  // namespace
}  // namespace nvlsched::daemon
