// The daemon's overload limits, in process (Daemon::Start on 127.0.0.1:0): gRPC's message size
// limits answer RESOURCE_EXHAUSTED; answers a client leaves unread fill the reply budget, which
// refuses further calls with RESOURCE_EXHAUSTED (health checks still answered) until the
// --pending_reply_timeout cancels the unread calls (CANCELLED for their client) and frees them.
// The same under 2,000 concurrent calls against the real binary: tests/e2e/overload_test.cc.
#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "daemon/api/fleet.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "nvlsched/v1/instance_service.grpc.pb.h"
#include "tests/daemon/server/in_process_daemon.h"

namespace nvlsched::daemon {
namespace {

using ::testing::HasSubstr;

constexpr int kUserDataBytes = 100 * 1024;

class OverloadLimitsTest : public nvlsched::testing::InProcessDaemonTest {
 protected:
  // A slow reader keeps HTTP/2's 64 KiB windows (no BDP probing): what it does not read stays
  // in the daemon.
  std::shared_ptr<grpc::Channel> Channel(bool slow_reader = false) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    if (slow_reader) args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    return grpc::CreateCustomChannel(Address(), grpc::InsecureChannelCredentials(), args);
  }

  // Creates `batches` batches of 6 instances, each with kUserDataBytes of user_data: a list
  // of them is about batches * 600 KB.
  void CreateBigInstances(int batches) {
    auto stub = v1::InstanceService::NewStub(Channel());
    for (int b = 0; b < batches; ++b) {
      v1::BatchCreateInstancesRequest req;
      req.set_org(std::string(kDemoTenantOrg));
      req.set_name_prefix(absl::StrCat("big-", b));
      req.set_count(6);
      req.set_tenant_id(std::string(kDemoTenantId));
      req.set_instance_type_id(std::string(kDemoInstanceTypeId));
      req.set_vpc_id("5e28ad7c-5fb7-46d6-a28a-fc0ba6fdc4a3");
      req.set_operating_system_id("eaeb86ee-c435-444e-9e01-8346f67f194b");
      req.set_user_data(std::string(kUserDataBytes, 'u'));
      v1::InterfaceCreateRequest* itf = req.add_interfaces();
      itf->set_subnet_id("1f232bf0-7b90-456e-b9b0-38d9fea4171a");
      itf->set_is_physical(true);
      grpc::ClientContext ctx;
      ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
      v1::BatchCreateInstancesResponse resp;
      const grpc::Status s = stub->BatchCreateInstances(&ctx, req, &resp);
      ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
    }
  }

  static v1::ListInstancesRequest ListAll() {
    v1::ListInstancesRequest req;
    req.set_org(std::string(kDemoTenantOrg));
    req.set_page_size(100);
    return req;
  }

  // A small read: the instance types' offers are not needed, one ListInstances page of 1 is.
  static grpc::Status SmallRead(const std::shared_ptr<grpc::Channel>& channel) {
    v1::ListInstancesRequest req = ListAll();
    req.set_page_size(1);
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    v1::ListInstancesResponse resp;
    return v1::InstanceService::NewStub(channel)->ListInstances(&ctx, req, &resp);
  }
};

TEST_F(OverloadLimitsTest, RequestsAndAnswersLargerThanTheirLimitAreResourceExhausted) {
  DaemonOptions options = Base();
  options.max_request_mib = 1;
  options.max_reply_mib = 1;
  StartDaemon(options);
  auto stub = v1::InstanceService::NewStub(Channel());

  v1::ListInstancesRequest big = ListAll();
  big.set_page_token(std::string(1536 * 1024, 'x'));
  grpc::ClientContext big_ctx;
  big_ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  v1::ListInstancesResponse resp;
  grpc::Status s = stub->ListInstances(&big_ctx, big, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("larger than max"));

  CreateBigInstances(2);  // each answer about 600 KB: under the limit
  grpc::ClientContext list_ctx;
  list_ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  s = stub->ListInstances(&list_ctx, ListAll(), &resp);  // about 1.2 MB: over it
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("larger than max"));
  EXPECT_TRUE(SmallRead(Channel()).ok());
}

TEST_F(OverloadLimitsTest, UnreadAnswersFillTheBudgetUntilTheirCallsAreCancelled) {
  DaemonOptions options = Base();
  options.max_pending_reply_mib = 1;
  options.pending_reply_timeout = absl::Seconds(1);
  StartDaemon(options);
  CreateBigInstances(2);

  // One answer of about 1.2 MB, left unread: the client takes its headers only.
  auto slow = v1::InstanceService::NewStub(Channel(/*slow_reader=*/true));
  grpc::CompletionQueue cq;
  grpc::ClientContext unread_ctx;
  unread_ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  auto unread = slow->PrepareAsyncListInstances(&unread_ctx, ListAll(), &cq);
  unread->StartCall();
  int headers_tag = 1;
  unread->ReadInitialMetadata(&headers_tag);
  void* tag = nullptr;
  bool ok = false;
  ASSERT_EQ(cq.AsyncNext(&tag, &ok, absl::ToChronoTime(absl::Now() + absl::Seconds(10))),
            grpc::CompletionQueue::GOT_EVENT);
  ASSERT_TRUE(ok);
  const absl::Time answered = absl::Now();

  // The daemon holds more than the budget: other clients' calls are refused, health is not.
  auto other = Channel();
  const grpc::Status refused = SmallRead(other);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(), HasSubstr("of answers its clients have not read yet"));
  EXPECT_THAT(refused.error_message(), HasSubstr("--max_pending_reply_mib, is 1.0 MiB"));
  grpc::ClientContext health_ctx;
  health_ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  grpc::health::v1::HealthCheckResponse health;
  EXPECT_TRUE(grpc::health::v1::Health::NewStub(other)
                  ->Check(&health_ctx, grpc::health::v1::HealthCheckRequest(), &health)
                  .ok());

  // After the timeout (and the sweeper's next round) the unread call is cancelled.
  absl::SleepFor(answered + absl::Milliseconds(2500) - absl::Now());
  v1::ListInstancesResponse resp;
  grpc::Status status;
  int finish_tag = 2;
  unread->Finish(&resp, &status, &finish_tag);
  ASSERT_EQ(cq.AsyncNext(&tag, &ok, absl::ToChronoTime(absl::Now() + absl::Seconds(10))),
            grpc::CompletionQueue::GOT_EVENT);
  EXPECT_EQ(tag, &finish_tag);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED) << status.error_message();
  // Its memory is free again: calls are served.
  const grpc::Status served = SmallRead(other);
  EXPECT_TRUE(served.ok()) << served.error_code() << " " << served.error_message();
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
}

// The limit is checked again just before each read runs: of a burst of big reads that all
// arrive while nothing is held, the ones behind the first answers are refused.
TEST_F(OverloadLimitsTest, ABurstOfUnreadAnswersStopsAtTheBudget) {
  DaemonOptions options = Base();
  options.max_pending_reply_mib = 2;
  StartDaemon(options);
  CreateBigInstances(2);

  auto slow = v1::InstanceService::NewStub(Channel(/*slow_reader=*/true));
  grpc::CompletionQueue cq;
  constexpr int kCalls = 10;
  grpc::ClientContext ctx[kCalls];
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::ListInstancesResponse>> calls[kCalls];
  v1::ListInstancesResponse resp[kCalls];
  grpc::Status status[kCalls];
  for (int i = 0; i < kCalls; ++i) {
    ctx[i].set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    calls[i] = slow->PrepareAsyncListInstances(&ctx[i], ListAll(), &cq);
    calls[i]->StartCall();
    calls[i]->ReadInitialMetadata(&ctx[i]);  // headers only: the answers stay unread
  }
  // Every call has its answer or its refusal (whose headers come with the status).
  for (int i = 0; i < kCalls; ++i) {
    void* tag = nullptr;
    bool ok = false;
    ASSERT_EQ(cq.AsyncNext(&tag, &ok, absl::ToChronoTime(absl::Now() + absl::Seconds(10))),
              grpc::CompletionQueue::GOT_EVENT);
  }
  int answered = 0, refused = 0;
  for (int i = 0; i < kCalls; ++i) {
    calls[i]->Finish(&resp[i], &status[i], &status[i]);
    void* tag = nullptr;
    bool ok = false;
    ASSERT_EQ(cq.AsyncNext(&tag, &ok, absl::ToChronoTime(absl::Now() + absl::Seconds(10))),
              grpc::CompletionQueue::GOT_EVENT);
  }
  for (int i = 0; i < kCalls; ++i) {
    if (status[i].ok()) {
      ++answered;
      EXPECT_EQ(resp[i].instances_size(), 12);
    } else {
      EXPECT_EQ(status[i].error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
          << status[i].error_message();
      ++refused;
    }
  }
  // 2 MiB hold two answers of 1.2 MB (less the 64 KiB the client took of each): the third
  // is built (the count was under the limit), the rest refused.
  EXPECT_GE(answered, 2);
  EXPECT_LE(answered, 3);
  EXPECT_EQ(answered + refused, kCalls);
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
  }
}

}  // namespace
}  // namespace nvlsched::daemon
