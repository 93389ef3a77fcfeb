// Machines and domains as operators run them, over gRPC: domain health (SetDomainState), and
// cleaning before reuse: with
// --require_cleaning a deleted instance's machine is CLEANING — never placed, not counted free
// by offers or domains — until InventoryService/CompleteCleaning says it was wiped (READY) or
// that the wipe failed (MAINTENANCE). GPU-granular machines are cleaned when their last
// instance leaves; a health issue drains instead; a restart keeps it; a queued request waits
// for it.
#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/daemon/services/instance_test_fixture.h"

namespace nvlsched::daemon::testing {
namespace {

using ::testing::HasSubstr;

class CleaningTest : public InstanceServiceTest {
 protected:
  HarnessOptions Options() override {
    HarnessOptions options = InstanceServiceTest::Options();
    options.require_cleaning = true;
    return options;
  }

  v1::MachineState StateOf(const std::string& machine_id) {
    absl::StatusOr<v1::Machine> m = GetMachine(machine_id);
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? m->state() : v1::MACHINE_STATE_UNSPECIFIED;
  }
  grpc::Status CompleteCleaning(const std::vector<std::string>& ids, bool failed = false,
                                const std::string& reason = "",
                                v1::CompleteCleaningResponse* resp = nullptr) {
    v1::CompleteCleaningRequest req;
    for (const std::string& id : ids) req.add_machine_ids(id);
    req.set_failed(failed);
    req.set_reason(reason);
    v1::CompleteCleaningResponse ignored;
    return inventory().CompleteCleaning(Context().get(), req, resp != nullptr ? resp : &ignored);
  }
  v1::Offer Offer() {
    v1::ListOffersResponse offers;
    EXPECT_TRUE(capacity().ListOffers(Context().get(), {}, &offers).ok());
    return offers.offers_size() > 0 ? offers.offers(0) : v1::Offer();
  }
};

TEST_F(CleaningTest, ADeletedMachineIsCleaningAndNeverPlacedUntilCompleteCleaning) {
  v1::BatchCreateInstancesResponse batch = MustBatchCreate(Batch(f::kMachinesPerDomain));
  const int d = DomainIndex(batch.nvlink_domain_id());
  const std::vector<std::string> machines = MachinesOf(batch.instances());
  ASSERT_TRUE(BatchDelete(IdsOf(batch.instances())).ok());
  for (const std::string& m : machines) EXPECT_EQ(StateOf(m), v1::MACHINE_STATE_CLEANING);
  EXPECT_EQ(FreeByDomain()[d], 0);
  v1::Offer offer = Offer();
  EXPECT_EQ(offer.free_machines(), f::kMachinesPerDomain * (f::kDomains - 1));
  EXPECT_EQ(offer.cleaning_machines(), f::kMachinesPerDomain);
  v1::ListDomainsResponse domains;
  ASSERT_TRUE(inventory().ListDomains(Context().get(), {}, &domains).ok());
  int cleaning = 0;
  for (const v1::Domain& domain : domains.domains()) cleaning += domain.cleaning_machines();
  EXPECT_EQ(cleaning, f::kMachinesPerDomain);

  // Fill the other domains: nothing fits in the cleaning one.
  for (int i = 0; i < f::kDomains - 1; ++i) {
    EXPECT_NE(MustBatchCreate(Batch(f::kMachinesPerDomain)).nvlink_domain_id(),
              batch.nvlink_domain_id());
  }
  v1::Instance refused;
  EXPECT_EQ(Create(Single("late"), &refused).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(Invariants().ok());

  // Wiped: READY, and placed again.
  v1::CompleteCleaningResponse done;
  ASSERT_TRUE(CompleteCleaning(machines, false, "", &done).ok());
  ASSERT_EQ(done.machines_size(), f::kMachinesPerDomain);
  for (const v1::Machine& m : done.machines()) EXPECT_EQ(m.state(), v1::MACHINE_STATE_READY);
  EXPECT_EQ(MustBatchCreate(Batch(f::kMachinesPerDomain)).nvlink_domain_id(),
            batch.nvlink_domain_id());
  EXPECT_TRUE(Invariants().ok());
}

TEST_F(CleaningTest, AFailedWipeDrainsTheMachineWithTheReason) {
  v1::Instance single;
  ASSERT_TRUE(Create(Single("one"), &single).ok());
  ASSERT_TRUE(Delete(single.id()).ok());
  grpc::Status no_reason = CompleteCleaning({single.machine_id()}, /*failed=*/true);
  EXPECT_EQ(no_reason.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(no_reason.error_message(), HasSubstr("reason"));
  ASSERT_TRUE(CompleteCleaning({single.machine_id()}, true, "disk wipe timed out").ok());
  absl::StatusOr<v1::Machine> m = GetMachine(single.machine_id());
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->state(), v1::MACHINE_STATE_MAINTENANCE);
  EXPECT_THAT(m->state_reason(), HasSubstr("disk wipe timed out"));
}

TEST_F(CleaningTest, CompleteCleaningIsAllOrNothingAndOnlyForCleaningMachines) {
  v1::Instance single;
  ASSERT_TRUE(Create(Single("one"), &single).ok());
  ASSERT_TRUE(Delete(single.id()).ok());
  const std::string ready = f::MachineId(2, 3);
  grpc::Status status = CompleteCleaning({single.machine_id(), ready});
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("not CLEANING"));
  EXPECT_EQ(StateOf(single.machine_id()), v1::MACHINE_STATE_CLEANING);  // nothing changed
  EXPECT_EQ(CompleteCleaning({TestUuid(999)}).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(CompleteCleaning({}).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(CompleteCleaning({single.machine_id(), single.machine_id()}).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  // SetMachineState cannot skip the wipe; a fleet file cannot either.
  v1::SetMachineStateRequest undrain;
  undrain.set_id(single.machine_id());
  undrain.set_state(v1::MACHINE_STATE_READY);
  v1::Machine undrained;
  grpc::Status skipped = inventory().SetMachineState(Context().get(), undrain, &undrained);
  EXPECT_EQ(skipped.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(skipped.error_message(), HasSubstr("CompleteCleaning"));
  v1::ApplyFleetRequest fleet_req;
  *fleet_req.mutable_fleet() = SmallFleet();
  for (v1::Machine& m : *fleet_req.mutable_fleet()->mutable_machines()) {
    m.set_state(v1::MACHINE_STATE_READY);
  }
  v1::ApplyFleetResponse applied;
  ASSERT_TRUE(inventory().ApplyFleet(Context().get(), fleet_req, &applied).ok());
  EXPECT_EQ(StateOf(single.machine_id()), v1::MACHINE_STATE_CLEANING);

  // Nobody but nvlsched sets CLEANING.
  v1::SetMachineStateRequest set;
  set.set_id(ready);
  set.set_state(v1::MACHINE_STATE_CLEANING);
  v1::Machine out;
  grpc::Status refused = inventory().SetMachineState(Context().get(), set, &out);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(refused.error_message(), HasSubstr("CompleteCleaning"));
}

TEST_F(CleaningTest, AGpuGranularMachineIsCleanedWhenItsLastInstanceLeaves) {
  v1::Instance a, b;
  grpc::Status created = Create(Single("gpu-a", 1), &a);
  ASSERT_TRUE(created.ok()) << created.error_message();
  created = Create(Single("gpu-b", 1), &b);
  ASSERT_TRUE(created.ok()) << created.error_message();
  ASSERT_EQ(a.machine_id(), b.machine_id());
  ASSERT_TRUE(Delete(a.id()).ok());
  EXPECT_EQ(StateOf(a.machine_id()), v1::MACHINE_STATE_READY);  // b still runs there
  ASSERT_TRUE(Delete(b.id()).ok());
  EXPECT_EQ(StateOf(a.machine_id()), v1::MACHINE_STATE_CLEANING);
}

TEST_F(CleaningTest, AHealthIssueDrainsInsteadOfCleaning) {
  v1::Instance single;
  ASSERT_TRUE(Create(Single("one"), &single).ok());
  ASSERT_TRUE(Delete(single.id(), /*machine_health_issue=*/true).ok());
  EXPECT_EQ(StateOf(single.machine_id()), v1::MACHINE_STATE_MAINTENANCE);
}

TEST_F(CleaningTest, ARestartKeepsCleaningMachinesAndAQueuedRequestWaitsForThem) {
  std::vector<v1::BatchCreateInstancesResponse> batches;
  for (int i = 0; i < f::kDomains; ++i) batches.push_back(MustBatchCreate(Batch(f::kMachinesPerDomain)));
  ASSERT_TRUE(BatchDelete(IdsOf(batches[0].instances())).ok());
  Restart();
  const std::vector<std::string> machines = MachinesOf(batches[0].instances());
  for (const std::string& m : machines) EXPECT_EQ(StateOf(m), v1::MACHINE_STATE_CLEANING);
  ASSERT_TRUE(Invariants().ok());

  v1::BatchCreateInstancesRequest queued = Batch(f::kMachinesPerDomain);
  queued.mutable_queue_timeout()->set_seconds(600);
  v1::BatchCreateInstancesResponse waiting = MustBatchCreate(queued);
  EXPECT_TRUE(waiting.queued());
  ASSERT_TRUE(CompleteCleaning(machines).ok());
  v1::Instance placed;
  ASSERT_TRUE(Get(waiting.instances(0).id(), &placed).ok());
  EXPECT_EQ(placed.status(), v1::INSTANCE_STATUS_PENDING);
  EXPECT_EQ(placed.nvlink_domain_id(), batches[0].nvlink_domain_id());
}

TEST_F(CleaningTest, ADegradedDomainGetsNoStrictBatchAndTheStateSurvivesARestart) {
  v1::SetDomainStateRequest req;
  req.set_domain_id(f::DomainId(0));
  req.set_state(v1::DOMAIN_STATE_DEGRADED);
  req.set_reason("NVLink switch tray 3 down");
  v1::Domain domain;
  ASSERT_TRUE(inventory().SetDomainState(Context().get(), req, &domain).ok());
  EXPECT_EQ(domain.state(), v1::DOMAIN_STATE_DEGRADED);
  // Strict batches go elsewhere: domains 1 and 2 fill up, then none is left.
  for (int i = 0; i < f::kDomains - 1; ++i) {
    EXPECT_NE(MustBatchCreate(Batch(f::kMachinesPerDomain)).nvlink_domain_id(), f::DomainId(0));
  }
  EXPECT_EQ(Offer().largest_strict_batch(), 0) << "the degraded domain's 4 free do not count";
  EXPECT_EQ(Offer().free_machines(), f::kMachinesPerDomain);
  v1::BatchCreateInstancesResponse refused;
  EXPECT_EQ(BatchCreate(Batch(2), &refused).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  // A single still goes there.
  v1::Instance single;
  ASSERT_TRUE(Create(Single("on-degraded"), &single).ok());
  EXPECT_EQ(single.nvlink_domain_id(), f::DomainId(0));

  // Re-applying the fleet (no domain state in it) leaves it; a restart keeps it.
  v1::ApplyFleetRequest fleet_req;
  *fleet_req.mutable_fleet() = SmallFleet();
  v1::ApplyFleetResponse applied;
  ASSERT_TRUE(inventory().ApplyFleet(Context().get(), fleet_req, &applied).ok());
  Restart();
  v1::ListDomainsResponse domains;
  ASSERT_TRUE(inventory().ListDomains(Context().get(), {}, &domains).ok());
  for (const v1::Domain& d : domains.domains()) {
    if (d.id() != f::DomainId(0)) continue;
    EXPECT_EQ(d.state(), v1::DOMAIN_STATE_DEGRADED);
    EXPECT_EQ(d.state_reason(), "NVLink switch tray 3 down");
  }
  ASSERT_TRUE(Invariants().ok());

  // MAINTENANCE: not even a single.
  req.set_state(v1::DOMAIN_STATE_MAINTENANCE);
  ASSERT_TRUE(inventory().SetDomainState(Context().get(), req, &domain).ok());
  v1::Instance none;
  EXPECT_EQ(Create(Single("on-maintenance"), &none).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  req.set_state(v1::DOMAIN_STATE_READY);
  ASSERT_TRUE(inventory().SetDomainState(Context().get(), req, &domain).ok());
  EXPECT_TRUE(MustBatchCreate(Batch(2)).nvlink_domain_id() == f::DomainId(0));

  // Bad input.
  req.set_state(v1::DOMAIN_STATE_UNSPECIFIED);
  EXPECT_EQ(inventory().SetDomainState(Context().get(), req, &domain).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  req.set_state(v1::DOMAIN_STATE_READY);
  req.set_domain_id(TestUuid(31337));
  EXPECT_EQ(inventory().SetDomainState(Context().get(), req, &domain).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(CleaningTest, ReplaceInstanceMovesItInsideItsDomainAndKeepsWhoItIs) {
  v1::BatchCreateInstancesResponse batch = MustBatchCreate(Batch(2));
  const v1::Instance& before = batch.instances(0);
  v1::Instance progressed;
  for (v1::InstanceStatus s : {v1::INSTANCE_STATUS_PROVISIONING, v1::INSTANCE_STATUS_CONFIGURING,
                               v1::INSTANCE_STATUS_READY}) {
    ASSERT_TRUE(UpdateStatus(before.id(), s, "", &progressed).ok());
  }
  v1::ReplaceInstanceRequest req;
  req.set_org(f::kOrg);
  req.set_id(before.id());
  req.set_machine_health_issue(true);
  v1::Instance moved;
  grpc::Status status = instances().ReplaceInstance(Context().get(), req, &moved);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(moved.id(), before.id());
  EXPECT_EQ(moved.name(), before.name());
  EXPECT_EQ(moved.batch_id(), before.batch_id());
  EXPECT_EQ(moved.nvlink_domain_id(), before.nvlink_domain_id());
  EXPECT_NE(moved.machine_id(), before.machine_id());
  EXPECT_EQ(moved.status(), v1::INSTANCE_STATUS_PENDING) << "the new machine is provisioned anew";
  EXPECT_EQ(StateOf(before.machine_id()), v1::MACHINE_STATE_MAINTENANCE);
  v1::Instance stored;
  ASSERT_TRUE(Get(before.id(), &stored).ok());
  EXPECT_EQ(stored.machine_id(), moved.machine_id());
  ASSERT_TRUE(Invariants().ok());

  // Without a health issue the old machine is wiped first (CLEANING).
  req.set_machine_health_issue(false);
  req.set_id(batch.instances(1).id());
  v1::Instance moved_again;
  ASSERT_TRUE(instances().ReplaceInstance(Context().get(), req, &moved_again).ok());
  EXPECT_EQ(StateOf(batch.instances(1).machine_id()), v1::MACHINE_STATE_CLEANING);
  EXPECT_EQ(moved_again.nvlink_domain_id(), before.nvlink_domain_id());

  // The domain is full now (2 held, 1 MAINTENANCE, 1 CLEANING): nothing can take it there,
  // though other domains have room. Nothing changes.
  req.set_id(before.id());
  v1::Instance refused;
  status = instances().ReplaceInstance(Context().get(), req, &refused);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("only replaced inside its own domain"));
  ASSERT_TRUE(Get(before.id(), &stored).ok());
  EXPECT_EQ(stored.machine_id(), moved.machine_id());

  Restart();
  ASSERT_TRUE(Get(before.id(), &stored).ok());
  EXPECT_EQ(stored.machine_id(), moved.machine_id());
  EXPECT_TRUE(Invariants().ok());
}

TEST_F(CleaningTest, ASegmentedBatchGetsEqualSegmentsInSeparateDomains) {
  MustCreate(Single("one-taken"));  // one domain has 3 free now
  v1::BatchCreateInstancesRequest req = CrossDomainBatch(6);
  req.set_segment_size(2);
  v1::BatchCreateInstancesResponse resp = MustBatchCreate(req);
  std::map<std::string, int> per_domain;
  for (const v1::Instance& i : resp.instances()) ++per_domain[i.nvlink_domain_id()];
  ASSERT_EQ(per_domain.size(), 3u);
  for (const auto& [domain, n] : per_domain) EXPECT_EQ(n, 2) << domain;
  EXPECT_TRUE(Invariants().ok());

  v1::BatchCreateInstancesResponse ignored;
  v1::BatchCreateInstancesRequest odd = CrossDomainBatch(5);
  odd.set_segment_size(2);
  grpc::Status status = BatchCreate(odd, &ignored);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("not a multiple of segment_size"));
  v1::BatchCreateInstancesRequest strict = Batch(4);
  strict.set_segment_size(2);
  status = BatchCreate(strict, &ignored);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("topology_optimized=false"));
}

}  // namespace
}  // namespace nvlsched::daemon::testing
