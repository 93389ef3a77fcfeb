#include "tests/daemon/services/bad_input_fixture.h"

#include <grpcpp/impl/codegen/client_unary_call.h>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace nvlsched::daemon::testing {
namespace {

template <typename Message>
std::string Deterministic(const Message& message) {
  std::string out;
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  message.SerializeToCodedStream(&coded);
  coded.Trim();
  return out;
}

std::string Describe(const grpc::Status& status) {
  return absl::StrCat("code ", status.error_code(), " \"", status.error_message(), "\"");
}

}  // namespace

std::string WireTag(int field, int wire_type) {
  return WireVarint((static_cast<uint64_t>(field) << 3) | static_cast<uint64_t>(wire_type));
}

std::string WireVarint(uint64_t value) {
  std::string out;
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
  return out;
}

std::string WireLengthDelimited(int field, const std::string& payload) {
  return absl::StrCat(WireTag(field, 2), WireVarint(payload.size()), payload);
}

std::string MiB(char c) { return std::string(1 << 20, c); }

std::string WithNul(const std::string& before, const std::string& after) {
  std::string out = before;
  out.push_back('\0');
  out += after;
  return out;
}

HarnessOptions BadInputTest::Options() {
  // Before the server is built: the harness's server then serves grpc.health.v1.Health.
  grpc::EnableDefaultHealthCheckService(true);
  HarnessOptions options = InstanceServiceTest::Options();
  options.extra_services.push_back([](const ServiceDeps& deps) {
    return std::make_unique<SchedulerServiceImpl>(deps.engine, deps.access);
  });
  options.extra_services.push_back([this](const ServiceDeps& deps) {
    store::Store* store = deps.store;
    // Fresh database: no events yet (SetUp's fleet comes through on_commit).
    hub_ = std::make_unique<EventHub>(
        [store](uint64_t after, size_t limit) { return store->ReadEvents(after, limit); }, 0, 0,
        EventHubOptions{});
    hub_ptr_.store(hub_.get());
    return std::make_unique<EventServiceImpl>(hub_.get(), deps.access);
  });
  options.on_commit = [this](const CommitReport& report) {
    EventHub* hub = hub_ptr_.load();
    if (hub != nullptr && report.status.ok()) hub->Publish(report.events, report.oldest_event);
  };
  return options;
}

void BadInputTest::SetUp() {
  InstanceServiceTest::SetUp();
  if (HasFatalFailure()) return;
  keeper_ = MustCreate(Single("keeper"));
  ASSERT_FALSE(keeper_.id().empty());
}

std::string BadInputTest::StateDigest() {
  std::string digest;
  for (const v1::Instance& instance : ListAll()) absl::StrAppend(&digest, Deterministic(instance));
  {
    v1::ListMachinesRequest req;
    req.set_page_size(1000);
    v1::ListMachinesResponse resp;
    EXPECT_TRUE(inventory().ListMachines(Context().get(), req, &resp).ok());
    absl::StrAppend(&digest, "|machines:", Deterministic(resp));
  }
  {
    v1::ListDomainsResponse resp;
    EXPECT_TRUE(inventory().ListDomains(Context().get(), {}, &resp).ok());
    absl::StrAppend(&digest, "|domains:", Deterministic(resp));
  }
  {
    v1::ListInstanceTypesResponse resp;
    EXPECT_TRUE(inventory().ListInstanceTypes(Context().get(), {}, &resp).ok());
    absl::StrAppend(&digest, "|types:", Deterministic(resp));
  }
  {
    v1::ListTenantsResponse resp;
    EXPECT_TRUE(inventory().ListTenants(Context().get(), {}, &resp).ok());
    absl::StrAppend(&digest, "|tenants:", Deterministic(resp));
  }
  {
    v1::ListOffersResponse resp;
    EXPECT_TRUE(capacity().ListOffers(Context().get(), {}, &resp).ok());
    absl::StrAppend(&digest, "|offers:", Deterministic(resp));
  }
  {
    v1::ListQueueResponse resp;
    EXPECT_TRUE(v1::SchedulerService::NewStub(harness().channel())
                    ->ListQueue(Context().get(), {}, &resp)
                    .ok());
    absl::StrAppend(&digest, "|queue:", Deterministic(resp));
  }
  uint64_t newest_event = 0;
  harness().Read([&](const State& state) { newest_event = state.newest_event(); });
  absl::StrAppend(&digest, "|events:", newest_event);
  return digest;
}

void BadInputTest::ExpectAnswer(const grpc::Status& status, grpc::StatusCode code,
                                const std::vector<std::string>& fields,
                                const std::string& message) {
  EXPECT_EQ(status.error_code(), code) << Describe(status);
  const RpcDetails details = DetailsOf(status);
  const std::vector<std::string> got =
      details.bad_request.has_value() ? ViolationFields(*details.bad_request)
                                      : std::vector<std::string>{};
  EXPECT_EQ(got, fields) << Describe(status);
  EXPECT_NE(status.error_message().find(message), std::string::npos)
      << Describe(status) << "\nexpected the message to contain: " << message;
}

void BadInputTest::ExpectHealthy() {
  grpc::health::v1::HealthCheckResponse health;
  const grpc::Status checked = grpc::health::v1::Health::NewStub(harness().channel())
                                   ->Check(Context().get(), {}, &health);
  ASSERT_TRUE(checked.ok()) << Describe(checked);
  EXPECT_EQ(health.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  const v1::Instance created = MustCreate(Single("after-the-bad-input"));
  EXPECT_EQ(created.name(), "after-the-bad-input");
  EXPECT_TRUE(Invariants().ok()) << Invariants();
}

size_t BadInputTest::RunRaw(const std::vector<RawRow>& rows) {
  const std::string before = StateDigest();
  for (const RawRow& row : rows) {
    SCOPED_TRACE(absl::StrCat(row.method, " (raw bytes): ", row.description));
    grpc::Slice slice(row.bytes);
    const grpc::ByteBuffer request(&slice, 1);
    grpc::ByteBuffer response;
    std::unique_ptr<grpc::ClientContext> ctx = Context();
    grpc::Status status;
    if (absl::StrContains(row.method, "Watch")) {
      // Server streams: the stream's end status (a refused request sends no message).
      std::unique_ptr<grpc::ClientReader<grpc::ByteBuffer>> reader(
          grpc::internal::ClientReaderFactory<grpc::ByteBuffer>::Create(
              harness().channel().get(),
              grpc::internal::RpcMethod(row.method.c_str(),
                                        grpc::internal::RpcMethod::SERVER_STREAMING),
              ctx.get(), request));
      if (reader->Read(&response)) {
        ctx->TryCancel();
        reader->Finish();
        status = grpc::Status::OK;
      } else {
        status = reader->Finish();
      }
    } else {
      status = grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
          harness().channel().get(),
          grpc::internal::RpcMethod(row.method.c_str(), grpc::internal::RpcMethod::NORMAL_RPC),
          ctx.get(), request, &response);
    }
    ExpectAnswer(status, row.code, row.fields, row.message);
    EXPECT_TRUE(StateDigest() == before) << "the state changed";
  }
  absl::flat_hash_map<std::string, int> per_method;
  for (const RawRow& row : rows) ++per_method[row.method];
  for (const auto& [method, count] : per_method) {
    RecordProperty(absl::StrCat("raw rows ", method), count);
  }
  return rows.size();
}

// ---- calls ----

grpc::Status BadInputTest::CallBatchCreate(grpc::ClientContext* c,
                                           const v1::BatchCreateInstancesRequest& r,
                                           v1::BatchCreateInstancesResponse* o) {
  return instances().BatchCreateInstances(c, r, o);
}
grpc::Status BadInputTest::CallCreate(grpc::ClientContext* c, const v1::CreateInstanceRequest& r,
                                      v1::Instance* o) {
  return instances().CreateInstance(c, r, o);
}
grpc::Status BadInputTest::CallGet(grpc::ClientContext* c, const v1::GetInstanceRequest& r,
                                   v1::Instance* o) {
  return instances().GetInstance(c, r, o);
}
grpc::Status BadInputTest::CallList(grpc::ClientContext* c, const v1::ListInstancesRequest& r,
                                    v1::ListInstancesResponse* o) {
  return instances().ListInstances(c, r, o);
}
grpc::Status BadInputTest::CallUpdateStatus(grpc::ClientContext* c,
                                            const v1::UpdateInstanceStatusRequest& r,
                                            v1::Instance* o) {
  return instances().UpdateInstanceStatus(c, r, o);
}
grpc::Status BadInputTest::CallDelete(grpc::ClientContext* c, const v1::DeleteInstanceRequest& r,
                                      v1::DeleteInstanceResponse* o) {
  return instances().DeleteInstance(c, r, o);
}
grpc::Status BadInputTest::CallReplace(grpc::ClientContext* c,
                                       const v1::ReplaceInstanceRequest& r, v1::Instance* o) {
  return instances().ReplaceInstance(c, r, o);
}
grpc::Status BadInputTest::CallBatchDelete(grpc::ClientContext* c,
                                           const v1::BatchDeleteInstancesRequest& r,
                                           v1::BatchDeleteInstancesResponse* o) {
  return instances().BatchDeleteInstances(c, r, o);
}
grpc::Status BadInputTest::CallApplyFleet(grpc::ClientContext* c, const v1::ApplyFleetRequest& r,
                                          v1::ApplyFleetResponse* o) {
  return inventory().ApplyFleet(c, r, o);
}
grpc::Status BadInputTest::CallListMachines(grpc::ClientContext* c,
                                            const v1::ListMachinesRequest& r,
                                            v1::ListMachinesResponse* o) {
  return inventory().ListMachines(c, r, o);
}
grpc::Status BadInputTest::CallGetMachine(grpc::ClientContext* c, const v1::GetMachineRequest& r,
                                          v1::Machine* o) {
  return inventory().GetMachine(c, r, o);
}
grpc::Status BadInputTest::CallSetMachineState(grpc::ClientContext* c,
                                               const v1::SetMachineStateRequest& r,
                                               v1::Machine* o) {
  return inventory().SetMachineState(c, r, o);
}
grpc::Status BadInputTest::CallCompleteCleaning(grpc::ClientContext* c,
                                                const v1::CompleteCleaningRequest& r,
                                                v1::CompleteCleaningResponse* o) {
  return inventory().CompleteCleaning(c, r, o);
}
grpc::Status BadInputTest::CallRemoveMachine(grpc::ClientContext* c,
                                             const v1::RemoveMachineRequest& r,
                                             v1::RemoveMachineResponse* o) {
  return inventory().RemoveMachine(c, r, o);
}
grpc::Status BadInputTest::CallListDomains(grpc::ClientContext* c, const v1::ListDomainsRequest& r,
                                           v1::ListDomainsResponse* o) {
  return inventory().ListDomains(c, r, o);
}
grpc::Status BadInputTest::CallSetDomainState(grpc::ClientContext* c,
                                              const v1::SetDomainStateRequest& r, v1::Domain* o) {
  return inventory().SetDomainState(c, r, o);
}
grpc::Status BadInputTest::CallUpsertTenant(grpc::ClientContext* c,
                                            const v1::UpsertTenantRequest& r, v1::Tenant* o) {
  return inventory().UpsertTenant(c, r, o);
}
grpc::Status BadInputTest::CallListTenants(grpc::ClientContext* c, const v1::ListTenantsRequest& r,
                                           v1::ListTenantsResponse* o) {
  return inventory().ListTenants(c, r, o);
}
grpc::Status BadInputTest::CallListOffers(grpc::ClientContext* c, const v1::ListOffersRequest& r,
                                          v1::ListOffersResponse* o) {
  return capacity().ListOffers(c, r, o);
}
grpc::Status BadInputTest::CallListQueue(grpc::ClientContext* c, const v1::ListQueueRequest& r,
                                         v1::ListQueueResponse* o) {
  return v1::SchedulerService::NewStub(harness().channel())->ListQueue(c, r, o);
}
grpc::Status BadInputTest::CallCreateSnapshot(grpc::ClientContext* c,
                                              const v1::CreateSnapshotRequest& r,
                                              v1::CreateSnapshotResponse* o) {
  return admin().CreateSnapshot(c, r, o);
}
grpc::Status BadInputTest::CallHealthCheck(grpc::ClientContext* c,
                                           const grpc::health::v1::HealthCheckRequest& r,
                                           grpc::health::v1::HealthCheckResponse* o) {
  return grpc::health::v1::Health::NewStub(harness().channel())->Check(c, r, o);
}
grpc::Status BadInputTest::CallWatchEvents(grpc::ClientContext* c, const v1::WatchEventsRequest& r,
                                           v1::Event* o) {
  std::unique_ptr<grpc::ClientReader<v1::Event>> reader =
      v1::EventService::NewStub(harness().channel())->WatchEvents(c, r);
  if (reader->Read(o)) {
    c->TryCancel();
    reader->Finish();
    return grpc::Status::OK;
  }
  return reader->Finish();
}
grpc::Status BadInputTest::CallHealthWatch(grpc::ClientContext* c,
                                           const grpc::health::v1::HealthCheckRequest& r,
                                           grpc::health::v1::HealthCheckResponse* o) {
  std::unique_ptr<grpc::ClientReader<grpc::health::v1::HealthCheckResponse>> reader =
      grpc::health::v1::Health::NewStub(harness().channel())->Watch(c, r);
  if (reader->Read(o)) {
    c->TryCancel();
    reader->Finish();
    return grpc::Status::OK;
  }
  return reader->Finish();
}

}  // namespace nvlsched::daemon::testing
