// In-process gRPC test harness for nvlschedd's services: a SQLite store in a temporary
// directory, the State loaded from it, a started Engine, the services on a grpc::Server bound
// to 127.0.0.1:0, and typed stubs on a real channel. Nothing is mocked: calls go through
// HTTP/2, the engine and SQLite exactly as in the daemon.
//
//   class MyTest : public nvlsched::daemon::testing::ServiceTest {};
//   TEST_F(MyTest, X) {
//     ASSERT_TRUE(ApplySmallFleet().ok());
//     grpc::ClientContext ctx;
//     v1::ListMachinesResponse resp;
//     ASSERT_TRUE(inventory().ListMachines(&ctx, {}, &resp).ok());
//   }
//
// Extra services (e.g. one the daemon adds later) are registered by a ServiceFactory in
// HarnessOptions::extra_services, or by overriding ServiceTest::Options().
// Restart() stops everything and starts again on the same database (and loads it with
// daemon/engine/load_state.h), to check that what was acknowledged survives.
//
// Thread-safety: the harness is driven from the test's thread.
#ifndef NVLSCHED_TESTS_DAEMON_SERVICE_FIXTURE_H_
#define NVLSCHED_TESTS_DAEMON_SERVICE_FIXTURE_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "daemon/services/admin_service.h"
#include "daemon/services/read_pool.h"
#include "daemon/auth/auth.h"
#include "daemon/engine/engine.h"
#include "daemon/engine/state.h"
#include "google/rpc/error_details.pb.h"
#include "gtest/gtest.h"
#include "nvlsched/v1/admin_service.grpc.pb.h"
#include "nvlsched/v1/capacity_service.grpc.pb.h"
#include "nvlsched/v1/instance_service.grpc.pb.h"
#include "nvlsched/v1/inventory_service.grpc.pb.h"
#include "store/store.h"

namespace nvlsched::daemon::testing {

// What a service needs from the harness to be constructed.
struct ServiceDeps {
  Engine* engine = nullptr;
  store::Store* store = nullptr;
  std::string snapshot_dir;
  const AccessControl* access = nullptr;
};
using ServiceFactory = std::function<std::unique_ptr<grpc::Service>(const ServiceDeps&)>;

struct HarnessOptions {
  std::string db_path;       // required
  std::string snapshot_dir;  // AdminService's --snapshot_dir; empty: none configured
  // Also serve InstanceServiceImpl (to hold machines in inventory and capacity tests).
  bool with_instance_service = true;
  std::vector<ServiceFactory> extra_services;
  Engine::Options engine;
  // The scheduler queue (daemon --max_queue_length, --reservation_depth, --max_queue_timeout).
  allocator::GangQueue::Options queue;
  absl::Duration max_queue_timeout = absl::Hours(7 * 24);
  absl::Duration preemption_grace = absl::Seconds(30);  // --preemption_grace
  // --require_cleaning: off here (most service tests reuse machines at once), on in the tests
  // of cleaning and in the daemon's default.
  bool require_cleaning = false;
  // How calls are authenticated; null: every caller is a provider admin (--auth=none).
  std::shared_ptr<AccessControl> access;
  // Runs on the engine thread after every commit attempt (e.g. to count commits).
  std::function<void(const CommitReport&)> on_commit;
  // The store's StoreOptions::vfs: a registered SQLite VFS to open the database through, e.g.
  // the fault-injection VFS of tests/store/fault_injection_vfs.h. Empty: SQLite's default.
  std::string store_vfs;
  // kNormal by default (tests do not survive power loss anyway); kFull, the daemon's default,
  // when a test needs every commit to fsync (fault injection on syncs).
  store::SyncMode store_sync = store::SyncMode::kNormal;
};

class ServiceHarness {
 public:
  // Opens the store, loads the State from it, starts the engine, the services and the server.
  // Errors: the store's Open/Load errors; UNAVAILABLE if the server does not start.
  static absl::StatusOr<std::unique_ptr<ServiceHarness>> Start(HarnessOptions options);
  ~ServiceHarness();  // Stop()s.

  // Server, then services, then engine, then store. Idempotent.
  void Stop();

  int port() const { return port_; }
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }
  v1::InventoryService::Stub& inventory() { return *inventory_; }
  v1::CapacityService::Stub& capacity() { return *capacity_; }
  v1::AdminService::Stub& admin() { return *admin_; }
  v1::InstanceService::Stub& instances() { return *instances_; }
  Engine& engine() { return *engine_; }
  store::Store& store() { return *store_; }

  // Runs `fn` on the engine thread against the committed state and waits for it.
  void Read(std::function<void(const State&)> fn);

 private:
  ServiceHarness() = default;

  HarnessOptions options_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<State> state_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<AdminServiceImpl> admin_service_;
  std::unique_ptr<ReadPool> reads_;
  std::vector<std::unique_ptr<grpc::Service>> services_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::InventoryService::Stub> inventory_;
  std::unique_ptr<v1::CapacityService::Stub> capacity_;
  std::unique_ptr<v1::AdminService::Stub> admin_;
  std::unique_ptr<v1::InstanceService::Stub> instances_;
  bool stopped_ = false;
};

// ---- The small literal fleet: 3 domains x 4 machines x 4 GPUs, one type, one tenant. ----
namespace small_fleet {
inline constexpr char kSiteId[] = "51700000-0000-4000-8000-000000000001";
inline constexpr char kTypeId[] = "71700000-0000-4000-8000-000000000001";
inline constexpr char kTypeName[] = "gb200-tray";
inline constexpr char kGpuModel[] = "GB200";
inline constexpr double kPrice = 42.0;
inline constexpr double kSpotPrice = 14.0;
inline constexpr char kTenantId[] = "7e000000-0000-4000-8000-000000000001";
inline constexpr char kOrg[] = "acme";
inline constexpr int kDomains = 3;
inline constexpr int kMachinesPerDomain = 4;
inline constexpr int kGpusPerMachine = 4;
inline constexpr int kQuotaMachines = 12;
// REQUIRES: 0 <= domain < kDomains, 0 <= tray < kMachinesPerDomain.
std::string DomainId(int domain);
std::string MachineId(int domain, int tray);
}  // namespace small_fleet

v1::Fleet SmallFleet();

// A fresh UUID-shaped id, distinct for distinct n: "00000000-0000-4000-8000-<n as 12 digits>".
std::string TestUuid(int64_t n);

// google.rpc details of a failed call (each nullopt when absent).
struct RpcDetails {
  std::optional<google::rpc::BadRequest> bad_request;
  std::optional<google::rpc::ResourceInfo> resource_info;
  std::optional<google::rpc::ErrorInfo> error_info;
  std::optional<google::rpc::QuotaFailure> quota_failure;
  std::optional<google::rpc::PreconditionFailure> precondition_failure;
};
RpcDetails DetailsOf(const grpc::Status& status);

// The field paths of a BadRequest, in order.
std::vector<std::string> ViolationFields(const google::rpc::BadRequest& bad_request);

// Success when `status` has `code` and its message contains `substring`; otherwise a failure
// that prints both. Use as EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::NOT_FOUND, "..."));
::testing::AssertionResult IsRpcError(const grpc::Status& status, grpc::StatusCode code,
                                      const std::string& substring);

// A client context with a 10 s deadline, so a hung call fails the test instead of hanging it.
std::unique_ptr<grpc::ClientContext> Context();

// gtest fixture: a harness on <temp dir>/nvlsched.db, snapshots in <temp dir>/snapshots.
class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Override to change what the harness starts with (called by SetUp and Restart).
  virtual HarnessOptions Options();

  // Stops the harness and starts a new one on the same database.
  void Restart();

  ServiceHarness& harness() { return *harness_; }
  v1::InventoryService::Stub& inventory() { return harness_->inventory(); }
  v1::CapacityService::Stub& capacity() { return harness_->capacity(); }
  v1::AdminService::Stub& admin() { return harness_->admin(); }
  v1::InstanceService::Stub& instances() { return harness_->instances(); }

  grpc::Status ApplyFleet(const v1::Fleet& fleet, v1::ApplyFleetResponse* resp = nullptr);
  grpc::Status ApplySmallFleet() { return ApplyFleet(SmallFleet()); }
  // A whole-machine instance of the small fleet's type for its tenant; returns it.
  absl::StatusOr<v1::Instance> CreateWholeMachineInstance(const std::string& name);
  // A GPU-granular instance of `gpus` GPUs.
  absl::StatusOr<v1::Instance> CreateGpuInstance(const std::string& name, int gpus);
  absl::StatusOr<v1::Machine> GetMachine(const std::string& id);

  const std::string& temp_dir() const { return temp_dir_; }
  std::string db_path() const { return temp_dir_ + "/nvlsched.db"; }
  std::string snapshot_dir() const { return temp_dir_ + "/snapshots"; }

 private:
  std::string temp_dir_;
  std::unique_ptr<ServiceHarness> harness_;
};

}  // namespace nvlsched::daemon::testing

#endif  // NVLSCHED_TESTS_DAEMON_SERVICE_FIXTURE_H_
