// CapacityService.ListOffers over gRPC: figures, stock status, per-site offers, filters, sort.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/daemon/services/service_fixture.h"

namespace nvlsched::daemon::testing {
namespace {

namespace f = small_fleet;
using ::testing::ElementsAre;

constexpr char kSiteB[] = "5b000000-0000-4000-8000-00000000000b";
constexpr char kH100Id[] = "4100e000-0000-4000-8000-000000000001";

class CapacityServiceTest : public ServiceTest {
 protected:
  void SetUp() override {
    ServiceTest::SetUp();
    ASSERT_TRUE(ApplySmallFleet().ok());
  }

  grpc::Status Offers(const v1::ListOffersRequest& req, v1::ListOffersResponse* resp) {
    return capacity().ListOffers(Context().get(), req, resp);
  }
  v1::ListOffersResponse Offers(v1::ListOffersRequest req = {}) {
    v1::ListOffersResponse resp;
    grpc::Status status = Offers(req, &resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return resp;
  }

  void Drain(const std::string& machine_id) {
    v1::SetMachineStateRequest req;
    req.set_id(machine_id);
    req.set_state(v1::MACHINE_STATE_MAINTENANCE);
    v1::Machine ignored;
    ASSERT_TRUE(inventory().SetMachineState(Context().get(), req, &ignored).ok());
  }

  // Adds an 8-GPU H100 type ($30/h) with one domain of 2 machines in site B, and one GB200
  // domain of 2 machines in site B.
  void AddSecondSite() {
    v1::Fleet fleet;
    v1::InstanceType* h100 = fleet.add_instance_types();
    h100->set_id(kH100Id);
    h100->set_name("h100-8x");
    h100->set_gpu_model("H100");
    h100->set_gpus_per_machine(8);
    h100->set_gpu_memory_mib(81559);
    h100->set_price_per_hour(30.0);
    h100->set_interconnect("NVLink 4");
    for (int d = 0; d < 2; ++d) {
      v1::Domain* domain = fleet.add_domains();
      domain->set_id(TestUuid(100 + d));
      domain->set_site_id(kSiteB);
      for (int t = 0; t < 2; ++t) {
        v1::Machine* m = fleet.add_machines();
        m->set_id(TestUuid(200 + 10 * d + t));
        m->set_domain_id(TestUuid(100 + d));
        m->set_tray_index(t);
        m->set_instance_type_id(d == 0 ? kH100Id : f::kTypeId);
        m->set_gpu_count(d == 0 ? 8 : 4);
      }
    }
    ASSERT_TRUE(ApplyFleet(fleet).ok());
  }
};

std::vector<std::string> Keys(const v1::ListOffersResponse& resp) {
  std::vector<std::string> keys;
  for (const v1::Offer& o : resp.offers()) {
    keys.push_back(absl::StrCat(o.instance_type_name(), "@", o.site_id() == kSiteB ? "B" : "A"));
  }
  return keys;
}

TEST_F(CapacityServiceTest, OneOfferForAFreshFleet) {
  v1::ListOffersResponse resp = Offers();
  ASSERT_EQ(resp.offers_size(), 1);
  const v1::Offer& offer = resp.offers(0);
  EXPECT_EQ(offer.instance_type_id(), f::kTypeId);
  EXPECT_EQ(offer.instance_type_name(), f::kTypeName);
  EXPECT_EQ(offer.gpu_name(), f::kGpuModel);
  EXPECT_EQ(offer.gpu_count(), 4);
  EXPECT_EQ(offer.gpu_memory_mib(), 177383);
  EXPECT_TRUE(offer.nvlink());
  EXPECT_EQ(offer.interconnect(), "NVLink 5 (NVL72)");
  EXPECT_EQ(offer.site_id(), f::kSiteId);
  EXPECT_DOUBLE_EQ(offer.hourly_price(), f::kPrice);
  EXPECT_EQ(offer.stock_status(), v1::STOCK_STATUS_AVAILABLE);
  EXPECT_EQ(offer.free_machines(), 12);
  EXPECT_EQ(offer.free_gpus(), 48);
  EXPECT_EQ(offer.largest_strict_batch(), 4);
  EXPECT_EQ(offer.fully_free_domains(), 3);
  EXPECT_EQ(offer.stranded_machines(), 0);
}

TEST_F(CapacityServiceTest, FiguresFollowAllocationsAndMatchTheAllocatorsView) {
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(CreateWholeMachineInstance(absl::StrCat("w-", i)).ok());  // best fit: one domain
  }
  ASSERT_TRUE(CreateGpuInstance("slice", 1).ok());
  v1::ListOffersResponse resp = Offers();
  ASSERT_EQ(resp.offers_size(), 1);
  const v1::Offer& offer = resp.offers(0);
  // The GPU slice goes to the broken domain's last free machine: 8 whole machines stay free.
  EXPECT_EQ(offer.free_machines(), 8);
  EXPECT_EQ(offer.free_gpus(), 8 * 4 + 3);
  EXPECT_EQ(offer.largest_strict_batch(), 4);
  EXPECT_EQ(offer.fully_free_domains(), 2);
  EXPECT_EQ(offer.stranded_machines(), 0);
  EXPECT_EQ(offer.stock_status(), v1::STOCK_STATUS_AVAILABLE);

  harness().Read([&](const State& state) {
    absl::StatusOr<allocator::CapacityView> view = state.allocator().Capacity(f::kTypeId);
    ASSERT_TRUE(view.ok());
    EXPECT_EQ(view->free_machines, offer.free_machines());
    EXPECT_EQ(view->free_gpus, offer.free_gpus());
    EXPECT_EQ(view->largest_strict_batch, offer.largest_strict_batch());
    EXPECT_EQ(view->fully_free_domains, offer.fully_free_domains());
    EXPECT_EQ(view->stranded_machines, offer.stranded_machines());
  });
}

TEST_F(CapacityServiceTest, StrandedMachinesAndStockStatus) {
  // One drained machine per domain: no domain is whole any more.
  for (int d = 0; d < f::kDomains; ++d) Drain(f::MachineId(d, 0));
  v1::Offer offer = Offers().offers(0);
  EXPECT_EQ(offer.stock_status(), v1::STOCK_STATUS_LOW);
  EXPECT_EQ(offer.fully_free_domains(), 0);
  EXPECT_EQ(offer.largest_strict_batch(), 3);

  for (int t = 1; t < 3; ++t) Drain(f::MachineId(0, t));  // domain 0: one free machine left
  offer = Offers().offers(0);
  EXPECT_EQ(offer.stranded_machines(), 1);
  EXPECT_EQ(offer.free_machines(), 7);

  for (int d = 0; d < f::kDomains; ++d) {
    for (int t = 1; t < f::kMachinesPerDomain; ++t) Drain(f::MachineId(d, t));
  }
  offer = Offers().offers(0);
  EXPECT_EQ(offer.stock_status(), v1::STOCK_STATUS_UNAVAILABLE);
  EXPECT_EQ(offer.free_gpus(), 0);
  v1::ListOffersRequest available;
  available.set_available(true);
  EXPECT_EQ(Offers(available).offers_size(), 0);
}

TEST_F(CapacityServiceTest, OneOfferPerSiteWhenATypeSpansSites) {
  AddSecondSite();
  v1::ListOffersResponse resp = Offers();
  EXPECT_THAT(Keys(resp), ElementsAre("gb200-tray@A", "gb200-tray@B", "h100-8x@B"));
  EXPECT_EQ(resp.offers(0).free_machines(), 12);
  EXPECT_EQ(resp.offers(1).free_machines(), 2);
  EXPECT_EQ(resp.offers(1).fully_free_domains(), 1);
  EXPECT_EQ(resp.offers(2).gpu_count(), 8);
  EXPECT_EQ(resp.offers(2).free_gpus(), 16);
}

TEST_F(CapacityServiceTest, Filters) {
  AddSecondSite();
  v1::ListOffersRequest req;
  req.set_gpu_type("gb200");  // case-insensitive
  EXPECT_THAT(Keys(Offers(req)), ElementsAre("gb200-tray@A", "gb200-tray@B"));
  req.set_gpu_type("A100");
  EXPECT_EQ(Offers(req).offers_size(), 0);

  req.Clear();
  req.set_site_id(kSiteB);
  EXPECT_THAT(Keys(Offers(req)), ElementsAre("gb200-tray@B", "h100-8x@B"));

  req.Clear();
  req.set_gpu_count(8);
  EXPECT_THAT(Keys(Offers(req)), ElementsAre("h100-8x@B"));
  req.set_gpu_count(4);
  EXPECT_EQ(Offers(req).offers_size(), 3);

  Drain(TestUuid(200));
  Drain(TestUuid(201));
  req.Clear();
  req.set_available(true);
  EXPECT_THAT(Keys(Offers(req)), ElementsAre("gb200-tray@A", "gb200-tray@B"));
}

TEST_F(CapacityServiceTest, SortByPriceAscendingOrByInstanceTypeOrder) {
  AddSecondSite();
  v1::ListOffersRequest req;
  req.set_sort("price");
  v1::ListOffersResponse resp = Offers(req);
  EXPECT_THAT(Keys(resp), ElementsAre("h100-8x@B", "gb200-tray@A", "gb200-tray@B"));
  EXPECT_DOUBLE_EQ(resp.offers(0).hourly_price(), 30.0);
  req.set_sort("");
  EXPECT_THAT(Keys(Offers(req)), ElementsAre("gb200-tray@A", "gb200-tray@B", "h100-8x@B"));
}

TEST_F(CapacityServiceTest, ATypeWithoutMachinesIsOfferedAsUnavailable) {
  v1::Fleet fleet;
  v1::InstanceType* type = fleet.add_instance_types();
  *type = SmallFleet().instance_types(0);
  type->set_id(TestUuid(7));
  type->set_name("gb300-tray");
  ASSERT_TRUE(ApplyFleet(fleet).ok());
  v1::ListOffersResponse resp = Offers();
  ASSERT_EQ(resp.offers_size(), 2);
  EXPECT_EQ(resp.offers(1).instance_type_id(), TestUuid(7));
  EXPECT_EQ(resp.offers(1).site_id(), "");
  EXPECT_EQ(resp.offers(1).stock_status(), v1::STOCK_STATUS_UNAVAILABLE);
  EXPECT_EQ(resp.offers(1).free_machines(), 0);
}

TEST_F(CapacityServiceTest, InvalidRequests) {
  v1::ListOffersResponse resp;
  v1::ListOffersRequest req;
  req.set_sort("cost");
  grpc::Status status = Offers(req, &resp);
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::INVALID_ARGUMENT, "\"price\""));
  ASSERT_TRUE(DetailsOf(status).bad_request.has_value());
  EXPECT_THAT(ViolationFields(*DetailsOf(status).bad_request), ElementsAre("sort"));

  req.Clear();
  req.set_gpu_count(-1);
  req.set_site_id("site-b");
  status = Offers(req, &resp);
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::INVALID_ARGUMENT, "gpu_count"));
  EXPECT_THAT(ViolationFields(*DetailsOf(status).bad_request), ElementsAre("site_id", "gpu_count"));
}

class CapacityEmptyInventoryTest : public ServiceTest {};

TEST_F(CapacityEmptyInventoryTest, NoInstanceTypesNoOffers) {
  v1::ListOffersResponse resp;
  ASSERT_TRUE(capacity().ListOffers(Context().get(), {}, &resp).ok());
  EXPECT_EQ(resp.offers_size(), 0);
}

}  // namespace
}  // namespace nvlsched::daemon::testing
