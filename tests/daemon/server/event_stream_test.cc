// EventService/WatchEvents on the whole daemon, in process (Daemon::Start on 127.0.0.1:0 over
// a SQLite file, seeded with the demo fleet): every acknowledged change is an event, in order,
// with no gap; a resume (also across a restart) continues exactly after the sequence given;
// retention and OUT_OF_RANGE; a watcher that stops reading is ended while writes go on; tenant
// admins see their own org only.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/substitute.h"
#include "absl/time/clock.h"
#include "daemon/api/fleet.h"
#include "daemon/api/status_mapping.h"
#include "daemon/server/daemon.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "gtest/gtest.h"
#include "nvlsched/v1/event_service.grpc.pb.h"
#include "nvlsched/v1/instance_service.grpc.pb.h"
#include "tests/daemon/server/in_process_daemon.h"
#include "tests/testing/test_tokens.h"
#include "tests/testing/demo_requests.h"

namespace nvlsched::daemon {
namespace {

using ::testing::HasSubstr;

// Seeding the demo fleet commits one event per domain (8), one per machine (8 x 18) and one
// for the tenant.
constexpr uint64_t kSeedEvents = 8 + 8 * 18 + 1;
constexpr char kJwtSecret[] = "an-hs256-secret-of-at-least-32-bytes-for-tests";

class EventStreamTest : public nvlsched::testing::InProcessDaemonTest {
 protected:
  void Start(const DaemonOptions& options) {
    StartDaemon(options);
    if (daemon_ == nullptr) return;
    channel_ = grpc::CreateChannel(Address(), grpc::InsecureChannelCredentials());
    instances_ = v1::InstanceService::NewStub(channel_);
  }

  // A channel whose streams receive little before the application reads: a watcher that stops
  // reading stops the server's writes quickly.
  std::shared_ptr<grpc::Channel> NarrowChannel() {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 1024);
    return grpc::CreateCustomChannel(Address(), grpc::InsecureChannelCredentials(), args);
  }

  v1::BatchCreateInstancesRequest Batch(int count) {
    return nvlsched::testing::DemoBatch("trainer", count);
  }
  std::vector<std::string> MustCreate(int count) {
    grpc::ClientContext ctx;
    v1::BatchCreateInstancesResponse resp;
    const grpc::Status status = instances_->BatchCreateInstances(&ctx, Batch(count), &resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
    std::vector<std::string> ids;
    for (const v1::Instance& instance : resp.instances()) ids.push_back(instance.id());
    return ids;
  }
  void MustDelete(const std::vector<std::string>& ids) {
    grpc::ClientContext ctx;
    v1::BatchDeleteInstancesRequest req;
    req.set_org("demo");
    for (const std::string& id : ids) req.add_ids(id);
    v1::BatchDeleteInstancesResponse resp;
    const grpc::Status status = instances_->BatchDeleteInstances(&ctx, req, &resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
  }

  struct Watched {
    std::vector<v1::Event> events;
    grpc::Status status;  // set when the stream ended (else OK with `events` as read)
    bool ended = false;
  };
  // Reads `want` events (or until the stream ends or 20 s pass) from a new watch.
  Watched Watch(v1::WatchEventsRequest req, size_t want, const std::string& token = "",
                std::shared_ptr<grpc::Channel> channel = nullptr) {
    Watched out;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    if (!token.empty()) ctx.AddMetadata("authorization", absl::StrCat("Bearer ", token));
    auto stub = v1::EventService::NewStub(channel != nullptr ? channel : channel_);
    std::unique_ptr<grpc::ClientReader<v1::Event>> reader = stub->WatchEvents(&ctx, req);
    v1::Event event;
    while (out.events.size() < want && reader->Read(&event)) out.events.push_back(event);
    if (out.events.size() < want) {
      out.status = reader->Finish();
      out.ended = true;
    } else {
      ctx.TryCancel();
      reader->Finish();
    }
    return out;
  }
  static v1::WatchEventsRequest After(uint64_t sequence) {
    v1::WatchEventsRequest req;
    req.set_after_sequence(sequence);
    return req;
  }
  static void ExpectGapless(const std::vector<v1::Event>& events, uint64_t first) {
    for (size_t i = 0; i < events.size(); ++i) {
      ASSERT_EQ(events[i].sequence(), first + i) << "event " << i;
    }
  }

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::InstanceService::Stub> instances_;
};

TEST_F(EventStreamTest, EveryAcknowledgedChangeIsOneEventInOrderAndResumesExactly) {
  Start(Base());
  const std::vector<std::string> a = MustCreate(3);
  const std::vector<std::string> b = MustCreate(2);
  {
    grpc::ClientContext ctx;
    v1::UpdateInstanceStatusRequest req;
    req.set_org("demo");
    req.set_id(a[0]);
    req.set_status(v1::INSTANCE_STATUS_PROVISIONING);
    req.set_message("imaging");
    v1::Instance resp;
    ASSERT_TRUE(instances_->UpdateInstanceStatus(&ctx, req, &resp).ok());
  }
  MustDelete(b);
  const uint64_t total = kSeedEvents + 3 + 2 + 1 + 2;

  const Watched all = Watch(After(0), total);
  ASSERT_EQ(all.events.size(), total) << all.status.error_message();
  ExpectGapless(all.events, 1);
  std::map<int, int> by_type;
  for (const v1::Event& e : all.events) ++by_type[e.type()];
  EXPECT_EQ(by_type[v1::EVENT_TYPE_DOMAIN_CHANGED], 8);
  EXPECT_EQ(by_type[v1::EVENT_TYPE_MACHINE_ADDED], 144);
  EXPECT_EQ(by_type[v1::EVENT_TYPE_TENANT_CHANGED], 1);
  EXPECT_EQ(by_type[v1::EVENT_TYPE_INSTANCE_CREATED], 5);
  EXPECT_EQ(by_type[v1::EVENT_TYPE_INSTANCE_STATUS_CHANGED], 1);
  EXPECT_EQ(by_type[v1::EVENT_TYPE_INSTANCE_DELETED], 2);
  const v1::Event& status = all.events[kSeedEvents + 5];
  EXPECT_EQ(status.type(), v1::EVENT_TYPE_INSTANCE_STATUS_CHANGED);
  EXPECT_EQ(status.instance().id(), a[0]);
  EXPECT_EQ(status.instance().status(), v1::INSTANCE_STATUS_PROVISIONING);
  EXPECT_THAT(status.reason(), HasSubstr("Pending -> Provisioning: imaging"));
  EXPECT_EQ(status.org(), "demo");
  EXPECT_EQ(status.tenant_id(), kDemoTenantId);
  EXPECT_FALSE(status.batch_id().empty());
  const v1::Event& deleted = all.events[total - 1];
  EXPECT_EQ(deleted.type(), v1::EVENT_TYPE_INSTANCE_DELETED);
  EXPECT_EQ(deleted.instance().id(), b[1]);

  // Resume after any point: exactly the rest.
  const uint64_t resume = kSeedEvents + 2;
  const Watched rest = Watch(After(resume), total - resume);
  ASSERT_EQ(rest.events.size(), total - resume);
  ExpectGapless(rest.events, resume + 1);

  // Only some types; live events arrive as they are committed.
  v1::WatchEventsRequest creates = After(total);
  creates.add_types(v1::EVENT_TYPE_INSTANCE_CREATED);
  std::thread writer([&] { MustCreate(2); });
  const Watched live = Watch(creates, 2);
  writer.join();
  ASSERT_EQ(live.events.size(), 2u);
  ExpectGapless(live.events, total + 1);
  EXPECT_EQ(live.events[0].type(), v1::EVENT_TYPE_INSTANCE_CREATED);
}

TEST_F(EventStreamTest, ARestartKeepsTheEventsAndTheirNumbering) {
  Start(Base());
  MustCreate(4);
  daemon_.reset();
  Start(Base());
  MustCreate(2);
  const uint64_t total = kSeedEvents + 4 + 2;
  const Watched rest = Watch(After(kSeedEvents + 1), total - kSeedEvents - 1);
  ASSERT_EQ(rest.events.size(), total - kSeedEvents - 1);
  ExpectGapless(rest.events, kSeedEvents + 2);
  // Nothing beyond what was committed.
  const Watched beyond = Watch(After(total + 1), 1);
  EXPECT_EQ(beyond.status.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_THAT(beyond.status.error_message(), HasSubstr("beyond the newest event"));
}

TEST_F(EventStreamTest, RetentionPrunesAndAnOlderResumeIsOutOfRange) {
  DaemonOptions options = Base();
  options.event_retention = 10;
  Start(options);
  MustCreate(3);
  const uint64_t newest = kSeedEvents + 3;
  const uint64_t oldest = newest - 10 + 1;
  const Watched pruned = Watch(After(5), 1);
  ASSERT_TRUE(pruned.ended);
  EXPECT_EQ(pruned.status.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_THAT(pruned.status.error_message(),
              HasSubstr(absl::StrCat("the oldest retained event is ", oldest)));
  const absl::Status as_absl = FromGrpcStatus(pruned.status);
  std::optional<google::rpc::ErrorInfo> info = GetErrorDetail<google::rpc::ErrorInfo>(as_absl);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->metadata().at("oldest_sequence"), absl::StrCat(oldest));

  // From 0: the oldest retained on; from oldest - 1: the same.
  const Watched from_zero = Watch(After(0), 10);
  ASSERT_EQ(from_zero.events.size(), 10u);
  ExpectGapless(from_zero.events, oldest);
  const Watched from_edge = Watch(After(oldest - 1), 10);
  ASSERT_EQ(from_edge.events.size(), 10u);
  ExpectGapless(from_edge.events, oldest);
}

TEST_F(EventStreamTest, AWatcherThatStopsReadingIsEndedWhileWritesGoOn) {
  DaemonOptions options = Base();
  options.watch_buffer = 16;
  Start(options);
  const std::shared_ptr<grpc::Channel> narrow = NarrowChannel();
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto stub = v1::EventService::NewStub(narrow);
  std::unique_ptr<grpc::ClientReader<v1::Event>> slow = stub->WatchEvents(&ctx, After(0));
  // Read up to the newest event, so the watcher is live.
  v1::Event event;
  for (uint64_t i = 0; i < kSeedEvents; ++i) ASSERT_TRUE(slow->Read(&event));

  // Writes at full rate while the watcher reads nothing: every one is acknowledged.
  constexpr int kRounds = 60;
  for (int round = 0; round < kRounds; ++round) MustDelete(MustCreate(18));
  const uint64_t total = kSeedEvents + kRounds * 36;

  // A reader that kept up sees them all.
  const Watched healthy = Watch(After(kSeedEvents), total - kSeedEvents);
  ASSERT_EQ(healthy.events.size(), total - kSeedEvents) << healthy.status.error_message();

  // The slow one was ended: after what was already on its way, RESOURCE_EXHAUSTED naming the
  // sequence to resume from.
  uint64_t last = event.sequence();
  while (slow->Read(&event)) last = event.sequence();
  const grpc::Status status = slow->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr(absl::StrCat("resume from sequence ", last)));
  EXPECT_LT(last, total);
  // Resuming from there works.
  const Watched resumed = Watch(After(last), total - last);
  ASSERT_EQ(resumed.events.size(), total - last);
  ExpectGapless(resumed.events, last + 1);
}

TEST_F(EventStreamTest, TenantAdminsSeeTheirOwnOrgOnly) {
  const std::string key_file = dir_ + "/jwt.key";
  std::ofstream(key_file) << kJwtSecret;
  DaemonOptions options = Base();
  options.auth = "jwt";
  options.jwt_algorithm = "HS256";
  options.jwt_key_file = key_file;
  options.jwt_issuer = "https://auth.example.test";
  options.jwt_audience = "nvlsched";
  Start(options);
  auto token = [](const std::string& org, const std::string& role) {
    return nvlsched::testing::SignJwt(
        "HS256", kJwtSecret,
        absl::Substitute(R"({"sub":"u","org":"$0","roles":["$1"],"exp":$2,)"
                         R"("iss":"https://auth.example.test","aud":"nvlsched"})",
                         org, role,
                         absl::ToUnixSeconds(absl::Now() + absl::Hours(1))));
  };
  const std::string demo_admin = token("demo", "FORGE_TENANT_ADMIN");
  const std::string other_admin = token("globex", "FORGE_TENANT_ADMIN");
  const std::string viewer = token("", "FORGE_PROVIDER_VIEWER");

  v1::WatchEventsRequest demo = After(0);
  demo.set_org("demo");
  const Watched denied = Watch(demo, 1, other_admin);
  EXPECT_EQ(denied.status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  const Watched no_token = Watch(demo, 1);
  EXPECT_EQ(no_token.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  const Watched no_org = Watch(After(0), 1, demo_admin);
  EXPECT_EQ(no_org.status.error_code(), grpc::StatusCode::PERMISSION_DENIED);

  // The demo admin sees the demo tenant's event and none of the 8 domain and 144 machine
  // events (org-less: for viewers and provider admins watching every org).
  const Watched own = Watch(demo, 1, demo_admin);
  ASSERT_EQ(own.events.size(), 1u) << own.status.error_message();
  EXPECT_EQ(own.events[0].type(), v1::EVENT_TYPE_TENANT_CHANGED);
  EXPECT_EQ(own.events[0].org(), "demo");
  // A viewer sees everything.
  const Watched all = Watch(After(0), kSeedEvents, viewer);
  EXPECT_EQ(all.events.size(), kSeedEvents) << all.status.error_message();
}

}  // namespace
}  // namespace nvlsched::daemon
