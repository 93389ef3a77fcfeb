#include "tests/daemon/services/service_fixture.h"

#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "store/sync.h"
#include "daemon/engine/load_state.h"
#include "daemon/services/capacity_service.h"
#include "daemon/services/instance_service.h"
#include "daemon/services/inventory_service.h"
#include "daemon/api/status_mapping.h"

namespace nvlsched::daemon::testing {

absl::StatusOr<std::unique_ptr<ServiceHarness>> ServiceHarness::Start(HarnessOptions options) {
  std::unique_ptr<ServiceHarness> h(new ServiceHarness());
  h->options_ = std::move(options);

  store::StoreOptions store_options;
  store_options.path = h->options_.db_path;
  store_options.sync = h->options_.store_sync;
  store_options.vfs = h->options_.store_vfs;
  absl::StatusOr<std::unique_ptr<store::Store>> store = store::Store::Open(store_options);
  if (!store.ok()) return store.status();
  h->store_ = *std::move(store);
  absl::StatusOr<std::unique_ptr<State>> state =
      LoadState(*h->store_, nullptr, h->options_.queue, h->options_.max_queue_timeout);
  if (!state.ok()) return state.status();
  h->state_ = *std::move(state);
  h->state_->ConfigurePreemption(h->options_.preemption_grace);
  h->state_->ConfigureCleaning(h->options_.require_cleaning);
  h->engine_ = std::make_unique<Engine>(h->state_.get(), h->store_.get(), h->options_.engine,
                                       h->options_.on_commit);
  h->engine_->Start();

  if (h->options_.access == nullptr) h->options_.access = AccessControl::AllowAll();
  const AccessControl* access = h->options_.access.get();
  const ServiceDeps deps{h->engine_.get(), h->store_.get(), h->options_.snapshot_dir, access};
  h->services_.push_back(std::make_unique<InventoryServiceImpl>(h->engine_.get(), access));
  h->services_.push_back(std::make_unique<CapacityServiceImpl>(h->engine_.get(), access));
  if (h->options_.with_instance_service) {
    // ListInstances through a read pool, as in the daemon; at the tests' own priority (nice
    // 0), so that a loaded test machine does not starve it.
    h->reads_ = std::make_unique<ReadPool>(2, 0, 64);
    h->services_.push_back(std::make_unique<InstanceServiceImpl>(
        h->engine_.get(), access, InstanceServiceImpl::Options{}, nullptr, h->reads_.get()));
  }
  for (const ServiceFactory& factory : h->options_.extra_services) {
    h->services_.push_back(factory(deps));
  }
  h->admin_service_ = std::make_unique<AdminServiceImpl>(
      h->store_.get(), access, AdminServiceOptions{h->options_.snapshot_dir});

  grpc::ServerBuilder builder;
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &h->port_);
  for (const auto& service : h->services_) builder.RegisterService(service.get());
  builder.RegisterService(h->admin_service_.get());
  h->server_ = builder.BuildAndStart();
  if (h->server_ == nullptr || h->port_ == 0) {
    return absl::UnavailableError("the test gRPC server did not start on 127.0.0.1:0");
  }
  h->channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", h->port_),
                                    grpc::InsecureChannelCredentials());
  h->inventory_ = v1::InventoryService::NewStub(h->channel_);
  h->capacity_ = v1::CapacityService::NewStub(h->channel_);
  h->admin_ = v1::AdminService::NewStub(h->channel_);
  h->instances_ = v1::InstanceService::NewStub(h->channel_);
  return h;
}

ServiceHarness::~ServiceHarness() { Stop(); }

void ServiceHarness::Stop() {
  if (stopped_) return;
  stopped_ = true;
  if (server_ != nullptr) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    server_->Wait();
  }
  if (admin_service_ != nullptr) admin_service_->Stop();
  if (engine_ != nullptr) engine_->Stop();
  server_.reset();
  services_.clear();
  reads_.reset();  // after the server: its Shutdown waited for the reads it had scheduled
  admin_service_.reset();
  engine_.reset();
  state_.reset();
  store_.reset();
}

void ServiceHarness::Read(std::function<void(const State&)> fn) {
  Notification done;
  absl::Status queued = engine_->SubmitRead([&](const State& state) {
    fn(state);
    done.Notify();
  });
  ASSERT_TRUE(queued.ok()) << queued;
  done.WaitForNotification();
}

namespace small_fleet {
std::string DomainId(int domain) {
  return absl::StrFormat("d0000000-0000-4000-8000-%012d", domain);
}
std::string MachineId(int domain, int tray) {
  return absl::StrFormat("a0000000-0000-4000-8000-%06d%06d", domain, tray);
}
}  // namespace small_fleet

v1::Fleet SmallFleet() {
  namespace f = small_fleet;
  v1::Fleet fleet;
  v1::InstanceType* type = fleet.add_instance_types();
  type->set_id(f::kTypeId);
  type->set_name(f::kTypeName);
  type->set_gpu_model(f::kGpuModel);
  type->set_gpus_per_machine(f::kGpusPerMachine);
  type->set_gpu_memory_mib(177383);
  type->set_price_per_hour(f::kPrice);
  type->set_spot_hourly_price(f::kSpotPrice);
  type->set_interconnect("NVLink 5 (NVL72)");
  for (int d = 0; d < f::kDomains; ++d) {
    v1::Domain* domain = fleet.add_domains();
    domain->set_id(f::DomainId(d));
    domain->set_name(absl::StrCat("nvl72-rack-", d));
    domain->set_site_id(f::kSiteId);
    for (int t = 0; t < f::kMachinesPerDomain; ++t) {
      v1::Machine* machine = fleet.add_machines();
      machine->set_id(f::MachineId(d, t));
      machine->set_domain_id(f::DomainId(d));
      machine->set_tray_index(t);
      machine->set_instance_type_id(f::kTypeId);
      machine->set_gpu_count(f::kGpusPerMachine);
      (*machine->mutable_labels())["rack"] = absl::StrCat(d);
    }
  }
  v1::Tenant* tenant = fleet.add_tenants();
  tenant->set_id(f::kTenantId);
  tenant->set_org(f::kOrg);
  tenant->set_name("Acme research");
  v1::Quota* quota = tenant->add_quotas();
  quota->set_instance_type_id(f::kTypeId);
  quota->set_max_machines(f::kQuotaMachines);
  return fleet;
}

std::string TestUuid(int64_t n) { return absl::StrFormat("00000000-0000-4000-8000-%012d", n); }

RpcDetails DetailsOf(const grpc::Status& status) {
  RpcDetails details;
  details.bad_request = GetErrorDetail<google::rpc::BadRequest>(status);
  details.resource_info = GetErrorDetail<google::rpc::ResourceInfo>(status);
  details.error_info = GetErrorDetail<google::rpc::ErrorInfo>(status);
  details.quota_failure = GetErrorDetail<google::rpc::QuotaFailure>(status);
  details.precondition_failure = GetErrorDetail<google::rpc::PreconditionFailure>(status);
  return details;
}

std::vector<std::string> ViolationFields(const google::rpc::BadRequest& bad_request) {
  std::vector<std::string> fields;
  for (const auto& v : bad_request.field_violations()) fields.push_back(v.field());
  return fields;
}

::testing::AssertionResult IsRpcError(const grpc::Status& status, grpc::StatusCode code,
                                      const std::string& substring) {
  if (status.error_code() == code &&
      status.error_message().find(substring) != std::string::npos) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << "got code " << status.error_code() << " \"" << status.error_message()
         << "\"; want code " << code << " with a message containing \"" << substring << "\"";
}

std::unique_ptr<grpc::ClientContext> Context() {
  auto ctx = std::make_unique<grpc::ClientContext>();
  // A hang detector, not a time bound. Under TSan on 2 vCPUs the in-process server's callbacks
  // sometimes all wait several seconds at once: BadInputTest.ApplyFleet logged calls finishing
  // together after 5.4 s, 9.2 s (local runs) and 11 s (a CI run, where a 10 s deadline failed a
  // ListInstances while nothing was wrong).
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  return ctx;
}

void ServiceTest::SetUp() {
  const char* base = ::getenv("TMPDIR");
  std::string pattern = absl::StrCat(base != nullptr ? base : "/tmp", "/nvlsched_svc_XXXXXX");
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr) << "mkdtemp " << pattern;
  temp_dir_ = pattern;
  absl::StatusOr<std::unique_ptr<ServiceHarness>> harness = ServiceHarness::Start(Options());
  ASSERT_TRUE(harness.ok()) << harness.status();
  harness_ = *std::move(harness);
}

void ServiceTest::TearDown() {
  harness_.reset();
  if (!temp_dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(temp_dir_, ignored);
  }
}

HarnessOptions ServiceTest::Options() {
  HarnessOptions options;
  options.db_path = db_path();
  options.snapshot_dir = snapshot_dir();
  return options;
}

void ServiceTest::Restart() {
  harness_.reset();
  absl::StatusOr<std::unique_ptr<ServiceHarness>> harness = ServiceHarness::Start(Options());
  ASSERT_TRUE(harness.ok()) << harness.status();
  harness_ = *std::move(harness);
}

grpc::Status ServiceTest::ApplyFleet(const v1::Fleet& fleet, v1::ApplyFleetResponse* resp) {
  v1::ApplyFleetRequest req;
  *req.mutable_fleet() = fleet;
  v1::ApplyFleetResponse ignored;
  return inventory().ApplyFleet(Context().get(), req, resp != nullptr ? resp : &ignored);
}

namespace {

absl::StatusOr<v1::Instance> Create(v1::InstanceService::Stub& stub, const std::string& name,
                                    int gpus) {
  v1::CreateInstanceRequest req;
  req.set_org(small_fleet::kOrg);
  req.set_tenant_id(small_fleet::kTenantId);
  req.set_instance_type_id(small_fleet::kTypeId);
  req.set_name(name);
  if (gpus > 0) req.set_gpu_count(gpus);
  v1::Instance instance;
  grpc::Status status = stub.CreateInstance(Context().get(), req, &instance);
  if (!status.ok()) return FromGrpcStatus(status);
  return instance;
}

}  // namespace

absl::StatusOr<v1::Instance> ServiceTest::CreateWholeMachineInstance(const std::string& name) {
  return Create(instances(), name, 0);
}

absl::StatusOr<v1::Instance> ServiceTest::CreateGpuInstance(const std::string& name, int gpus) {
  return Create(instances(), name, gpus);
}

absl::StatusOr<v1::Machine> ServiceTest::GetMachine(const std::string& id) {
  v1::GetMachineRequest req;
  req.set_id(id);
  v1::Machine machine;
  grpc::Status status = inventory().GetMachine(Context().get(), req, &machine);
  if (!status.ok()) return FromGrpcStatus(status);
  return machine;
}

}  // namespace nvlsched::daemon::testing
