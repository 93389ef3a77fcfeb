// Authorization over real gRPC: every method of every nvlsched service, called by every kind
// of caller, against the tokens-file authenticator (daemon/auth.h). The table below is the
// access policy as a user sees it; a method missing from it fails the coverage test.
//
// Callers: no token, an unknown token, a token with no known role, a tenant admin of the
// small fleet's org (acme) naming its own org, the same org's admin naming another org,
// a tenant admin of another org (globex) naming its own org but touching acme's objects,
// a provider viewer, a provider admin.
#include <functional>
#include <map>
#include <set>
#include <string>

#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "daemon/auth/auth.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "tests/daemon/services/instance_test_fixture.h"

namespace nvlsched::daemon::testing {
namespace {

enum class Caller {
  kNoToken,
  kUnknownToken,
  kNoRole,
  kTenantOwnOrg,      // acme admin, request names acme
  kTenantNamesOther,  // acme admin, request names globex
  kOtherTenant,       // globex admin, request names globex, targets acme's objects
  kViewer,
  kProviderAdmin,
};
constexpr Caller kCallers[] = {Caller::kNoToken,        Caller::kUnknownToken,
                               Caller::kNoRole,         Caller::kTenantOwnOrg,
                               Caller::kTenantNamesOther, Caller::kOtherTenant,
                               Caller::kViewer,         Caller::kProviderAdmin};

const char* CallerName(Caller c) {
  switch (c) {
    case Caller::kNoToken: return "no token";
    case Caller::kUnknownToken: return "unknown token";
    case Caller::kNoRole: return "no role";
    case Caller::kTenantOwnOrg: return "tenant admin, own org";
    case Caller::kTenantNamesOther: return "tenant admin naming another org";
    case Caller::kOtherTenant: return "other org's tenant admin";
    case Caller::kViewer: return "provider viewer";
    case Caller::kProviderAdmin: return "provider admin";
  }
  return "?";
}

std::string TokenOf(Caller c) {
  switch (c) {
    case Caller::kNoToken: return "";
    case Caller::kUnknownToken: return "not-a-known-token";
    case Caller::kNoRole: return "token-no-role";
    case Caller::kTenantOwnOrg:
    case Caller::kTenantNamesOther: return "token-acme-admin";
    case Caller::kOtherTenant: return "token-globex-admin";
    case Caller::kViewer: return "token-viewer";
    case Caller::kProviderAdmin: return "token-provider-admin";
  }
  return "";
}

// The org a request names for this caller.
std::string OrgFor(Caller c) {
  return c == Caller::kTenantNamesOther || c == Caller::kOtherTenant ? kOtherOrg : f::kOrg;
}

// The tokens file, plus one token that authenticates but carries no role of ours (as a JWT
// minted for another service would; the tokens file itself refuses roleless lines).
class TestAuthenticator final : public Authenticator {
 public:
  TestAuthenticator() {
    const std::string text = absl::StrCat(
        Sha256Hex("token-acme-admin"), " alice acme FORGE_TENANT_ADMIN\n",
        Sha256Hex("token-globex-admin"), " gary globex FORGE_TENANT_ADMIN\n",
        Sha256Hex("token-viewer"), " vera - FORGE_PROVIDER_VIEWER\n",
        Sha256Hex("token-provider-admin"), " ops - FORGE_PROVIDER_ADMIN\n");
    auto tokens = TokensFileAuthenticator::Parse(text, "test tokens");
    EXPECT_TRUE(tokens.ok()) << tokens.status();
    tokens_ = *std::move(tokens);
  }
  absl::StatusOr<Principal> Authenticate(absl::string_view token, absl::Time now) const override {
    if (token == "token-no-role") {
      Principal nobody;
      nobody.subject = "nobody";
      nobody.org = f::kOrg;
      return nobody;
    }
    return tokens_->Authenticate(token, now);
  }

 private:
  std::unique_ptr<TokensFileAuthenticator> tokens_;
};

using grpc::StatusCode;
constexpr StatusCode OK = StatusCode::OK;
constexpr StatusCode DENIED = StatusCode::PERMISSION_DENIED;
constexpr StatusCode UNAUTH = StatusCode::UNAUTHENTICATED;
constexpr StatusCode NOT_FOUND = StatusCode::NOT_FOUND;

// Expected code per caller, in kCallers order after the three that never get through
// (no token, unknown token -> UNAUTHENTICATED; no role -> PERMISSION_DENIED):
//   tenant own org, tenant naming another org, other org's tenant, viewer, provider admin.
struct Expect {
  StatusCode tenant_own, tenant_names_other, other_tenant, viewer, admin;
};

class AuthorizationTest : public InstanceServiceTest {
 protected:
  HarnessOptions Options() override {
    HarnessOptions options = InstanceServiceTest::Options();
    options.access = std::make_shared<AccessControl>(std::make_unique<TestAuthenticator>());
    return options;
  }
  void SetUp() override {
    ServiceTest::SetUp();  // not InstanceServiceTest's: its calls carry no token
    v1::ApplyFleetRequest fleet;
    *fleet.mutable_fleet() = SmallFleet();
    v1::Tenant* globex = fleet.mutable_fleet()->add_tenants();
    globex->set_id(kOtherOrgTenantId);
    globex->set_org(kOtherOrg);
    globex->set_name("globex");
    v1::Quota* quota = globex->add_quotas();
    quota->set_instance_type_id(f::kTypeId);
    quota->set_max_machines(4);
    v1::ApplyFleetResponse applied;
    grpc::Status status =
        inventory().ApplyFleet(As(Caller::kProviderAdmin).get(), fleet, &applied);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }

  static std::unique_ptr<grpc::ClientContext> As(Caller c) {
    std::unique_ptr<grpc::ClientContext> ctx = Context();
    if (c == Caller::kNoToken) return ctx;
    ctx->AddMetadata("authorization", absl::StrCat("Bearer ", TokenOf(c)));
    return ctx;
  }

  // A whole-machine instance of acme, made by the provider admin; returns its id.
  std::string AcmeInstance() {
    static int n = 0;
    v1::CreateInstanceRequest req = Single(absl::StrCat("target-", ++n));
    v1::Instance instance;
    grpc::Status status = instances().CreateInstance(As(Caller::kProviderAdmin).get(), req, &instance);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return instance.id();
  }

  // Deletes every instance (the small fleet has 12 machines; the table makes many more calls).
  void DeleteAllInstances() {
    for (const char* org : {f::kOrg, kOtherOrg}) {
      v1::ListInstancesRequest list;
      list.set_org(org);
      list.set_page_size(1000);
      v1::ListInstancesResponse found;
      ASSERT_TRUE(instances().ListInstances(As(Caller::kProviderAdmin).get(), list, &found).ok());
      if (found.instances_size() == 0) continue;
      v1::BatchDeleteInstancesRequest del;
      del.set_org(org);
      for (const v1::Instance& i : found.instances()) del.add_ids(i.id());
      v1::BatchDeleteInstancesResponse deleted;
      ASSERT_TRUE(
          instances().BatchDeleteInstances(As(Caller::kProviderAdmin).get(), del, &deleted).ok());
    }
  }

  // One call of `method` as `caller`; returns its status.
  grpc::Status Call(const std::string& method, Caller caller) {
    const std::string org = OrgFor(caller);
    auto ctx = As(caller);
    static int serial = 0;
    ++serial;
    if (method == "BatchCreateInstances") {
      v1::BatchCreateInstancesRequest req = Batch(2);
      req.set_org(org);
      req.set_name_prefix(absl::StrCat("b", serial));
      v1::BatchCreateInstancesResponse resp;
      return instances().BatchCreateInstances(ctx.get(), req, &resp);
    }
    if (method == "CreateInstance") {
      v1::CreateInstanceRequest req = Single(absl::StrCat("s", serial), 1);
      req.set_org(org);
      v1::Instance resp;
      return instances().CreateInstance(ctx.get(), req, &resp);
    }
    if (method == "GetInstance") {
      v1::GetInstanceRequest req;
      req.set_org(org);
      req.set_id(AcmeInstance());
      v1::Instance resp;
      return instances().GetInstance(ctx.get(), req, &resp);
    }
    if (method == "ListInstances") {
      const std::string target = AcmeInstance();
      v1::ListInstancesRequest req;
      req.set_org(org);
      v1::ListInstancesResponse resp;
      grpc::Status status = instances().ListInstances(ctx.get(), req, &resp);
      // Whoever may list sees acme's instance only when listing acme.
      bool seen = false;
      for (const v1::Instance& i : resp.instances()) seen |= i.id() == target;
      EXPECT_EQ(seen, status.ok() && org == f::kOrg) << CallerName(caller);
      return status;
    }
    if (method == "UpdateInstanceStatus") {
      v1::UpdateInstanceStatusRequest req;
      req.set_org(org);
      req.set_id(AcmeInstance());
      req.set_status(v1::INSTANCE_STATUS_PROVISIONING);
      v1::Instance resp;
      return instances().UpdateInstanceStatus(ctx.get(), req, &resp);
    }
    if (method == "DeleteInstance") {
      v1::DeleteInstanceRequest req;
      req.set_org(org);
      req.set_id(AcmeInstance());
      v1::DeleteInstanceResponse resp;
      return instances().DeleteInstance(ctx.get(), req, &resp);
    }
    if (method == "ReplaceInstance") {
      v1::ReplaceInstanceRequest req;
      req.set_org(org);
      req.set_id(AcmeInstance());
      v1::Instance resp;
      return instances().ReplaceInstance(ctx.get(), req, &resp);
    }
    if (method == "BatchDeleteInstances") {
      v1::BatchDeleteInstancesRequest req;
      req.set_org(org);
      req.add_ids(AcmeInstance());
      v1::BatchDeleteInstancesResponse resp;
      return instances().BatchDeleteInstances(ctx.get(), req, &resp);
    }
    if (method == "ApplyFleet") {
      v1::ApplyFleetRequest req;
      *req.mutable_fleet() = SmallFleet();
      v1::ApplyFleetResponse resp;
      return inventory().ApplyFleet(ctx.get(), req, &resp);
    }
    if (method == "ListMachines") {
      v1::ListMachinesResponse resp;
      return inventory().ListMachines(ctx.get(), {}, &resp);
    }
    if (method == "GetMachine") {
      v1::GetMachineRequest req;
      req.set_id(f::MachineId(0, 0));
      v1::Machine resp;
      return inventory().GetMachine(ctx.get(), req, &resp);
    }
    if (method == "SetDomainState") {
      v1::SetDomainStateRequest req;
      req.set_domain_id(f::DomainId(2));
      req.set_state(v1::DOMAIN_STATE_READY);
      v1::Domain resp;
      return inventory().SetDomainState(ctx.get(), req, &resp);
    }
    if (method == "CompleteCleaning") {
      // A machine that does not exist: the provider gets as far as NOT_FOUND.
      v1::CompleteCleaningRequest req;
      req.add_machine_ids(TestUuid(4242));
      v1::CompleteCleaningResponse resp;
      return inventory().CompleteCleaning(ctx.get(), req, &resp);
    }
    if (method == "SetMachineState") {
      v1::SetMachineStateRequest req;
      req.set_id(f::MachineId(2, 3));
      req.set_state(v1::MACHINE_STATE_READY);
      v1::Machine resp;
      return inventory().SetMachineState(ctx.get(), req, &resp);
    }
    if (method == "RemoveMachine") {
      // Remove, then put the machine back so the next caller finds it again.
      v1::RemoveMachineRequest req;
      req.set_id(f::MachineId(2, 3));
      v1::RemoveMachineResponse resp;
      grpc::Status status = inventory().RemoveMachine(ctx.get(), req, &resp);
      if (status.ok()) {
        v1::ApplyFleetRequest again;
        *again.mutable_fleet() = SmallFleet();
        v1::ApplyFleetResponse applied;
        EXPECT_TRUE(inventory().ApplyFleet(As(Caller::kProviderAdmin).get(), again, &applied).ok());
      }
      return status;
    }
    if (method == "ListDomains") {
      v1::ListDomainsResponse resp;
      return inventory().ListDomains(ctx.get(), {}, &resp);
    }
    if (method == "ListInstanceTypes") {
      v1::ListInstanceTypesResponse resp;
      return inventory().ListInstanceTypes(ctx.get(), {}, &resp);
    }
    if (method == "UpsertTenant") {
      v1::UpsertTenantRequest req;
      *req.mutable_tenant() = SmallFleet().tenants(0);
      v1::Tenant resp;
      return inventory().UpsertTenant(ctx.get(), req, &resp);
    }
    if (method == "ListTenants") {
      v1::ListTenantsRequest req;
      req.set_org(org);
      v1::ListTenantsResponse resp;
      return inventory().ListTenants(ctx.get(), req, &resp);
    }
    if (method == "ListOffers") {
      v1::ListOffersResponse resp;
      return capacity().ListOffers(ctx.get(), {}, &resp);
    }
    if (method == "CreateSnapshot") {
      v1::CreateSnapshotResponse resp;
      return admin().CreateSnapshot(ctx.get(), {}, &resp);
    }
    ADD_FAILURE() << "no call for " << method;
    return grpc::Status(StatusCode::INTERNAL, "no call");
  }

  // The access policy, method by method.
  static const std::map<std::string, Expect>& Table() {
    static const auto* table = new std::map<std::string, Expect>{
        //                        own   names-other other-tenant viewer admin
        {"BatchCreateInstances", {OK, DENIED, DENIED, DENIED, OK}},
        {"CreateInstance", {OK, DENIED, DENIED, DENIED, OK}},
        {"GetInstance", {OK, DENIED, NOT_FOUND, OK, OK}},
        {"ListInstances", {OK, DENIED, OK, OK, OK}},
        {"UpdateInstanceStatus", {DENIED, DENIED, DENIED, DENIED, OK}},
        {"DeleteInstance", {OK, DENIED, NOT_FOUND, DENIED, OK}},
        {"ReplaceInstance", {OK, DENIED, NOT_FOUND, DENIED, OK}},
        {"BatchDeleteInstances", {OK, DENIED, NOT_FOUND, DENIED, OK}},
        {"ApplyFleet", {DENIED, DENIED, DENIED, DENIED, OK}},
        {"ListMachines", {DENIED, DENIED, DENIED, OK, OK}},
        {"GetMachine", {DENIED, DENIED, DENIED, OK, OK}},
        {"SetMachineState", {DENIED, DENIED, DENIED, DENIED, OK}},
        {"CompleteCleaning", {DENIED, DENIED, DENIED, DENIED, NOT_FOUND}},
        {"SetDomainState", {DENIED, DENIED, DENIED, DENIED, OK}},
        {"RemoveMachine", {DENIED, DENIED, DENIED, DENIED, OK}},
        {"ListDomains", {DENIED, DENIED, DENIED, OK, OK}},
        {"ListInstanceTypes", {OK, OK, OK, OK, OK}},
        {"UpsertTenant", {DENIED, DENIED, DENIED, DENIED, OK}},
        {"ListTenants", {OK, DENIED, OK, OK, OK}},
        {"ListOffers", {OK, OK, OK, OK, OK}},
        {"CreateSnapshot", {DENIED, DENIED, DENIED, DENIED, OK}},
    };
    return *table;
  }
};

StatusCode Expected(const Expect& e, Caller c) {
  switch (c) {
    case Caller::kNoToken:
    case Caller::kUnknownToken: return UNAUTH;
    case Caller::kNoRole: return DENIED;
    case Caller::kTenantOwnOrg: return e.tenant_own;
    case Caller::kTenantNamesOther: return e.tenant_names_other;
    case Caller::kOtherTenant: return e.other_tenant;
    case Caller::kViewer: return e.viewer;
    case Caller::kProviderAdmin: return e.admin;
  }
  return StatusCode::UNKNOWN;
}

TEST_F(AuthorizationTest, EveryMethodByEveryCaller) {
  for (const auto& [method, expect] : Table()) {
    for (Caller caller : kCallers) {
      grpc::Status status = Call(method, caller);
      EXPECT_EQ(status.error_code(), Expected(expect, caller))
          << method << " as " << CallerName(caller) << ": " << status.error_message();
      DeleteAllInstances();
    }
  }
}

TEST_F(AuthorizationTest, TableCoversEveryMethodOfEveryService) {
  std::set<std::string> served;
  for (const char* service : {"nvlsched.v1.InstanceService", "nvlsched.v1.InventoryService",
                              "nvlsched.v1.CapacityService", "nvlsched.v1.AdminService"}) {
    const google::protobuf::ServiceDescriptor* d =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(service);
    ASSERT_NE(d, nullptr) << service;
    for (int i = 0; i < d->method_count(); ++i) served.insert(d->method(i)->name());
  }
  std::set<std::string> tabled;
  for (const auto& [method, expect] : Table()) tabled.insert(method);
  EXPECT_EQ(served, tabled);
}

TEST_F(AuthorizationTest, RefusalsSayWhatWasWrong) {
  grpc::Status none = Call("ListOffers", Caller::kNoToken);
  EXPECT_TRUE(IsRpcError(none, UNAUTH, "send the metadata 'authorization: Bearer <token>'"));
  grpc::Status unknown = Call("ListOffers", Caller::kUnknownToken);
  EXPECT_TRUE(IsRpcError(unknown, UNAUTH, "not in the tokens file"));
  grpc::Status other = Call("CreateInstance", Caller::kTenantNamesOther);
  EXPECT_TRUE(IsRpcError(other, DENIED, "this token is for org 'acme'"));
  grpc::Status viewer = Call("ApplyFleet", Caller::kViewer);
  EXPECT_TRUE(IsRpcError(viewer, DENIED, "needs FORGE_PROVIDER_ADMIN"));
  // Another org's instance reads exactly like a missing one: no hint that it exists.
  grpc::Status hidden = Call("GetInstance", Caller::kOtherTenant);
  EXPECT_TRUE(IsRpcError(hidden, NOT_FOUND, "does not exist"));
}

// A tenant's scheduling priority is the provider's to set: the tenant admin cannot raise its
// own (UpsertTenant needs FORGE_PROVIDER_ADMIN) but reads what the provider set.
TEST_F(AuthorizationTest, OnlyTheProviderSetsATenantsPriority) {
  auto acme_priority = [this](Caller caller) {
    v1::ListTenantsRequest list;
    list.set_org(f::kOrg);
    v1::ListTenantsResponse found;
    grpc::Status status = inventory().ListTenants(As(caller).get(), list, &found);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return found.tenants_size() == 1 ? found.tenants(0).priority() : -1;
  };
  v1::UpsertTenantRequest raise;
  *raise.mutable_tenant() = SmallFleet().tenants(0);
  raise.mutable_tenant()->set_priority(1000);
  v1::Tenant resp;
  grpc::Status status = inventory().UpsertTenant(As(Caller::kTenantOwnOrg).get(), raise, &resp);
  EXPECT_TRUE(IsRpcError(status, DENIED, "needs FORGE_PROVIDER_ADMIN"));
  EXPECT_EQ(acme_priority(Caller::kProviderAdmin), 0);

  raise.mutable_tenant()->set_priority(5);
  status = inventory().UpsertTenant(As(Caller::kProviderAdmin).get(), raise, &resp);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(acme_priority(Caller::kTenantOwnOrg), 5);
}

TEST_F(AuthorizationTest, EchoesTheRequestIdOrMakesOne) {
  auto ctx = As(Caller::kViewer);
  ctx->AddMetadata("x-request-id", "trace-123.a");
  v1::ListDomainsResponse resp;
  ASSERT_TRUE(inventory().ListDomains(ctx.get(), {}, &resp).ok());
  auto echoed = ctx->GetServerInitialMetadata().find("x-request-id");
  ASSERT_NE(echoed, ctx->GetServerInitialMetadata().end());
  EXPECT_EQ(std::string(echoed->second.data(), echoed->second.size()), "trace-123.a");

  auto made = As(Caller::kViewer);
  made->AddMetadata("x-request-id", "bad id with spaces");  // not usable in a log line
  ASSERT_TRUE(inventory().ListDomains(made.get(), {}, &resp).ok());
  auto generated = made->GetServerInitialMetadata().find("x-request-id");
  ASSERT_NE(generated, made->GetServerInitialMetadata().end());
  EXPECT_EQ(generated->second.size(), 32u);
}

// Captures the log from before the harness starts until after it stops: swapping spdlog's
// default logger while gRPC threads may log is not thread-safe.
class AuthorizationLogTest : public AuthorizationTest {
 protected:
  void SetUp() override {
    previous_ = spdlog::default_logger();
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink_));
    AuthorizationTest::SetUp();
  }
  void TearDown() override {
    AuthorizationTest::TearDown();
    spdlog::set_default_logger(previous_);
  }
  // Write lines are logged when the call is done, which may be just after the client has its
  // answer: waits (bounded) until the log holds every needle.
  std::string LogContaining(const std::vector<std::string>& needles) {
    std::string log;
    for (int attempt = 0; attempt < 500; ++attempt) {
      log = absl::StrJoin(sink_->last_formatted(), "");
      bool all = true;
      for (const std::string& needle : needles) all &= log.find(needle) != std::string::npos;
      if (all) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return log;
  }

  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_ =
      std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(256);
  std::shared_ptr<spdlog::logger> previous_;
};

TEST_F(AuthorizationLogTest, LogsEachWriteWithRequestIdCallerTenantAndOutcome) {
  auto ctx = As(Caller::kTenantOwnOrg);
  ctx->AddMetadata("x-request-id", "create-1");
  v1::Instance created;
  grpc::Status status = instances().CreateInstance(ctx.get(), Single("logged", 1), &created);
  auto refused = As(Caller::kTenantNamesOther);
  refused->AddMetadata("x-request-id", "create-2");
  v1::CreateInstanceRequest other = Single("refused", 1);
  other.set_org(kOtherOrg);
  grpc::Status denied = instances().CreateInstance(refused.get(), other, &created);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(denied.error_code(), DENIED);
  const std::string ok_line = absl::StrCat(
      "CreateInstance request_id=create-1 caller=alice@acme org=acme tenant=", f::kTenantId,
      " OK in ");
  const std::string log = LogContaining({ok_line, "CreateInstance request_id=create-2 peer="});
  EXPECT_THAT(log, ::testing::HasSubstr(ok_line));
  EXPECT_THAT(log, ::testing::HasSubstr("CreateInstance request_id=create-2 peer="));
  EXPECT_THAT(log, ::testing::HasSubstr("refused: PERMISSION_DENIED this token is for org 'acme'"));
  EXPECT_THAT(log, ::testing::Not(::testing::HasSubstr("token-acme-admin")));  // never the token
}

// Every refusal is a warning (README, "Authentication, roles and TLS"): a write refused by
// validation, and a read refused by the engine, not only authentication refusals.
TEST_F(AuthorizationLogTest, LogsEveryRefusalAsAWarning) {
  auto ctx = As(Caller::kTenantOwnOrg);
  ctx->AddMetadata("x-request-id", "bad-write");
  v1::CreateInstanceRequest bad = Single("x", 1);  // a name of 1 character
  v1::Instance created;
  EXPECT_EQ(instances().CreateInstance(ctx.get(), bad, &created).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  auto read_ctx = As(Caller::kTenantOwnOrg);
  read_ctx->AddMetadata("x-request-id", "missing-read");
  v1::GetInstanceRequest get;
  get.set_org(f::kOrg);
  get.set_id("0badbad0-0000-4000-8000-000000000000");
  v1::Instance found;
  EXPECT_EQ(instances().GetInstance(read_ctx.get(), get, &found).error_code(),
            grpc::StatusCode::NOT_FOUND);
  const std::string write_line = "CreateInstance request_id=bad-write caller=alice@acme";
  const std::string read_line = "GetInstance request_id=missing-read caller=alice@acme";
  const std::string log = LogContaining({write_line, read_line});
  EXPECT_THAT(log, ::testing::HasSubstr(absl::StrCat("[warning] ", write_line)));
  EXPECT_THAT(log, ::testing::HasSubstr("INVALID_ARGUMENT in"));
  EXPECT_THAT(log, ::testing::HasSubstr(absl::StrCat("[warning] ", read_line)));
  EXPECT_THAT(log, ::testing::HasSubstr("NOT_FOUND in"));
}

}  // namespace
}  // namespace nvlsched::daemon::testing
