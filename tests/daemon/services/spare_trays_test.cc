// Spare trays over gRPC: ApplyFleet sets the fleet's default_spare_machines and a domain's
// own spare_machines (validated: >= 0, fewer than the domain's machines); BatchCreateInstances
// and CreateInstance leave the spares free; ListDomains and ListOffers show them; a strict
// batch larger than a domain less its spares is INVALID_ARGUMENT saying why; ReplaceInstance
// takes a spare; a restart keeps both settings.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/daemon/services/instance_test_fixture.h"

namespace nvlsched::daemon::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class SpareTraysTest : public InstanceServiceTest {
 protected:
  // The small fleet's domain d with spare_machines set (nullopt: absent).
  static v1::Domain DomainWithSpares(int d, std::optional<int> spares) {
    v1::Domain domain = SmallFleet().domains(d);
    if (spares.has_value()) domain.set_spare_machines(*spares);
    return domain;
  }
  std::vector<v1::Domain> Domains() {
    v1::ListDomainsResponse resp;
    EXPECT_TRUE(inventory().ListDomains(Context().get(), {}, &resp).ok());
    return {resp.domains().begin(), resp.domains().end()};
  }
  v1::Offer Offer() {
    v1::ListOffersResponse offers;
    EXPECT_TRUE(capacity().ListOffers(Context().get(), {}, &offers).ok());
    return offers.offers_size() > 0 ? offers.offers(0) : v1::Offer();
  }
};

TEST_F(SpareTraysTest, ApplyFleetSetsSparesThatNewPlacementsLeaveAndReplaceUses) {
  v1::Fleet fleet;
  fleet.set_default_spare_machines(1);
  *fleet.add_domains() = DomainWithSpares(0, 2);
  ASSERT_TRUE(ApplyFleet(fleet).ok());

  std::vector<v1::Domain> domains = Domains();
  ASSERT_EQ(domains.size(), 3u);
  EXPECT_TRUE(domains[0].has_spare_machines());
  EXPECT_EQ(domains[0].spare_machines(), 2);
  EXPECT_EQ(domains[0].effective_spare_machines(), 2);
  EXPECT_EQ(domains[0].available_machines(), 2);
  EXPECT_FALSE(domains[1].has_spare_machines()) << "the default applies";
  EXPECT_EQ(domains[1].effective_spare_machines(), 1);
  EXPECT_EQ(domains[1].available_machines(), 3);
  EXPECT_EQ(domains[1].free_machines(), 4);

  // 4 fits a domain's machines but not beside its spares.
  v1::BatchCreateInstancesResponse refused;
  grpc::Status four = BatchCreate(Batch(4), &refused);
  EXPECT_TRUE(IsRpcError(four, grpc::StatusCode::INVALID_ARGUMENT,
                         "at most 3 of a domain's 4 machines can be placed"));
  EXPECT_THAT(four.error_message(), HasSubstr("1 is a spare tray kept for ReplaceInstance"));

  EXPECT_EQ(MustBatchCreate(Batch(3)).nvlink_domain_id(), f::DomainId(1));
  EXPECT_EQ(MustBatchCreate(Batch(3)).nvlink_domain_id(), f::DomainId(2));
  v1::BatchCreateInstancesResponse held = MustBatchCreate(Batch(2));
  EXPECT_EQ(held.nvlink_domain_id(), f::DomainId(0));
  v1::Instance single;
  EXPECT_EQ(Create(Single("late"), &single).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(BatchCreate(Batch(2), &refused).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(FreeByDomain(), ElementsAre(2, 1, 1)) << "the spares stay free";

  v1::Offer offer = Offer();
  EXPECT_EQ(offer.free_machines(), 4);
  EXPECT_EQ(offer.spare_machines(), 4);
  EXPECT_EQ(offer.available_machines(), 0);
  EXPECT_EQ(offer.free_gpus(), 0) << "the spares' GPUs are not offered";
  EXPECT_EQ(offer.largest_strict_batch(), 0);
  EXPECT_EQ(offer.on_demand_available_machines(), 0);

  // A replacement may take a spare.
  v1::ReplaceInstanceRequest req;
  req.set_org(f::kOrg);
  req.set_id(held.instances(0).id());
  req.set_machine_health_issue(true);
  v1::Instance moved;
  grpc::Status replaced = instances().ReplaceInstance(Context().get(), req, &moved);
  ASSERT_TRUE(replaced.ok()) << replaced.error_message();
  EXPECT_EQ(moved.nvlink_domain_id(), f::DomainId(0));
  EXPECT_NE(moved.machine_id(), held.instances(0).machine_id());
  EXPECT_THAT(FreeByDomain(), ElementsAre(1, 1, 1));
  ASSERT_TRUE(Invariants().ok());

  // Both settings survive a restart.
  Restart();
  domains = Domains();
  EXPECT_EQ(domains[0].spare_machines(), 2);
  EXPECT_EQ(domains[0].effective_spare_machines(), 2);
  EXPECT_FALSE(domains[2].has_spare_machines());
  EXPECT_EQ(domains[2].effective_spare_machines(), 1);
  EXPECT_EQ(Create(Single("after-restart"), &single).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  ASSERT_TRUE(Invariants().ok());

  // Lowering the default frees domains 1 and 2's spares for new requests.
  v1::Fleet lower;
  lower.set_default_spare_machines(0);
  ASSERT_TRUE(ApplyFleet(lower).ok());
  ASSERT_TRUE(Create(Single("now"), &single).ok());
  EXPECT_NE(single.nvlink_domain_id(), f::DomainId(0));
  ASSERT_TRUE(Invariants().ok());
}

TEST_F(SpareTraysTest, BadSpareSettingsAreRefusedNamingTheFieldAndChangeNothing) {
  v1::Fleet negative;
  negative.set_default_spare_machines(-1);
  *negative.add_domains() = DomainWithSpares(1, -3);
  grpc::Status status = ApplyFleet(negative);
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::INVALID_ARGUMENT,
                         "fleet.default_spare_machines must be 0 or more"));
  RpcDetails details = DetailsOf(status);
  ASSERT_TRUE(details.bad_request.has_value());
  EXPECT_THAT(ViolationFields(*details.bad_request),
              ElementsAre("fleet.default_spare_machines", "fleet.domains[0].spare_machines"));

  // As many spares as machines: nothing could ever be placed there.
  v1::Fleet all_spare;
  all_spare.set_default_spare_machines(1);
  *all_spare.add_domains() = DomainWithSpares(0, f::kMachinesPerDomain);
  status = ApplyFleet(all_spare);
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::INVALID_ARGUMENT,
                         "spares must be fewer than the domain's machines"));
  details = DetailsOf(status);
  ASSERT_TRUE(details.bad_request.has_value());
  EXPECT_THAT(ViolationFields(*details.bad_request),
              ElementsAre("fleet.domains[0].spare_machines"));
  // All or nothing: the default of 1 was rolled back with it.
  for (const v1::Domain& domain : Domains()) {
    EXPECT_FALSE(domain.has_spare_machines());
    EXPECT_EQ(domain.effective_spare_machines(), 0);
  }
  v1::Fleet too_many_by_default;
  too_many_by_default.set_default_spare_machines(f::kMachinesPerDomain);
  EXPECT_TRUE(IsRpcError(ApplyFleet(too_many_by_default), grpc::StatusCode::INVALID_ARGUMENT,
                         "fleet.default_spare_machines leaves NVLink domain"));
  EXPECT_EQ(MustBatchCreate(Batch(f::kMachinesPerDomain)).instances_size(), f::kMachinesPerDomain);
  ASSERT_TRUE(Invariants().ok());
}

}  // namespace
}  // namespace nvlsched::daemon::testing
