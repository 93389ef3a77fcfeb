// The scripted gRPC workload of service_fault_test.cc and the model it is checked against: a
// list of calls (ApplyFleet, BatchCreateInstances, UpdateInstanceStatus, CreateInstance of a GPU
// slice, AdminService/CreateSnapshot, BatchDeleteInstances, SetMachineState(MAINTENANCE),
// UpsertTenant) on the small fleet, each building its request from the answers before it and
// recording what an OK answer acknowledged into a DaemonModel; and the reads that compare a
// daemon's listings with that model.
//
// Thread-safety: driven from the test's thread.
#ifndef NVLSCHED_TESTS_DAEMON_SERVICE_FAULT_WORKLOAD_H_
#define NVLSCHED_TESTS_DAEMON_SERVICE_FAULT_WORKLOAD_H_

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/message_differencer.h"
#include "tests/daemon/services/service_fixture.h"

namespace nvlsched::daemon::testing::service_fault {

namespace f = small_fleet;

inline constexpr char kSecondTenantId[] = "7e000000-0000-4000-8000-000000000002";
// CreateSnapshot's file, in the harness's snapshot directory.
inline constexpr char kSnapshotFile[] = "snap.db";

// ---- The model: what the acknowledged answers say the daemon holds. ----

struct InstanceFacts {
  v1::InstanceStatus status = v1::INSTANCE_STATUS_UNSPECIFIED;
  std::string machine_id;
  int gpu_count = 0;
  bool operator==(const InstanceFacts& o) const {
    return status == o.status && machine_id == o.machine_id && gpu_count == o.gpu_count;
  }
};

struct MachineFacts {
  v1::MachineState state = v1::MACHINE_STATE_UNSPECIFIED;
  std::set<std::string> instance_ids;
  bool operator==(const MachineFacts& o) const {
    return state == o.state && instance_ids == o.instance_ids;
  }
};

struct DaemonModel {
  std::map<std::string, InstanceFacts> instances;
  std::map<std::string, v1::MachineState> machine_states;
  std::set<std::string> tenants;

  void Put(const v1::Instance& i) { instances[i.id()] = {i.status(), i.machine_id(), i.gpu_count()}; }
  std::map<std::string, MachineFacts> Machines() const {
    std::map<std::string, MachineFacts> machines;
    for (const auto& [id, state] : machine_states) machines[id].state = state;
    for (const auto& [id, facts] : instances) machines[facts.machine_id].instance_ids.insert(id);
    return machines;
  }
};

// What a daemon lists, each kind sorted by id.
struct Observed {
  grpc::Status status;  // the first read that failed, else OK
  std::vector<v1::Instance> instances;
  std::vector<v1::Machine> machines;
  std::vector<v1::Tenant> tenants;
};

template <typename T>
void SortById(std::vector<T>& v) {
  std::sort(v.begin(), v.end(), [](const T& a, const T& b) { return a.id() < b.id(); });
}

inline Observed ReadEverything(ServiceHarness& h) {
  Observed seen;
  v1::ListInstancesRequest instances_req;
  instances_req.set_org(f::kOrg);
  instances_req.set_page_size(1000);
  v1::ListInstancesResponse instances;
  seen.status = h.instances().ListInstances(Context().get(), instances_req, &instances);
  if (!seen.status.ok()) return seen;
  v1::ListMachinesRequest machines_req;
  machines_req.set_page_size(1000);
  v1::ListMachinesResponse machines;
  seen.status = h.inventory().ListMachines(Context().get(), machines_req, &machines);
  if (!seen.status.ok()) return seen;
  v1::ListTenantsResponse tenants;
  seen.status = h.inventory().ListTenants(Context().get(), {}, &tenants);
  if (!seen.status.ok()) return seen;
  seen.instances.assign(instances.instances().begin(), instances.instances().end());
  seen.machines.assign(machines.machines().begin(), machines.machines().end());
  seen.tenants.assign(tenants.tenants().begin(), tenants.tenants().end());
  SortById(seen.instances);
  SortById(seen.machines);
  SortById(seen.tenants);
  return seen;
}

template <typename Facts>
void DiffMaps(const std::string& what, const std::map<std::string, Facts>& want,
              const std::map<std::string, Facts>& got, std::string& out) {
  for (const auto& [id, facts] : want) {
    auto it = got.find(id);
    if (it == got.end()) {
      absl::StrAppend(&out, "acknowledged ", what, " ", id, " is missing; ");
    } else if (!(it->second == facts)) {
      absl::StrAppend(&out, what, " ", id, " differs from its acknowledged answer; ");
    }
  }
  for (const auto& [id, facts] : got) {
    if (want.count(id) == 0) absl::StrAppend(&out, what, " ", id, " was never acknowledged; ");
  }
}

// "" when `seen` is exactly `model`.
inline std::string DescribeModelDifference(const DaemonModel& model, const Observed& seen) {
  if (!seen.status.ok()) {
    return absl::StrCat("a read failed: ", seen.status.error_code(), " ",
                        seen.status.error_message());
  }
  std::string out;
  std::map<std::string, InstanceFacts> instances;
  for (const v1::Instance& i : seen.instances) {
    instances[i.id()] = {i.status(), i.machine_id(), i.gpu_count()};
  }
  DiffMaps("instance", model.instances, instances, out);
  std::map<std::string, MachineFacts> machines;
  for (const v1::Machine& m : seen.machines) {
    machines[m.id()] = {m.state(), {m.instance_ids().begin(), m.instance_ids().end()}};
  }
  DiffMaps("machine", model.Machines(), machines, out);
  std::set<std::string> tenants;
  for (const v1::Tenant& t : seen.tenants) tenants.insert(t.id());
  if (tenants != model.tenants) {
    absl::StrAppend(&out, "tenants: listed ", tenants.size(), ", acknowledged ",
                    model.tenants.size(), "; ");
  }
  return out;
}

template <typename T>
std::string DiffRecords(const std::string& what, const std::vector<T>& a, const std::vector<T>& b) {
  if (a.size() != b.size()) return absl::StrCat(what, ": ", a.size(), " vs ", b.size(), "; ");
  for (size_t i = 0; i < a.size(); ++i) {
    std::string report;
    google::protobuf::util::MessageDifferencer differ;
    differ.ReportDifferencesToString(&report);
    if (!differ.Compare(a[i], b[i])) return absl::StrCat(what, " ", a[i].id(), ": ", report);
  }
  return "";
}

// "" when both daemons list the same records, field for field.
inline std::string DescribeRecordDifference(const Observed& before, const Observed& after) {
  return absl::StrCat(DiffRecords("instance", before.instances, after.instances),
                      DiffRecords("machine", before.machines, after.machines),
                      DiffRecords("tenant", before.tenants, after.tenants));
}

// ---- The workload: one gRPC call per step, each learning from the answers before it. ----

struct WorkloadState {
  DaemonModel acknowledged;
  std::vector<std::string> batch_instance_ids;
  std::optional<DaemonModel> acknowledged_at_snapshot;  // set when CreateSnapshot succeeded
};

struct Step {
  std::string name;
  bool write;  // committed by the engine (CreateSnapshot only reads the store)
  std::function<grpc::Status(ServiceHarness&, WorkloadState&)> call;
};

// The batch instance `i`, or a well-formed id naming nothing when the batch was refused (the
// call is then refused too, as the daemon is read-only).
inline std::string BatchInstance(const WorkloadState& w, size_t i, int64_t placeholder) {
  return i < w.batch_instance_ids.size() ? w.batch_instance_ids[i] : TestUuid(placeholder);
}

inline v1::CreateInstanceRequest GpuSlice(const std::string& name, int gpus) {
  v1::CreateInstanceRequest req;
  req.set_org(f::kOrg);
  req.set_tenant_id(f::kTenantId);
  req.set_instance_type_id(f::kTypeId);
  req.set_name(name);
  req.set_gpu_count(gpus);
  return req;
}

inline std::vector<Step> Workload() {
  std::vector<Step> steps;
  steps.push_back({"ApplyFleet", true, [](ServiceHarness& h, WorkloadState& w) {
    v1::ApplyFleetRequest req;
    *req.mutable_fleet() = SmallFleet();
    v1::ApplyFleetResponse resp;
    grpc::Status s = h.inventory().ApplyFleet(Context().get(), req, &resp);
    if (s.ok()) {
      for (const v1::Machine& m : req.fleet().machines()) {
        w.acknowledged.machine_states[m.id()] = v1::MACHINE_STATE_READY;
      }
      for (const v1::Tenant& t : req.fleet().tenants()) w.acknowledged.tenants.insert(t.id());
    }
    return s;
  }});
  steps.push_back({"BatchCreateInstances", true, [](ServiceHarness& h, WorkloadState& w) {
    v1::BatchCreateInstancesRequest req;
    req.set_org(f::kOrg);
    req.set_name_prefix("worker");
    req.set_count(2);
    req.set_tenant_id(f::kTenantId);
    req.set_instance_type_id(f::kTypeId);
    req.set_vpc_id(TestUuid(900));
    v1::InterfaceCreateRequest* itf = req.add_interfaces();
    itf->set_subnet_id(TestUuid(901));
    itf->set_is_physical(true);
    req.set_operating_system_id(TestUuid(902));
    v1::BatchCreateInstancesResponse resp;
    grpc::Status s = h.instances().BatchCreateInstances(Context().get(), req, &resp);
    if (s.ok()) {
      for (const v1::Instance& i : resp.instances()) {
        w.acknowledged.Put(i);
        w.batch_instance_ids.push_back(i.id());
      }
    }
    return s;
  }});
  steps.push_back({"UpdateInstanceStatus", true, [](ServiceHarness& h, WorkloadState& w) {
    v1::UpdateInstanceStatusRequest req;
    req.set_org(f::kOrg);
    req.set_id(BatchInstance(w, 0, 700));
    req.set_status(v1::INSTANCE_STATUS_PROVISIONING);
    req.set_message("imaging");
    v1::Instance resp;
    grpc::Status s = h.instances().UpdateInstanceStatus(Context().get(), req, &resp);
    if (s.ok()) w.acknowledged.Put(resp);
    return s;
  }});
  steps.push_back({"CreateInstance", true, [](ServiceHarness& h, WorkloadState& w) {
    v1::Instance resp;
    grpc::Status s = h.instances().CreateInstance(Context().get(), GpuSlice("notebook", 2), &resp);
    if (s.ok()) w.acknowledged.Put(resp);
    return s;
  }});
  steps.push_back({"CreateSnapshot", false, [](ServiceHarness& h, WorkloadState& w) {
    v1::CreateSnapshotRequest req;
    req.set_path(kSnapshotFile);
    v1::CreateSnapshotResponse resp;
    grpc::Status s = h.admin().CreateSnapshot(Context().get(), req, &resp);
    if (s.ok()) w.acknowledged_at_snapshot = w.acknowledged;
    return s;
  }});
  steps.push_back({"BatchDeleteInstances", true, [](ServiceHarness& h, WorkloadState& w) {
    v1::BatchDeleteInstancesRequest req;
    req.set_org(f::kOrg);
    req.add_ids(BatchInstance(w, 1, 701));
    v1::BatchDeleteInstancesResponse resp;
    grpc::Status s = h.instances().BatchDeleteInstances(Context().get(), req, &resp);
    if (s.ok()) {
      for (const v1::Instance& i : resp.instances()) w.acknowledged.instances.erase(i.id());
    }
    return s;
  }});
  steps.push_back({"SetMachineState", true, [](ServiceHarness& h, WorkloadState& w) {
    v1::SetMachineStateRequest req;
    req.set_id(f::MachineId(2, 3));
    req.set_state(v1::MACHINE_STATE_MAINTENANCE);
    req.set_reason("firmware update");
    v1::Machine resp;
    grpc::Status s = h.inventory().SetMachineState(Context().get(), req, &resp);
    if (s.ok()) w.acknowledged.machine_states[resp.id()] = resp.state();
    return s;
  }});
  steps.push_back({"UpsertTenant", true, [](ServiceHarness& h, WorkloadState& w) {
    v1::UpsertTenantRequest req;
    v1::Tenant* tenant = req.mutable_tenant();
    tenant->set_id(kSecondTenantId);
    tenant->set_org(f::kOrg);
    tenant->set_name("Acme inference");
    v1::Quota* quota = tenant->add_quotas();
    quota->set_instance_type_id(f::kTypeId);
    quota->set_max_machines(2);
    v1::Tenant resp;
    grpc::Status s = h.inventory().UpsertTenant(Context().get(), req, &resp);
    if (s.ok()) w.acknowledged.tenants.insert(resp.id());
    return s;
  }});
  return steps;
}

}  // namespace nvlsched::daemon::testing::service_fault

#endif  // NVLSCHED_TESTS_DAEMON_SERVICE_FAULT_WORKLOAD_H_
