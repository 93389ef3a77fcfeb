// Shared fixture of the bad-input tables (issue 21, bad_input_*_test.cc): every gRPC method of
// every service gets malformed, out-of-range, oversized, wrong-type and unicode input, one row
// of a table each, and must answer the documented code with the bad field named, change
// nothing, and leave the daemon healthy.
//
// The harness is the in-process one (service_fixture.h) with the small fleet and one instance
// ("keeper") applied, plus SchedulerService, EventService (over an EventHub fed by the engine's
// commits, as the daemon wires it) and the default grpc.health.v1.Health service.
//
// A row: (description, request mutation, expected code, expected BadRequest field paths
// exactly, a substring of the message). RunTable sends each row, checks the answer, and checks
// that a digest of every readable piece of state is the same before and after the row.
// RawRow sends bytes that are not what a generated client would send (wrong wire types,
// invalid UTF-8, truncation) through a generic call.
//
// Thread-safety: driven from the test's thread.
#ifndef NVLSCHED_TESTS_DAEMON_SERVICES_BAD_INPUT_FIXTURE_H_
#define NVLSCHED_TESTS_DAEMON_SERVICES_BAD_INPUT_FIXTURE_H_

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "daemon/services/event_hub.h"
#include "daemon/services/event_service.h"
#include "daemon/services/scheduler_service.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "nvlsched/v1/event_service.grpc.pb.h"
#include "nvlsched/v1/scheduler_service.grpc.pb.h"
#include "tests/daemon/services/instance_test_fixture.h"

namespace nvlsched::daemon::testing {

// One row of a typed table.
template <typename Req>
struct Row {
  std::string description;
  std::function<void(Req&)> mutate;
  grpc::StatusCode code = grpc::StatusCode::INVALID_ARGUMENT;
  std::vector<std::string> fields;  // the BadRequest's field paths, exactly ({}: none)
  std::string message;              // a substring of the status message
};

// One row of raw bytes sent to `method` ("/nvlsched.v1.InstanceService/CreateInstance").
struct RawRow {
  std::string method;
  std::string description;
  std::string bytes;
  grpc::StatusCode code = grpc::StatusCode::INVALID_ARGUMENT;
  std::vector<std::string> fields;
  std::string message;
};

// Protobuf wire encoding, for the raw rows.
std::string WireTag(int field, int wire_type);
std::string WireVarint(uint64_t value);
std::string WireLengthDelimited(int field, const std::string& payload);

// Common oversized and unicode values.
std::string MiB(char c = 'a');  // 1 MiB of `c`
inline constexpr char kRtlOverride[] = "\u202e";  // RIGHT-TO-LEFT OVERRIDE (bidi control)
inline constexpr char kRtlMark[] = "\u200f";      // RIGHT-TO-LEFT MARK (plain RTL text)
inline constexpr char kNextLine[] = "\u0085";     // NEL, a C1 control character (a newline)
inline constexpr char kEmoji[] = "\U0001F680";    // ROCKET
// A string with an embedded NUL byte.
std::string WithNul(const std::string& before, const std::string& after);

class BadInputTest : public InstanceServiceTest {
 protected:
  void SetUp() override;
  HarnessOptions Options() override;

  // Every readable piece of state, serialized: instances, machines, domains, instance types,
  // tenants, offers, the queue and the newest event sequence.
  std::string StateDigest();

  // Sends every row (base request mutated) through `call`; checks code, fields and message of
  // each answer and that the state digest did not change. Returns the number of rows.
  template <typename Req, typename Resp>
  size_t RunTable(const std::string& method, const Req& base, const std::vector<Row<Req>>& rows,
                  grpc::Status (BadInputTest::*call)(grpc::ClientContext*, const Req&, Resp*));
  size_t RunRaw(const std::vector<RawRow>& rows);

  // The answer's code, BadRequest fields and message against a row's expectation.
  static void ExpectAnswer(const grpc::Status& status, grpc::StatusCode code,
                           const std::vector<std::string>& fields, const std::string& message);

  // Health/Check answers SERVING and a normal create succeeds (the daemon is still healthy).
  void ExpectHealthy();

 public:
  // Unary calls, one per method, all of the same shape (for RunTable; public so that a test
  // body can take their addresses).
  grpc::Status CallBatchCreate(grpc::ClientContext* c, const v1::BatchCreateInstancesRequest& r,
                               v1::BatchCreateInstancesResponse* o);
  grpc::Status CallCreate(grpc::ClientContext* c, const v1::CreateInstanceRequest& r,
                          v1::Instance* o);
  grpc::Status CallGet(grpc::ClientContext* c, const v1::GetInstanceRequest& r, v1::Instance* o);
  grpc::Status CallList(grpc::ClientContext* c, const v1::ListInstancesRequest& r,
                        v1::ListInstancesResponse* o);
  grpc::Status CallUpdateStatus(grpc::ClientContext* c, const v1::UpdateInstanceStatusRequest& r,
                                v1::Instance* o);
  grpc::Status CallDelete(grpc::ClientContext* c, const v1::DeleteInstanceRequest& r,
                          v1::DeleteInstanceResponse* o);
  grpc::Status CallReplace(grpc::ClientContext* c, const v1::ReplaceInstanceRequest& r,
                           v1::Instance* o);
  grpc::Status CallBatchDelete(grpc::ClientContext* c, const v1::BatchDeleteInstancesRequest& r,
                               v1::BatchDeleteInstancesResponse* o);
  grpc::Status CallApplyFleet(grpc::ClientContext* c, const v1::ApplyFleetRequest& r,
                              v1::ApplyFleetResponse* o);
  grpc::Status CallListMachines(grpc::ClientContext* c, const v1::ListMachinesRequest& r,
                                v1::ListMachinesResponse* o);
  grpc::Status CallGetMachine(grpc::ClientContext* c, const v1::GetMachineRequest& r,
                              v1::Machine* o);
  grpc::Status CallSetMachineState(grpc::ClientContext* c, const v1::SetMachineStateRequest& r,
                                   v1::Machine* o);
  grpc::Status CallCompleteCleaning(grpc::ClientContext* c, const v1::CompleteCleaningRequest& r,
                                    v1::CompleteCleaningResponse* o);
  grpc::Status CallRemoveMachine(grpc::ClientContext* c, const v1::RemoveMachineRequest& r,
                                 v1::RemoveMachineResponse* o);
  grpc::Status CallListDomains(grpc::ClientContext* c, const v1::ListDomainsRequest& r,
                               v1::ListDomainsResponse* o);
  grpc::Status CallSetDomainState(grpc::ClientContext* c, const v1::SetDomainStateRequest& r,
                                  v1::Domain* o);
  grpc::Status CallUpsertTenant(grpc::ClientContext* c, const v1::UpsertTenantRequest& r,
                                v1::Tenant* o);
  grpc::Status CallListTenants(grpc::ClientContext* c, const v1::ListTenantsRequest& r,
                               v1::ListTenantsResponse* o);
  grpc::Status CallListOffers(grpc::ClientContext* c, const v1::ListOffersRequest& r,
                              v1::ListOffersResponse* o);
  grpc::Status CallListQueue(grpc::ClientContext* c, const v1::ListQueueRequest& r,
                             v1::ListQueueResponse* o);
  grpc::Status CallCreateSnapshot(grpc::ClientContext* c, const v1::CreateSnapshotRequest& r,
                                  v1::CreateSnapshotResponse* o);
  grpc::Status CallHealthCheck(grpc::ClientContext* c, const grpc::health::v1::HealthCheckRequest& r,
                               grpc::health::v1::HealthCheckResponse* o);
  // Streams: the status the stream ends with, or OK once the first message arrived.
  grpc::Status CallWatchEvents(grpc::ClientContext* c, const v1::WatchEventsRequest& r,
                               v1::Event* o);
  grpc::Status CallHealthWatch(grpc::ClientContext* c, const grpc::health::v1::HealthCheckRequest& r,
                               grpc::health::v1::HealthCheckResponse* o);

 protected:
  // The instance created in SetUp: a well-formed id that exists.
  v1::Instance keeper_;

 private:
  // Built by the EventService factory (it needs the harness's store), fed by on_commit.
  std::unique_ptr<EventHub> hub_;
  std::atomic<EventHub*> hub_ptr_{nullptr};
};

template <typename Req, typename Resp>
size_t BadInputTest::RunTable(
    const std::string& method, const Req& base, const std::vector<Row<Req>>& rows,
    grpc::Status (BadInputTest::*call)(grpc::ClientContext*, const Req&, Resp*)) {
  const std::string before = StateDigest();
  for (const Row<Req>& row : rows) {
    SCOPED_TRACE(absl::StrCat(method, ": ", row.description));
    Req req = base;
    if (row.mutate) row.mutate(req);
    Resp resp;
    const grpc::Status status = (this->*call)(Context().get(), req, &resp);
    ExpectAnswer(status, row.code, row.fields, row.message);
    EXPECT_TRUE(StateDigest() == before) << "the state changed";
  }
  // In the XML report (--gtest_output=xml): how many rows each method got.
  RecordProperty(absl::StrCat("rows ", method), static_cast<int>(rows.size()));
  return rows.size();
}

}  // namespace nvlsched::daemon::testing

#endif  // NVLSCHED_TESTS_DAEMON_SERVICES_BAD_INPUT_FIXTURE_H_
