// Active/standby daemons (issue 22), against the real binary: two nvlschedd on one PostgreSQL
// database (tests/testing/pg_test_database.h), one leading and one standing by.
//   - KillNineOfTheLeaderUnderLoad...: clients drive batch creates and deletes at the leader,
//     the leader is killed with SIGKILL, the clients keep going against both addresses
//     (retrying a create whose answer was lost with the same request_id) until the standby
//     serves; the killed daemon comes back as a standby naming the new leader; then the state
//     is checked against what the clients were told, as in crash_recovery_test: every
//     acknowledged create present, no acknowledged delete back, nothing no client was told of,
//     no machine held twice. Rounds repeat with the roles swapped each time.
//   - TerminatedBackend...: the leader's lock connection is ended by an operator
//     (pg_terminate_backend); the old leader acknowledges no write from then on, the standby
//     takes over, and the old leader, still running, becomes its standby.
// The time from the kill to the survivor's SERVING (and to its first acknowledged write) is
// printed and recorded as a test property. It is not asserted: kFailoverBound only turns a
// hang into a failure.
// NVLSCHED_HA_ROUNDS (default NVLSCHED_CRASH_ROUNDS, which tools/test.sh sets for the sanitizer
// builds, else 20) and NVLSCHED_HA_SEED (default: time) tune the first test.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <pqxx/pqxx>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "daemon/api/fleet.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "nvlsched/v1/instance_service.grpc.pb.h"
#include "tests/testing/daemon_process.h"
#include "tests/testing/demo_requests.h"
#include "tests/testing/ledger.h"
#include "tests/testing/pg_test_database.h"

namespace nvlsched {
namespace {

using ::testing::HasSubstr;

constexpr int kClients = 4;
constexpr int kMaxHeldMachines = 60;  // below the demo tenant's quota of 72
// A hang detector, not a performance bound: failover takes a fraction of a second.
constexpr absl::Duration kFailoverBound = absl::Seconds(30);
// How long a standby may take to name a new leader: it reads the name at its next lock attempt.
constexpr absl::Duration kStandbyNamesLeaderBound = absl::Seconds(10);

// A channel of its own: no subchannel shared with other channels, which may be waiting out
// gRPC's reconnect backoff after the daemon behind them died. What is measured is then the
// failover, not the backoff.
std::shared_ptr<grpc::Channel> Channel(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

std::unique_ptr<v1::InstanceService::Stub> Connect(const std::string& address) {
  return v1::InstanceService::NewStub(Channel(address));
}

enum class Health { kServing, kNotServing, kNoAnswer };

// For gtest's messages.
std::ostream& operator<<(std::ostream& os, Health h) {
  switch (h) {
    case Health::kServing:
      return os << "SERVING";
    case Health::kNotServing:
      return os << "NOT_SERVING";
    case Health::kNoAnswer:
      return os << "no answer";
  }
  return os << "?";
}

// grpc.health.v1.Health/Check for the whole server, on a fresh channel.
Health HealthOf(const std::string& address) {
  auto stub = grpc::health::v1::Health::NewStub(Channel(address));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse resp;
  if (!stub->Check(&ctx, req, &resp).ok()) return Health::kNoAnswer;
  return resp.status() == grpc::health::v1::HealthCheckResponse::SERVING ? Health::kServing
                                                                         : Health::kNotServing;
}

// Polls every 10 ms until `address` answers SERVING; false after `bound`.
bool WaitUntilServing(const std::string& address, absl::Duration bound) {
  const absl::Time deadline = absl::Now() + bound;
  while (absl::Now() < deadline) {
    if (HealthOf(address) == Health::kServing) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return false;
}

// A two-machine create (the smallest batch) with a request_id of its own.
grpc::Status CreateSmallBatch(const std::string& address, const std::string& request_id,
                              v1::BatchCreateInstancesResponse* resp) {
  v1::BatchCreateInstancesRequest req = testing::DemoBatch("ha", 2);
  req.set_request_id(request_id);
  return Connect(address)->BatchCreateInstances(testing::CallContext(5).get(), req, resp);
}

// Every instance of the demo tenant, by id, as the daemon at `address` lists them.
std::map<std::string, v1::Instance> ListAll(const std::string& address) {
  return testing::ListAll(*Connect(address));
}

// `standby` answers health NOT_SERVING and refuses a write UNAVAILABLE naming `leader`. Polls
// up to kStandbyNamesLeaderBound for the name: a standby learns it at its next lock attempt,
// and a new leader announces it just after it starts serving.
void ExpectStandbyNaming(const std::string& standby, const std::string& leader,
                         const std::string& probe_prefix) {
  const absl::Time deadline = absl::Now() + kStandbyNamesLeaderBound;
  std::string last;
  for (int probe = 0; absl::Now() < deadline; ++probe) {
    EXPECT_EQ(HealthOf(standby), Health::kNotServing) << "standby " << standby;
    v1::BatchCreateInstancesResponse resp;
    grpc::Status s = CreateSmallBatch(standby, absl::StrCat(probe_prefix, "-", probe), &resp);
    if (s.ok()) {
      ADD_FAILURE() << "standby " << standby << " acknowledged a write while " << leader
                    << " leads: batch " << resp.batch_id();
      return;
    }
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
    if (s.error_message().find(absl::StrCat("the leader is ", leader)) != std::string::npos) {
      EXPECT_THAT(s.error_message(), HasSubstr("standby"));
      return;
    }
    last = s.error_message();
    absl::SleepFor(absl::Milliseconds(50));
  }
  ADD_FAILURE() << "standby " << standby << " did not name the leader " << leader << " within "
                << absl::FormatDuration(kStandbyNamesLeaderBound) << "; its last refusal: " << last;
}

// Which of `daemons` answers SERVING, once exactly one does (-1 if none within `bound`). Two
// at once is a failure: two leaders.
int WaitForTheLeader(const std::array<testing::DaemonProcess*, 2>& daemons, absl::Duration bound) {
  const absl::Time deadline = absl::Now() + bound;
  while (absl::Now() < deadline) {
    const Health h0 = HealthOf(daemons[0]->address());
    const Health h1 = HealthOf(daemons[1]->address());
    if (h0 == Health::kServing && h1 == Health::kServing) {
      ADD_FAILURE() << "two leaders: " << daemons[0]->address() << " and " << daemons[1]->address()
                    << " both answer SERVING";
      return -1;
    }
    if (h0 == Health::kServing) return 0;
    if (h1 == Health::kServing) return 1;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return -1;
}

// When the first write after the kill was acknowledged.
struct FailoverClock {
  // Unix nanoseconds at which the killed leader had been reaped; 0 before. Calls started
  // earlier may have been answered by it.
  std::atomic<int64_t> dead_at{0};
  std::atomic<int64_t> first_write{0};

  void Acknowledged(absl::Time started) {
    const int64_t dead = dead_at.load();
    if (dead == 0 || absl::ToUnixNanos(started) < dead) return;
    int64_t none = 0;
    first_write.compare_exchange_strong(none, absl::ToUnixNanos(absl::Now()));
  }
};

// One client: creates (with request_id) and deletes at addresses[target] until `stop`. On a
// lost answer it turns to the other address; a create whose answer was lost is sent again,
// unchanged, until some daemon gives a definite answer.
void RunClient(const std::array<std::string, 2>& addresses, int target, uint64_t seed, int client,
               int round, std::atomic<bool>& stop, std::vector<std::string>& held,
               testing::Ledger& ledger,
               FailoverClock& clock) {
  std::array<std::unique_ptr<v1::InstanceService::Stub>, 2> stubs = {Connect(addresses[0]),
                                                                     Connect(addresses[1])};
  absl::BitGen rng(
      std::seed_seq{seed, static_cast<uint64_t>(client), static_cast<uint64_t>(round)});
  std::optional<v1::BatchCreateInstancesRequest> pending;  // a create whose answer was lost
  for (int call = 1; !stop.load(); ++call) {
    const bool create =
        pending.has_value() || (held.size() < static_cast<size_t>(kMaxHeldMachines / kClients) &&
                                (held.empty() || absl::Bernoulli(rng, 0.6)));
    const absl::Time started = absl::Now();
    bool lost = false;
    if (create) {
      if (!pending.has_value()) {
        pending = testing::DemoBatch("ha", absl::Uniform(rng, 2, 6));
        pending->set_request_id(absl::StrCat("r", round, "-c", client, "-", call));
      }
      v1::BatchCreateInstancesResponse resp;
      grpc::Status s =
          stubs[target]->BatchCreateInstances(testing::CallContext(5).get(), *pending, &resp);
      std::lock_guard<std::mutex> lock(ledger.mu);
      if (s.ok()) {
        clock.Acknowledged(started);
        std::vector<std::string>& ids = ledger.acked_batches[resp.batch_id()];
        EXPECT_TRUE(ids.empty()) << "batch " << resp.batch_id() << " acknowledged twice";
        for (const v1::Instance& i : resp.instances()) {
          ids.push_back(i.id());
          held.push_back(i.id());
        }
        ledger.lost_creates.erase(pending->request_id());
        pending.reset();
      } else if (testing::AnswerLost(s)) {
        ledger.lost_creates.emplace(pending->request_id(), *pending);
        ++ledger.lost_answers;
        lost = true;
      } else {
        // A definite answer (RESOURCE_EXHAUSTED): nothing was taken, by this call or the lost
        // one it repeats.
        ledger.lost_creates.erase(pending->request_id());
        pending.reset();
      }
    } else {
      const grpc::Status s = testing::DeleteOneHeld(
          *stubs[target], testing::CallContext(5).get(), held,
          absl::Uniform<size_t>(rng, 0, held.size()), ledger, " at " + addresses[target]);
      if (s.ok()) clock.Acknowledged(started);
      lost = testing::AnswerLost(s);
    }
    if (lost) {
      // A channel whose connection failed waits out gRPC's reconnect backoff (seconds, even
      // once the daemon behind it serves); a new one connects now.
      stubs[target] = Connect(addresses[target]);
      target = 1 - target;
      absl::SleepFor(absl::Milliseconds(20));
    }
  }
}

std::string Millis(absl::Duration d) { return absl::StrCat(absl::ToInt64Milliseconds(d), " ms"); }

class HaFailoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<testing::PgTestDatabase> db = testing::PgTestDatabase::Create();
    ASSERT_TRUE(db.ok()) << db.status();
    db_.emplace(*std::move(db));
    dir_ = absl::StrCat(::testing::TempDir(), "/ha_failover.", getpid(), ".",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ + "/a");
    std::filesystem::create_directories(dir_ + "/b");
  }
  void TearDown() override {
    if (!dir_.empty() && !HasFailure()) std::filesystem::remove_all(dir_);
  }

  // --require_cleaning=false: every round needs free machines for the new leader's writes,
  // and with cleaning on the deletes' machines stay CLEANING, so a few rounds of churn would
  // leave the demo fleet nothing to place.
  std::vector<std::string> DaemonArgs() const {
    return {absl::StrCat("--db=", db_->uri()), "--seed_fleet=demo", "--standby_poll=200ms",
            "--require_cleaning=false"};
  }

  // A leads, then B stands by naming A. Fatal failures end the test
  // (ASSERT_NO_FATAL_FAILURE at the call).
  void StartLeaderAndStandby(testing::DaemonProcess& a, testing::DaemonProcess& b) {
    ASSERT_TRUE(a.Start(DaemonArgs()).ok()) << a.Log();
    ASSERT_TRUE(WaitUntilServing(a.address(), kFailoverBound)) << a.Log();
    ASSERT_TRUE(b.Start(DaemonArgs()).ok()) << b.Log();
    ExpectStandbyNaming(b.address(), a.address(), "probe-b");
    ASSERT_FALSE(HasFailure()) << b.Log();
  }

  std::string dir_;
  std::optional<testing::PgTestDatabase> db_;
};

TEST_F(HaFailoverTest, KillNineOfTheLeaderUnderLoadLosesNothingAcknowledged) {
  const char* rounds_env = std::getenv("NVLSCHED_HA_ROUNDS");
  if (rounds_env == nullptr) rounds_env = std::getenv("NVLSCHED_CRASH_ROUNDS");
  const int rounds = rounds_env != nullptr ? std::atoi(rounds_env) : 20;
  const char* seed_env = std::getenv("NVLSCHED_HA_SEED");
  const uint64_t seed = seed_env != nullptr ? std::strtoull(seed_env, nullptr, 10)
                                            : static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()));
  std::cout << "ha failover test: " << rounds << " rounds, NVLSCHED_HA_SEED=" << seed << "\n";
  absl::BitGen rng(std::seed_seq{seed});

  testing::DaemonProcess a(NVLSCHEDD_PATH, dir_ + "/a");
  testing::DaemonProcess b(NVLSCHEDD_PATH, dir_ + "/b");
  const std::array<testing::DaemonProcess*, 2> daemons = {&a, &b};
  ASSERT_TRUE(a.Start(DaemonArgs()).ok()) << a.Log();
  ASSERT_TRUE(b.Start(DaemonArgs()).ok()) << b.Log();

  testing::Ledger ledger;
  std::vector<std::vector<std::string>> held(kClients);
  std::vector<absl::Duration> to_serving;
  std::vector<absl::Duration> to_first_write;
  for (int round = 0; round < rounds; ++round) {
    const int leader = WaitForTheLeader(daemons, kFailoverBound);
    ASSERT_GE(leader, 0) << "no leader (round " << round << "); logs:\n"
                         << a.Log() << "\n---\n"
                         << b.Log();
    testing::DaemonProcess& old_leader = *daemons[leader];
    testing::DaemonProcess& survivor = *daemons[1 - leader];
    ExpectStandbyNaming(survivor.address(), old_leader.address(), absl::StrCat("probe-", round));

    std::atomic<bool> stop{false};
    FailoverClock clock;
    const std::array<std::string, 2> addresses = {a.address(), b.address()};
    std::vector<std::thread> clients;
    for (int c = 0; c < kClients; ++c) {
      clients.emplace_back(
          [&, c] { RunClient(addresses, leader, seed, c, round, stop, held[c], ledger, clock); });
    }
    // Stops the clients however this round ends.
    struct Joiner {
      std::atomic<bool>& stop;
      std::vector<std::thread>& threads;
      ~Joiner() {
        stop = true;
        for (std::thread& t : threads) {
          if (t.joinable()) t.join();
        }
      }
    } joiner{stop, clients};

    absl::SleepFor(absl::Milliseconds(absl::Uniform(rng, 100, 700)));
    const std::string killed_address = old_leader.address();
    const absl::Time killed = absl::Now();
    absl::StatusOr<int> code = old_leader.StopWith(SIGKILL);
    ASSERT_TRUE(code.ok()) << code.status();
    EXPECT_EQ(*code, 128 + SIGKILL);
    clock.dead_at = absl::ToUnixNanos(absl::Now());

    ASSERT_TRUE(WaitUntilServing(survivor.address(), kFailoverBound))
        << "the standby " << survivor.address() << " did not take over within "
        << absl::FormatDuration(kFailoverBound) << " of the leader's kill -9 (round " << round
        << "); its log:\n"
        << survivor.Log();
    to_serving.push_back(absl::Now() - killed);

    // The killed daemon comes back as the survivor's standby, on a new port.
    ASSERT_TRUE(old_leader.Start(DaemonArgs()).ok()) << old_leader.Log();
    ExpectStandbyNaming(old_leader.address(), survivor.address(),
                        absl::StrCat("probe-", round, "-restarted"));

    // Some load on the new leader before the check.
    const absl::Time write_deadline = absl::Now() + kFailoverBound;
    while (clock.first_write.load() == 0 && absl::Now() < write_deadline) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    ASSERT_NE(clock.first_write.load(), 0)
        << "no client write acknowledged by the new leader " << survivor.address() << " within "
        << absl::FormatDuration(kFailoverBound) << " (round " << round << "); its log:\n"
        << survivor.Log();
    to_first_write.push_back(absl::FromUnixNanos(clock.first_write.load()) - killed);
    absl::SleepFor(absl::Milliseconds(absl::Uniform(rng, 50, 300)));
    stop = true;
    for (std::thread& t : clients) t.join();
    std::cout << "round " << round << ": killed " << killed_address << "; " << survivor.address()
              << " SERVING after " << Millis(to_serving.back())
              << ", first acknowledged write after " << Millis(to_first_write.back()) << "\n";

    std::map<std::string, v1::Instance> present = ListAll(survivor.address());

    testing::SettleLostCreates(*Connect(survivor.address()), "failover", ledger, present, held);
    if (HasFatalFailure()) return;

    testing::CheckAgainstLedger(ledger, present, round);
    testing::CarryIntoNextRound(ledger, present, held);
    ASSERT_FALSE(HasFailure()) << "round " << round << ", NVLSCHED_HA_SEED=" << seed
                               << "; the new leader's log:\n"
                               << survivor.Log();
  }
  std::cout << ledger.acked_batches.size() << " batch creates and " << ledger.acked_deleted.size()
            << " deletes acknowledged; " << ledger.lost_answers
            << " answers lost (refused by a standby or a dead daemon) and settled\n";
  EXPECT_GT(static_cast<int>(ledger.acked_batches.size()), rounds)
      << "the load was too light to prove anything";

  ASSERT_EQ(to_serving.size(), static_cast<size_t>(rounds));
  if (rounds > 0) {
    std::vector<absl::Duration> sorted = to_serving;
    std::sort(sorted.begin(), sorted.end());
    std::vector<absl::Duration> writes = to_first_write;
    std::sort(writes.begin(), writes.end());
    std::cout << "kill -9 to SERVING over " << rounds << " rounds: min " << Millis(sorted.front())
              << ", median " << Millis(sorted[sorted.size() / 2]) << ", max "
              << Millis(sorted.back()) << "; to the first acknowledged write: min "
              << Millis(writes.front()) << ", median " << Millis(writes[writes.size() / 2])
              << ", max " << Millis(writes.back()) << "\n";
    RecordProperty("failover_to_serving_ms_min", absl::ToInt64Milliseconds(sorted.front()));
    RecordProperty("failover_to_serving_ms_median",
                   absl::ToInt64Milliseconds(sorted[sorted.size() / 2]));
    RecordProperty("failover_to_serving_ms_max", absl::ToInt64Milliseconds(sorted.back()));
    RecordProperty("failover_to_first_write_ms_max", absl::ToInt64Milliseconds(writes.back()));
  }
  for (testing::DaemonProcess* d : daemons) {
    absl::StatusOr<int> stopped = d->StopWith(SIGTERM);
    ASSERT_TRUE(stopped.ok()) << stopped.status();
    EXPECT_EQ(*stopped, 0) << d->Log();
  }
}

// A commit can fail while the leader's connection stays up (here a trigger refuses new
// instance rows). The store latches, the leader steps down, and it must let go of the leader
// lock as it does: the lock lives as long as that connection, so a stepped-down daemon that
// kept it open would leave the site without a leader for good, itself included.
TEST_F(HaFailoverTest, ALeaderWhoseCommitFailsStepsDownAndLetsGoOfTheLock) {
  testing::DaemonProcess a(NVLSCHEDD_PATH, dir_ + "/a");
  testing::DaemonProcess b(NVLSCHEDD_PATH, dir_ + "/b");
  ASSERT_NO_FATAL_FAILURE(StartLeaderAndStandby(a, b));

  {
    pqxx::connection conn(db_->uri());
    pqxx::work tx(conn);
    tx.exec(
        "CREATE FUNCTION ha_test_refuse() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'refused by ha_failover_test'; END $$");
    tx.exec(
        "CREATE TRIGGER ha_test_refuse BEFORE INSERT ON instances FOR EACH ROW "
        "EXECUTE FUNCTION ha_test_refuse()");
    tx.commit();
  }
  v1::BatchCreateInstancesResponse refused_resp;
  grpc::Status refused = CreateSmallBatch(a.address(), "refused-by-trigger", &refused_resp);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE) << refused.error_message();
  {
    pqxx::connection conn(db_->uri());
    pqxx::work tx(conn);
    tx.exec("DROP TRIGGER ha_test_refuse ON instances");
    tx.exec("DROP FUNCTION ha_test_refuse()");
    tx.commit();
  }

  // A steps down (within --standby_poll) and frees the lock: a daemon leads again, B or A
  // itself after its pause, and acknowledges a write.
  const absl::Time failed = absl::Now();
  int leader = -1;
  v1::BatchCreateInstancesResponse after;
  grpc::Status written = grpc::Status(grpc::StatusCode::UNKNOWN, "no daemon led");
  const std::array<testing::DaemonProcess*, 2> daemons = {&a, &b};
  while (absl::Now() < failed + kFailoverBound && !written.ok()) {
    leader = WaitForTheLeader(daemons, absl::Seconds(1));
    if (leader >= 0) written = CreateSmallBatch(daemons[leader]->address(), "after", &after);
  }
  ASSERT_TRUE(written.ok()) << "no daemon acknowledged a write within "
                            << absl::FormatDuration(kFailoverBound)
                            << " of A's failed commit: " << written.error_message()
                            << "\nA's log:\n" << a.Log() << "\nB's log:\n" << b.Log();
  std::cout << "failed commit to a write acknowledged by " << (leader == 0 ? "A" : "B") << ": "
            << Millis(absl::Now() - failed) << "\n";
  // The refused batch is nowhere; the one written after is.
  std::set<std::string> listed;
  for (const auto& [id, instance] : ListAll(daemons[leader]->address())) listed.insert(id);
  std::set<std::string> expected;
  for (const v1::Instance& i : after.instances()) expected.insert(i.id());
  EXPECT_EQ(listed, expected);

  for (testing::DaemonProcess* d : daemons) {
    absl::StatusOr<int> stopped = d->StopWith(SIGTERM);
    ASSERT_TRUE(stopped.ok()) << stopped.status();
    EXPECT_EQ(*stopped, 0) << d->Log();
  }
}

TEST_F(HaFailoverTest, TerminatedBackendNeverGivesTwoLeaders) {
  testing::DaemonProcess a(NVLSCHEDD_PATH, dir_ + "/a");
  testing::DaemonProcess b(NVLSCHEDD_PATH, dir_ + "/b");
  ASSERT_NO_FATAL_FAILURE(StartLeaderAndStandby(a, b));

  v1::BatchCreateInstancesResponse before;
  grpc::Status s = CreateSmallBatch(a.address(), "before", &before);
  ASSERT_TRUE(s.ok()) << s.error_message();

  // An operator ends A's lock connection: the one whose application_name is A's address.
  {
    pqxx::connection conn(db_->uri());
    pqxx::nontransaction tx(conn);
    // The timeout makes pg_terminate_backend wait until the backend has exited (PostgreSQL
    // 14+): from then on the lock is free and A's connection gone.
    pqxx::result r = tx.exec(
        "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE application_name = " +
        tx.quote(a.address()) + " AND datname = current_database()");
    ASSERT_EQ(r.size(), 1u) << "no single backend announces " << a.address()
                            << " as its application_name";
    ASSERT_TRUE(r[0][0].as<bool>()) << "pg_terminate_backend did not end A's backend";
  }
  const absl::Time terminated = absl::Now();

  // Two clients write to A back to back from now until the end of the watch below, across
  // A's step-down: every write must fail, and fail UNAVAILABLE (retry elsewhere). A client
  // must never see CANCELLED, which a server shutting down gives the calls that arrive in
  // its window, and which many clients do not retry (A keeps its server up as it steps down;
  // daemon.h Daemon::StepDown).
  std::atomic<bool> hammer_stop{false};
  std::mutex hammer_mu;
  std::map<grpc::StatusCode, int> hammer_codes;
  std::vector<std::string> hammer_acknowledged;
  std::vector<std::thread> hammers;
  // One client opens a channel for each call; the other keeps one channel, as a control plane
  // does, so its calls also meet the server on a connection it already had.
  for (int t = 0; t < 2; ++t) {
    hammers.emplace_back([&, t] {
      std::unique_ptr<v1::InstanceService::Stub> kept = Connect(a.address());
      for (int i = 0; !hammer_stop.load() && i < 100000; ++i) {
        v1::BatchCreateInstancesResponse resp;
        const std::string name = absl::StrCat("hammer-", t, "-", i);
        grpc::Status st;
        if (t == 0) {
          st = CreateSmallBatch(a.address(), name, &resp);
        } else {
          v1::BatchCreateInstancesRequest req = testing::DemoBatch("ha", 2);
          req.set_request_id(name);
          st = kept->BatchCreateInstances(testing::CallContext(5).get(), req, &resp);
        }
        std::lock_guard<std::mutex> lock(hammer_mu);
        ++hammer_codes[st.error_code()];
        if (st.ok()) hammer_acknowledged.push_back(resp.batch_id());
      }
    });
  }

  // From now on A acknowledges nothing, whether it still thinks it leads, is stepping down,
  // or stands by.
  int writes_to_a = 0;
  auto expect_a_refuses_a_write = [&] {
    v1::BatchCreateInstancesResponse resp;
    grpc::Status refused =
        CreateSmallBatch(a.address(), absl::StrCat("after-terminate-", writes_to_a++), &resp);
    EXPECT_FALSE(refused.ok()) << a.address() << " acknowledged batch " << resp.batch_id()
                               << " after its backend was terminated";
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE) << refused.error_message();
  };
  expect_a_refuses_a_write();

  // B takes over.
  bool b_serves = false;
  while (!b_serves && absl::Now() < terminated + kFailoverBound) {
    b_serves = HealthOf(b.address()) == Health::kServing;
    if (!b_serves) {
      expect_a_refuses_a_write();
      absl::SleepFor(absl::Milliseconds(10));
    }
  }
  ASSERT_TRUE(b_serves) << "B did not take over within " << absl::FormatDuration(kFailoverBound)
                        << " of A's backend being terminated; B's log:\n"
                        << b.Log() << "\nA's log:\n"
                        << a.Log();
  std::cout << "backend terminated to B SERVING: " << Millis(absl::Now() - terminated) << "\n";
  RecordProperty("terminate_to_serving_ms", absl::ToInt64Milliseconds(absl::Now() - terminated));

  v1::BatchCreateInstancesResponse after;
  s = CreateSmallBatch(b.address(), "after", &after);
  EXPECT_TRUE(s.ok()) << s.error_message() << "\nB's log:\n" << b.Log();

  // For a few seconds after B serves, A still acknowledges nothing. A's health may say
  // SERVING until it notices the lost connection (within --standby_poll), and A answers
  // nothing at all while it moves from leading to standing by; both are reported, not
  // failed: what must never happen is a write acknowledged by both.
  const absl::Time watch_until = absl::Now() + absl::Seconds(3);
  int a_serving = 0;
  std::optional<absl::Time> a_silent_from;
  absl::Time a_silent_until;
  while (absl::Now() < watch_until) {
    expect_a_refuses_a_write();
    switch (HealthOf(a.address())) {
      case Health::kServing:
        ++a_serving;
        break;
      case Health::kNoAnswer:
        if (!a_silent_from.has_value()) a_silent_from = absl::Now();
        a_silent_until = absl::Now();
        break;
      case Health::kNotServing:
        break;
    }
    EXPECT_EQ(HealthOf(b.address()), Health::kServing) << "B stopped leading";
    absl::SleepFor(absl::Milliseconds(50));
  }
  hammer_stop = true;
  for (std::thread& t : hammers) t.join();
  EXPECT_GT(writes_to_a, 10);
  std::cout << writes_to_a << " writes to A refused after the terminate; after B served, A "
            << "answered SERVING to " << a_serving << " health checks and answered none for "
            << (a_silent_from.has_value() ? Millis(a_silent_until - *a_silent_from) : "0 ms")
            << "\n";
  int hammered = 0;
  for (const auto& [code, n] : hammer_codes) {
    hammered += n;
    const std::string name = absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
    std::cout << "  hammer writes to A: " << n << " " << name << "\n";
    EXPECT_EQ(code, grpc::StatusCode::UNAVAILABLE)
        << n << " hammer writes to A across its step-down ended " << name;
  }
  EXPECT_GT(hammered, 10);
  EXPECT_THAT(hammer_acknowledged, ::testing::IsEmpty())
      << "A acknowledged writes after its backend was terminated";

  // A, still running, stands by and names B.
  ExpectStandbyNaming(a.address(), b.address(), "probe-a");
  // Its reads are refused too: ListInstances, served from A's view of the records it committed
  // while it led, would now be stale.
  {
    v1::ListInstancesRequest req;
    req.set_org(std::string(daemon::kDemoTenantOrg));
    v1::ListInstancesResponse resp;
    grpc::Status listed =
        Connect(a.address())->ListInstances(testing::CallContext(5).get(), req, &resp);
    EXPECT_EQ(listed.error_code(), grpc::StatusCode::UNAVAILABLE) << listed.error_message();
    EXPECT_THAT(listed.error_message(), HasSubstr(absl::StrCat("the leader is ", b.address())));
  }

  // B holds exactly what was acknowledged: the batch A took before and the one B took after,
  // nothing A was asked for after the terminate.
  std::set<std::string> expected;
  for (const v1::Instance& i : before.instances()) expected.insert(i.id());
  for (const v1::Instance& i : after.instances()) expected.insert(i.id());
  std::set<std::string> listed;
  for (const auto& [id, instance] : ListAll(b.address())) listed.insert(id);
  EXPECT_EQ(listed, expected);

  for (testing::DaemonProcess* d : {&a, &b}) {
    absl::StatusOr<int> stopped = d->StopWith(SIGTERM);
    ASSERT_TRUE(stopped.ok()) << stopped.status();
    EXPECT_EQ(*stopped, 0) << d->Log();
  }
  ASSERT_FALSE(HasFailure()) << "A's log:\n" << a.Log() << "\nB's log:\n" << b.Log();
}

}  // namespace
}  // namespace nvlsched
