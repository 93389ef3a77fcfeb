// The kill -9 e2e tests' bookkeeping (crash_recovery_test: one daemon restarted;
// ha_failover_test: a leader killed and its standby taking over): what clients were told, and
// the checks of the daemon's state against it after each round. Header-only: the e2e tests
// link the protos and gtest.
#ifndef NVLSCHED_TESTS_TESTING_LEDGER_H_
#define NVLSCHED_TESTS_TESTING_LEDGER_H_

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cstddef>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "daemon/api/fleet.h"
#include "gtest/gtest.h"
#include "nvlsched/v1/instance_service.grpc.pb.h"
#include "tests/testing/demo_requests.h"

namespace nvlsched::testing {

// A status that leaves the call's outcome unknown (the daemon died, or refused as a standby).
inline bool AnswerLost(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::UNAVAILABLE ||
         s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
         s.error_code() == grpc::StatusCode::CANCELLED ||
         s.error_code() == grpc::StatusCode::UNKNOWN ||
         s.error_code() == grpc::StatusCode::INTERNAL;
}

// What the clients were told, across all rounds.
struct Ledger {
  std::mutex mu;
  std::map<std::string, std::vector<std::string>> acked_batches;  // batch id -> instance ids
  std::set<std::string> acked_deleted;
  std::set<std::string> maybe_deleted;                                  // answer lost
  std::map<std::string, v1::BatchCreateInstancesRequest> lost_creates;  // by request_id
  int lost_answers = 0;  // creates and deletes, for a report
};

// Deletes held[pick] through `stub` (the context's deadline is the caller's) and records the
// answer: acknowledged, or maybe deleted when the answer was lost (settled after the round); a
// definite error fails the test, naming `where`. The instance leaves `held` either way.
inline grpc::Status DeleteOneHeld(v1::InstanceService::Stub& stub, grpc::ClientContext* ctx,
                                  std::vector<std::string>& held, size_t pick, Ledger& ledger,
                                  const std::string& where) {
  const std::string id = held[pick];
  v1::DeleteInstanceRequest req;
  req.set_org(std::string(daemon::kDemoTenantOrg));
  req.set_id(id);
  v1::DeleteInstanceResponse resp;
  grpc::Status s = stub.DeleteInstance(ctx, req, &resp);
  std::lock_guard<std::mutex> lock(ledger.mu);
  held.erase(held.begin() + static_cast<std::ptrdiff_t>(pick));
  if (s.ok()) {
    ledger.acked_deleted.insert(id);
  } else if (AnswerLost(s)) {
    ledger.maybe_deleted.insert(id);
    ++ledger.lost_answers;
  } else {
    ADD_FAILURE() << "delete of " << id << where << " failed with a definite error: "
                  << s.error_message();
  }
  return s;
}

// Every instance of the demo tenant, by id.
inline std::map<std::string, v1::Instance> ListAll(v1::InstanceService::Stub& stub) {
  std::map<std::string, v1::Instance> out;
  v1::ListInstancesRequest req;
  req.set_org(std::string(daemon::kDemoTenantOrg));
  req.set_tenant_id(std::string(daemon::kDemoTenantId));
  req.set_page_size(50);
  while (true) {
    v1::ListInstancesResponse resp;
    grpc::Status s = stub.ListInstances(CallContext(10).get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    if (!s.ok()) break;
    for (const v1::Instance& i : resp.instances()) {
      EXPECT_TRUE(out.emplace(i.id(), i).second) << "instance listed twice: " << i.id();
    }
    if (resp.next_page_token().empty()) break;
    req.set_page_token(resp.next_page_token());
  }
  return out;
}

// Creates whose answer was lost, retried with the same request_id: each either returns the
// batch that was kept (all of it in `present`) or places it now (none of it was). The batch is
// then acknowledged and held by the first client. `event` names what cut the answers off.
inline void SettleLostCreates(v1::InstanceService::Stub& stub, const std::string& event,
                              Ledger& ledger, std::map<std::string, v1::Instance>& present,
                              std::vector<std::vector<std::string>>& held) {
  for (const auto& [request_id, req] : ledger.lost_creates) {
    v1::BatchCreateInstancesResponse resp;
    grpc::Status s = stub.BatchCreateInstances(CallContext(10).get(), req, &resp);
    if (!s.ok()) {
      ASSERT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
      continue;
    }
    int found = 0;
    for (const v1::Instance& i : resp.instances()) found += present.count(i.id());
    EXPECT_TRUE(found == 0 || found == resp.instances_size())
        << "request " << request_id << ": " << found << " of " << resp.instances_size()
        << " instances survived the " << event << ": a half-done batch";
    if (found == 0) {
      for (const v1::Instance& i : resp.instances()) present.emplace(i.id(), i);
    }
    auto& ids = ledger.acked_batches[resp.batch_id()];
    ids.clear();
    for (const v1::Instance& i : resp.instances()) {
      ids.push_back(i.id());
      held[0].push_back(i.id());
    }
  }
  ledger.lost_creates.clear();
}

// Checks `present` against the ledger: every acknowledged create is there (unless a delete
// of it was acknowledged or lost), no acknowledged delete is, nothing is that no client was
// told of, and no machine is held twice. Returns every instance id a client was told of.
inline std::set<std::string> CheckAgainstLedger(const Ledger& ledger,
                                                const std::map<std::string, v1::Instance>& present,
                                                int round) {
  std::set<std::string> accounted;
  for (const auto& [batch_id, ids] : ledger.acked_batches) {
    for (const std::string& id : ids) {
      accounted.insert(id);
      if (ledger.acked_deleted.count(id) || ledger.maybe_deleted.count(id)) continue;
      EXPECT_TRUE(present.count(id)) << "acknowledged create lost: instance " << id
                                     << " of batch " << batch_id << " (round " << round << ")";
    }
  }
  for (const std::string& id : ledger.acked_deleted) {
    EXPECT_FALSE(present.count(id))
        << "acknowledged delete undone: " << id << " (round " << round << ")";
  }
  std::set<std::string> machines;
  for (const auto& [id, instance] : present) {
    EXPECT_TRUE(accounted.count(id)) << "instance " << id << " exists but no client was told of it";
    EXPECT_TRUE(machines.insert(instance.machine_id()).second)
        << "machine " << instance.machine_id() << " held twice";
  }
  return accounted;
}

// Carries the surviving state into the next round: held instances that are gone are dropped,
// a delete whose answer was lost is settled by what is present, and instances such a delete
// did not remove go back to the first client.
inline void CarryIntoNextRound(Ledger& ledger, const std::map<std::string, v1::Instance>& present,
                               std::vector<std::vector<std::string>>& held) {
  for (std::vector<std::string>& h : held) {
    std::vector<std::string> keep;
    for (const std::string& id : h) {
      if (present.count(id)) keep.push_back(id);
    }
    h = std::move(keep);
  }
  for (const std::string& id : ledger.maybe_deleted) {
    if (!present.count(id)) ledger.acked_deleted.insert(id);
  }
  ledger.maybe_deleted.clear();
  for (const auto& [id, instance] : present) {
    bool tracked = false;
    for (const auto& h : held) tracked |= std::find(h.begin(), h.end(), id) != h.end();
    if (!tracked) held[0].push_back(id);
  }
}

}  // namespace nvlsched::testing

#endif  // NVLSCHED_TESTS_TESTING_LEDGER_H_
