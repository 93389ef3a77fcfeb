// EventService/WatchEvents for NVLink domains, on the whole daemon in process (Daemon::Start on
// 127.0.0.1:0 over a SQLite file, seeded with the demo fleet): a domain added or changed
// (SetDomainState, ApplyFleet) is one DOMAIN_CHANGED event in the same commit, ahead of the
// machine events of the same fleet; nothing changed, no event; the types filter selects them;
// they survive a restart like every other event.
#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "daemon/api/fleet.h"
#include "daemon/server/daemon.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nvlsched/v1/event_service.grpc.pb.h"
#include "nvlsched/v1/inventory_service.grpc.pb.h"
#include "tests/daemon/server/in_process_daemon.h"

namespace nvlsched::daemon {
namespace {

using ::testing::HasSubstr;

// Seeding the demo fleet commits one event per domain (8), then one per machine (8 x 18), then
// one for the tenant.
constexpr uint64_t kSeedDomains = kDemoDomainCount;
constexpr uint64_t kSeedEvents = kDemoDomainCount + kDemoDomainCount * kDemoMachinesPerDomain + 1;
constexpr char kNewDomain[] = "40000000-0000-4000-8000-0000000000aa";

class DomainEventsTest : public nvlsched::testing::InProcessDaemonTest {
 protected:
  void Start() {
    StartDaemon(Base());
    if (daemon_ == nullptr) return;
    channel_ = grpc::CreateChannel(Address(), grpc::InsecureChannelCredentials());
    inventory_ = v1::InventoryService::NewStub(channel_);
  }

  grpc::Status SetDomainState(absl::string_view id, v1::DomainState state,
                              const std::string& reason, v1::Domain* out = nullptr) {
    grpc::ClientContext ctx;
    v1::SetDomainStateRequest req;
    req.set_domain_id(std::string(id));
    req.set_state(state);
    req.set_reason(reason);
    v1::Domain resp;
    grpc::Status status = inventory_->SetDomainState(&ctx, req, &resp);
    if (out != nullptr) *out = resp;
    return status;
  }

  // A fleet of one new domain named `name` with `machines` machines of the demo type.
  static v1::ApplyFleetRequest NewDomainFleet(const std::string& name, int machines) {
    v1::ApplyFleetRequest req;
    v1::Domain* domain = req.mutable_fleet()->add_domains();
    domain->set_id(kNewDomain);
    domain->set_name(name);
    domain->set_site_id(std::string(kDemoSiteId));
    for (int tray = 0; tray < machines; ++tray) {
      v1::Machine* m = req.mutable_fleet()->add_machines();
      m->set_id(absl::StrCat("50000000-0000-4000-8000-0000000001", tray < 10 ? "0" : "", tray));
      m->set_domain_id(kNewDomain);
      m->set_tray_index(tray);
      m->set_instance_type_id(std::string(kDemoInstanceTypeId));
      m->set_gpu_count(kDemoGpusPerMachine);
    }
    return req;
  }
  grpc::Status ApplyFleet(const v1::ApplyFleetRequest& req) {
    grpc::ClientContext ctx;
    v1::ApplyFleetResponse resp;
    return inventory_->ApplyFleet(&ctx, req, &resp);
  }

  // Every event after `after` that is committed by now (the watch reads until a short
  // deadline: the test knows how many to expect and asserts on the count).
  std::vector<v1::Event> EventsAfter(uint64_t after, const std::vector<v1::EventType>& types = {}) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(1500));
    v1::WatchEventsRequest req;
    req.set_after_sequence(after);
    for (v1::EventType type : types) req.add_types(type);
    auto stub = v1::EventService::NewStub(channel_);
    std::unique_ptr<grpc::ClientReader<v1::Event>> reader = stub->WatchEvents(&ctx, req);
    std::vector<v1::Event> events;
    v1::Event event;
    while (reader->Read(&event)) events.push_back(event);
    const grpc::Status status = reader->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << status.error_message();
    return events;
  }

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::InventoryService::Stub> inventory_;
};

TEST_F(DomainEventsTest, TheSeedFleetAddsEachDomainBeforeItsMachines) {
  Start();
  const std::vector<v1::Event> seed = EventsAfter(0);
  ASSERT_EQ(seed.size(), kSeedEvents);
  for (uint64_t i = 0; i < kSeedDomains; ++i) {
    EXPECT_EQ(seed[i].type(), v1::EVENT_TYPE_DOMAIN_CHANGED) << i;
    EXPECT_EQ(seed[i].domain().id(), kDemoDomainIds[i]);
    EXPECT_EQ(seed[i].domain().state(), v1::DOMAIN_STATE_READY);
    EXPECT_EQ(seed[i].org(), "");
    EXPECT_EQ(seed[i].tenant_id(), "");
    EXPECT_THAT(seed[i].reason(), HasSubstr("NVLink domain added"));
  }
  EXPECT_EQ(seed[kSeedDomains].type(), v1::EVENT_TYPE_MACHINE_ADDED);
}

TEST_F(DomainEventsTest, SetDomainStateIsOneEventAndTheSameStateAgainIsNone) {
  Start();
  const absl::string_view rack = kDemoDomainIds[2];
  ASSERT_TRUE(SetDomainState(rack, v1::DOMAIN_STATE_DEGRADED, "NVLink switch tray 3 down").ok());
  std::vector<v1::Event> events = EventsAfter(kSeedEvents);
  ASSERT_EQ(events.size(), 1u);
  const v1::Event& degraded = events[0];
  EXPECT_EQ(degraded.sequence(), kSeedEvents + 1);
  EXPECT_EQ(degraded.type(), v1::EVENT_TYPE_DOMAIN_CHANGED);
  EXPECT_EQ(degraded.domain().id(), rack);
  EXPECT_EQ(degraded.domain().state(), v1::DOMAIN_STATE_DEGRADED);
  EXPECT_EQ(degraded.domain().state_reason(), "NVLink switch tray 3 down");
  EXPECT_EQ(degraded.domain().name(), "nvl72-rack-03");
  // Configuration and health only: the ListDomains counters are not part of the event.
  EXPECT_EQ(degraded.domain().total_machines(), 0);
  EXPECT_EQ(degraded.domain().free_machines(), 0);
  EXPECT_EQ(degraded.reason(), "READY -> DEGRADED: NVLink switch tray 3 down");
  EXPECT_EQ(degraded.org(), "");

  // The same state and reason again changes nothing: no event. A new reason is a change.
  ASSERT_TRUE(SetDomainState(rack, v1::DOMAIN_STATE_DEGRADED, "NVLink switch tray 3 down").ok());
  ASSERT_TRUE(SetDomainState(rack, v1::DOMAIN_STATE_DEGRADED, "switch tray 3 replaced, 5 down").ok());
  ASSERT_TRUE(SetDomainState(rack, v1::DOMAIN_STATE_READY, "").ok());
  events = EventsAfter(kSeedEvents + 1);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].sequence(), kSeedEvents + 2);
  EXPECT_EQ(events[0].domain().state_reason(), "switch tray 3 replaced, 5 down");
  EXPECT_EQ(events[0].reason(), "DEGRADED -> DEGRADED: switch tray 3 replaced, 5 down");
  EXPECT_EQ(events[1].domain().state(), v1::DOMAIN_STATE_READY);
  EXPECT_EQ(events[1].reason(), "DEGRADED -> READY");

  // An unknown domain is refused and writes nothing.
  EXPECT_EQ(SetDomainState(kNewDomain, v1::DOMAIN_STATE_MAINTENANCE, "x").error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(EventsAfter(kSeedEvents + 3).size(), 0u);
}

TEST_F(DomainEventsTest, ApplyFleetAddsTheDomainBeforeItsMachinesAndReapplyingIsSilent) {
  Start();
  ASSERT_TRUE(ApplyFleet(NewDomainFleet("nvl72-rack-new", 2)).ok());
  std::vector<v1::Event> events = EventsAfter(kSeedEvents);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].type(), v1::EVENT_TYPE_DOMAIN_CHANGED);
  EXPECT_EQ(events[0].domain().id(), kNewDomain);
  EXPECT_EQ(events[0].domain().name(), "nvl72-rack-new");
  EXPECT_EQ(events[0].domain().site_id(), kDemoSiteId);
  EXPECT_THAT(events[0].reason(), HasSubstr("NVLink domain added at site"));
  EXPECT_EQ(events[1].type(), v1::EVENT_TYPE_MACHINE_ADDED);
  EXPECT_EQ(events[1].machine().domain_id(), kNewDomain);
  EXPECT_EQ(events[2].type(), v1::EVENT_TYPE_MACHINE_ADDED);

  // The same fleet again: nothing changed, no event.
  ASSERT_TRUE(ApplyFleet(NewDomainFleet("nvl72-rack-new", 2)).ok());
  EXPECT_EQ(EventsAfter(kSeedEvents + 3).size(), 0u);

  // A renamed domain: one event; a fleet that leaves the state unset keeps an operator's state
  // and says nothing about it.
  ASSERT_TRUE(SetDomainState(kNewDomain, v1::DOMAIN_STATE_MAINTENANCE, "recabling").ok());
  ASSERT_TRUE(ApplyFleet(NewDomainFleet("nvl72-rack-renamed", 2)).ok());
  events = EventsAfter(kSeedEvents + 3);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].domain().state(), v1::DOMAIN_STATE_MAINTENANCE);
  EXPECT_EQ(events[1].type(), v1::EVENT_TYPE_DOMAIN_CHANGED);
  EXPECT_EQ(events[1].domain().name(), "nvl72-rack-renamed");
  EXPECT_EQ(events[1].domain().state(), v1::DOMAIN_STATE_MAINTENANCE);
  EXPECT_EQ(events[1].reason(), "NVLink domain configuration updated");

  // A fleet that states the domain's state changes it: one event, with the new state.
  v1::ApplyFleetRequest ready = NewDomainFleet("nvl72-rack-renamed", 2);
  ready.mutable_fleet()->mutable_domains(0)->set_state(v1::DOMAIN_STATE_READY);
  ASSERT_TRUE(ApplyFleet(ready).ok());
  events = EventsAfter(kSeedEvents + 5);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].domain().state(), v1::DOMAIN_STATE_READY);
  EXPECT_EQ(events[0].reason(), "MAINTENANCE -> READY");
}

TEST_F(DomainEventsTest, TheTypesFilterSelectsDomainEventsAndTheySurviveARestart) {
  Start();
  ASSERT_TRUE(SetDomainState(kDemoDomainIds[0], v1::DOMAIN_STATE_MAINTENANCE, "PDU swap").ok());
  ASSERT_TRUE(ApplyFleet(NewDomainFleet("nvl72-rack-new", 3)).ok());
  const std::vector<v1::Event> before =
      EventsAfter(kSeedEvents, {v1::EVENT_TYPE_DOMAIN_CHANGED});
  ASSERT_EQ(before.size(), 2u);
  EXPECT_EQ(before[0].domain().state(), v1::DOMAIN_STATE_MAINTENANCE);
  EXPECT_EQ(before[1].domain().id(), kNewDomain);
  EXPECT_EQ(before[1].sequence(), kSeedEvents + 2);  // before its 3 machines

  daemon_.reset();
  Start();
  const std::vector<v1::Event> after = EventsAfter(0, {v1::EVENT_TYPE_DOMAIN_CHANGED});
  ASSERT_EQ(after.size(), kSeedDomains + 2);
  EXPECT_EQ(after[kSeedDomains].SerializeAsString(), before[0].SerializeAsString());
  EXPECT_EQ(after[kSeedDomains + 1].SerializeAsString(), before[1].SerializeAsString());
  // The state itself was reloaded too: the same state again is still no change.
  ASSERT_TRUE(SetDomainState(kDemoDomainIds[0], v1::DOMAIN_STATE_MAINTENANCE, "PDU swap").ok());
  EXPECT_EQ(EventsAfter(kSeedEvents + 5).size(), 0u);
}

}  // namespace
}  // namespace nvlsched::daemon
