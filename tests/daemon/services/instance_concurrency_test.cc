// InstanceService under concurrent clients: 8 threads x 40 calls of random batch creates and
// deletes against the 12-machine small fleet, every call with a deadline. Afterwards the
// fleet must add up (no machine held twice, every acknowledged create listed unless deleted,
// free + held == total, the allocator's own invariant check), and the engine must have
// committed every successful write, sharing commits where it could (group commit).
#include <algorithm>
#include <atomic>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/daemon/services/instance_test_fixture.h"

namespace nvlsched::daemon::testing {
namespace {

constexpr int kThreads = 8;
constexpr int kCallsPerThread = 40;
constexpr int kFleetMachines = f::kDomains * f::kMachinesPerDomain;

class InstanceConcurrencyTest : public InstanceServiceTest {
 protected:
  HarnessOptions Options() override {
    HarnessOptions options = ServiceTest::Options();
    options.on_commit = [this](const CommitReport& report) {
      commits_.fetch_add(1);
      committed_ops_.fetch_add(report.ops);
      if (!report.status.ok()) failed_commits_.fetch_add(1);
      int seen = max_ops_in_commit_.load();
      while (report.ops > seen && !max_ops_in_commit_.compare_exchange_weak(seen, report.ops)) {
      }
    };
    return options;
  }

  std::atomic<int> commits_{0};
  std::atomic<int> committed_ops_{0};
  std::atomic<int> failed_commits_{0};
  std::atomic<int> max_ops_in_commit_{0};
};

// What one client thread did, checked on the test thread after join.
struct ClientLog {
  std::vector<std::string> created;  // ids of instances acknowledged as created
  std::set<std::string> deleted;     // ids acknowledged as deleted
  int ok_creates = 0;
  int ok_deletes = 0;
  int exhausted = 0;
  std::vector<std::string> problems;  // anything that should not happen
};

TEST_F(InstanceConcurrencyTest, RandomCreatesAndDeletesKeepTheFleetConsistent) {
  const int commits_before = commits_.load();
  const int ops_before = committed_ops_.load();
  std::vector<ClientLog> logs(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t, &log = logs[t]] {
      std::mt19937 rng(1000 + t);  // pinned: the same request sequence every run
      std::vector<std::vector<std::string>> live;  // this client's batches still held
      for (int call = 0; call < kCallsPerThread; ++call) {
        const bool remove = !live.empty() && std::uniform_int_distribution<int>(0, 9)(rng) < 6;
        if (remove) {
          const size_t which = std::uniform_int_distribution<size_t>(0, live.size() - 1)(rng);
          std::vector<std::string>& batch = live[which];
          const bool whole_batch = std::uniform_int_distribution<int>(0, 1)(rng) == 0;
          grpc::Status status;
          std::vector<std::string> gone;
          if (whole_batch) {
            v1::BatchDeleteInstancesRequest req;
            req.set_org(f::kOrg);
            for (const std::string& id : batch) req.add_ids(id);
            v1::BatchDeleteInstancesResponse resp;
            status = instances().BatchDeleteInstances(Context().get(), req, &resp);
            gone = batch;
          } else {
            v1::DeleteInstanceRequest req;
            req.set_org(f::kOrg);
            req.set_id(batch.back());
            v1::DeleteInstanceResponse resp;
            status = instances().DeleteInstance(Context().get(), req, &resp);
            gone = {batch.back()};
          }
          if (!status.ok()) {
            log.problems.push_back(absl::StrCat("delete: ", status.error_code(), " ",
                                                status.error_message()));
            continue;
          }
          ++log.ok_deletes;
          log.deleted.insert(gone.begin(), gone.end());
          batch.resize(batch.size() - gone.size());
          if (batch.empty()) live.erase(live.begin() + which);
          continue;
        }
        v1::BatchCreateInstancesRequest req = Batch(std::uniform_int_distribution<int>(2, 4)(rng));
        req.set_name_prefix(absl::StrCat("t", t));
        const bool strict = std::uniform_int_distribution<int>(0, 2)(rng) != 0;
        if (!strict) req.set_topology_optimized(false);
        if (call % 3 == 0) req.set_request_id(absl::StrCat("t", t, "-call", call));
        v1::BatchCreateInstancesResponse resp;
        const grpc::Status status = instances().BatchCreateInstances(Context().get(), req, &resp);
        if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
          ++log.exhausted;
          continue;
        }
        if (!status.ok()) {
          log.problems.push_back(absl::StrCat("create: ", status.error_code(), " ",
                                              status.error_message()));
          continue;
        }
        ++log.ok_creates;
        if (resp.instances_size() != req.count()) {
          log.problems.push_back(absl::StrCat("create answered ", resp.instances_size(),
                                              " instances for count ", req.count()));
        }
        std::vector<std::string> ids;
        for (const v1::Instance& inst : resp.instances()) {
          ids.push_back(inst.id());
          if (strict && inst.nvlink_domain_id() != resp.nvlink_domain_id()) {
            log.problems.push_back(absl::StrCat("strict batch ", resp.batch_id(),
                                                " spans domains"));
          }
        }
        log.created.insert(log.created.end(), ids.begin(), ids.end());
        live.push_back(std::move(ids));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  int ok_writes = 0;
  int exhausted = 0;
  std::set<std::string> expected;
  for (const ClientLog& log : logs) {
    EXPECT_THAT(log.problems, ::testing::IsEmpty());
    ok_writes += log.ok_creates + log.ok_deletes;
    exhausted += log.exhausted;
    for (const std::string& id : log.created) {
      if (log.deleted.count(id) == 0) expected.insert(id);
    }
  }
  ASSERT_GT(ok_writes, 0);

  // Every acknowledged create is listed unless it was deleted, and nothing else is.
  const std::vector<v1::Instance> listed = ListAll();
  std::set<std::string> listed_ids;
  std::map<std::string, int> holders;
  for (const v1::Instance& inst : listed) {
    listed_ids.insert(inst.id());
    ++holders[inst.machine_id()];
  }
  EXPECT_EQ(listed_ids, expected);
  for (const auto& [machine, count] : holders) {
    EXPECT_EQ(count, 1) << "machine " << machine << " is held " << count << " times";
  }
  EXPECT_EQ(TotalFree() + static_cast<int>(holders.size()), kFleetMachines);
  EXPECT_EQ(static_cast<int>(holders.size()), static_cast<int>(listed.size()));
  const absl::Status invariants = Invariants();
  EXPECT_TRUE(invariants.ok()) << invariants;

  // Every successful write was committed (and nothing else was); commits never outnumber them.
  const int commits = commits_.load() - commits_before;
  const int committed_ops = committed_ops_.load() - ops_before;
  EXPECT_EQ(failed_commits_.load(), 0);
  EXPECT_EQ(committed_ops, ok_writes);
  EXPECT_LE(commits, ok_writes);
  std::cout << "[ group commit ] " << ok_writes << " successful writes in " << commits
            << " commits (" << ok_writes - commits << " writes rode along in another's commit; "
            << "largest group " << max_ops_in_commit_.load() << " ops); " << exhausted
            << " creates were RESOURCE_EXHAUSTED; " << listed.size()
            << " instances held at the end\n";
  RecordProperty("successful_writes", ok_writes);
  RecordProperty("commits", commits);
}

}  // namespace
}  // namespace nvlsched::daemon::testing
