// The engine's read view under concurrency (label grpc, so the TSan build runs it): reader
// threads list while the engine commits, and every answer is a state some commit left; a
// write's answer comes after its records are in the view (read your writes).
//
// The writes keep one invariant per commit: instance i-N is created and i-(N-kWindow) erased
// in the same op, so every committed state lists a contiguous run of the last ids, at most
// kWindow of them. A reader that saw a half-applied group, or a group whose commit had not
// finished, would see a gap or too many.
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/synchronization/blocking_counter.h"
#include "daemon/engine/engine.h"
#include "daemon/engine/instance_view.h"
#include "daemon/engine/load_state.h"
#include "gtest/gtest.h"
#include "store/store.h"
#include "store/sync.h"

namespace nvlsched::daemon {
namespace {

namespace v1 = ::nvlsched::v1;

constexpr int kWindow = 8;
constexpr int kWrites = 400;
constexpr int kReaders = 3;

std::string Id(int n) { return absl::StrFormat("i-%06d", n); }

v1::Instance Record(int n) {
  v1::Instance record;
  record.set_id(Id(n));
  record.set_name(Id(n));
  record.set_tenant_id("acme");
  record.set_instance_type_id("gb200");
  record.set_gpu_count(4);
  record.set_status(v1::INSTANCE_STATUS_PENDING);
  return record;
}

TEST(InstanceViewConcurrencyTest, ReadersOnlyEverSeeCommittedStatesAndWritersReadTheirWrites) {
  store::StoreOptions options;
  options.path = ":memory:";
  absl::StatusOr<std::unique_ptr<store::Store>> store = store::Store::Open(options);
  ASSERT_TRUE(store.ok()) << store.status();
  LoadReport report;
  absl::StatusOr<std::unique_ptr<State>> state = LoadState(**store, &report);
  ASSERT_TRUE(state.ok()) << state.status();
  Engine engine(state->get(), store->get(), Engine::Options{});
  engine.Start();

  auto write = [&engine](Engine::WriteFn fn) {
    Notification done;
    absl::Status result;
    absl::Status queued = engine.SubmitWrite(std::move(fn), [&](absl::Status s) {
      result = std::move(s);
      done.Notify();
    });
    if (!queued.ok()) return queued;
    done.WaitForNotification();
    return result;
  };
  ASSERT_TRUE(write([](State& s) {
                absl::Status st = s.UpsertInstanceType({"gb200", "gb200-tray", "GB200", 4});
                if (!st.ok()) return st;
                return s.UpsertTenant({"acme", "org", "acme", {{"gb200", 100}}});
              }).ok());

  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::atomic<int64_t> lists{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < kReaders; ++r) {
    readers.emplace_back([&] {
      InstanceQuery query;
      query.org = "org";
      query.page_size = 1000;
      while (!stop.load()) {
        v1::ListInstancesResponse resp;
        if (!engine.view().List(query, &resp).ok()) ++bad;
        const int n = resp.instances_size();
        if (n > kWindow || resp.total_size() != n) ++bad;
        for (int i = 1; i < n; ++i) {
          if (resp.instances(i).id() != Id(std::stoi(resp.instances(0).id().substr(2)) + i)) ++bad;
        }
        ++lists;
      }
    });
  }

  // Rounds of 25 writes each waited for (after each answer the writer finds its own record),
  // then 25 submitted at once (they share commits).
  auto op = [](int n) -> Engine::WriteFn {
    return [n](State& s) {
      s.PutInstance(Record(n), allocator::InstanceHandle{});
      if (n >= kWindow) s.EraseInstance(Id(n - kWindow));
      return absl::OkStatus();
    };
  };
  int n = 0;
  while (n < kWrites) {
    for (int i = 0; i < 25; ++i, ++n) {
      ASSERT_TRUE(write(op(n)).ok());
      InstanceQuery mine;
      mine.org = "org";
      mine.after = n == 0 ? "" : Id(n - 1);
      mine.page_size = 1;
      v1::ListInstancesResponse resp;
      ASSERT_TRUE(engine.view().List(mine, &resp).ok());
      ASSERT_EQ(resp.instances_size(), 1);
      EXPECT_EQ(resp.instances(0).id(), Id(n));
    }
    absl::BlockingCounter pending(25);
    for (int i = 0; i < 25; ++i, ++n) {
      ASSERT_TRUE(engine
                      .SubmitWrite(op(n),
                                   [&](absl::Status s) {
                                     EXPECT_TRUE(s.ok()) << s;
                                     pending.DecrementCount();
                                   })
                      .ok());
    }
    pending.Wait();
  }
  stop.store(true);
  for (std::thread& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(lists.load(), 0);
  EXPECT_EQ(engine.view().size(), static_cast<size_t>(kWindow));
}

}  // namespace
}  // namespace nvlsched::daemon
