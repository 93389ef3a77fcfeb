// Crash recovery, against the real binary: several clients drive batch creates and deletes,
// the daemon is killed with SIGKILL at a random moment, restarted on the same database, and
// the state it comes back with is checked against what the clients were told:
//   - every acknowledged create is there, every acknowledged delete is gone;
//   - a create whose answer was lost (the kill cut it off) is either there whole or not at
//     all: retrying it with the same request_id must return the same batch if it was kept;
//   - nothing is there that no client asked for, and no machine is held twice.
//   - the event stream (EventService/WatchEvents), resumed after every restart from the last
//     sequence read, has no gap and no repeat, and tells every instance's story exactly once:
//     one INSTANCE_CREATED for each instance that was ever kept, one INSTANCE_DELETED for each
//     that is gone, none for a create that was not kept.
// NVLSCHED_CRASH_ROUNDS (default 12) and NVLSCHED_CRASH_SEED (default: time) tune it.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "daemon/api/fleet.h"
#include "gtest/gtest.h"
#include "nvlsched/v1/event_service.grpc.pb.h"
#include "nvlsched/v1/instance_service.grpc.pb.h"
#include "nvlsched/v1/inventory_service.grpc.pb.h"
#include "tests/testing/daemon_process.h"
#include "tests/testing/demo_requests.h"
#include "tests/testing/ledger.h"

namespace nvlsched {
namespace {

constexpr int kClients = 4;
constexpr int kMaxHeldMachines = 60;  // below the demo tenant's quota of 72

v1::BatchCreateInstancesRequest BatchRequest(const std::string& request_id, int count) {
  v1::BatchCreateInstancesRequest req = testing::DemoBatch("crash", count);
  req.set_request_id(request_id);
  return req;
}

class CrashRecoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(::testing::TempDir(), "/crash_recovery.", getpid());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }
  std::string dir_;
};

std::unique_ptr<v1::InstanceService::Stub> Connect(const std::string& address) {
  return v1::InstanceService::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
}

// The events after `after`, read until the stream has been idle for a while (the daemon has no
// other client then, so that is the newest). The events are appended to *out.
void ReadEvents(const std::string& address, uint64_t after, std::vector<v1::Event>* out) {
  auto stub = v1::EventService::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::WatchEventsRequest req;
  req.set_after_sequence(after);
  std::unique_ptr<grpc::ClientReader<v1::Event>> reader = stub->WatchEvents(&ctx, req);
  v1::Event event;
  while (reader->Read(&event)) out->push_back(event);
  const grpc::Status status = reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << status.error_message();
}

void RunClient(const std::string& address, uint64_t seed, int client, int round,
               std::atomic<bool>& stop, std::vector<std::string>& held, testing::Ledger& ledger) {
  auto stub = Connect(address);
  absl::BitGen rng(std::seed_seq{seed, static_cast<uint64_t>(client), static_cast<uint64_t>(round)});
  int call = 0;
  while (!stop.load()) {
    ++call;
    const bool create = held.size() < static_cast<size_t>(kMaxHeldMachines / kClients) &&
                        (held.empty() || absl::Bernoulli(rng, 0.6));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (create) {
      const std::string request_id = absl::StrCat("r", round, "-c", client, "-", call);
      v1::BatchCreateInstancesRequest req = BatchRequest(request_id, absl::Uniform(rng, 2, 6));
      v1::BatchCreateInstancesResponse resp;
      grpc::Status s = stub->BatchCreateInstances(&ctx, req, &resp);
      std::lock_guard<std::mutex> lock(ledger.mu);
      if (s.ok()) {
        std::vector<std::string>& ids = ledger.acked_batches[resp.batch_id()];
        for (const v1::Instance& i : resp.instances()) {
          ids.push_back(i.id());
          held.push_back(i.id());
        }
      } else if (testing::AnswerLost(s)) {
        ledger.lost_creates.emplace(request_id, req);
        return;  // the daemon is gone
      }
      // Any other error was a definite answer: nothing was taken.
    } else {
      const grpc::Status s = testing::DeleteOneHeld(
          *stub, &ctx, held, absl::Uniform<size_t>(rng, 0, held.size()), ledger, "");
      if (testing::AnswerLost(s)) return;  // the daemon is gone
    }
  }
}

TEST_F(CrashRecoveryTest, KillNineUnderLoadLosesNothingAcknowledgedAndKeepsNothingHalfDone) {
  const char* rounds_env = std::getenv("NVLSCHED_CRASH_ROUNDS");
  const int rounds = rounds_env != nullptr ? std::atoi(rounds_env) : 12;
  const char* seed_env = std::getenv("NVLSCHED_CRASH_SEED");
  const uint64_t seed = seed_env != nullptr ? std::strtoull(seed_env, nullptr, 10)
                                            : static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()));
  std::cout << "crash test: " << rounds << " rounds, NVLSCHED_CRASH_SEED=" << seed << "\n";
  absl::BitGen rng(std::seed_seq{seed});
  const std::string db = absl::StrCat("--db=", dir_, "/nvlsched.db");

  testing::Ledger ledger;
  std::vector<std::vector<std::string>> held(kClients);
  int total_acked_creates = 0;
  // The event stream as read so far, across restarts.
  uint64_t last_event = 0;
  std::map<std::string, int> created_events;  // instance id -> INSTANCE_CREATED events
  std::map<std::string, int> deleted_events;
  for (int round = 0; round < rounds; ++round) {
    testing::DaemonProcess daemon(NVLSCHEDD_PATH, dir_);
    ASSERT_TRUE(daemon.Start({db, "--seed_fleet=demo"}).ok()) << daemon.Log();

    std::atomic<bool> stop{false};
    std::vector<std::thread> clients;
    for (int c = 0; c < kClients; ++c) {
      clients.emplace_back([&, c] {
        RunClient(daemon.address(), seed, c, round, stop, held[c], ledger);
      });
    }
    absl::SleepFor(absl::Milliseconds(absl::Uniform(rng, 100, 700)));
    absl::StatusOr<int> code = daemon.StopWith(SIGKILL);
    ASSERT_TRUE(code.ok());
    EXPECT_EQ(*code, 128 + SIGKILL);
    stop = true;
    for (std::thread& t : clients) t.join();

    // Restart on the same database and compare with the ledger.
    testing::DaemonProcess again(NVLSCHEDD_PATH, dir_);
    ASSERT_TRUE(again.Start({db}).ok()) << again.Log();
    auto stub = Connect(again.address());
    std::map<std::string, v1::Instance> present = testing::ListAll(*stub);

    testing::SettleLostCreates(*stub, "crash", ledger, present, held);
    if (HasFatalFailure()) return;

    // Resume the event stream where the last round left it.
    std::vector<v1::Event> events;
    ReadEvents(again.address(), last_event, &events);
    for (const v1::Event& event : events) {
      ASSERT_EQ(event.sequence(), last_event + 1)
          << "event stream gap or repeat after a kill -9 (round " << round << ")";
      last_event = event.sequence();
      if (event.type() == v1::EVENT_TYPE_INSTANCE_CREATED) ++created_events[event.instance().id()];
      if (event.type() == v1::EVENT_TYPE_INSTANCE_DELETED) ++deleted_events[event.instance().id()];
    }

    const std::set<std::string> accounted = testing::CheckAgainstLedger(ledger, present, round);
    for (const std::string& id : ledger.acked_deleted) {
      EXPECT_EQ(deleted_events[id], 1) << "acknowledged delete of " << id << " has "
                                       << deleted_events[id] << " INSTANCE_DELETED events";
    }
    for (const auto& [id, count] : created_events) {
      EXPECT_EQ(count, 1) << "instance " << id << " has " << count << " INSTANCE_CREATED events";
      EXPECT_TRUE(accounted.count(id)) << "an event for instance " << id
                                       << ", which no client was told of";
      const int deleted = deleted_events.count(id) ? deleted_events.at(id) : 0;
      EXPECT_EQ(deleted, present.count(id) ? 0 : 1)
          << "instance " << id << (present.count(id) ? " is present" : " is gone") << " but has "
          << deleted << " INSTANCE_DELETED events";
    }
    for (const auto& [id, instance] : present) {
      EXPECT_EQ(created_events.count(id), 1u) << "instance " << id << " has no INSTANCE_CREATED";
    }
    testing::CarryIntoNextRound(ledger, present, held);
    total_acked_creates = static_cast<int>(ledger.acked_batches.size());
    ASSERT_FALSE(HasFailure()) << "round " << round << ", NVLSCHED_CRASH_SEED=" << seed;
    absl::StatusOr<int> stopped = again.StopWith(SIGTERM);
    ASSERT_TRUE(stopped.ok());
    EXPECT_EQ(*stopped, 0) << again.Log();
  }
  EXPECT_GT(total_acked_creates, rounds) << "the load was too light to prove anything";
}

}  // namespace
}  // namespace nvlsched
