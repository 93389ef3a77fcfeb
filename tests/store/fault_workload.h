// A scripted store workload that mimics the daemon's writes, and a model of what LoadAll must
// return after any list of acknowledged ChangeSets. Shared by the fault tests
// (store_fault_test.cc): a test commits the steps, keeps the ChangeSets that returned OK, and
// compares a reopened database with Model::state().
#ifndef NVLSCHED_TESTS_STORE_FAULT_WORKLOAD_H_
#define NVLSCHED_TESTS_STORE_FAULT_WORKLOAD_H_

#include <algorithm>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "store/rows.h"
#include "tests/store/store_test_util.h"

namespace nvlsched::store::store_testing {

// One step of the workload: a Commit of `changes`, or (snapshot == true) a WriteSnapshot.
struct WorkloadStep {
  std::string name;
  bool snapshot = false;
  ChangeSet changes;
};

// The daemon's serialized instance stands in as a few hundred opaque bytes, so 18 instances take
// a few pages like the real ones do.
inline std::string InstanceDetails(int i, absl::string_view status) {
  std::string details = absl::StrCat("instance ", i, " status ", status, ";");
  details.resize(320, static_cast<char>('a' + i % 26));
  return details;
}

inline InstanceRow BatchInstance(int i) {
  InstanceRow row = MakeInstance(absl::StrCat("i-", i), absl::StrCat("worker-", i),
                                 absl::StrCat("m-0-", i), /*tenant=*/0);
  row.batch_id = "batch-1";
  row.status = "PROVISIONING";
  row.details = InstanceDetails(i, row.status);
  return row;
}

// fleet, batch create, snapshot, deletes, status updates, machine state change, machine
// removal, single GPU-granular create: the kinds of group the daemon's engine commits.
inline std::vector<WorkloadStep> DaemonLikeWorkload() {
  std::vector<WorkloadStep> steps;

  // Two NVL72 domains of 18 trays, two tenants.
  steps.push_back({"fleet", false, MakeFleet(/*domains=*/2, /*trays=*/18, /*tenants=*/2)});

  WorkloadStep batch{"batch create", false, {}};
  for (int i = 0; i < 18; ++i) batch.changes.upsert_instances.push_back(BatchInstance(i));
  batch.changes.put_idempotency.push_back(IdempotencyRow{
      "t-0", "req-batch-1", std::string("\x01\x02fingerprint", 13),
      std::string(200, 'r'), 1700000000000100});
  steps.push_back(std::move(batch));

  steps.push_back({"snapshot", true, {}});

  WorkloadStep remove{"delete 6 instances", false, {}};
  for (int i = 0; i < 6; ++i) remove.changes.delete_instance_ids.push_back(absl::StrCat("i-", i));
  steps.push_back(std::move(remove));

  WorkloadStep status{"status update", false, {}};
  for (int i = 6; i < 10; ++i) {
    InstanceRow row = BatchInstance(i);
    row.status = "RUNNING";
    row.updated_unix_micros += 5000000;
    row.details = InstanceDetails(i, row.status);
    status.changes.upsert_instances.push_back(row);
  }
  steps.push_back(std::move(status));

  WorkloadStep state{"machine state change", false, {}};
  MachineRow drained = MakeMachine(1, 3);
  drained.state = kMachineMaintenance;
  drained.state_reason = "firmware update";
  drained.labels["maintenance"] = "fw-2";
  state.changes.upsert_machines.push_back(drained);
  steps.push_back(std::move(state));

  WorkloadStep removal{"machine removal", false, {}};
  removal.changes.delete_machine_ids.push_back("m-1-17");
  steps.push_back(std::move(removal));

  WorkloadStep single{"single create", false, {}};
  InstanceRow granular = MakeInstance("i-single", "notebook", "m-1-0", /*tenant=*/1);
  granular.gpu_count = 2;
  granular.whole_machine = false;
  granular.batch_id.clear();
  granular.strict = false;
  granular.details = InstanceDetails(99, granular.status);
  single.changes.upsert_instances.push_back(granular);
  single.changes.put_idempotency.push_back(
      IdempotencyRow{"t-1", "req-single-1", "fp", "resp", 1700000000000200});
  single.changes.put_meta.push_back(MetaRow{"last_group", "8"});
  steps.push_back(std::move(single));
  return steps;
}

// What a database holds after exactly the ChangeSets given to Apply, in order: each kind in
// insertion order, an upsert replacing a row in place (LoadAll's order: rowid, kept on update),
// a delete removing it. Deleted instances and machines are removed before upserts, as Commit
// does (see ChangeSet).
class Model {
 public:
  explicit Model(int schema_version) { state_.schema_version = schema_version; }

  void Apply(const ChangeSet& changes) {
    for (const InstanceTypeRow& row : changes.upsert_instance_types) {
      Upsert(state_.instance_types, row, [&](const InstanceTypeRow& r) { return r.id == row.id; });
    }
    for (const DomainRow& row : changes.upsert_domains) {
      Upsert(state_.domains, row, [&](const DomainRow& r) { return r.id == row.id; });
    }
    for (const TenantRow& row : changes.upsert_tenants) {
      Upsert(state_.tenants, row, [&](const TenantRow& r) { return r.id == row.id; });
    }
    for (const std::string& id : changes.delete_instance_ids) Erase(state_.instances, id);
    for (const MachineRow& row : changes.upsert_machines) {
      Upsert(state_.machines, row, [&](const MachineRow& r) { return r.id == row.id; });
    }
    for (const InstanceRow& row : changes.upsert_instances) {
      Upsert(state_.instances, row, [&](const InstanceRow& r) { return r.id == row.id; });
    }
    for (const std::string& id : changes.delete_machine_ids) Erase(state_.machines, id);
    for (const IdempotencyRow& row : changes.put_idempotency) {
      Upsert(state_.idempotency, row, [&](const IdempotencyRow& r) {
        return r.tenant_id == row.tenant_id && r.request_id == row.request_id;
      });
    }
    for (const MetaRow& row : changes.put_meta) {
      Upsert(state_.meta, row, [&](const MetaRow& r) { return r.key == row.key; });
    }
  }

  const LoadedState& state() const { return state_; }

 private:
  template <typename Row, typename Same>
  static void Upsert(std::vector<Row>& rows, const Row& row, Same same) {
    auto it = std::find_if(rows.begin(), rows.end(), same);
    if (it == rows.end()) {
      rows.push_back(row);
    } else {
      *it = row;
    }
  }
  template <typename Row>
  static void Erase(std::vector<Row>& rows, const std::string& id) {
    rows.erase(std::remove_if(rows.begin(), rows.end(), [&](const Row& r) { return r.id == id; }),
               rows.end());
  }

  LoadedState state_;
};

// "" if `got` equals `want` field by field; otherwise which kinds differ and how.
inline std::string DescribeDifference(const LoadedState& got, const LoadedState& want) {
  std::string out;
  auto ids = [](const auto& rows) {
    constexpr size_t kMaxShown = 8;
    std::string s;
    size_t shown = 0;
    for (const auto& row : rows) {
      if (++shown > kMaxShown) {
        absl::StrAppend(&s, ",...");
        break;
      }
      if constexpr (std::is_same_v<std::decay_t<decltype(row)>, IdempotencyRow>) {
        absl::StrAppend(&s, s.empty() ? "" : ",", row.tenant_id, "/", row.request_id);
      } else if constexpr (std::is_same_v<std::decay_t<decltype(row)>, MetaRow>) {
        absl::StrAppend(&s, s.empty() ? "" : ",", row.key);
      } else {
        absl::StrAppend(&s, s.empty() ? "" : ",", row.id);
      }
    }
    return s;
  };
  auto compare = [&](const char* kind, const auto& g, const auto& w) {
    if (g == w) return;
    absl::StrAppend(&out, kind, ": got ", g.size(), " rows [", ids(g), "], want ", w.size(),
                    " rows [", ids(w), "]");
    if (g.size() == w.size()) absl::StrAppend(&out, " (same ids, different fields)");
    absl::StrAppend(&out, "; ");
  };
  if (got.schema_version != want.schema_version) {
    absl::StrAppend(&out, "schema_version: got ", got.schema_version, ", want ",
                    want.schema_version, "; ");
  }
  compare("instance_types", got.instance_types, want.instance_types);
  compare("domains", got.domains, want.domains);
  compare("machines", got.machines, want.machines);
  compare("tenants", got.tenants, want.tenants);
  compare("instances", got.instances, want.instances);
  compare("idempotency", got.idempotency, want.idempotency);
  compare("meta", got.meta, want.meta);
  return out;
}

}  // namespace nvlsched::store::store_testing

#endif  // NVLSCHED_TESTS_STORE_FAULT_WORKLOAD_H_
